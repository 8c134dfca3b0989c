"""Powder indexing: the unit cell from the positions of the first lines, for every lattice system but triclinic.

The method is trial and error in ``Q = 1/d²`` space, as TREOR (Werner, Eriksson & Westdahl, J. Appl. Cryst. 18,
367 (1985)) and the first stage of GSAS-II's indexing (Toby & Von Dreele, J. Appl. Cryst. 46, 544 (2013)):

1. **trials**: ``p`` of the first ``n_base`` lines are given ``p`` low-index design rows (one of the base
   reflections of the system, e.g. 100, 110, 111, 200, ... for orthorhombic), which fixes the ``p`` free parameters
   of the reciprocal metric by a ``p x p`` linear solve (:mod:`.lattice`; cubic: ``A = Q_i / N`` for the first
   three lines and every ``N = h² + k² + l² <= 50``). Every trial is made for a grid of zero shifts
   ``2θ_obs = 2θ + z`` (step ``zero_step``), since a zero error of 0.1° moves the low-angle base lines by up to 1 %
   in ``Q``;
2. **screening**: every trial cell is scored by how many of the first ``n_lines`` observed lines it indexes within
   twice the tolerance and by an approximate de Wolff figure of merit (compiled kernel, :mod:`._kernels`); the best
   ``n_refine`` distinct trials per system go on;
3. **refinement**: lines are assigned to their nearest calculated reflection within a shrinking tolerance and the
   cell parameters and the zero shift are refined by Gauss-Newton least squares on 2θ (weights equal);
4. **figures of merit** of the refined cells with the lattice centring that fits best (P, I, F, C, A, B, R; a
   centring is consistent when every indexed line still has an allowed reflection within the tolerance):
   de Wolff ``M_N = Q_N / (2 <|ΔQ|> N_calc)`` (J. Appl. Cryst. 1, 108 (1968)) and Smith & Snyder
   ``F_N = N / (<|Δ2θ|> N_poss)`` (J. Appl. Cryst. 12, 60 (1979)) over the first ``N = min(20, n)`` lines, with
   ``N_calc`` the distinct calculated lines up to ``Q_N``. Unindexed lines (impurities, spurious peaks) count in
   ``N`` but not in the averages (lines weaker than 3 % do not count against ``max_unindexed``: noise and
   impurities); solutions are ranked by ``M_N (n_indexed / N)²`` with ``<|ΔQ|>`` corrected for
   the number of refined parameters and floored at the precision of the positions
   (:attr:`IndexingSolution.m20_ranking`).

DICVOL's successive dichotomy (Boultif & Louër, J. Appl. Cryst. 24, 987 (1991)) and ITO's zone method (Visser,
J. Appl. Cryst. 2, 89 (1969)) are exhaustive where trial and error relies on low-index base lines; the triclinic
system, which needs one of them to be searched in reasonable time, is not indexed here.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from ..xrd.wavelengths import resolve_wavelength
from ._kernels import score_trials
from .lattice import SYSTEMS, Cell, LatticeSystem, cell_from_g6, q_of_two_theta, reflection_clusters, two_theta_of_q

__all__ = ('IndexingResult', 'IndexingSolution', 'index_peaks')

_CUBIC_N = tuple(n for n in range(1, 51) if any(h * h + k * k + ll * ll == n for h in range(8) for k in range(8)
                                              for ll in range(8)))  # fmt: skip
"""``h² + k² + l²`` values up to 50 (7, 15, 23, 28, 31, 39, 47 cannot be written as a sum of three squares)."""

_BASE_HKL: dict[str, tuple[tuple[int, ...], ...]] = {
    'tetragonal': tuple((h, k, ll) for h in range(3) for k in range(h + 1) for ll in range(4) if h + k + ll),
    'hexagonal': tuple((h, k, ll) for h in range(3) for k in range(h + 1) for ll in range(4) if h + k + ll),
    'orthorhombic': tuple((h, k, ll) for h in range(3) for k in range(3) for ll in range(3) if 0 < h + k + ll <= 3),
    'monoclinic': tuple(
        tuple(int(v) for v in hkl.split())
        for hkl in (
            '1 0 0',
            '0 1 0',
            '0 0 1',
            '1 1 0',
            '0 1 1',
            '1 0 1',
            '-1 0 1',
            '1 1 1',
            '-1 1 1',
            '2 0 0',
            '0 2 0',
            '0 0 2',
        )
    ),
}
"""Low-index reflections the base lines are assigned to in the trials."""

WEAK_LINE = 3.0
"""Lines weaker than this (% of the strongest) may stay unindexed beyond ``max_unindexed`` (noise, impurities)."""
_N_BASE = {'cubic': 3, 'tetragonal': 6, 'hexagonal': 6, 'orthorhombic': 6, 'monoclinic': 6}
_ZERO_STEP = {'cubic': 0.02, 'tetragonal': 0.025, 'hexagonal': 0.025, 'orthorhombic': 0.05, 'monoclinic': 0.05}


@dataclass(frozen=True)
class IndexingSolution:
    """A refined cell that indexes the observed lines."""

    lattice_system: str
    """``cubic``, ``tetragonal``, ``hexagonal`` (hexagonal axes, trigonal lattices included), ``orthorhombic`` or
    ``monoclinic`` (b unique)."""
    centring: str
    """Lattice centring that fits best (``P``, ``I``, ``F``, ``C``, ``A``, ``B`` or ``R``, obverse)."""
    cell: Cell
    g6: tuple[float, ...]
    """Refined reciprocal metric ``(A, B, C, D, E, F)`` (Å^-2)."""
    zero_shift: float
    """Refined zero shift ``z`` (degrees): ``2θ_obs = 2θ_calc + z``."""
    m20: float
    """de Wolff ``M_N`` over the first ``n_lines`` lines (``M20`` when ``n_lines == 20``)."""
    f_n: float
    """Smith-Snyder ``F_N`` over the same lines."""
    n_lines: int
    n_indexed: int
    """Lines among the first ``n_lines`` indexed within the tolerance."""
    n_calc: int
    """Distinct calculated lines (allowed by the centring) up to the ``n_lines``-th observed line."""
    mean_delta_two_theta: float
    """``<|Δ2θ|>`` (degrees) of the indexed lines."""
    hkl: np.ndarray = field(repr=False)
    """``(n, 3)`` indices assigned to every observed line (``0 0 0`` where unindexed)."""
    indexed: np.ndarray = field(repr=False)
    """``(n,)`` which observed lines are indexed."""

    n_params: int = 0
    """Refined parameters (cell and zero shift)."""
    m20_ranking: float = math.nan
    """``M_N`` with ``<|ΔQ|>`` corrected for the refined parameters, ``n_indexed / (n_indexed - n_params)``, and
    floored at the positions' precision (a third of the tolerance): cells that fit the lines within their precision
    are told apart by their number of calculated lines only, not by how well extra parameters fit the noise."""

    indexed_fraction: float = 1.0
    """Share of the square-root intensity of the first ``n_lines`` lines that is indexed."""

    @property
    def score(self) -> float:
        """Ranking figure ``m20_ranking (n_indexed / n_lines)²``.

        Every unindexed line costs, weak ones too: weak lines are often those of a superstructure (rock salt's odd
        reflections), which tell the true cell from a sub-cell.
        """
        return self.m20_ranking * (self.n_indexed / self.n_lines) ** 2

    @property
    def symmetry_rank(self) -> int:
        """Position of the lattice system from the highest symmetry (0, cubic) down."""
        return list(SYSTEMS).index(self.lattice_system)

    def as_dict(self) -> dict[str, Any]:
        return {
            'lattice_system': self.lattice_system, 'centring': self.centring, 'cell': self.cell.as_dict(),
            'zero_shift': self.zero_shift, 'm20': self.m20, 'f_n': self.f_n, 'n_lines': self.n_lines,
            'n_indexed': self.n_indexed, 'n_calc': self.n_calc, 'mean_delta_two_theta': self.mean_delta_two_theta,
        }  # fmt: skip


@dataclass(frozen=True)
class IndexingResult:
    """Solutions of one indexing, best first (by :attr:`IndexingSolution.score`)."""

    solutions: tuple[IndexingSolution, ...]
    two_theta: np.ndarray
    """Observed line positions (degrees), increasing."""
    intensity: np.ndarray
    """Their intensities (0-100)."""
    wavelength: float
    """Å."""

    def chosen(self, min_score: float = 10.0, ratio: float = 0.5) -> IndexingSolution | None:
        """The solution of the highest symmetry whose score is at least ``ratio`` times the best and ``min_score``.

        A lower-symmetry cell always fits at least as well (it has more free parameters); ``None`` if no solution
        reaches ``min_score`` (:attr:`IndexingSolution.score`).
        """
        good = [s for s in self.solutions if s.score >= min_score]
        if not good:
            return None
        top = max(s.score for s in good)
        eligible = [s for s in good if s.score >= ratio * top]
        return min(eligible, key=lambda s: (s.symmetry_rank, -s.score))

    def best(self, lattice_system: str | None = None) -> IndexingSolution | None:
        """Best solution (of one lattice system), or ``None``."""
        for solution in self.solutions:
            if lattice_system is None or solution.lattice_system == lattice_system:
                return solution
        return None


def _check_peaks(two_theta: Any, intensity: Any, min_peaks: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(two_theta, dtype=float)
    if x.ndim != 1:
        raise ValueError(f'two_theta must be a 1D array of line positions (degrees), got shape {x.shape}')
    y = np.full(x.shape, 100.0) if intensity is None else np.asarray(intensity, dtype=float)
    if y.shape != x.shape:
        raise ValueError(f'two_theta {x.shape} and intensity {y.shape} must have the same length')
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError('the peak list has NaN or infinite positions or intensities')
    if len(x) < min_peaks:
        raise ValueError(f'indexing needs at least {min_peaks} lines, got {len(x)}')
    if not (x.min() > 0 and x.max() < 180):
        raise ValueError(f'line positions must lie within (0, 180) degrees 2θ, got {x.min():g}-{x.max():g}')
    if (y < 0).any():
        raise ValueError('intensities must be >= 0')
    order = np.argsort(x, kind='stable')
    x, y = x[order], y[order]
    if (np.diff(x) <= 0).any():
        raise ValueError('two lines have the same position')
    top = y.max()
    return x, (y / top * 100 if top > 0 else np.full(x.shape, 100.0))


@cache
def _base_inverses(name: str) -> np.ndarray:
    """``(R, p, p)`` inverses of the design matrices of every ordered choice of ``p`` distinct base reflections."""
    system = SYSTEMS[name]
    rows = np.unique(system.rows(np.asarray(_BASE_HKL[name])), axis=0)
    tuples = np.array(list(itertools.permutations(range(len(rows)), system.n_params)))
    matrices = rows[tuples]
    matrices = matrices[np.abs(np.linalg.det(matrices)) > 1e-6]
    return np.linalg.inv(matrices)


def _trial_metrics(system: LatticeSystem, q_base: np.ndarray, n_base: int) -> np.ndarray:
    """``(Z, T, 6)`` trial reciprocal metrics from the base lines ``q_base`` ``(Z, n_base)``."""
    if system.name == 'cubic':
        n = np.asarray(_CUBIC_N, dtype=float)
        a = (q_base[:, :n_base, None] / n[None, None, :]).reshape(len(q_base), -1)
        return a[:, :, None] * system.transform[:, 0][None, None, :]
    p = system.n_params
    inverses = _base_inverses(system.name)
    combos = np.array(list(itertools.combinations(range(n_base), p)))  # (L, p)
    q_lines = q_base[:, combos]  # (Z, L, p)
    x = np.einsum('rij,zlj->zlri', inverses, q_lines).reshape(len(q_base), -1, p)
    return x @ system.transform.T


def _refine(system: LatticeSystem, x: np.ndarray, z: float, two_theta: np.ndarray, lam: float,
            tolerances: tuple[float, ...], max_zero: float) -> tuple[np.ndarray, float] | None:  # fmt: skip
    """Gauss-Newton refinement of the system's parameters ``x`` and the zero shift on assigned lines."""
    p = system.n_params
    for tol in tolerances:
        g6 = system.transform @ x
        try:
            clusters = reflection_clusters(g6, float(q_of_two_theta(two_theta[-1:] - z, lam)[0]) * 1.05)
        except (ValueError, np.linalg.LinAlgError):
            return None
        if not len(clusters.q):
            return None
        first = np.searchsorted(clusters.cluster, np.arange(len(clusters.q)))
        hkl = clusters.hkl[first]
        calc = two_theta_of_q(clusters.q, lam) + z
        j = np.clip(np.searchsorted(calc, two_theta), 1, len(calc) - 1) if len(calc) > 1 else np.zeros(
            len(two_theta), dtype=np.int64)  # fmt: skip
        if len(calc) > 1:
            j = np.where(np.abs(calc[j - 1] - two_theta) < np.abs(calc[j] - two_theta), j - 1, j)
        ok = np.abs(calc[j] - two_theta) <= tol
        if ok.sum() < p + 2:
            return None
        rows = system.rows(hkl[j[ok]])
        observed = two_theta[ok]
        for _ in range(3):
            q = rows @ x
            if (q <= 0).any():
                return None
            tt = two_theta_of_q(q, lam)
            if np.isnan(tt).any():
                return None
            derivative = np.degrees(lam / (2 * np.sqrt(q) * np.cos(np.radians(tt) / 2)))
            jacobian = np.concatenate([derivative[:, None] * rows, np.ones((len(q), 1))], axis=1)
            residual = observed - tt - z
            step, *_ = np.linalg.lstsq(jacobian, residual, rcond=None)
            x = x + step[:p]
            z = float(np.clip(z + step[p], -max_zero, max_zero))
    return x, z


def _figures(system: LatticeSystem, x: np.ndarray, z: float, two_theta: np.ndarray, lam: float, tol: float,
             n_lines: int, min_length: float, max_unindexed: int, intensity: np.ndarray,
             ) -> IndexingSolution | None:  # fmt: skip
    """Centring, figures of merit and line assignment of a refined cell."""
    g6 = system.transform @ x
    try:
        cell = cell_from_g6(g6)
        if min(cell.a, cell.b, cell.c) < min_length:
            return None
        q_obs = q_of_two_theta(two_theta - z, lam)
        clusters = reflection_clusters(g6, float(q_obs[-1]) * 1.05)
    except (ValueError, np.linalg.LinAlgError):
        return None
    calc_tt = two_theta_of_q(clusters.q, lam) + z
    first = np.searchsorted(clusters.cluster, np.arange(len(clusters.q)))
    n = min(n_lines, len(two_theta))
    q_n = float(q_obs[n - 1])
    weak = intensity < WEAK_LINE
    root = np.sqrt(np.maximum(intensity[:n], 0))
    best: IndexingSolution | None = None
    for centring in system.centrings:
        allowed = clusters.centring_allowed(centring)
        index = np.flatnonzero(allowed)
        if not len(index):
            continue
        tt = calc_tt[index]
        j = np.clip(np.searchsorted(tt, two_theta), 1, max(len(tt) - 1, 1)) if len(tt) > 1 else np.zeros(
            len(two_theta), dtype=np.int64)  # fmt: skip
        if len(tt) > 1:
            j = np.where(np.abs(tt[j - 1] - two_theta) < np.abs(tt[j] - two_theta), j - 1, j)
        delta = np.abs(tt[j] - two_theta)
        indexed = delta <= tol
        if best is not None and indexed[:n].sum() < best.n_indexed:
            continue  # the centring loses lines the primitive cell indexes
        n_indexed = int(indexed[:n].sum())
        if n_indexed < system.n_params + 2 or int((~indexed[:n] & ~weak[:n]).sum()) > max_unindexed:
            continue
        n_calc = int(np.count_nonzero(clusters.q[index] <= q_n * (1 + 1e-9)))
        mean_dq = float(np.mean(np.abs(clusters.q[index][j[:n][indexed[:n]]] - q_obs[:n][indexed[:n]])))
        mean_dtt = float(np.mean(delta[:n][indexed[:n]]))
        m20 = q_n / (2 * max(mean_dq, 1e-12) * max(n_calc, 1))
        f_n = n / (max(mean_dtt, 1e-6) * max(n_calc, 1))
        n_params = system.n_params + 1
        lines = q_obs[:n][indexed[:n]]
        # dQ/d(2θ) = 2 sin 2θ / λ² = √(Q (4/λ² - Q)) per radian, times the precision of a position
        precision = float(np.mean(np.sqrt(lines * np.maximum(4 / lam**2 - lines, 0)))) * math.radians(tol / 3)
        corrected = max(mean_dq * n_indexed / max(n_indexed - n_params, 1), precision)
        m20_ranking = q_n / (2 * corrected * max(n_calc, 1))
        hkl = np.where(indexed[:, None], clusters.hkl[first[index[j]]], 0)
        solution = IndexingSolution(
            system.name, centring, cell, tuple(float(v) for v in g6), float(z), float(m20), float(f_n), n,
            n_indexed, n_calc, mean_dtt, hkl, indexed, n_params, float(m20_ranking),
            float(root[indexed[:n]].sum() / root.sum()) if root.sum() > 0 else n_indexed / n,
        )  # fmt: skip
        if best is None or solution.n_indexed > best.n_indexed or solution.m20_ranking > best.m20_ranking:
            best = solution
    return best


def index_peaks(
    two_theta: Any,
    intensity: Any = None,
    *,
    wavelength: str | float = 'CuKa',
    systems: tuple[str, ...] = tuple(SYSTEMS),
    n_lines: int = 20,
    tolerance: float = 0.03,
    max_zero_shift: float = 0.1,
    min_length: float = 2.0,
    max_length: float = 25.0,
    n_refine: int = 12,
    max_unindexed: int | None = None,
) -> IndexingResult:
    """Index a list of powder lines (see the module docstring).

    :param two_theta: line positions (degrees 2θ) and :param intensity: their intensities (any scale; optional).
    :param wavelength: anode name (``'CuKa'``, ``'MoKa1'``, ...) or Å; for a K-alpha doublet give the positions of
        the K-alpha1 lines with ``'CuKa1'``.
    :param systems: lattice systems to search (names of :data:`~.lattice.SYSTEMS`).
    :param n_lines: lines that enter the figures of merit (the first ``n_lines``; 20 for de Wolff's ``M20``).
    :param tolerance: largest ``|Δ2θ|`` (degrees) of an indexed line after refinement.
    :param max_zero_shift: largest ``|z|`` (degrees) searched and refined.
    :param min_length: shortest and :param max_length: longest cell edge (Å) of a solution; no inorganic crystal
        has a lattice translation shorter than 2 Å (the shortest bond lengths but H's are about 2 Å).
    :param n_refine: distinct trials per system that are refined.
    :param max_unindexed: most lines among the first ``n_lines`` a solution may leave unindexed (impurity or
        spurious lines), not counting lines weaker than :data:`WEAK_LINE`; default ``max(2, round(n_lines / 6))``.
    :raises ValueError: for fewer than 6 lines, NaN or infinite values, positions outside (0, 180)°, an unknown
        wavelength or lattice system.
    """
    lam = resolve_wavelength(wavelength)
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        raise ValueError(f'unknown lattice system(s) {unknown}; known: {", ".join(SYSTEMS)}')
    if not (tolerance > 0 and max_zero_shift >= 0 and max_length > 0 and n_lines >= 6):
        raise ValueError('tolerance and max_length must be > 0, max_zero_shift >= 0 and n_lines >= 6')
    x, y = _check_peaks(two_theta, intensity, 6)
    n = min(n_lines, len(x))
    lines = x[:n]
    unindexed = max(2, round(n / 6)) if max_unindexed is None else int(max_unindexed)
    n_weak = int((y[:n] < WEAK_LINE).sum())
    n_weak_screen = int((y[: min(n, 10)] < WEAK_LINE).sum())
    solutions: list[IndexingSolution] = []
    for name in systems:
        system = SYSTEMS[name]
        step = _ZERO_STEP[name]
        n_z = 2 * math.ceil(max_zero_shift / step) + 1 if max_zero_shift > 0 else 1
        zeros = np.linspace(-max_zero_shift, max_zero_shift, n_z)
        shifted = lines[None, :] - zeros[:, None]
        q_obs = q_of_two_theta(shifted, lam)
        tol_q = 2 * np.sin(np.radians(shifted)) / lam**2 * np.radians(2 * tolerance)
        n_base = min(_N_BASE[name], n)
        trials = _trial_metrics(system, q_obs[:, :n_base], n_base)  # (Z, T, 6)
        n_trials = trials.shape[1]
        g6 = np.ascontiguousarray(trials.reshape(-1, 6))
        z_index = np.repeat(np.arange(n_z), n_trials)
        # screening on the first lines, then the survivors on all n
        n_screen = min(n, 10)
        n_idx, _, _ = score_trials(
            g6, z_index, np.ascontiguousarray(q_obs[:, :n_screen]), np.ascontiguousarray(tol_q[:, :n_screen]),
            system.mode, min_length, max_length, 10 * n_screen,
        )  # fmt: skip
        survivors = np.flatnonzero(n_idx >= n_screen - max(2, n_screen // 4) - n_weak_screen)
        g6, z_index = np.ascontiguousarray(g6[survivors]), z_index[survivors]
        n_idx, n_calc, sum_dq = score_trials(g6, z_index, q_obs, tol_q, system.mode, min_length, max_length, 10 * n)
        good = np.flatnonzero(n_idx >= max(system.n_params + 2, n - max(3, n // 4) - n_weak))
        if not len(good):
            continue
        m_approx = q_obs[z_index[good], -1] / (2 * np.maximum(sum_dq[good] / n_idx[good], 1e-12) * n_calc[good])
        rank = m_approx * (n_idx[good] / n) ** 2
        order = good[np.argsort(-rank, kind='stable')]
        seen: set[tuple[float, ...]] = set()
        kept = 0
        params = np.linalg.lstsq(system.transform, g6[order].T, rcond=None)[0].T
        for trial, x0 in zip(order, params, strict=True):
            key = tuple(np.round(np.log(np.abs(x0) + 1e-12), 2))
            if key in seen:
                continue
            seen.add(key)
            refined = _refine(system, x0, float(zeros[z_index[trial]]), x, lam,
                              (2 * tolerance, 1.5 * tolerance, tolerance), max_zero_shift)  # fmt: skip
            if refined is not None:
                solution = _figures(system, refined[0], refined[1], x, lam, tolerance, n, min_length, unindexed, y)
                if solution is not None:
                    solutions.append(solution)
            kept += 1
            if kept >= n_refine:
                break
    solutions.sort(key=lambda s: -s.score)
    unique: list[IndexingSolution] = []
    for solution in solutions:
        if any(_same_cell(solution, other) for other in unique):
            continue
        unique.append(solution)
    return IndexingResult(tuple(unique), x, y, lam)


def _same_cell(one: IndexingSolution, other: IndexingSolution) -> bool:
    """Same lattice system and centring, equal volume and edges (in any order) within 0.2 %."""
    if one.lattice_system != other.lattice_system or one.centring != other.centring:
        return False
    if not math.isclose(one.cell.volume, other.cell.volume, rel_tol=2e-3):
        return False
    edges = sorted((one.cell.a, one.cell.b, one.cell.c)), sorted((other.cell.a, other.cell.b, other.cell.c))
    return bool(np.allclose(edges[0], edges[1], rtol=2e-3))
