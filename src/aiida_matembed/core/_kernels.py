"""Compiled (numba) kernels of the structure checks, and the decorator of every compiled kernel of the package.

Kernels are compiled on first use (one thread) and cached on disk where numba finds a writable place (next
to the module, else ``NUMBA_CACHE_DIR`` or the user cache directory); without one they are compiled in
every process instead of failing (:func:`compiled`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit

__all__ = ('compiled', 'wrapped_overlaps')


def compiled(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(cache=True, nogil=True, **options)``, or uncached where numba has nowhere to cache.

    numba raises ``RuntimeError`` ("no locator available") when decorating with ``cache=True`` if neither
    the package directory nor a user cache directory is writable (e.g. a read-only container install).
    """

    def decorate(function: Callable[..., Any]) -> Any:
        try:
            return njit(cache=True, nogil=True, **options)(function)
        except RuntimeError:
            return njit(cache=False, nogil=True, **options)(function)

    return decorate


@compiled()
def wrapped_overlaps(
    frac: np.ndarray, ptr: np.ndarray, lattices: np.ndarray, spacings: np.ndarray, min_distance: float
) -> np.ndarray:
    """Whether two sites of each cell are closer than ``min_distance`` (Å) in their minimum-image difference.

    For sites ``i < j`` of cell ``s`` (rows ``ptr[s]:ptr[s + 1]`` of ``frac``) the fractional difference is
    wrapped into ``[-0.5, 0.5]``; a pair whose wrapped component ``k`` times the interplanar spacing
    ``spacings[s, k]`` already reaches ``min_distance`` is skipped, the others are measured. This is the exact
    overlap test of a cell whose spacings all exceed ``2 * min_distance`` (see
    :func:`aiida_matembed.core.structures.read_cells`).

    :param frac: ``(J, 3)`` fractional coordinates of all cells.
    :param ptr: ``(S + 1,)`` row offsets of the cells.
    :param lattices: ``(S, 3, 3)`` lattice vectors as rows (Å).
    :param spacings: ``(S, 3)`` spacing of the lattice planes spanned by the two other vectors (Å).
    """
    n_cells = len(ptr) - 1
    out = np.zeros(n_cells, dtype=np.bool_)
    limit = min_distance * min_distance
    for s in range(n_cells):
        lattice = lattices[s]
        t0 = min_distance / spacings[s, 0]
        t1 = min_distance / spacings[s, 1]
        t2 = min_distance / spacings[s, 2]
        lo, hi = ptr[s], ptr[s + 1]
        for i in range(lo, hi):
            for j in range(i + 1, hi):
                d0 = frac[j, 0] - frac[i, 0]
                d0 -= np.rint(d0)
                if abs(d0) >= t0:
                    continue
                d1 = frac[j, 1] - frac[i, 1]
                d1 -= np.rint(d1)
                if abs(d1) >= t1:
                    continue
                d2 = frac[j, 2] - frac[i, 2]
                d2 -= np.rint(d2)
                if abs(d2) >= t2:
                    continue
                x = d0 * lattice[0, 0] + d1 * lattice[1, 0] + d2 * lattice[2, 0]
                y = d0 * lattice[0, 1] + d1 * lattice[1, 1] + d2 * lattice[2, 1]
                z = d0 * lattice[0, 2] + d1 * lattice[1, 2] + d2 * lattice[2, 2]
                if x * x + y * y + z * z < limit:
                    out[s] = True
                    break
            if out[s]:
                break
    return out
