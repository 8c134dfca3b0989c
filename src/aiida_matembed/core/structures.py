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
    'SMALL_CELL_SITES',
    'Cell',
    'CellArrays',
    'Crystal',
    'InvalidStructureError',
    'PartiallyOccupiedError',
    'StructureLike',
    'composition_of',
    'element_amounts',
    'first_in_segments',
    'overlap_error',
    'prepare_cells',
    'read_cells',
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

StructureLike = Union['Structure', 'Atoms', 'Crystal']
"""Anything the core converts to a pymatgen ``Structure``."""

CompositionLike = Union['Structure', 'Atoms', 'Composition', str]
"""Anything a compositional representation accepts."""


class Crystal(NamedTuple):
    """An ordered crystal as plain arrays, e.g. read from a ``StructureData``'s attributes without pymatgen objects.

    Every part of the core that takes a structure accepts it; the batched readers (:func:`read_cells`) use the
    arrays as they are, anything that needs a pymatgen ``Structure`` gets one from :func:`to_pymatgen`.
    """

    lattice: np.ndarray
    """``(3, 3)`` lattice vectors as rows (Å)."""
    positions: np.ndarray
    """``(N, 3)`` Cartesian coordinates (Å)."""
    numbers: np.ndarray
    """``(N,)`` int64 atomic numbers."""


class InvalidStructureError(ValueError):
    """Raised for a structure that cannot be featurised, with a message that says why."""


class PartiallyOccupiedError(InvalidStructureError):
    """A structure with a partially occupied (disordered) site where an ordered one is needed."""


def to_pymatgen(obj: Any) -> Structure:
    """Return ``obj`` as a pymatgen ``Structure`` (the object itself if it already is one; never a copy).

    :param obj: a pymatgen ``Structure``, an ASE ``Atoms`` with periodic boundary conditions or a :class:`Crystal`.
    :raises TypeError: for any other type.
    :raises InvalidStructureError: for an ASE ``Atoms`` that is not fully periodic, or unknown species.
    """
    from pymatgen.core import Lattice, Structure

    if isinstance(obj, Structure):
        return obj
    if isinstance(obj, Crystal):
        numbers = np.asarray(obj.numbers)
        bad = np.flatnonzero((numbers < 1) | (numbers > Z_MAX))
        if bad.size:
            raise InvalidStructureError(f'unknown species (atomic number {int(numbers[bad[0]])}) at site {int(bad[0])}')
        matrix = np.asarray(obj.lattice, dtype=float)
        _check_lattice(matrix)
        return Structure(Lattice(matrix), numbers.tolist(), np.asarray(obj.positions, dtype=float),
                         coords_are_cartesian=True)  # fmt: skip
    try:
        from ase import Atoms
    except ImportError:  # pragma: no cover - ase is a dependency
        Atoms = ()  # type: ignore[assignment,misc]
    if isinstance(obj, Atoms):
        numbers, matrix, positions = _ase_arrays(obj)
        return Structure(Lattice(matrix), numbers.tolist(), positions, coords_are_cartesian=True)
    raise TypeError(f'expected a pymatgen Structure or an ASE Atoms, got {type(obj).__name__}')


def _fractional(positions: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Fractional coordinates of Cartesian positions (Å), bitwise as pymatgen computes them for its sites.

    pymatgen converts each site on its own (``np.dot`` of one vector; a matrix product rounds differently in the
    last bit). Zeros for a singular or non-finite lattice, which the lattice checks refuse anyway.
    """
    if not np.isfinite(matrix).all() or abs(float(np.linalg.det(matrix))) < MIN_CELL_VOLUME:
        return np.zeros((len(positions), 3))
    inverse = np.linalg.inv(matrix)
    return np.array([np.dot(position, inverse) for position in positions]).reshape(-1, 3)


def _ase_arrays(atoms: Atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Atomic numbers, lattice (rows, Å) and Cartesian positions (Å) of a periodic ASE ``Atoms``, checked."""
    if not all(atoms.pbc):
        raise InvalidStructureError(
            f'ASE Atoms with pbc={atoms.pbc.tolist()} is not a crystal: set a cell and atoms.pbc = True'
        )
    numbers = np.asarray(atoms.numbers)
    bad = np.flatnonzero((numbers < 1) | (numbers > Z_MAX))
    if bad.size:
        i = int(bad[0])
        raise InvalidStructureError(f'unknown species {atoms.get_chemical_symbols()[i]!r} at site {i}')
    matrix = np.asarray(atoms.cell.array, dtype=float)
    _check_lattice(matrix)
    positions = np.asarray(atoms.positions, dtype=float)
    _check_finite_coords(positions)
    return numbers.astype(np.int64), matrix, positions


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
        raise overlap_error(pair, min_distance)


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


SMALL_CELL_SITES = 200
"""Cells up to this many sites are checked for overlaps by array operations; larger ones by the neighbour search."""


class CellArrays(NamedTuple):
    """The valid ordered cells of a batch, concatenated: what the batched checks and computations read."""

    batch_index: np.ndarray
    """``(S,)`` position of each cell in the input batch."""
    z: np.ndarray
    """``(J,)`` int64 atomic numbers of all sites."""
    frac: np.ndarray
    """``(J, 3)`` fractional coordinates of all sites."""
    ptr: np.ndarray
    """``(S + 1,)`` sites of cell ``s`` are rows ``ptr[s]:ptr[s + 1]``."""
    lattices: np.ndarray
    """``(S, 3, 3)`` lattice vectors as rows (Å)."""
    volumes: np.ndarray
    """``(S,)`` cell volumes (Å^3)."""


def prepare_cells(
    items: Sequence[Any], *, min_distance: float = MIN_INTERATOMIC_DISTANCE, check_overlap: bool = True
) -> list[Cell | Exception]:
    """Convert and validate a batch of ordered crystals; return a :class:`Cell` or the exception per item.

    Runs the checks of :func:`validate_structure` (with ``allow_partial_occupancy=False``) with the same
    messages, vectorised over the batch (:func:`read_cells`). Callers that build a neighbour list anyway
    pass ``check_overlap=False`` and use :func:`check_no_overlap` on it.
    """
    cells, errors = read_cells(items, min_distance=min_distance, check_overlap=check_overlap)
    out: list[Cell | Exception] = [None] * len(items)  # type: ignore[list-item]
    for k, exception in errors.items():
        out[k] = exception
    ptr = cells.ptr.tolist()
    for s, k in enumerate(cells.batch_index.tolist()):
        lo, hi = ptr[s], ptr[s + 1]
        frac, lattice = cells.frac[lo:hi], cells.lattices[s]
        out[k] = Cell(cells.z[lo:hi], frac, frac @ lattice, lattice, float(cells.volumes[s]))
    return out


def read_cells(
    items: Sequence[Any], *, min_distance: float = MIN_INTERATOMIC_DISTANCE, check_overlap: bool = True
) -> tuple[CellArrays, dict[int, Exception]]:
    """Read and validate a batch of ordered crystals into concatenated arrays; return them and the errors by index.

    Each structure's species, coordinates and lattice are read once (pymatgen sites without building any
    pymatgen object, ASE arrays as they are); the checks of :func:`validate_structure` (with
    ``allow_partial_occupancy=False``, the same messages) are numpy reductions over the whole batch. The
    overlap check of all cells up to 200 sites whose interplanar spacings all exceed ``2 * min_distance`` is one
    compiled pass over the minimum-image difference of each pair: in such a cell, a pair (or a site and its
    own image) closer than ``min_distance`` can only be the wrapped difference ``f_j - f_i - round(f_j - f_i)``
    (its component along each reciprocal direction times the plane spacing bounds the distance from below, and
    is below half a spacing only for the wrapped one), so the check is exact. Other cells, and the naming of the
    overlapping pair, use the neighbour search (:func:`closest_pair`).
    """
    from pymatgen.core import Element, Structure

    errors: dict[int, Exception] = {}
    good: list[int] = []
    zs: list[int] = []
    rows: list[Any] = []
    matrices: list[np.ndarray] = []
    sizes: list[int] = []
    for k, item in enumerate(items):
        try:
            z, frac, matrix = _read_sites(item, Structure, Element)
        except Exception as exception:
            errors[k] = exception
            continue
        good.append(k)
        zs.extend(z)
        rows.extend(frac)
        matrices.append(matrix)
        sizes.append(len(z))
    n_cells = len(good)
    if not n_cells:
        empty = np.zeros(0, dtype=np.int64)
        return CellArrays(empty, empty, np.zeros((0, 3)), np.zeros(1, dtype=np.int64), np.zeros((0, 3, 3)),
                          np.zeros(0)), errors  # fmt: skip
    z_all = np.array(zs, dtype=np.int64)
    frac_all = np.concatenate(rows).astype(float, copy=False).reshape(-1, 3)
    lattices = np.array(matrices, dtype=float).reshape(-1, 3, 3)
    counts = np.array(sizes, dtype=np.int64)
    starts = np.zeros(n_cells, dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    finite = np.isfinite(lattices).all(axis=(1, 2))
    volumes = np.linalg.det(np.where(finite[:, None, None], lattices, 1.0))
    crosses = np.cross(lattices[:, [1, 2, 0]], lattices[:, [2, 0, 1]])
    with np.errstate(invalid='ignore', divide='ignore'):
        spacings = np.abs(volumes)[:, None] / np.sqrt((crosses**2).sum(axis=2))  # (S, 3) between planes
    longest = np.sqrt((np.where(finite[:, None, None], lattices, 0.0) ** 2).sum(axis=2)).max(axis=1)
    bad_coords = first_in_segments(~np.isfinite(frac_all).all(axis=1), starts, counts)
    bad_species = first_in_segments((z_all < 1) | (z_all > Z_MAX), starts, counts)
    valid = finite & (volumes >= MIN_CELL_VOLUME) & (longest <= MAX_LATTICE_LENGTH) & (bad_coords < 0)
    valid &= bad_species < 0
    for s in np.flatnonzero(~valid).tolist():  # the single-structure checks, for their messages
        k = good[s]
        try:
            if not finite[s]:
                raise InvalidStructureError('lattice contains NaN or infinite values')
            _check_volume(float(volumes[s]))
            _check_lengths(lattices[s])
            if bad_coords[s] >= 0:
                raise InvalidStructureError(f'NaN or infinite coordinates at site {int(bad_coords[s])}')
            validate_structure(to_pymatgen(items[k]), allow_partial_occupancy=False)  # names the species
            raise InvalidStructureError(f'unknown species at site {int(bad_species[s])}')
        except InvalidStructureError as exception:
            errors[k] = exception
    if check_overlap:
        small = valid & (counts <= SMALL_CELL_SITES) & (spacings.min(axis=1) > 2 * min_distance)
        flagged = np.zeros(n_cells, dtype=bool)
        if small.any():
            flagged[small] = _small_cell_overlaps(frac_all, counts, lattices, spacings, small, min_distance)
        flagged |= valid & ~small  # the neighbour search decides
        for s in np.flatnonzero(flagged).tolist():
            lo, hi = int(starts[s]), int(starts[s] + counts[s])
            pair = closest_pair(frac_all[lo:hi] @ lattices[s], lattices[s], min_distance)
            if pair is not None:
                errors[good[s]] = overlap_error(pair, min_distance)
                valid[s] = False
    keep = np.flatnonzero(valid)
    site_keep = np.repeat(valid, counts)
    ptr = np.zeros(len(keep) + 1, dtype=np.int64)
    np.cumsum(counts[keep], out=ptr[1:])
    index = np.asarray(good, dtype=np.int64)[keep]
    return CellArrays(index, z_all[site_keep], frac_all[site_keep], ptr, lattices[keep], volumes[keep]), errors


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


def _small_cell_overlaps(
    frac: np.ndarray,
    counts: np.ndarray,
    lattices: np.ndarray,
    spacings: np.ndarray,
    selected: np.ndarray,
    min_distance: float,
) -> np.ndarray:
    """Whether some pair of sites of each selected cell is closer than ``min_distance`` (minimum image, compiled)."""
    from ._kernels import wrapped_overlaps

    site_selected = np.repeat(selected, counts)
    ptr = np.zeros(int(selected.sum()) + 1, dtype=np.int64)
    np.cumsum(counts[selected], out=ptr[1:])
    return wrapped_overlaps(
        np.ascontiguousarray(frac[site_selected]), ptr, np.ascontiguousarray(lattices[selected]),
        np.ascontiguousarray(spacings[selected]), float(min_distance),
    )  # fmt: skip


_ELEMENT_Z: dict[int, int] = {}
"""Atomic number of each pymatgen ``Element`` met so far, by ``id`` (the members of the ``Element`` enumeration
live as long as the interpreter, so their ids are never reused; other species are looked up every time)."""


def _read_sites(item: Any, structure_type: Any, element_type: Any) -> tuple[Any, Any, np.ndarray]:
    """Atomic numbers, fractional coordinates (rows) and lattice (rows, Å) of one ordered crystal.

    pymatgen structures are read from their sites directly (no ``Structure`` property that builds objects);
    ASE ``Atoms`` from their arrays, with fractional coordinates as pymatgen computes them. Disordered sites
    raise the error of :func:`validate_structure`, or :class:`PartiallyOccupiedError`.
    """
    if isinstance(item, Crystal):
        numbers = np.asarray(item.numbers, dtype=np.int64)
        _check_sites(len(numbers))
        matrix = np.asarray(item.lattice, dtype=float)
        return numbers, _fractional(np.asarray(item.positions, dtype=float).reshape(-1, 3), matrix), matrix
    if not isinstance(item, structure_type):
        try:
            from ase import Atoms
        except ImportError:  # pragma: no cover - ase is a dependency
            Atoms = ()  # type: ignore[assignment,misc]
        if isinstance(item, Atoms):
            numbers, matrix, positions = _ase_arrays(item)
            _check_sites(len(numbers))
            return numbers, _fractional(positions, matrix), matrix
        raise TypeError(f'expected a pymatgen Structure or an ASE Atoms, got {type(item).__name__}')
    sites = item.sites
    _check_sites(len(sites))
    z: list[int] = []
    try:
        compositions = [site._species._data for site in sites]
        frac = [site._frac_coords for site in sites]
    except AttributeError:  # pragma: no cover - another pymatgen layout: the public (slower) properties
        compositions = [dict(site.species.items()) for site in sites]
        frac = [site.frac_coords for site in sites]
    for species in compositions:
        if len(species) != 1:
            break
        ((element, amount),) = species.items()
        if amount != 1:
            break
        number = _ELEMENT_Z.get(id(element))
        if number is None:
            number = int(getattr(element, 'Z', 0) or 0)
            if type(element) is element_type:
                _ELEMENT_Z[id(element)] = number
        z.append(number)
    if len(z) != len(sites):  # a disordered site: let the full validation say which and why
        validate_structure(item, allow_partial_occupancy=False)
        raise PartiallyOccupiedError('structure has partially occupied sites')
    return z, frac, item.lattice.matrix


def _check_sites(n_sites: int) -> None:
    if n_sites == 0:
        raise InvalidStructureError('structure has no sites')
    _check_size(n_sites)


def check_no_overlap(
    centers: np.ndarray, neighbors: np.ndarray, distances: np.ndarray, min_distance: float = MIN_INTERATOMIC_DISTANCE
) -> None:
    """Raise the overlap error of :func:`validate_structure` if a neighbour-list pair is closer than ``min_distance``.

    The neighbour list must reach at least ``min_distance`` and include periodic images.
    """
    if len(distances) and distances.min() < min_distance:
        k = int(np.argmin(distances))
        i, j = sorted((int(centers[k]), int(neighbors[k])))
        raise overlap_error((i, j, float(distances[k])), min_distance)


def overlap_error(pair: tuple[int, int, float], min_distance: float) -> InvalidStructureError:
    """The error of :func:`validate_structure` for the overlapping pair ``(i, j, distance)`` (Å)."""
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
