"""Reciprocal metrics of the crystal systems, cells from them, and the reflections of a cell grouped by ``Q``.

``Q(hkl) = 1/d² = h²A + k²B + l²C + hkD + hlE + klF`` (Å^-2) with the reciprocal metric
``G6 = (A, B, C, D, E, F) = (a*², b*², c*², 2a*b* cos gamma*, 2a*c* cos beta*, 2b*c* cos alpha*)``. Each crystal
system constrains ``G6`` to a linear function of ``p`` free parameters, ``G6 = T x`` (International Tables for
Crystallography, Vol. A, ch. 1.3): cubic ``(A)``, tetragonal and hexagonal ``(A, C)`` (hexagonal: ``A = 4 / 3a²``
on ``h² + hk + k²``), orthorhombic ``(A, B, C)``, monoclinic with ``b`` unique ``(A, B, C, E)``. A line's design
row is therefore ``H6(hkl) T`` with ``H6 = (h², k², l², hk, hl, kl)``, and ``Q`` is linear in ``x``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = (
    'CRYSTAL_SYSTEMS',
    'SYSTEMS',
    'Cell',
    'LatticeSystem',
    'cell_from_g6',
    'q_of_two_theta',
    'reflection_clusters',
    'two_theta_of_q',
)

CRYSTAL_SYSTEMS = ('triclinic', 'monoclinic', 'orthorhombic', 'tetragonal', 'trigonal', 'hexagonal', 'cubic')
"""The seven crystal systems, lowest symmetry first (the order of the learned classifier's columns)."""


@dataclass(frozen=True)
class LatticeSystem:
    """How a lattice system constrains the reciprocal metric."""

    name: str
    transform: np.ndarray
    """``(6, p)``: ``G6 = transform @ x``."""
    mode: int
    """Enumeration mode of :func:`~._kernels.score_trials`."""
    centrings: tuple[str, ...]
    """Bravais centrings of the system (conventional cell)."""

    @property
    def n_params(self) -> int:
        return int(self.transform.shape[1])

    def rows(self, hkl: np.ndarray) -> np.ndarray:
        """Design rows ``(n, p)`` of reflections ``(n, 3)``: ``Q = rows @ x``."""
        return h6(hkl) @ self.transform


def h6(hkl: np.ndarray) -> np.ndarray:
    """``(h², k², l², hk, hl, kl)`` of ``(n, 3)`` Miller indices."""
    h, k, ll = (np.asarray(hkl, dtype=float)[:, i] for i in range(3))
    return np.stack([h * h, k * k, ll * ll, h * k, h * ll, k * ll], axis=1)


def _t(*columns: tuple[int, ...]) -> np.ndarray:
    out = np.zeros((6, len(columns)))
    for j, rows in enumerate(columns):
        out[list(rows), j] = 1.0
    return out


SYSTEMS: dict[str, LatticeSystem] = {
    'cubic': LatticeSystem('cubic', _t((0, 1, 2)), 0, ('P', 'I', 'F')),
    'tetragonal': LatticeSystem('tetragonal', _t((0, 1), (2,)), 1, ('P', 'I')),
    'hexagonal': LatticeSystem('hexagonal', _t((0, 1, 3), (2,)), 1, ('P', 'R')),
    'orthorhombic': LatticeSystem('orthorhombic', _t((0,), (1,), (2,)), 2, ('P', 'C', 'A', 'B', 'I', 'F')),
    'monoclinic': LatticeSystem('monoclinic', _t((0,), (1,), (2,), (4,)), 3, ('P', 'C', 'A', 'I')),
}
"""Lattice systems searched by the indexing, highest symmetry first (trigonal lattices are indexed on hexagonal
axes; a rhombohedral lattice is the hexagonal one with centring ``R``)."""

CENTRING_CONDITIONS = {
    'P': lambda h, k, ll: np.ones(h.shape, dtype=bool),
    'I': lambda h, k, ll: (h + k + ll) % 2 == 0,
    'F': lambda h, k, ll: ((h + k) % 2 == 0) & ((h + ll) % 2 == 0),
    'C': lambda h, k, ll: (h + k) % 2 == 0,
    'A': lambda h, k, ll: (k + ll) % 2 == 0,
    'B': lambda h, k, ll: (h + ll) % 2 == 0,
    'R': lambda h, k, ll: (-h + k + ll) % 3 == 0,
}
"""Reflection conditions of the lattice centrings (ITA Vol. A, table 2.2.13.1; ``R``: obverse, hexagonal axes)."""


@dataclass(frozen=True)
class Cell:
    """A unit cell: edges (Å) and angles (degrees)."""

    a: float
    b: float
    c: float
    alpha: float
    beta: float
    gamma: float

    @property
    def volume(self) -> float:
        """Volume (Å³)."""
        ca, cb, cg = (math.cos(math.radians(v)) for v in (self.alpha, self.beta, self.gamma))
        return self.a * self.b * self.c * math.sqrt(max(1 - ca * ca - cb * cb - cg * cg + 2 * ca * cb * cg, 0.0))

    def as_tuple(self) -> tuple[float, float, float, float, float, float]:
        return (self.a, self.b, self.c, self.alpha, self.beta, self.gamma)

    def as_dict(self) -> dict[str, float]:
        return {'a': self.a, 'b': self.b, 'c': self.c, 'alpha': self.alpha, 'beta': self.beta,
                'gamma': self.gamma, 'volume': self.volume}  # fmt: skip


def metric_matrix(g6: np.ndarray) -> np.ndarray:
    """The symmetric 3x3 reciprocal metric tensor of ``G6``."""
    a, b, c, d, e, f = (float(v) for v in g6)
    return np.array([[a, d / 2, e / 2], [d / 2, b, f / 2], [e / 2, f / 2, c]])


def cell_from_g6(g6: np.ndarray) -> Cell:
    """The direct cell of a reciprocal metric (the direct metric is the inverse of the reciprocal one).

    :raises ValueError: if ``G6`` is not positive definite.
    """
    g_star = metric_matrix(g6)
    if not np.all(np.linalg.eigvalsh(g_star) > 0):
        raise ValueError(f'the reciprocal metric {list(np.round(g6, 8))} is not positive definite')
    g = np.linalg.inv(g_star)
    a, b, c = (math.sqrt(g[i, i]) for i in range(3))

    def angle(i: int, j: int, length: float) -> float:
        return math.degrees(math.acos(max(-1.0, min(1.0, g[i, j] / length))))

    return Cell(a, b, c, angle(1, 2, b * c), angle(0, 2, a * c), angle(0, 1, a * b))


def q_of_two_theta(two_theta: np.ndarray, wavelength: float) -> np.ndarray:
    """``Q = 1/d² = (2 sin θ / λ)²`` (Å^-2) of 2θ (degrees) at ``wavelength`` (Å)."""
    return (2 * np.sin(np.radians(np.asarray(two_theta, dtype=float)) / 2) / wavelength) ** 2


def two_theta_of_q(q: np.ndarray, wavelength: float) -> np.ndarray:
    """2θ (degrees) of ``Q`` (Å^-2); NaN beyond the limiting sphere."""
    s = wavelength * np.sqrt(np.maximum(np.asarray(q, dtype=float), 0.0)) / 2
    with np.errstate(invalid='ignore'):
        return np.degrees(2 * np.arcsin(np.where(s <= 1, s, np.nan)))


@dataclass(frozen=True)
class ReflectionClusters:
    """All reflections of a cell up to ``q_max`` (Friedel half), grouped into clusters of equal ``Q``."""

    hkl: np.ndarray
    """``(n, 3)`` Miller indices."""
    cluster: np.ndarray
    """``(n,)`` cluster of each reflection."""
    q: np.ndarray
    """``(m,)`` ``Q`` of each cluster, increasing."""

    def any_allowed(self, allowed: np.ndarray) -> np.ndarray:
        """``(..., m)`` whether any reflection of each cluster is allowed, from ``(..., n)`` per-reflection flags."""
        out = np.zeros((*allowed.shape[:-1], len(self.q)), dtype=bool)
        flat = out.reshape(-1, len(self.q))
        source = allowed.reshape(-1, allowed.shape[-1])
        for row in range(flat.shape[0]):
            flat[row] = np.bincount(self.cluster, weights=source[row].astype(float), minlength=len(self.q)) > 0
        return out

    def centring_allowed(self, centring: str) -> np.ndarray:
        """``(m,)`` clusters with a reflection allowed by the lattice ``centring``."""
        h, k, ll = self.hkl.T
        return self.any_allowed(CENTRING_CONDITIONS[centring](h, k, ll))


def reflection_clusters(g6: np.ndarray, q_max: float, *, max_reflections: int = 200_000) -> ReflectionClusters:
    """Every ``hkl`` with ``0 < Q <= q_max`` (one of each Friedel pair), clustered by equal ``Q`` (relative 1e-7).

    :raises ValueError: if the cell would have more than ``max_reflections`` reflections there.
    """
    g = np.linalg.inv(metric_matrix(g6))
    limits = [int(math.sqrt(g[i, i] * q_max) + 1e-9) for i in range(3)]
    if np.prod([2 * m + 1 for m in limits]) > 8 * max_reflections:
        raise ValueError(f'the cell has too many reflections below Q = {q_max:g} Å^-2 (limits {limits})')
    ranges = [np.arange(-m, m + 1) for m in limits]
    hkl = np.stack(np.meshgrid(*ranges, indexing='ij'), axis=-1).reshape(-1, 3)
    first = np.where(hkl[:, 0] != 0, hkl[:, 0], np.where(hkl[:, 1] != 0, hkl[:, 1], hkl[:, 2]))
    hkl = hkl[first > 0]
    q = h6(hkl) @ np.asarray(g6, dtype=float)
    keep = q <= q_max * (1 + 1e-9)
    hkl, q = hkl[keep], q[keep]
    order = np.argsort(q, kind='stable')
    hkl, q = hkl[order], q[order]
    if not len(q):
        return ReflectionClusters(np.zeros((0, 3), dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0))
    new = np.concatenate([[True], np.diff(q) > 1e-7 * q[1:]])
    cluster = np.cumsum(new) - 1
    return ReflectionClusters(hkl.astype(np.int64), cluster.astype(np.int64), q[new])
