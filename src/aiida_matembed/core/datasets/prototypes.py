"""Canonical structure-type keys and chemically plausible decorations of the real AFLOW prototypes.

**Structure-type key** (:func:`structure_type_key`), an AFLOW-like label ``<stoichiometry>_<Pearson>_<space
group>_<Wyckoff letters of each species>``, e.g. ``AB_cF8_225_a_b`` for rock salt and ``AB2_tP6_136_a_f`` for
rutile (Mehl et al., *Comput. Mater. Sci.* 136, S1 (2017)), computed with spglib at :data:`SYMPREC`:

* species are anonymous: they are ordered by their number of atoms (ascending), ties by their Wyckoff letters,
  and named A, B, C, ...; the stoichiometry is reduced by the greatest common divisor (``A2B3`` for corundum);
* the Pearson symbol is the crystal family (a, m, o, t, h, c), the centring (P, C for A/B/C, I, F, R) and the
  number of atoms in the conventional cell (for R, the rhombohedral primitive cell, as in AFLOW: ``hR10``);
* each species' Wyckoff letters are sorted with run lengths (``bf2ij``: b, f, two i orbits, j);
* the letters are made canonical over the Euclidean normalizer of the space group: each coset of the
  normalizer permutes the letters (pyxtal's ``wyckoff_sets.json``, the Bilbao "Wyckoff sets"), and the
  lexicographically smallest label is kept. So rock salt is ``a_b`` whether Na sits on 4a or 4b, and two
  descriptions of one structure type that differ by an origin shift get one key;
* in the 11 pairs of enantiomorphic space groups (P4_1 / P4_3, P3_121 / P3_221, ...) a structure and its mirror
  image get one key, the smaller of the two (so it names the smaller group number: quartz in P3_221 (154) is
  ``AB2_hP9_152_a_c``), so that a held-out type cannot come back as its mirror image;
* orbits are spglib's ``crystallographic_orbits``, so the key does not change with the cell (supercells,
  rotations, origin shifts, atom order: checked on the 757 reference prototypes of at most 30 sites).

:data:`SYMPREC` = 1e-3 Å, fixed (no fallback; spglib is retried at 1e-5 and 1e-2 Å only if it fails outright):
with it spglib finds the tabulated space group of 286 of pymatgen's 288 prototypes and 578 of pyriodic's 579
(float32 coordinates); 1e-2 Å gives 285 / 573 and 1e-5 Å 240 / 577 (measured here).

**Reference prototypes** (:func:`reference_prototypes`): pymatgen's 288 AFLOW prototypes (real elements,
``source='aflow'``) and pyriodic-aflow's 579 (anonymous atom types, ``source='pyriodic'``), each reduced to
spglib's idealised primitive standard cell.

**Decorations** (:func:`decorate_prototypes`) replace the elements of a prototype and keep its structure type
(distinct species stay distinct). Rules (fixed, so decorations are reproducible):

* prototypes with real elements and an integer oxidation-state guess (pymatgen ``oxi_state_guesses``): each
  species ``X^q`` is replaced by ``Y^q`` (same charge, so charge balance is kept) with probability proportional
  to ``exp(lambda(X^q, Y^q))`` from the data-mined substitution table of Hautier et al., *Inorg. Chem.* 50,
  656 (2011) (pymatgen's ``lambda.json``; the element may stay the same); at least one species changes;
* other prototypes with real elements (metals, intermetallics, elements, mixed valence as in Ni3S2): each
  species is replaced by itself (weight 2) or by a neighbour in the periodic table of the same metal /
  non-metal character (group and period within +-1; weight 2 for the same group or period, 1 diagonally);
  at least one species changes;
* pyriodic's anonymous types: half of the decorations get a charge-balanced assignment of cations and anions
  (common oxidation states, see :mod:`._chemistry`) when the type counts allow one, the others (and all
  single-type prototypes) get distinct random metals (intermetallics);
* volume: prototypes with real elements are rescaled isotropically by the ratio of the summed cubed covalent
  radii (``V' = V * sum r'^3 / sum r^3``); pyriodic cells (whose real elements are unknown) are rescaled so that
  the closest contact is ``d_ij = r_i + r_j``; in both cases the cell is then expanded if needed so that no two
  atoms are closer than :data:`MIN_CONTACT` times the sum of their covalent radii.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..elements import SYMBOLS, atomic_number
from ..structures import InvalidStructureError
from . import _chemistry

if TYPE_CHECKING:
    from .store import StructureSet

__all__ = (
    'MIN_CONTACT',
    'SPLITS',
    'SYMPREC',
    'Description',
    'Prototype',
    'crystal_system',
    'decorate_prototypes',
    'describe',
    'reference_prototypes',
    'structure_type_key',
)

SYMPREC = 1e-3
"""spglib distance tolerance (Å) for space groups, Wyckoff positions and structure-type keys."""

MIN_CONTACT = 0.7
"""Smallest allowed ``d_ij / (r_i + r_j)`` (covalent radii) in a decorated or synthetic crystal."""

SPLITS = ('train', 'heldout', 'all')
"""Values of ``split``: prototypes whose key is not held out, those whose key is, or every prototype."""

DECORATION_VERSION = 1
"""Version of the decoration rules; recorded in the metadata of every decorated set."""

_STREAM_DECORATION = 2
"""Second entry of the seed of every decoration's rng (``[seed, 2, i]``), distinct from the synthetic stream."""

_CRYSTAL_SYSTEMS = (
    (2, 'triclinic'),
    (15, 'monoclinic'),
    (74, 'orthorhombic'),
    (142, 'tetragonal'),
    (167, 'trigonal'),
    (194, 'hexagonal'),
    (230, 'cubic'),
)
_FAMILY = {'triclinic': 'a', 'monoclinic': 'm', 'orthorhombic': 'o', 'tetragonal': 't', 'trigonal': 'h'}
_FAMILY.update({'hexagonal': 'h', 'cubic': 'c'})


def crystal_system(space_group: int) -> str:
    """Return the crystal system (lower case) of a space group number 1..230."""
    for last, name in _CRYSTAL_SYSTEMS:
        if 1 <= space_group <= last:
            return name
    raise ValueError(f'space group number must be 1..230, got {space_group}')


class Description(NamedTuple):
    """The standard labels of one structure (see :data:`~.store.STANDARD_LABELS`)."""

    prototype: str
    space_group: int
    crystal_system: str
    formula: str


@lru_cache(maxsize=1)
def _wyckoff_sets() -> dict[int, list[dict[str, str]]]:
    """Return space group -> letter permutations of the cosets of its Euclidean normalizer (pyxtal's table)."""
    spec = find_spec('pyxtal')
    if spec is None or not spec.submodule_search_locations:
        raise ImportError('structure-type keys need pyxtal (its Wyckoff-set table): pip install pyxtal')
    path = Path(next(iter(spec.submodule_search_locations))) / 'database' / 'wyckoff_sets.json'
    table = json.loads(path.read_text())
    out: dict[int, list[dict[str, str]]] = {}
    for number, entry in table.items():
        rows = [row.split() for row in entry['Transformed WP']]
        out[int(number)] = [dict(zip(rows[0], row, strict=True)) for row in rows]
    return out


def _dataset(lattice: np.ndarray, numbers: np.ndarray, frac: np.ndarray, symprec: float) -> Any:
    import spglib

    cell: Any = (np.asarray(lattice, dtype=float), np.asarray(frac, dtype=float), np.asarray(numbers, dtype=np.int64))
    for tolerance in (symprec, 1e-5, 1e-2):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', DeprecationWarning)  # spglib 2.5+: old error handling
                dataset = spglib.get_symmetry_dataset(cell, symprec=tolerance)
        except Exception:  # spglib's new error handling raises SpglibError
            dataset = None
        if dataset is not None:
            return dataset
    raise InvalidStructureError('spglib finds no symmetry for this structure (overlapping atoms?)')


def _letters(counts: dict[str, int]) -> str:
    """``{'b': 1, 'i': 2}`` -> ``'b2i'`` (AFLOW's notation, letters in alphabetical order)."""
    return ''.join(f'{counts[k] if counts[k] > 1 else ""}{k}' for k in sorted(counts))


_ENANTIOMORPHS = {76: 78, 91: 95, 92: 96, 144: 145, 151: 153, 152: 154, 169: 170, 171: 172, 178: 179, 180: 181}
_ENANTIOMORPHS.update({212: 213})
_ENANTIOMORPHS.update({v: k for k, v in list(_ENANTIOMORPHS.items())})
"""The 11 enantiomorphic pairs of space groups: a structure and its mirror image fall in the two groups of a pair."""


def _structure_key(
    lattice: np.ndarray, numbers: np.ndarray, frac: np.ndarray, symprec: float, dataset: Any = None
) -> tuple[str, Any]:
    """Return the key of a structure and its spglib dataset.

    In an enantiomorphic space group, the key is the smaller of the keys of the structure and of its mirror
    image (the smaller group number), so that a structure type and its mirror image share one key.
    """
    if dataset is None:
        dataset = _dataset(lattice, numbers, frac, symprec)
    key = _key_from_dataset(dataset, numbers)
    if int(dataset.number) in _ENANTIOMORPHS:
        mirrored = _key_from_dataset(_dataset(lattice, numbers, -np.asarray(frac, dtype=float), symprec), numbers)
        key = min(key, mirrored)
    return key, dataset


def _key_from_dataset(dataset: Any, numbers: np.ndarray) -> str:
    number = int(dataset.number)
    system = crystal_system(number)
    centring = str(dataset.international)[0]
    centring = 'C' if centring in 'ABC' else centring
    n_conventional = len(dataset.std_types) // (3 if centring == 'R' else 1)
    pearson = f'{_FAMILY[system]}{centring}{n_conventional}'
    species = sorted(set(int(z) for z in numbers))
    amounts = [int((numbers == z).sum()) for z in species]
    divisor = math.gcd(*amounts)
    amounts = [a // divisor for a in amounts]
    orbits: list[dict[str, int]] = [{} for _ in species]
    position = {z: k for k, z in enumerate(species)}
    equivalent = np.asarray(dataset.crystallographic_orbits)
    for representative in np.unique(equivalent):
        letter = str(dataset.wyckoffs[representative])
        counts = orbits[position[int(numbers[representative])]]
        counts[letter] = counts.get(letter, 0) + 1
    best: tuple[str, ...] | None = None
    for permutation in _wyckoff_sets().get(number, [{}]):
        labelled = []
        for amount, counts in zip(amounts, orbits, strict=True):
            moved: dict[str, int] = {}
            for letter, count in counts.items():
                new = permutation.get(letter, letter)
                moved[new] = moved.get(new, 0) + count
            labelled.append((amount, _letters(moved)))
        labelled.sort()
        candidate = tuple(f'{a}\x00{w}' for a, w in labelled)
        if best is None or candidate < best:
            best = candidate
    assert best is not None
    parts = [entry.split('\x00') for entry in best]
    stoichiometry = ''.join(f'{chr(65 + k)}{a if a != "1" else ""}' for k, (a, _) in enumerate(parts))
    return f'{stoichiometry}_{pearson}_{number}_' + '_'.join(w for _, w in parts)


def describe(
    lattice: np.ndarray, numbers: np.ndarray, frac_coords: np.ndarray, *, symprec: float = SYMPREC
) -> Description:
    """Return the structure-type key, space group, crystal system and reduced formula of an ordered crystal.

    :param lattice: ``(3, 3)`` lattice vectors as rows (Å).
    :param numbers: ``(n,)`` atomic numbers.
    :param frac_coords: ``(n, 3)`` fractional coordinates.
    """
    from pymatgen.core import Composition

    numbers = np.asarray(numbers, dtype=np.int64)
    key, dataset = _structure_key(lattice, numbers, frac_coords, symprec)
    number = int(dataset.number)
    symbols, counts = np.unique(numbers, return_counts=True)
    formula = Composition({SYMBOLS[int(z) - 1]: int(c) for z, c in zip(symbols, counts, strict=True)})
    return Description(key, number, crystal_system(number), formula.reduced_formula)


def structure_type_key(structure: Any, *, symprec: float = SYMPREC) -> str:
    """Return the canonical structure-type key of an ordered crystal (see the module docstring).

    :param structure: pymatgen ``Structure``, ASE ``Atoms`` or anything :func:`~..structures.to_pymatgen` takes.
    :raises PartiallyOccupiedError: for a disordered structure.
    """
    from ..structures import prepare_cells

    (cell,) = prepare_cells([structure], check_overlap=False)
    if isinstance(cell, Exception):
        raise cell
    return _structure_key(cell.lattice, cell.z, cell.frac, symprec)[0]


def standard_primitive(
    lattice: np.ndarray, numbers: np.ndarray, frac_coords: np.ndarray, *, symprec: float = SYMPREC
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return spglib's idealised primitive standard cell ``(lattice (3, 3) Å, numbers, frac_coords in [0, 1))``."""
    import spglib

    cell: Any = (np.asarray(lattice, dtype=float), np.asarray(frac_coords, dtype=float), np.asarray(numbers, dtype=int))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', DeprecationWarning)  # spglib 2.5+: old error handling
            result = spglib.standardize_cell(cell, to_primitive=True, no_idealize=False, symprec=symprec)
    except Exception:  # spglib's new error handling raises SpglibError
        result = None
    if result is None:
        raise InvalidStructureError('spglib cannot standardise this structure')
    new_lattice, new_frac, new_numbers = result
    order = np.argsort(new_numbers, kind='stable')
    frac = np.asarray(new_frac, dtype=float)[order] % 1.0
    frac[np.isclose(frac, 1.0, atol=1e-12)] = 0.0
    return np.asarray(new_lattice, dtype=float), np.asarray(new_numbers, dtype=np.int64)[order], frac


# --------------------------------------------------------------------------------------- reference prototypes
@dataclass(frozen=True)
class Prototype:
    """One reference prototype, reduced to its idealised primitive standard cell."""

    source: str
    """``'aflow'`` (pymatgen's 288, real elements) or ``'pyriodic'`` (pyriodic-aflow's 579, anonymous types)."""
    index: int
    """Position in its source's list (:func:`~.load_aflow_prototypes` / :func:`~.load_pyriodic_prototypes`)."""
    name: str
    """Mineral name / AFLOW label (aflow) or pyriodic's name."""
    key: str
    """Canonical structure-type key."""
    space_group: int
    lattice: np.ndarray
    numbers: np.ndarray
    frac_coords: np.ndarray

    @property
    def identifier(self) -> str:
        """``'<source>:<index>:<name>'``, the ``parent`` label of its decorations."""
        return f'{self.source}:{self.index}:{self.name}'

    @property
    def n_sites(self) -> int:
        return len(self.numbers)


def _aflow_cells() -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Read pymatgen's ``aflow_prototypes.json.gz`` as arrays ``(name, lattice, numbers, frac)``.

    The file is read directly: importing ``pymatgen.analysis.prototypes`` takes seconds.
    """
    from . import _aflow_prototypes_path

    with gzip.open(_aflow_prototypes_path(), 'rt') as handle:
        entries = json.load(handle)
    out = []
    for entry in entries:
        snl = entry['snl']
        numbers = []
        for site in snl['sites']:
            (species,) = site['species']
            numbers.append(atomic_number(species['element']))
        name = entry['tags']['mineral'] or entry['tags']['aflow']
        frac = np.array([site['abc'] for site in snl['sites']], dtype=float)
        out.append((name, np.array(snl['lattice']['matrix'], dtype=float), np.array(numbers), frac))
    return out


def _pyriodic_cells() -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Read pyriodic-aflow's prototypes as arrays ``(name, lattice, numbers, frac)``.

    As :func:`~.load_pyriodic_prototypes` does, atom types 0, 1, ... become ``PYRIODIC_DECORATION``.
    """
    from . import PYRIODIC_DECORATION

    try:
        path = resources.files('pyriodic_aflow').joinpath('unit_cells/aflow_db.json')
    except ModuleNotFoundError:
        raise ImportError('the pyriodic prototypes need pyriodic-aflow: pip install pyriodic-aflow') from None
    decoration = np.array([atomic_number(s) for s in PYRIODIC_DECORATION])
    out = []
    for entry in json.loads(path.read_text()):
        lx, ly, lz, xy, xz, yz = entry['box']
        lattice = np.array([[lx, 0.0, 0.0], [xy * ly, ly, 0.0], [xz * lz, yz * lz, lz]])
        frac = np.asarray(entry['positions'], dtype=float) @ np.linalg.inv(lattice)
        out.append((entry['name'], lattice, decoration[np.asarray(entry['types'], dtype=int)], frac % 1.0))
    return out


@lru_cache(maxsize=1)
def reference_prototypes() -> tuple[Prototype, ...]:
    """Return pymatgen's 288 and pyriodic-aflow's 579 prototypes in that order, as primitive standard cells.

    Cached: the first call takes about 2 s.
    """
    out = []
    for source, cells in (('aflow', _aflow_cells()), ('pyriodic', _pyriodic_cells())):
        for index, (name, lattice, numbers, frac) in enumerate(cells):
            lat, z, f = standard_primitive(lattice, numbers, frac)
            key, dataset = _structure_key(lat, z, f, SYMPREC)
            out.append(Prototype(source, index, name, key, int(dataset.number), lat, z, f))
    return tuple(out)


# ------------------------------------------------------------------------------------------------ decorations
_SPECIES = re.compile(r'^([A-Z][a-z]?)(\d*)([+-])$')


@lru_cache(maxsize=1)
def _substitutions() -> dict[tuple[str, int], tuple[tuple[str, ...], np.ndarray]]:
    """Return ``(element, charge) -> (replacement elements of the same charge, weights exp(lambda))``.

    Read from pymatgen's ``lambda.json`` (Hautier et al. 2011) directly; only pool elements are kept.
    """
    spec = find_spec('pymatgen')
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - pymatgen is a dependency
        raise ImportError('pymatgen is needed for the substitution table')
    path = Path(next(iter(spec.submodule_search_locations))) / 'core' / 'structure_prediction' / 'data' / 'lambda.json'
    pool = set(_chemistry.POOL)
    table: dict[tuple[str, int], dict[str, float]] = {}
    for first, second, value in json.loads(path.read_text()):
        a, b = _SPECIES.match(first), _SPECIES.match(second)
        if a is None or b is None:
            continue
        qa = int(a.group(2) or 1) * (1 if a.group(3) == '+' else -1)
        qb = int(b.group(2) or 1) * (1 if b.group(3) == '+' else -1)
        if qa != qb or a.group(1) not in pool or b.group(1) not in pool:
            continue
        for x, y in ((a.group(1), b.group(1)), (b.group(1), a.group(1))):
            table.setdefault((x, qa), {})[y] = math.exp(float(value))
    return {k: (tuple(v), np.array(list(v.values()))) for k, v in table.items()}


@lru_cache(maxsize=1024)
def _oxidation_guess(formula: tuple[tuple[str, int], ...]) -> dict[str, int] | None:
    """Return integer oxidation states of a composition (pymatgen's first guess), or None if there is none."""
    from pymatgen.core import Composition

    try:
        guesses = Composition(dict(formula)).oxi_state_guesses(max_sites=-1)
    except ValueError:
        return None
    if not guesses:
        return None
    states = guesses[0]
    if any(abs(q - round(q)) > 1e-6 or round(q) == 0 for q in states.values()):
        return None
    return {k: round(q) for k, q in states.items()}


def _draw_distinct(options: Sequence[tuple[tuple[str, ...], np.ndarray]], rng: np.random.Generator) -> list[str] | None:
    """Draw one element per species from its weighted options, all distinct (random species order)."""
    chosen: list[str] = [''] * len(options)
    for j in rng.permutation(len(options)):
        names, weights = options[j]
        free = np.array([n not in chosen for n in names], dtype=bool)
        if not len(names) or not free.any():
            return None
        w = weights * free
        chosen[j] = names[rng.choice(len(names), p=w / w.sum())]
    return chosen


@lru_cache(maxsize=1)
def _metals() -> tuple[str, ...]:
    """Return the metals of the element pool (pymatgen's ``is_metal``)."""
    table = _chemistry._element_table()
    return tuple(s for s in _chemistry.POOL if table[s][2])


def _new_elements(prototype: Prototype, rng: np.random.Generator) -> list[str] | None:
    """Return the new element of each species (in increasing order of the prototype's Z) or None to retry."""
    species = sorted(set(int(z) for z in prototype.numbers))
    counts = [int((prototype.numbers == z).sum()) for z in species]
    old = [SYMBOLS[z - 1] for z in species]
    if prototype.source == 'pyriodic':
        if len(species) > 1 and rng.random() < 0.5:
            balanced = _chemistry.assign_charge_balanced(counts, rng)
            if balanced is not None:
                return balanced
        metals = _metals()
        return [metals[k] for k in rng.choice(len(metals), size=len(species), replace=False)]
    states = _oxidation_guess(tuple(zip(old, counts, strict=True)))
    options: list[tuple[tuple[str, ...], np.ndarray]] = []
    for symbol in old:
        entry = _substitutions().get((symbol, states[symbol])) if states is not None else None
        if entry is None:
            names, weights = _chemistry.neighbour_elements(symbol)
            entry = ((symbol, *names), np.concatenate([[2.0], weights]))
        options.append(entry)
    for _ in range(10):
        chosen = _draw_distinct(options, rng)
        if chosen is not None and chosen != old:
            return chosen
    # force a change: drop the original element of one species
    j = int(rng.integers(len(old)))
    names, weights = options[j]
    keep = np.array([n != old[j] for n in names], dtype=bool)
    if not keep.any():
        return None
    options[j] = (tuple(n for n, k in zip(names, keep, strict=True) if k), weights[keep])
    return _draw_distinct(options, rng)


def _decorate(prototype: Prototype, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Return ``(lattice, numbers, frac)`` of one decoration of ``prototype``, or None when the draw failed."""
    elements = _new_elements(prototype, rng)
    if elements is None:
        return None
    species = sorted(set(int(z) for z in prototype.numbers))
    mapping = {z: atomic_number(e) for z, e in zip(species, elements, strict=True)}
    numbers = np.array([mapping[int(z)] for z in prototype.numbers], dtype=np.int64)
    lattice = prototype.lattice
    if prototype.source == 'pyriodic':
        scale = 1.0 / _chemistry.min_contact_ratio(lattice, numbers, prototype.frac_coords)
    else:
        ratio = _chemistry.summed_cubed_radii(numbers) / _chemistry.summed_cubed_radii(prototype.numbers)
        scale = ratio ** (1.0 / 3.0)
    lattice = lattice * scale
    contact = _chemistry.min_contact_ratio(lattice, numbers, prototype.frac_coords)
    if contact < MIN_CONTACT:
        lattice = lattice * (MIN_CONTACT / contact)
    return lattice, numbers, prototype.frac_coords.copy()


def split_prototypes(split: str, *, max_atoms: int | None = None) -> tuple[list[Prototype], int]:
    """Return the reference prototypes of a split with at most ``max_atoms`` sites, and how many were skipped."""
    from .heldout import heldout_prototypes

    if split not in SPLITS:
        raise ValueError(f'unknown split {split!r}; expected one of {", ".join(SPLITS)}')
    held = heldout_prototypes()
    chosen = [p for p in reference_prototypes() if split == 'all' or (p.key in held) == (split == 'heldout')]
    if max_atoms is None:
        return chosen, 0
    kept = [p for p in chosen if p.n_sites <= max_atoms]
    return kept, len(chosen) - len(kept)


def decorate_prototypes(
    n: int,
    seed: int,
    *,
    split: str = 'train',
    max_atoms: int = 64,
    include_originals: bool = False,
    progress: Callable[[int], None] | None = None,
) -> StructureSet:
    """Return ``n`` decorations of the reference prototypes of ``split`` (rules in the module docstring).

    Decorations are spread round robin over the structure types (keys) of the split, and within a key over its
    prototypes, so every type gets ``n / n_types`` decorations (+-1). Decoration ``i`` uses its own rng seeded with
    ``[seed, 2, i]``. With ``include_originals``, the first items are the undecorated prototypes of pymatgen's
    288 in the split (real compounds; pyriodic's have no real elements), then the decorations; all count towards
    ``n``.

    Labels: the standard ones (``source`` is the prototype's source), ``target_space_group`` (the prototype's),
    ``origin`` (``'original'`` or ``'decorated'``) and ``parent`` (``'<source>:<index>:<name>'``).

    :param n: number of structures (>= 1).
    :param split: ``'train'``, ``'heldout'`` or ``'all'`` (see :mod:`.heldout`).
    :param max_atoms: prototypes whose primitive cell has more sites are skipped (counted in the metadata).
    :param progress: called with the number of structures finished since the last call.
    :raises ValueError: for ``n < 1``, an unknown split, or a split with no prototype under ``max_atoms``.
    """
    from .store import StructureSet

    n = _check_count(n)
    if max_atoms < 1:
        raise ValueError(f'max_atoms must be >= 1, got {max_atoms}')
    prototypes, skipped = split_prototypes(split, max_atoms=max_atoms)
    if not prototypes:
        raise ValueError(f'no prototype of split {split!r} has at most {max_atoms} sites')
    originals = [p for p in prototypes if p.source == 'aflow'] if include_originals else []
    members: dict[str, list[Prototype]] = {}
    for prototype in prototypes:
        members.setdefault(prototype.key, []).append(prototype)
    keys = sorted(members)
    lattices, numbers, fracs = [], [], []
    labels: dict[str, list[Any]] = {k: [] for k in ('source', 'target_space_group', 'origin', 'parent')}
    failures = 0
    for i in range(n):
        rng = np.random.default_rng([seed, _STREAM_DECORATION, i])
        if i < len(originals):
            prototype = originals[i]
            result: tuple[np.ndarray, np.ndarray, np.ndarray] | None = (
                prototype.lattice,
                prototype.numbers,
                prototype.frac_coords,
            )
            origin = 'original'
        else:
            j = i - len(originals)
            group = members[keys[j % len(keys)]]
            prototype = group[(j // len(keys)) % len(group)]
            origin = 'decorated'
            for _ in range(20):
                result = _decorate(prototype, rng)
                if result is not None:
                    break
                failures += 1
            else:  # no valid decoration in 20 tries (e.g. alpha-Po): keep the prototype's own elements
                result = (prototype.lattice, prototype.numbers, prototype.frac_coords)
                origin = 'original'
        assert result is not None
        lattices.append(result[0])
        numbers.append(result[1])
        fracs.append(result[2])
        labels['source'].append(prototype.source)
        labels['target_space_group'].append(prototype.space_group)
        labels['origin'].append(origin)
        labels['parent'].append(prototype.identifier)
        if progress is not None:
            progress(1)
    described = [describe(lat, z, f) for lat, z, f in zip(lattices, numbers, fracs, strict=True)]
    columns: dict[str, Any] = {
        'prototype': [d.prototype for d in described],
        'space_group': [d.space_group for d in described],
        'crystal_system': [d.crystal_system for d in described],
        'formula': [d.formula for d in described],
        **labels,
    }
    metadata = {
        'builder': 'aiida_matembed.core.datasets.decorate_prototypes',
        'version': DECORATION_VERSION,
        'seed': int(seed),
        'parameters': {'n': n, 'split': split, 'max_atoms': max_atoms, 'include_originals': include_originals},
        'n_prototypes': len(prototypes),
        'n_types': len(keys),
        'n_skipped_max_atoms': skipped,
        'n_originals': min(len(originals), n),
        'n_failed_draws': failures,
        'symprec': SYMPREC,
    }
    return StructureSet._from_arrays(lattices, numbers, fracs, columns, metadata)


def _check_count(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f'n must be a positive integer, got {n!r}')
    return int(n)


def shared_keys() -> tuple[int, int, int]:
    """Return ``(keys of pymatgen's 288, keys of pyriodic's 579, keys in both)``."""
    aflow = {p.key for p in reference_prototypes() if p.source == 'aflow'}
    pyriodic = {p.key for p in reference_prototypes() if p.source == 'pyriodic'}
    return len(aflow), len(pyriodic), len(aflow & pyriodic)
