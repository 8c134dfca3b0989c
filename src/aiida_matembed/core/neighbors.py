"""Periodic neighbour lists: every pair of sites closer than a cutoff, periodic images included.

All structural representations (RDF, partial RDF, crystal graphs) share this one function. It wraps
pymatgen's compiled ``find_points_in_spheres`` (the routine behind ``Structure.get_neighbor_list``),
which handles cells much smaller than the cutoff by enumerating every image that can reach the sphere,
and returns flat numpy arrays instead of Python neighbour objects.

Lengths in Å. A pair ``(i, j, n)`` means "site ``j`` translated by lattice vector ``n`` is a neighbour
of site ``i``"; the list is symmetric (``(j, i, -n)`` is present too) and never contains a site paired
with itself in the home cell.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .structures import InvalidStructureError

__all__ = ('MAX_CUTOFF', 'MAX_PAIRS', 'NeighborList', 'check_cutoff', 'estimate_pairs', 'neighbor_list')

MAX_CUTOFF = 30.0
"""Largest cutoff (Å) any representation accepts; beyond it neighbour lists grow past useful sizes."""

MAX_PAIRS = 20_000_000
"""Largest neighbour list built for one structure (about 1 GB of temporaries)."""


class NeighborList(NamedTuple):
    """Flat periodic neighbour list of one structure."""

    centers: np.ndarray
    """``(P,)`` int64 index of the central site ``i``."""
    neighbors: np.ndarray
    """``(P,)`` int64 index of the neighbouring site ``j``."""
    images: np.ndarray
    """``(P, 3)`` int64 lattice translation of site ``j``."""
    distances: np.ndarray
    """``(P,)`` float64 distances (Å)."""


def check_cutoff(cutoff: float, name: str = 'cutoff') -> float:
    """Validate a cutoff radius (Å): finite, positive, at most :data:`MAX_CUTOFF`; return it as float."""
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, float)):
        raise ValueError(f'{name} must be a number (Å), got {cutoff!r}')
    value = float(cutoff)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f'{name} must be > 0 Å, got {cutoff!r}')
    if value > MAX_CUTOFF:
        raise ValueError(f'{name} = {value} Å is larger than the supported maximum of {MAX_CUTOFF} Å')
    return value


def estimate_pairs(n_sites: int, volume: float, cutoff: float) -> float:
    """Expected number of neighbour pairs: ``N * (N / V) * 4/3 pi r^3`` (for a uniform density)."""
    return n_sites * n_sites / volume * 4.0 / 3.0 * math.pi * cutoff**3


def neighbor_list(cart: np.ndarray, lattice: np.ndarray, cutoff: float, *, max_pairs: int = MAX_PAIRS) -> NeighborList:
    """Return every pair of sites (periodic images included) closer than ``cutoff`` (Å).

    :param cart: ``(N, 3)`` Cartesian coordinates (Å).
    :param lattice: ``(3, 3)`` lattice vectors as rows (Å).
    :param cutoff: neighbour radius (Å), strictly greater than the distance of the pairs kept.
    :param max_pairs: refuse structures whose estimated list is longer (memory guard).
    :raises InvalidStructureError: when the estimated number of pairs exceeds ``max_pairs`` (a cutoff far
        too large for the cell, or a cell with a very short lattice vector and thus very many images).
    """
    from pymatgen.optimization.neighbors import find_points_in_spheres

    cart = np.ascontiguousarray(cart, dtype=float)
    lattice = np.ascontiguousarray(lattice, dtype=float)
    volume = abs(float(np.linalg.det(lattice)))
    expected = estimate_pairs(len(cart), volume, cutoff)
    if expected > max_pairs:
        raise InvalidStructureError(
            f'a cutoff of {cutoff} Å on this cell ({len(cart)} sites, {volume:.4g} Å^3) gives ~{expected:.3g} '
            f'neighbour pairs (limit {max_pairs:.3g}): lower the cutoff, or check the lattice for a very short '
            'vector'
        )
    centers, neighbors, images, distances = find_points_in_spheres(
        cart,
        cart,
        r=float(cutoff),
        pbc=np.array([1, 1, 1], dtype=np.int64),
        lattice=lattice,
        tol=1e-8,
    )
    images = np.rint(images).astype(np.int64)
    keep = ~((centers == neighbors) & ~images.any(axis=1))
    keep &= distances < cutoff
    return NeighborList(
        centers[keep].astype(np.int64, copy=False),
        neighbors[keep].astype(np.int64, copy=False),
        images[keep],
        distances[keep],
    )
