"""Compiled (numba) kernels of the structure checks: the closest pair of sites of many periodic cells.

Kernels are compiled on first use (one thread) and cached on disk where numba finds a writable place (next
to the module, else ``NUMBA_CACHE_DIR`` or the user cache directory); without one they are compiled in
every process instead of failing (:func:`compiled`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit

__all__ = ('closest_pairs', 'compiled')


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
def closest_pairs(frac: np.ndarray, ptr: np.ndarray, lattices: np.ndarray) -> np.ndarray:
    """Distance of the closest pair of sites of each cell, periodic images included, from the 27 nearest images.

    For sites ``i <= j`` of cell ``s`` (rows ``ptr[s]:ptr[s + 1]`` of ``frac``), the fractional difference is
    wrapped into ``[-0.5, 0.5]`` and its 27 translates by ``{-1, 0, 1}^3`` lattice vectors are tried; a site
    and itself count as a pair through its images only. This finds every pair closer than ``d`` whenever all
    interplanar spacings of the cell exceed ``2 d``; callers check that (and name the pair with the neighbour
    search, which breaks ties among equal distances its own way).

    :param frac: ``(J, 3)`` fractional coordinates of all cells.
    :param ptr: ``(S + 1,)`` row offsets of the cells.
    :param lattices: ``(S, 3, 3)`` lattice vectors as rows (Å).
    :return: ``(S,)`` shortest distance (Å) per cell (``inf`` for a cell without sites).
    """
    n_cells = len(ptr) - 1
    out = np.full(n_cells, np.inf)
    images = np.empty((27, 3))
    vector = np.empty(3)
    for s in range(n_cells):
        lattice = lattices[s]
        t = 0
        for a in range(-1, 2):
            for b in range(-1, 2):
                for c in range(-1, 2):
                    for x in range(3):
                        images[t, x] = a * lattice[0, x] + b * lattice[1, x] + c * lattice[2, x]
                    t += 1
        best = np.inf
        lo, hi = ptr[s], ptr[s + 1]
        for i in range(lo, hi):
            for j in range(i, hi):
                d0 = frac[j, 0] - frac[i, 0]
                d1 = frac[j, 1] - frac[i, 1]
                d2 = frac[j, 2] - frac[i, 2]
                d0 -= np.rint(d0)
                d1 -= np.rint(d1)
                d2 -= np.rint(d2)
                for x in range(3):
                    vector[x] = d0 * lattice[0, x] + d1 * lattice[1, x] + d2 * lattice[2, x]
                for t in range(27):
                    if i == j and t == 13:  # a site and itself in the home cell
                        continue
                    w0 = vector[0] + images[t, 0]
                    w1 = vector[1] + images[t, 1]
                    w2 = vector[2] + images[t, 2]
                    best = min(best, w0 * w0 + w1 * w1 + w2 * w2)
        out[s] = math.sqrt(best)
    return out
