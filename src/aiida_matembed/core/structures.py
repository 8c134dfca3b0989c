"""Conversion and validation of the structures every representation accepts.

The core accepts pymatgen :class:`~pymatgen.core.Structure` and ASE :class:`~ase.Atoms` objects
(compositional representations also accept :class:`~pymatgen.core.Composition` and formula strings).
The AiiDA layer converts ``StructureData`` to pymatgen before calling the core.

All lengths are in Å.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from .elements import Z_MAX

if TYPE_CHECKING:
    from ase import Atoms
    from pymatgen.core import Composition, Structure

__all__ = (
    'MIN_INTERATOMIC_DISTANCE',
    'InvalidStructureError',
    'StructureLike',
    'composition_of',
    'element_amounts',
    'to_pymatgen',
    'validate_structure',
)

MIN_INTERATOMIC_DISTANCE = 0.5
"""Two sites (or a site and its periodic image) closer than this (Å) are reported as overlapping."""

MIN_CELL_VOLUME = 1e-6
"""Cells with ``|det(lattice)|`` below this (Å^3) are reported as having zero volume."""

StructureLike = Union['Structure', 'Atoms']
"""Anything the core converts to a pymatgen ``Structure``."""

CompositionLike = Union['Structure', 'Atoms', 'Composition', str]
"""Anything a compositional representation accepts."""


class InvalidStructureError(ValueError):
    """Raised for a structure that cannot be featurised, with a message that says why."""


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

    Checks, in order: at least one site; finite lattice with positive volume (right-handed cell);
    finite coordinates; only chemical elements; no over-occupied site; (optionally) no partial
    occupancy; no two sites, nor a site and a periodic image, closer than ``min_distance`` (Å).
    """
    if len(structure) == 0:
        raise InvalidStructureError('structure has no sites')
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
            raise InvalidStructureError(
                f'site {index} is partially occupied ({site.species.formula}); this representation needs '
                'an ordered structure (order it first, e.g. with pymatgen OrderDisorderedStructureTransformation)'
            )
    pair = closest_pair(cart, matrix, min_distance)
    if pair is not None:
        i, j, distance = pair
        what = f'site {i} and its periodic image' if i == j else f'sites {i} and {j}'
        raise InvalidStructureError(f'overlapping atoms: {what} are {distance:.3f} Å apart (< {min_distance} Å)')


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
        r=float(cutoff),
        pbc=np.array([1, 1, 1], dtype=np.int64),
        lattice=np.ascontiguousarray(matrix, dtype=float),
        tol=1e-8,
    )
    keep = ~((centers == points) & (distances < 1e-8))
    if not keep.any():
        return None
    k = int(np.argmin(np.where(keep, distances, np.inf)))
    return (int(min(centers[k], points[k])), int(max(centers[k], points[k])), float(distances[k]))


def _check_lattice(matrix: np.ndarray) -> None:
    if not np.all(np.isfinite(matrix)):
        raise InvalidStructureError('lattice contains NaN or infinite values')
    volume = float(np.linalg.det(matrix))
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
