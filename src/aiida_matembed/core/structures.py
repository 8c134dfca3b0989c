"""Conversion and validation of the structures every representation accepts.

The core accepts pymatgen :class:`~pymatgen.core.Structure` and ASE :class:`~ase.Atoms` objects
(compositional representations also accept :class:`~pymatgen.core.Composition` and formula strings).
The AiiDA layer converts ``StructureData`` to pymatgen before calling the core.

All lengths are in Å.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Union

import numpy as np

from .elements import Z_MAX

if TYPE_CHECKING:
    from ase import Atoms
    from pymatgen.core import Composition, Structure

__all__ = (
    'MAX_LATTICE_LENGTH',
    'MAX_SITES',
    'MIN_INTERATOMIC_DISTANCE',
    'Cell',
    'InvalidStructureError',
    'PartiallyOccupiedError',
    'StructureLike',
    'composition_of',
    'element_amounts',
    'first_in_segments',
    'prepare_cells',
    'to_pymatgen',
    'validate_structure',
)

MIN_INTERATOMIC_DISTANCE = 0.5
"""Two sites (or a site and its periodic image) closer than this (Å) are reported as overlapping."""

MIN_CELL_VOLUME = 1e-6
"""Cells with ``|det(lattice)|`` below this (Å^3) are reported as having zero volume."""

MAX_LATTICE_LENGTH = 1000.0
"""Lattice vectors longer than this (Å) are refused: no crystal has them, and reflections or periodic neighbour
searches in such a cell would not fit in memory (a length in nm or m read as Å). Read when a check runs, so it
can be raised (``aiida_matembed.core.structures.MAX_LATTICE_LENGTH = ...``)."""

MAX_SITES = 5000
"""Structures with more sites are refused before anything is computed on them (read when a check runs)."""

StructureLike = Union['Structure', 'Atoms']
"""Anything the core converts to a pymatgen ``Structure``."""

CompositionLike = Union['Structure', 'Atoms', 'Composition', str]
"""Anything a compositional representation accepts."""


class InvalidStructureError(ValueError):
    """Raised for a structure that cannot be featurised, with a message that says why."""


class PartiallyOccupiedError(InvalidStructureError):
    """A structure with a partially occupied (disordered) site where an ordered one is needed."""


def to_pymatgen(obj: Any) -> Structure:
    """Return ``obj`` as a pymatgen ``Structure`` (the object itself if it already is one; never a copy).

    :param obj: a pymatgen ``Structure`` or an ASE ``Atoms`` with periodic boundary conditions.
    :raises TypeError: for any other type.
    :raises InvalidStructureError: for an ASE ``Atoms`` that is not fully periodic or has unknown species.
    """
    from pymatgen.core import Lattice, Structure

    if isinstance(obj, Structure):
        return obj
    try:
        from ase import Atoms
    except ImportError:  # pragma: no cover - ase is a dependency
        Atoms = ()  # type: ignore[assignment,misc]
    if isinstance(obj, Atoms):
        if not all(obj.pbc):
            raise InvalidStructureError(
                f'ASE Atoms with pbc={obj.pbc.tolist()} is not a crystal: set a cell and atoms.pbc = True'
            )
        numbers = np.asarray(obj.numbers)
        bad = np.flatnonzero((numbers < 1) | (numbers > Z_MAX))
        if bad.size:
            i = int(bad[0])
            raise InvalidStructureError(f'unknown species {obj.get_chemical_symbols()[i]!r} at site {i}')
        matrix = np.asarray(obj.cell.array, dtype=float)
        _check_lattice(matrix)
        positions = np.asarray(obj.positions, dtype=float)
        _check_finite_coords(positions)
        return Structure(Lattice(matrix), numbers.tolist(), positions, coords_are_cartesian=True)
    raise TypeError(f'expected a pymatgen Structure or an ASE Atoms, got {type(obj).__name__}')


def composition_of(obj: Any) -> Composition:
    """Return the composition of a structure, an ASE ``Atoms``, a ``Composition`` or a formula string."""
    from pymatgen.core import Composition

    if isinstance(obj, Composition):
        return obj
    if isinstance(obj, str):
        try:
            return Composition(obj)
        except Exception as exception:
            raise InvalidStructureError(f'cannot parse formula {obj!r}: {exception}') from None
    return to_pymatgen(obj).composition


def element_amounts(composition: Composition) -> tuple[np.ndarray, np.ndarray]:
    """Return atomic numbers (int) and amounts (float) of the elements in a composition.

    Oxidation states are dropped (Fe2+ and Fe3+ count as Fe).

    :raises InvalidStructureError: for an empty composition, a negative amount or a dummy species.
    """
    amounts: dict[int, float] = {}
    for species, amount in composition.items():
        z = int(getattr(species, 'Z', 0) or 0)
        if not 1 <= z <= Z_MAX:
            raise InvalidStructureError(f'unknown species {str(species)!r}: not a chemical element')
        if amount < 0:
            raise InvalidStructureError(f'negative amount {amount} of {species}')
        amounts[z] = amounts.get(z, 0.0) + float(amount)
    amounts = {z: a for z, a in amounts.items() if a > 0}
    if not amounts:
        raise InvalidStructureError('empty composition: the structure has no sites')
    zs = np.fromiter(amounts.keys(), dtype=np.int64, count=len(amounts))
    return zs, np.fromiter(amounts.values(), dtype=float, count=len(amounts))


def validate_structure(
    structure: Structure,
    *,
    min_distance: float = MIN_INTERATOMIC_DISTANCE,
    allow_partial_occupancy: bool = True,
) -> None:
    """Check that a structure is a sensible crystal; raise :class:`InvalidStructureError` otherwise.

    Checks, in order: at least one and at most :data:`MAX_SITES` sites; finite lattice with positive volume
    (right-handed cell) and no vector longer than :data:`MAX_LATTICE_LENGTH`;
    finite coordinates; only chemical elements; no over-occupied site; (optionally) no partial
    occupancy; no two sites, nor a site and a periodic image, closer than ``min_distance`` (Å).
    """
    if len(structure) == 0:
        raise InvalidStructureError('structure has no sites')
    _check_size(len(structure))
    matrix = structure.lattice.matrix
    _check_lattice(matrix)
    cart = structure.cart_coords
    _check_finite_coords(cart)
    for index, site in enumerate(structure):
        for species in site.species:
            if not 1 <= int(getattr(species, 'Z', 0) or 0) <= Z_MAX:
                raise InvalidStructureError(f'unknown species {str(species)!r} at site {index}')
        occupancy = site.species.num_atoms
        if occupancy > 1 + 1e-6:
            raise InvalidStructureError(f'site {index} has total occupancy {occupancy:.4g} > 1')
        if not allow_partial_occupancy and not site.is_ordered:
            raise PartiallyOccupiedError(
                f'site {index} is partially occupied ({site.species.formula}); this representation needs '
                'an ordered structure (order it first, e.g. with pymatgen OrderDisorderedStructureTransformation)'
            )
    pair = closest_pair(cart, matrix, min_distance)
    if pair is not None:
        raise _overlap_error(pair, min_distance)


def closest_pair(cart: np.ndarray, matrix: np.ndarray, cutoff: float) -> tuple[int, int, float] | None:
    """Return ``(i, j, d)`` for the closest pair of sites (periodic images included) if ``d < cutoff``.

    A site and its own periodic image count as a pair ``(i, i)``. Returns ``None`` when no pair is
    closer than ``cutoff`` (Å). Uses pymatgen's compiled periodic neighbour search.
    """
    from pymatgen.optimization.neighbors import find_points_in_spheres

    cart = np.ascontiguousarray(cart, dtype=float)
    centers, points, _, distances = find_points_in_spheres(
        cart,
        cart,
        r=max(float(cutoff), 2.0),  # pymatgen's cell list is slow for radii much below 2 Å
        pbc=np.array([1, 1, 1], dtype=np.int64),
        lattice=np.ascontiguousarray(matrix, dtype=float),
        tol=1e-8,
    )
    keep = ~((centers == points) & (distances < 1e-8)) & (distances < cutoff)
    if not keep.any():
        return None
    k = int(np.argmin(np.where(keep, distances, np.inf)))
    return (int(min(centers[k], points[k])), int(max(centers[k], points[k])), float(distances[k]))


class Cell(NamedTuple):
    """An ordered crystal as arrays: what the structural representations compute on."""

    z: np.ndarray
    """``(N,)`` int64 atomic numbers."""
    frac: np.ndarray
    """``(N, 3)`` fractional coordinates."""
    cart: np.ndarray
    """``(N, 3)`` Cartesian coordinates (Å)."""
    lattice: np.ndarray
    """``(3, 3)`` lattice vectors as rows (Å)."""
    volume: float
    """Cell volume (Å^3)."""


_SMALL_CELL_SITES = 200
"""Cells up to this many sites get the compiled 27-image overlap check; larger ones the neighbour search."""


def prepare_cells(
    items: Sequence[Any], *, min_distance: float = MIN_INTERATOMIC_DISTANCE, check_overlap: bool = True
) -> list[Cell | Exception]:
    """Convert and validate a batch of ordered crystals; return a :class:`Cell` or the exception per item.

    Runs the checks of :func:`validate_structure` (with ``allow_partial_occupancy=False``) with the same
    messages, vectorised over the batch: each structure's arrays are read once, the lattice and
    coordinate checks are numpy reductions over the whole batch, and the overlap check of all cells
    up to 200 sites is one compiled pass over the 27 nearest images (exact whenever every interplanar
    spacing exceeds ``2 * min_distance``; other cells use the neighbour search). Callers that
    build a neighbour list anyway pass ``check_overlap=False`` and use :func:`check_no_overlap` on it.
    """
    out: list[Cell | Exception] = []
    for item in items:
        try:
            out.append(_read_cell(item))
        except Exception as exception:
            out.append(exception)
    good = [k for k, c in enumerate(out) if isinstance(c, Cell)]
    if not good:
        return out
    cells: list[Cell] = [out[k] for k in good]  # type: ignore[misc]
    matrices = np.stack([c.lattice for c in cells])
    finite = np.isfinite(matrices).all(axis=(1, 2))
    volumes = np.linalg.det(np.where(finite[:, None, None], matrices, 1.0))
    crosses = np.cross(matrices[:, [1, 2, 0]], matrices[:, [2, 0, 1]])
    with np.errstate(invalid='ignore', divide='ignore'):
        spacing = np.abs(volumes) / np.sqrt((crosses**2).sum(axis=2)).max(axis=1)
    # per-site checks over the concatenated batch: first offending site of each cell (or -1)
    sizes = np.fromiter((len(c.z) for c in cells), dtype=np.int64, count=len(cells))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    bad_coords = first_in_segments(~np.isfinite(np.concatenate([c.cart for c in cells])).all(axis=1), starts, sizes)
    z = np.concatenate([c.z for c in cells])
    bad_species = first_in_segments((z < 1) | (z > Z_MAX), starts, sizes)
    overlap_groups: dict[int, list[int]] = {}  # -1: small cells, checked together; k: cell k alone
    for i, k in enumerate(good):
        cell, volume = cells[i], float(volumes[i])
        try:
            if not finite[i]:
                raise InvalidStructureError('lattice contains NaN or infinite values')
            _check_volume(volume)
            _check_lengths(cell.lattice)
            if bad_coords[i] >= 0:
                raise InvalidStructureError(f'NaN or infinite coordinates at site {int(bad_coords[i])}')
            if bad_species[i] >= 0:  # the single-structure check names the species
                validate_structure(to_pymatgen(items[k]), allow_partial_occupancy=False)
                raise InvalidStructureError(f'unknown species at site {int(bad_species[i])}')
        except InvalidStructureError as exception:
            out[k] = exception
            continue
        out[k] = Cell(cell.z, cell.frac, cell.cart, cell.lattice, volume)
        if not check_overlap:
            continue
        small = sizes[i] <= _SMALL_CELL_SITES and spacing[i] > 2 * min_distance
        overlap_groups.setdefault(-1 if small else k, []).append(k)
    for key, rows in overlap_groups.items():
        if key == -1:  # small cells: the 27 nearest images suffice (spacings > 2 min_distance); compiled
            from ._kernels import closest_pairs

            group: list[Cell] = [out[k] for k in rows]  # type: ignore[misc]
            ptr = np.concatenate([[0], np.cumsum([len(c.z) for c in group])]).astype(np.int64)
            distance = closest_pairs(np.concatenate([c.frac for c in group]), ptr, np.stack([c.lattice for c in group]))
            # the kernel decides; a flagged cell (rare) gets the neighbour search's pair, so that the
            # message names the same sites as validate_structure among pairs at equal distances
            pairs = [
                closest_pair(cell.cart, cell.lattice, min_distance) if d < min_distance else None
                for cell, d in zip(group, distance, strict=True)
            ]
        else:
            lone: Cell = out[key]  # type: ignore[assignment]
            pairs = [closest_pair(lone.cart, lone.lattice, min_distance)]
        for k, pair in zip(rows, pairs, strict=True):
            if pair is not None:
                out[k] = _overlap_error(pair, min_distance)
    return out


def first_in_segments(flags: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Index within its segment of the first true flag of each segment ``starts[i]:starts[i] + sizes[i]``, or -1.

    Segments are contiguous, in order and non-empty (one per structure of a concatenated batch).
    """
    first = np.full(len(sizes), -1, dtype=np.int64)
    hits = np.flatnonzero(flags)
    if hits.size:
        owner = np.searchsorted(starts, hits, side='right') - 1
        owner, index = np.unique(owner, return_index=True)  # hits ascending: the first of each owner
        first[owner] = hits[index] - starts[owner]
    return first


def _read_cell(item: Any) -> Cell:
    """Read the arrays of one structure (checked by :func:`prepare_cells`); volume filled in later."""
    structure = to_pymatgen(item)
    if len(structure) == 0:
        raise InvalidStructureError('structure has no sites')
    _check_size(len(structure))
    species = [(getattr(sp, 'Z', 0), amount) for site in structure for sp, amount in site.species.items()]
    if len(species) != len(structure) or any(amount != 1 for _, amount in species):
        # a disordered site: let the full validation say which and why
        validate_structure(structure, allow_partial_occupancy=False)
        raise PartiallyOccupiedError('structure has partially occupied sites')
    z = np.fromiter((number for number, _ in species), dtype=np.int64, count=len(species))
    matrix = structure.lattice.matrix
    frac = structure.frac_coords
    return Cell(z, frac, frac @ matrix, matrix, 0.0)


def check_no_overlap(
    centers: np.ndarray, neighbors: np.ndarray, distances: np.ndarray, min_distance: float = MIN_INTERATOMIC_DISTANCE
) -> None:
    """Raise the overlap error of :func:`validate_structure` if a neighbour-list pair is closer than ``min_distance``.

    The neighbour list must reach at least ``min_distance`` and include periodic images.
    """
    if len(distances) and distances.min() < min_distance:
        k = int(np.argmin(distances))
        i, j = sorted((int(centers[k]), int(neighbors[k])))
        raise _overlap_error((i, j, float(distances[k])), min_distance)


def _overlap_error(pair: tuple[int, int, float], min_distance: float) -> InvalidStructureError:
    i, j, distance = pair
    what = f'site {i} and its periodic image' if i == j else f'sites {i} and {j}'
    return InvalidStructureError(f'overlapping atoms: {what} are {distance:.3f} Å apart (< {min_distance} Å)')


def _check_lattice(matrix: np.ndarray) -> None:
    if not np.all(np.isfinite(matrix)):
        raise InvalidStructureError('lattice contains NaN or infinite values')
    _check_volume(float(np.linalg.det(matrix)))
    _check_lengths(matrix)


def _check_lengths(matrix: np.ndarray) -> None:
    longest = float(np.sqrt((np.asarray(matrix) ** 2).sum(axis=1)).max())
    if longest > MAX_LATTICE_LENGTH:
        raise InvalidStructureError(
            f'lattice vector of {longest:.4g} Å is longer than {MAX_LATTICE_LENGTH:g} Å (wrong units?)'
        )


def _check_size(n_sites: int) -> None:
    if n_sites > MAX_SITES:
        raise InvalidStructureError(f'{n_sites} sites: more than {MAX_SITES} (raise core.structures.MAX_SITES)')


def _check_volume(volume: float) -> None:
    if abs(volume) < MIN_CELL_VOLUME:
        raise InvalidStructureError(f'zero cell volume ({volume:.3g} Å^3): lattice vectors are degenerate')
    if volume < 0:
        raise InvalidStructureError(
            f'negative cell volume ({volume:.4g} Å^3): the lattice vectors are left-handed; reorder them'
        )


def _check_finite_coords(cart: np.ndarray) -> None:
    bad = np.flatnonzero(~np.isfinite(cart).all(axis=1))
    if bad.size:
        raise InvalidStructureError(f'NaN or infinite coordinates at site {int(bad[0])}')


def iter_chunks(items: list[Any], n_chunks: int) -> Iterable[tuple[int, list[Any]]]:
    """Split ``items`` into ``n_chunks`` contiguous chunks; yield ``(offset, chunk)`` pairs."""
    size = -(-len(items) // max(1, n_chunks))
    for start in range(0, len(items), max(1, size)):
        yield start, items[start : start + size]
