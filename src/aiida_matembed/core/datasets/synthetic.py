"""Random, symmetric, charge-balanced crystals made with pyxtal, for training only.

Crystal ``i`` of :func:`synthetic_crystals` is drawn with its own rng seeded with ``[seed, 1, i]``, so the set does
not depend on ``n_jobs`` and a longer set starts with the shorter one. Each crystal:

1. **Space group.** Crystals with ``i % 4 == 3`` cycle through the allowed space groups in order (so ``n`` crystals
   cover ``min(n // 4, n_groups)`` of them, all 230 from ``n = 920``); the others are drawn with the frequencies
   of the 88,678 Materials Project structures that pyxtal ships (``database/spg_num_wps_mp.csv``; 225 groups
   occur there, 1, 168, 184, 207 and 222 do not).
2. **Wyckoff positions.** That file counts, per space group, each multiset of occupied Wyckoff positions
   (columns ``spg, n_atoms, wps, count``; ``wps`` are dash-separated indices into pyxtal's Wyckoff list of the
   group, 0 = general position, ``n_atoms`` = sum of their multiplicities in the conventional cell). With
   probability 0.85 a multiset with at least two positions and at most ``max_atoms`` atoms in the primitive cell
   (``max_atoms`` times the lattice points of the conventional cell: 4 for F) is drawn with those
   counts; otherwise (and for groups without one) 2 to 6 positions are drawn uniformly, each position without
   free parameters at most once.
3. **Composition.** The positions are split into 2 to 4 species (probabilities 0.45, 0.40, 0.15), each species
   having the sum of the multiplicities of its positions; a charge-balanced assignment of elements with common
   oxidation states is drawn (:mod:`._chemistry`).
4. **Geometry.** pyxtal's ``random_crystal`` places the atoms on exactly those positions, no two closer than
   :data:`PYXTAL_TOLERANCE` = 0.75 times the sum of their covalent radii (pyxtal's default is 0.5, which let 60 %
   of the draws fail the check below), in a cell of about :data:`VOLUME_FACTOR` = 1.25 times pyxtal's volume
   estimate (median 21 Å^3 per atom, 90 % of the crystals between 2.1 and 10.3 g/cm^3), with at most
   :data:`PYXTAL_ATTEMPTS` lattices and placements per draw.
5. **Checks.** The crystal is reduced to spglib's primitive standard cell (``symprec`` 1e-3 Å) and rejected if two
   atoms are closer than :data:`~.prototypes.MIN_CONTACT` times the sum of their covalent radii, if its density is
   outside :data:`DENSITY_RANGE`, or if its structure-type key is in ``exclude_keys``.

A rejected or failed draw is retried (steps 2-5; after :data:`MAX_TRIES` // 2 failures the space group is drawn
again by frequency), at most :data:`MAX_TRIES` times. ``space_group`` is spglib's group of the stored crystal,
``target_space_group`` pyxtal's (spglib finds a supergroup when random positions happen to be more symmetric).
"""

from __future__ import annotations

import contextlib
import csv
import io
import warnings
from collections.abc import Callable, Iterable, Sequence
from functools import cache, lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..elements import atomic_number
from . import _chemistry
from .prototypes import MIN_CONTACT, SYMPREC, Description, _check_count, describe, standard_primitive

if TYPE_CHECKING:
    from .store import StructureSet

__all__ = ('DENSITY_RANGE', 'MAX_TRIES', 'SYNTHETIC_VERSION', 'mp_space_group_counts', 'synthetic_crystals')

SYNTHETIC_VERSION = 1
"""Version of the generation rules; recorded in the metadata."""

MAX_TRIES = 40
"""Draws per crystal before :func:`synthetic_crystals` gives up with a ``RuntimeError``."""

DENSITY_RANGE = (0.5, 25.0)
"""Accepted mass density (g/cm^3)."""

ROUND_ROBIN_EVERY = 4
"""Every 4th crystal (``i % 4 == 3``) takes the next allowed space group in turn."""

MP_COMBINATION_PROBABILITY = 0.85
"""Probability of drawing the Wyckoff positions from the Materials Project statistics (else at random)."""

PYXTAL_TOLERANCE = 0.75
"""pyxtal places atoms no closer than this times the sum of their covalent radii (its default is 0.5)."""

VOLUME_FACTOR = 1.25
"""pyxtal's volume factor: the cell volume is drawn around this times pyxtal's estimate (its default is 1.1; the
larger distance tolerance here needs more room: with 1.1 a crystal took 220 ms, with 1.25 160 ms)."""

PYXTAL_ATTEMPTS = (4, 4)
"""Lattices and placements per lattice that pyxtal tries in one draw (pyxtal's defaults: 40 and 10)."""

_STREAM_SYNTHETIC = 1
_SPECIES_COUNTS = (2, 3, 4)
_SPECIES_PROBABILITIES = (0.45, 0.40, 0.15)
_AMU_PER_A3_IN_G_PER_CM3 = 1.66053907


class _Statistics(NamedTuple):
    counts: dict[int, int]
    """Space group -> number of MP structures."""
    combinations: dict[int, list[tuple[int, tuple[int, ...], int]]]
    """Space group -> ``(n_atoms, Wyckoff indices, count)`` rows."""


@lru_cache(maxsize=1)
def _mp_statistics() -> _Statistics:
    """Read pyxtal's ``spg_num_wps_mp.csv`` with the standard library."""
    spec = find_spec('pyxtal')
    if spec is None or not spec.submodule_search_locations:
        raise ImportError('synthetic crystals need pyxtal: pip install pyxtal')
    path = Path(next(iter(spec.submodule_search_locations))) / 'database' / 'spg_num_wps_mp.csv'
    counts: dict[int, int] = {}
    combinations: dict[int, list[tuple[int, tuple[int, ...], int]]] = {}
    with path.open(newline='') as handle:
        for row in csv.DictReader(handle):
            group, count = int(row['spg']), int(row['count'])
            counts[group] = counts.get(group, 0) + count
            wps = tuple(int(x) for x in row['wps'].split('-'))
            combinations.setdefault(group, []).append((int(row['n_atoms']), wps, count))
    return _Statistics(counts, combinations)


def mp_space_group_counts() -> dict[int, int]:
    """Return space group -> number of the 88,678 Materials Project structures in pyxtal's statistics."""
    return dict(_mp_statistics().counts)


@cache
def _wyckoff_positions(group: int) -> tuple[tuple[int, str, int], ...]:
    """Return ``(multiplicity, letter, degrees of freedom)`` of each Wyckoff position (pyxtal's order)."""
    from pyxtal.symmetry import Group

    return tuple((int(wp.multiplicity), str(wp.letter), int(wp.get_dof())) for wp in Group(group).Wyckoff_positions)


@cache
def _lattice_points(group: int) -> int:
    """Return the number of lattice points in pyxtal's conventional cell (P 1, A/B/C/I 2, R (hexagonal) 3, F 4)."""
    from pyxtal.symmetry import Group

    return {'P': 1, 'A': 2, 'B': 2, 'C': 2, 'I': 2, 'R': 3, 'F': 4}[str(Group(group).symbol)[0]]


def _random_combination(group: int, max_atoms: int, rng: np.random.Generator) -> list[int] | None:
    positions = _wyckoff_positions(group)
    wanted = int(rng.integers(2, 7))
    chosen: list[int] = []
    budget = max_atoms * _lattice_points(group)
    for _ in range(wanted):
        free = [k for k, (m, _, dof) in enumerate(positions) if m <= budget and (dof > 0 or k not in chosen)]
        if not free:
            break
        k = free[int(rng.integers(len(free)))]
        chosen.append(k)
        budget -= positions[k][0]
    return chosen if len(chosen) >= 2 else None


def _combination(group: int, max_atoms: int, rng: np.random.Generator) -> list[int] | None:
    limit = max_atoms * _lattice_points(group)  # max_atoms counts the primitive cell
    rows = [r for r in _mp_statistics().combinations.get(group, []) if r[0] <= limit and len(r[1]) >= 2]
    if rows and rng.random() < MP_COMBINATION_PROBABILITY:
        weights = np.array([r[2] for r in rows], dtype=float)
        return list(rows[rng.choice(len(rows), p=weights / weights.sum())][1])
    return _random_combination(group, max_atoms, rng)


@lru_cache(maxsize=1)
def _bounded_crystal_class() -> Any:
    """Return pyxtal's ``random_crystal`` with fewer internal attempts per draw (:data:`PYXTAL_ATTEMPTS`).

    pyxtal tries up to 40 lattices with 10 placements each before it gives up on a draw, which takes seconds for
    the hard ones; a fresh draw (new composition) is cheaper. The two counts are read-only properties here, so
    pyxtal's own assignments are ignored.
    """
    from pyxtal.crystal import random_crystal

    lattices, coordinates = PYXTAL_ATTEMPTS

    class BoundedRandomCrystal(random_crystal):  # type: ignore[misc]
        lattice_attempts = property(lambda self: lattices, lambda self, value: None)
        coord_attempts = property(lambda self: coordinates, lambda self, value: None)

    return BoundedRandomCrystal


@lru_cache(maxsize=1)
def _tolerances() -> Any:
    """Return pyxtal's distance tolerances: :data:`PYXTAL_TOLERANCE` times the sum of covalent radii."""
    from pyxtal.tolerance import Tol_matrix

    return Tol_matrix(prototype='atomic', factor=2 * PYXTAL_TOLERANCE)  # 'atomic' is 0.5 * factor * (r_i + r_j)


def _density(lattice: np.ndarray, numbers: np.ndarray) -> float:
    from ase.data import atomic_masses

    return float(atomic_masses[numbers].sum() / abs(np.linalg.det(lattice)) * _AMU_PER_A3_IN_G_PER_CM3)


class _Crystal(NamedTuple):
    lattice: np.ndarray
    numbers: np.ndarray
    frac: np.ndarray
    target: int
    tries: int
    description: Description


def _draw(group: int, max_atoms: int, rng: np.random.Generator, exclude: frozenset[str]) -> _Crystal | None:
    """One draw of steps 2-5 of the module docstring for ``group``; ``None`` if it failed or was rejected."""
    indices = _combination(group, max_atoms, rng)
    if indices is None:
        return None
    positions = _wyckoff_positions(group)
    n_species = int(rng.choice(_SPECIES_COUNTS, p=_SPECIES_PROBABILITIES))
    n_species = min(n_species, len(indices))
    order = rng.permutation(len(indices))
    owner = np.empty(len(indices), dtype=np.int64)
    owner[order[:n_species]] = np.arange(n_species)
    owner[order[n_species:]] = rng.integers(n_species, size=len(indices) - n_species)
    counts = [sum(positions[indices[k]][0] for k in np.flatnonzero(owner == s)) for s in range(n_species)]
    elements = _chemistry.assign_charge_balanced(counts, rng)
    if elements is None:
        return None
    sites = [[f'{positions[indices[k]][0]}{positions[indices[k]][1]}' for k in np.flatnonzero(owner == s)] for s in
             range(n_species)]  # fmt: skip
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter('ignore')
            crystal = _bounded_crystal_class()(
                dim=3,
                group=group,
                species=elements,
                numIons=counts,
                factor=VOLUME_FACTOR,
                sites=sites,
                tm=_tolerances(),
                random_state=rng,
            )
    except Exception:  # pyxtal raises RuntimeError, ValueError, ... for draws it cannot place
        return None
    if not crystal.valid:
        return None
    sites_placed = crystal.atom_sites
    cell_numbers = np.concatenate([[atomic_number(str(site.specie))] * site.multiplicity for site in sites_placed])
    cell_frac = np.concatenate([np.asarray(site.coords, dtype=float) for site in sites_placed])
    try:
        lattice, numbers, frac = standard_primitive(np.asarray(crystal.lattice.matrix), cell_numbers, cell_frac)
    except Exception:
        return None
    if len(numbers) > max_atoms or not DENSITY_RANGE[0] <= _density(lattice, numbers) <= DENSITY_RANGE[1]:
        return None
    if _chemistry.min_contact_ratio(lattice, numbers, frac) < MIN_CONTACT:
        return None
    description = describe(lattice, numbers, frac)
    if description.prototype in exclude:
        return None
    return _Crystal(lattice, numbers, frac, group, 0, description)


def _one(i: int, seed: int, max_atoms: int, allowed: tuple[int, ...], exclude: frozenset[str]) -> _Crystal:
    """Crystal ``i`` (see the module docstring)."""
    rng = np.random.default_rng([seed, _STREAM_SYNTHETIC, i])
    counts = _mp_statistics().counts
    weights = np.array([counts.get(g, 0) for g in allowed], dtype=float)
    probabilities = weights / weights.sum() if weights.sum() > 0 else np.full(len(allowed), 1.0 / len(allowed))

    def by_frequency() -> int:
        return int(allowed[rng.choice(len(allowed), p=probabilities)])

    group = allowed[(i // ROUND_ROBIN_EVERY) % len(allowed)] if i % ROUND_ROBIN_EVERY == 3 else by_frequency()
    for attempt in range(MAX_TRIES):
        if attempt == MAX_TRIES // 2:
            group = by_frequency()
        crystal = _draw(group, max_atoms, rng, exclude)
        if crystal is not None:
            return crystal._replace(tries=attempt + 1)
    raise RuntimeError(f'synthetic crystal {i} (seed {seed}): no valid crystal in {MAX_TRIES} draws')


def _chunk(args: tuple[Sequence[int], int, int, tuple[int, ...], frozenset[str]]) -> list[_Crystal]:
    indices, seed, max_atoms, allowed, exclude = args
    return [_one(i, seed, max_atoms, allowed, exclude) for i in indices]


def _check_groups(space_groups: Iterable[int] | None) -> tuple[int, ...]:
    if space_groups is None:
        return tuple(range(1, 231))
    groups = tuple(sorted({int(g) for g in space_groups}))
    if not groups or groups[0] < 1 or groups[-1] > 230:
        raise ValueError(f'space_groups must be numbers 1..230, got {space_groups!r}')
    return groups


def synthetic_crystals(
    n: int,
    seed: int,
    *,
    max_atoms: int = 48,
    space_groups: Iterable[int] | None = None,
    n_jobs: int = 1,
    exclude_keys: Iterable[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> StructureSet:
    """Return ``n`` random charge-balanced crystals (rules in the module docstring).

    :param n: number of crystals (>= 1).
    :param seed: seed; crystal ``i`` uses ``numpy.random.default_rng([seed, 1, i])``.
    :param max_atoms: most atoms in the stored (primitive) cell, >= 2; pyxtal's conventional cell has up to
        ``max_atoms`` times its lattice points (e.g. 4 x 48 for an F-centred group).
    :param space_groups: allowed space-group numbers (default: all 230).
    :param n_jobs: worker processes (spawned, not forked); the result does not depend on it.
    :param exclude_keys: structure-type keys to reject (the training split passes the held-out keys).
    :param progress: called with the number of crystals finished since the last call.
    :raises ValueError: for ``n < 1``, ``max_atoms < 2``, ``n_jobs < 1`` or space groups outside 1..230.
    :raises RuntimeError: when a crystal has no valid draw in :data:`MAX_TRIES` (has not happened in tests).

    Labels: the standard ones, ``target_space_group`` (pyxtal's group), ``origin`` (``'synthetic'``) and
    ``parent`` (``''``).
    """
    from .store import StructureSet

    n = _check_count(n)
    if max_atoms < 2:
        raise ValueError(f'max_atoms must be >= 2, got {max_atoms}')
    if n_jobs < 1:
        raise ValueError(f'n_jobs must be >= 1, got {n_jobs}')
    allowed = _check_groups(space_groups)
    exclude = frozenset(exclude_keys or ())
    crystals: list[_Crystal] = []
    if n_jobs == 1 or n < 8:
        for i in range(n):
            crystals.append(_one(i, seed, max_atoms, allowed, exclude))
            if progress is not None:
                progress(1)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        size = max(1, min(32, n // (4 * n_jobs)))
        tasks = [(range(s, min(s + size, n)), seed, max_atoms, allowed, exclude) for s in range(0, n, size)]
        context = multiprocessing.get_context('spawn')  # never fork: torch's threads may be running
        with ProcessPoolExecutor(max_workers=n_jobs, mp_context=context) as pool:
            workers: dict[int, Any] = {}
            try:
                for chunk in pool.map(_chunk, tasks):
                    workers.update(getattr(pool, '_processes', None) or {})
                    crystals.extend(chunk)
                    if progress is not None:
                        progress(len(chunk))
            except BrokenProcessPool:
                workers.update(getattr(pool, '_processes', None) or {})
                codes = sorted({p.exitcode for p in workers.values() if p.exitcode not in (None, 0)})
                raise RuntimeError(
                    f'a worker process died after {len(crystals)} of {n} crystals (exit codes {codes}; -9 is '
                    'SIGKILL, e.g. the out-of-memory killer); run again, or with n_jobs=1'
                ) from None
    described = [c.description for c in crystals]
    labels: dict[str, Any] = {
        'prototype': [d.prototype for d in described],
        'space_group': [d.space_group for d in described],
        'crystal_system': [d.crystal_system for d in described],
        'source': ['synthetic'] * n,
        'formula': [d.formula for d in described],
        'target_space_group': [c.target for c in crystals],
        'origin': ['synthetic'] * n,
        'parent': [''] * n,
    }
    metadata = {
        'builder': 'aiida_matembed.core.datasets.synthetic_crystals',
        'version': SYNTHETIC_VERSION,
        'seed': int(seed),
        'parameters': {
            'n': n,
            'max_atoms': max_atoms,
            'space_groups': None if space_groups is None else list(allowed),
            'n_excluded_keys': len(exclude),
        },
        'draws': int(sum(c.tries for c in crystals)),
        'symprec': SYMPREC,
        'statistics': 'pyxtal database/spg_num_wps_mp.csv (88,678 Materials Project structures)',
    }
    return StructureSet._from_arrays(
        [c.lattice for c in crystals], [c.numbers for c in crystals], [c.frac for c in crystals], labels, metadata
    )
