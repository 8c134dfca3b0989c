"""Compiled (numba) kernel of the indexing trials: how well each trial cell indexes the observed lines.

A trial is a reciprocal metric ``G6 = (A, B, C, D, E, F)`` (Å^-2) with ``Q(hkl) = 1/d^2 = h²A + k²B + l²C + hkD +
hlE + klF``. For each trial the kernel enumerates the reflections up to the last observed line in the part of
reciprocal space that holds one representative of each distinct ``Q`` for the trial's crystal system (``mode``),
looks every calculated ``Q`` up among the sorted observed ones (binary search) and keeps, per observed line, the
smallest ``|Q_obs - Q_calc|`` within its tolerance. Nothing of size (trials x reflections) is materialised. This is
the scoring step of the trial-and-error method (Werner, Eriksson & Westdahl, J. Appl. Cryst. 18, 367 (1985)).

Modes (what is enumerated): 0 cubic ``h >= k >= l >= 0``; 1 tetragonal and hexagonal ``h >= k >= 0, l >= 0``;
2 orthorhombic ``h, k, l >= 0``; 3 monoclinic (b unique) ``k, l >= 0``, ``h`` of either sign (``h >= 0`` when
``l = 0``).
"""

from __future__ import annotations

import math

import numpy as np

from .._kernels import compiled

__all__ = ('score_trials',)


@compiled()
def _nearest(q: np.ndarray, value: float) -> int:
    """Index of the element of the sorted ``q`` closest to ``value``."""
    low, high = 0, len(q)
    while low < high:
        mid = (low + high) // 2
        if q[mid] < value:
            low = mid + 1
        else:
            high = mid
    if low == 0:
        return 0
    if low == len(q):
        return len(q) - 1
    return low if q[low] - value < value - q[low - 1] else low - 1


@compiled()
def score_trials(
    g6: np.ndarray,
    z_index: np.ndarray,
    q_obs: np.ndarray,
    tol_q: np.ndarray,
    mode: int,
    min_length: float,
    max_length: float,
    max_lines: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score trial cells against observed lines.

    :param g6: ``(T, 6)`` trial reciprocal metrics (Å^-2).
    :param z_index: ``(T,)`` row of ``q_obs`` (zero-shift correction) each trial was made from.
    :param q_obs: ``(Z, N)`` observed ``Q`` (Å^-2), each row sorted increasing.
    :param tol_q: ``(Z, N)`` tolerance of each observed line (Å^-2).
    :param mode: enumeration of the crystal system (module docstring).
    :param min_length: and :param max_length: trials with a cell edge shorter or longer than these (Å) are
        rejected.
    :param max_lines: trials with more calculated lines than this up to the last observed line are rejected.
    :return: ``n_indexed`` (``-1`` for a rejected trial), ``n_calc`` (calculated reflections up to the last
        observed line, one per distinct ``Q`` of the system) and ``sum_dq`` (sum of ``|ΔQ|`` over indexed lines).
    """
    n_trials = g6.shape[0]
    n_obs = q_obs.shape[1]
    n_indexed = np.full(n_trials, -1, dtype=np.int64)
    n_calc = np.zeros(n_trials, dtype=np.int64)
    sum_dq = np.zeros(n_trials)
    best = np.empty(n_obs)
    for t in range(n_trials):
        a_, b_, c_, d_, e_, f_ = g6[t, 0], g6[t, 1], g6[t, 2], g6[t, 3], g6[t, 4], g6[t, 5]
        m01, m02, m12 = 0.5 * d_, 0.5 * e_, 0.5 * f_
        minor2 = a_ * b_ - m01 * m01
        det = a_ * (b_ * c_ - m12 * m12) - m01 * (m01 * c_ - m12 * m02) + m02 * (m01 * m12 - b_ * m02)
        if not (a_ > 0 and minor2 > 0 and det > 0):
            continue
        a2 = (b_ * c_ - m12 * m12) / det
        b2 = (a_ * c_ - m02 * m02) / det
        c2 = minor2 / det
        top2, low2 = max_length * max_length, min_length * min_length
        if a2 > top2 or b2 > top2 or c2 > top2 or a2 < low2 or b2 < low2 or c2 < low2:
            continue
        row = z_index[t]
        q = q_obs[row]
        tol = tol_q[row]
        q_top = q[n_obs - 1]
        q_max = q_top + tol[n_obs - 1]
        h_max = int(math.sqrt(a2 * q_max) + 1e-9)
        k_max = int(math.sqrt(b2 * q_max) + 1e-9)
        l_max = int(math.sqrt(c2 * q_max) + 1e-9)
        for i in range(n_obs):
            best[i] = math.inf
        count = 0
        rejected = False
        h_low = -h_max if mode == 3 else 0
        for h in range(h_low, h_max + 1):
            k_top = h if mode <= 1 else k_max
            for k in range(0, min(k_top, k_max) + 1):
                l_top = k if mode == 0 else l_max
                for ll in range(0, min(l_top, l_max) + 1):
                    if h == 0 and k == 0 and ll == 0:
                        continue
                    if mode == 3 and h < 0 and ll == 0:
                        continue
                    value = a_ * h * h + b_ * k * k + c_ * ll * ll + d_ * h * k + e_ * h * ll + f_ * k * ll
                    if value <= 0 or value > q_max:
                        continue
                    if value <= q_top:
                        count += 1
                        if count > max_lines:
                            rejected = True
                            break
                    j = _nearest(q, value)
                    diff = abs(q[j] - value)
                    if diff <= tol[j] and diff < best[j]:
                        best[j] = diff
                    if j > 0 and abs(q[j - 1] - value) <= tol[j - 1] and abs(q[j - 1] - value) < best[j - 1]:
                        best[j - 1] = abs(q[j - 1] - value)
                    if j + 1 < n_obs and abs(q[j + 1] - value) <= tol[j + 1] and abs(q[j + 1] - value) < best[j + 1]:
                        best[j + 1] = abs(q[j + 1] - value)
                if rejected:
                    break
            if rejected:
                break
        if rejected:
            continue
        found = 0
        total = 0.0
        for i in range(n_obs):
            if best[i] < math.inf:
                found += 1
                total += best[i]
        n_indexed[t] = found
        n_calc[t] = count
        sum_dq[t] = total
    return n_indexed, n_calc, sum_dq
