"""Refinement of one candidate phase against a measured profile: lattice metric, zero shift, texture and scale.

Search-match (:mod:`.identify`) places a candidate's peaks with one d-spacing scale and a zero shift. This module
refines what a Rietveld program would, restricted to what the candidate's indexed peaks allow without its
structure:

* **lattice**: the reciprocal metric tensor ``G*`` (``1 / d^2 = h G* h^T`` for a row ``h`` of Miller indices) is
  first fitted to the candidate's own ``(hkl, d)`` pairs, its lattice symmetry found as the integer matrices ``R``
  (entries -1, 0, 1, ``|det R| = 1``) with ``R G* R^T = G*`` (the holohedry of the lattice), and ``G*`` is then
  refined on the matched measured peaks inside the subspace of metrics that symmetry leaves invariant (1
  parameter for a cubic cell, 2 tetragonal or hexagonal, 3 orthorhombic, 4 monoclinic, 6 triclinic), together
  with the zero shift, by Gauss-Newton on ``2θ = 2 asin(λ sqrt(h G* h^T) / 2) + z``;
* **preferred orientation**: the March-Dollase factor of a reflection whose plane normal makes the angle
  ``alpha`` with the preferred direction ``H``, ``P(alpha) = (r^2 cos^2 alpha + sin^2 alpha / r)^(-3/2)``
  (Dollase, J. Appl. Cryst. 19, 267 (1986)), averaged over the planes of each peak (its hkl families under the
  lattice symmetry, weighted by multiplicity); ``H`` is chosen among the low-index reciprocal directions
  (indices -1, 0, 1, one per symmetry-equivalent set) and ``r`` refined in ``[1 / MAX_TEXTURE, MAX_TEXTURE]``.
  ``P`` is normalised over the sphere, so texture redistributes intensity without changing the phase's total;
* **scale**: for fixed positions and widths the profile is linear in the peaks' areas ``a``; with unit-area
  peak profiles ``φ_k`` on the grid, Poisson weights ``w`` and the target ``y``, the least-squares scale of
  ``a`` and the drop of the weighted residual it gives are closed forms of ``b = Φ (w y)`` and
  ``M = Φ diag(w) Φ^T`` (Rietveld, J. Appl. Cryst. 2, 65 (1969); here one scale per candidate), so many
  ``(H, r)`` are scored at the cost of small matrix products.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

__all__ = (
    'MAX_TEXTURE',
    'CandidateGeometry',
    'ProfileBasis',
    'TextureFit',
    'family_table',
    'fit_texture',
    'lattice_operations',
    'lattice_parameters',
    'march_dollase',
    'reciprocal_metric',
)

MAX_TEXTURE = 2.0
"""Largest March-Dollase ``r`` (and smallest ``1 / MAX_TEXTURE``) refined; 1 is a random powder."""
_TEXTURE_STEPS = 25
"""Values of ``ln r`` tried on ``[-ln MAX_TEXTURE, ln MAX_TEXTURE]`` (refined by a parabola around the best)."""
_METRIC_TOL = 1e-4
"""Relative tolerance of ``R G* R^T = G*`` for a symmetry operation, and of the metric fit to the indexed peaks."""
_PSEUDO_VOIGT_ETA = 0.5
_WINDOW = 20.0
"""Peak profiles are computed within this many (largest) FWHM of their centre."""
_RAD = math.pi / 180


# ------------------------------------------------------------------------------------------------ lattice
def family_table(hkls: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(representatives (F, 3), counts (F,), ptr (n_peaks + 1,))`` of the hkl families of each peak.

    :param hkls: :class:`~aiida_matembed.core.xrd.peaks.HklFamilies` or a list (one entry per peak) of
        ``{hkl: multiplicity}`` dicts; 4-index hexagonal ``(h, k, i, l)`` become ``(h, k, l)``.
    """
    if hasattr(hkls, 'representatives') and hasattr(hkls, 'ptr'):
        rep = np.asarray(hkls.representatives, dtype=np.int64)
        counts, ptr = np.asarray(hkls.counts, dtype=float), np.asarray(hkls.ptr, dtype=np.int64)
    else:
        rows, counts_list, lengths = [], [], []
        for families in hkls:
            lengths.append(len(families))
            for hkl, multiplicity in families.items():
                rows.append(list(hkl))
                counts_list.append(float(multiplicity))
        width = max((len(r) for r in rows), default=3)
        rep = np.array([r if len(r) == width else [*r, 0] for r in rows], dtype=np.int64).reshape(-1, width)
        counts = np.asarray(counts_list, dtype=float)
        ptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    if rep.ndim == 2 and rep.shape[1] == 4:
        rep = rep[:, [0, 1, 3]]
    return rep.reshape(-1, 3), counts, ptr


_METRIC_FORMS: tuple[tuple[tuple[float, ...], ...], ...] = (
    ((1, 1, 1, 0, 0, 0),),  # cubic
    ((1, 1, 0, 0.5, 0, 0), (0, 0, 1, 0, 0, 0)),  # hexagonal axes (a = b, gamma = 120°: gamma* = 60°)
    ((1, 1, 0, 0, 0, 0), (0, 0, 1, 0, 0, 0)),  # tetragonal
    ((1, 0, 0, 0, 0, 0), (0, 1, 0, 0, 0, 0), (0, 0, 1, 0, 0, 0)),  # orthorhombic
    *(
        ((1, 0, 0, 0, 0, 0), (0, 1, 0, 0, 0, 0), (0, 0, 1, 0, 0, 0), tuple(float(i == k) for i in range(6)))
        for k in (4, 3, 5)
    ),  # monoclinic, unique axis b, c or a
    tuple(tuple(float(i == k) for i in range(6)) for k in range(6)),  # triclinic
)
"""Forms of ``(G*11, G*22, G*33, G*12, G*13, G*23)`` of the reciprocal metric in the standard settings (ITA)."""


def reciprocal_metric(hkl: np.ndarray, d_spacing: np.ndarray) -> np.ndarray | None:
    """``G*`` (Å^-2) fitted to ``1 / d^2 = h G* h^T`` over indexed peaks; ``None`` if they do not determine it.

    The most symmetric form of the metric in the standard settings (cubic, hexagonal, tetragonal, orthorhombic,
    monoclinic, triclinic) that the peaks determine and that reproduces every ``1 / d^2`` to :data:`_METRIC_TOL`
    (relative) is taken: peaks from a calculation are exact, so a worse fit means another form or indices and
    spacings that do not belong together; trying the symmetric forms first also fixes the metric where the
    peaks' indices alone leave it undetermined (e.g. only ``h0l`` and ``hhl`` families of a hexagonal cell).
    """
    h = np.asarray(hkl, dtype=float)
    q = 1 / np.asarray(d_spacing, dtype=float) ** 2
    if len(q) < 2:
        return None
    design = _metric_design(h)
    for form in _METRIC_FORMS:
        basis = np.asarray(form, dtype=float)
        reduced = design @ basis.T
        if len(q) < len(basis) + 1 or np.linalg.matrix_rank(reduced) < len(basis):
            continue
        params, *_ = np.linalg.lstsq(reduced, q, rcond=None)
        if np.max(np.abs(reduced @ params - q) / q) > _METRIC_TOL:
            continue
        metric = _metric_from(basis.T @ params)
        if np.all(np.linalg.eigvalsh(metric) > 0):
            return metric
    return None


def _metric_design(h: np.ndarray) -> np.ndarray:
    """Columns: ``h^2, k^2, l^2, 2hk, 2hl, 2kl`` (``1 / d^2`` is linear in ``G*11, G*22, G*33, G*12, G*13, G*23``)."""
    return np.column_stack(
        [h[:, 0] ** 2, h[:, 1] ** 2, h[:, 2] ** 2, 2 * h[:, 0] * h[:, 1], 2 * h[:, 0] * h[:, 2], 2 * h[:, 1] * h[:, 2]]
    )


def _metric_from(params: np.ndarray) -> np.ndarray:
    g11, g22, g33, g12, g13, g23 = (float(v) for v in params)
    return np.array([[g11, g12, g13], [g12, g22, g23], [g13, g23, g33]])


def lattice_operations(metric: np.ndarray) -> np.ndarray:
    """``(n, 3, 3)`` integer matrices ``R`` with ``R G* R^T = G*`` (acting on rows of Miller indices, ``h -> h R``).

    Row ``i`` of such an ``R`` is a vector of the norm ``G*_ii``, so only rows of the right norm are combined.
    """
    vectors = _short_vectors()
    norms = np.einsum('ni,ij,nj->n', vectors, metric, vectors)
    scale = float(np.max(np.abs(np.diag(metric))))
    rows = [np.flatnonzero(np.abs(norms - metric[i, i]) <= _METRIC_TOL * scale) for i in range(3)]
    if not all(len(r) for r in rows):
        return np.zeros((0, 3, 3), dtype=np.int64)
    index = np.array(list(itertools.product(*rows)), dtype=np.int64)
    ops = vectors[index]  # (n, 3, 3): row i of each candidate matrix
    transformed = np.einsum('nij,jk,nlk->nil', ops, metric, ops)
    ok = np.max(np.abs(transformed - metric[None]), axis=(1, 2)) <= _METRIC_TOL * scale
    ok &= np.abs(np.rint(np.linalg.det(ops))) == 1
    return np.rint(ops[ok]).astype(np.int64)


@cache
def _short_vectors() -> np.ndarray:
    """The 26 non-zero vectors with entries -1, 0, 1 (as floats)."""
    return np.array([v for v in itertools.product((-1, 0, 1), repeat=3) if any(v)], dtype=float)


def lattice_parameters(metric: np.ndarray) -> tuple[float, float, float, float, float, float]:
    """``(a, b, c, alpha, beta, gamma)`` (Å, degrees) of the direct cell of the reciprocal metric ``G*``."""
    direct = np.linalg.inv(metric)
    a, b, c = np.sqrt(np.diag(direct))
    alpha = math.degrees(math.acos(direct[1, 2] / (b * c)))
    beta = math.degrees(math.acos(direct[0, 2] / (a * c)))
    gamma = math.degrees(math.acos(direct[0, 1] / (a * b)))
    return float(a), float(b), float(c), alpha, beta, gamma


def _invariant_basis(ops: np.ndarray) -> np.ndarray:
    """``(p, 6)``: a basis of the metric parameters (order of :func:`_metric_design`) invariant under ``ops``."""
    rows = []
    for params in np.eye(6):
        metric = _metric_from(params)
        averaged = np.einsum('nij,jk,nlk->il', ops.astype(float), metric, ops.astype(float)) / len(ops)
        rows.append([averaged[0, 0], averaged[1, 1], averaged[2, 2], averaged[0, 1], averaged[0, 2], averaged[1, 2]])
    _, singular, vt = np.linalg.svd(np.asarray(rows))
    rank = int((singular > 1e-8 * singular[0]).sum())
    return vt[:rank]


def march_dollase(cos2: np.ndarray, r: float | np.ndarray) -> np.ndarray:
    """March-Dollase factor ``(r^2 cos^2 alpha + (1 - cos^2 alpha) / r)^(-3/2)`` (normalised over the sphere)."""
    r = np.asarray(r, dtype=float)
    return (r**2 * cos2 + (1 - cos2) / r) ** -1.5


@dataclass
class CandidateGeometry:
    """A candidate's indexed peaks: metric, lattice symmetry, texture directions and the planes of each peak."""

    hkl: np.ndarray
    """``(n_peaks, 3)``: Miller indices of the first family of each peak (in the setting of the metric)."""
    metric: np.ndarray
    """``G*`` (Å^-2) fitted to the candidate's own peaks (unstrained)."""
    operations: np.ndarray
    basis: np.ndarray
    """Invariant metric parameters (:func:`_invariant_basis`)."""
    directions: np.ndarray
    """``(n_dir, 3)``: low-index preferred-orientation directions (reciprocal-lattice vectors), one per symmetry set."""
    cos2: np.ndarray
    """``(n_dir, n_members)``: squared cosine of each (family, operation) plane with each direction."""
    member_peak: np.ndarray
    member_weight: np.ndarray
    """Weight of each member in its peak's average (multiplicity share / number of operations)."""
    has_planes: np.ndarray
    """``(n_peaks,)``: whether a peak has hkl families (those without keep a texture factor of 1)."""
    _aggregate: Any = field(default=None, repr=False)

    @classmethod
    def from_peaks(cls, d_spacing: np.ndarray, hkls: Any) -> CandidateGeometry | None:
        """From a candidate's spacings (Å) and the hkl families of each peak; ``None`` if they cannot be used."""
        d = np.asarray(d_spacing, dtype=float)
        rep, counts, ptr = family_table(hkls)
        if len(ptr) != len(d) + 1 or not len(rep):
            return None
        n_fam = np.diff(ptr)
        has = n_fam > 0
        first = np.zeros((len(d), 3), dtype=np.int64)
        first[has] = rep[ptr[:-1][has]]
        metric = reciprocal_metric(first[has], d[has])
        if metric is None:
            return None
        ops = lattice_operations(metric)
        if not len(ops):
            return None
        directions = _directions(ops, metric)
        fam_peak = np.repeat(np.arange(len(d)), n_fam)
        totals = np.bincount(fam_peak, weights=counts, minlength=len(d))
        # every family's planes under the lattice symmetry (each appears |ops| / |orbit| times: the mean is exact)
        planes = np.einsum('fi,nij->fnj', rep, ops).reshape(-1, 3)
        family = np.repeat(np.arange(len(rep)), len(ops))
        # the distinct planes (h and -h alike) of each family: cos^2 is all a plane enters with
        sign = np.where((planes != 0).any(axis=1), np.sign(planes[np.arange(len(planes)), (planes != 0).argmax(1)]), 1)
        planes = planes * sign[:, None]
        span = int(np.abs(planes).max(initial=0)) * 2 + 1
        code = ((family * span + planes[:, 0]) * span + planes[:, 1]) * span + planes[:, 2]
        _, first_of, repeats = np.unique(code, return_index=True, return_counts=True)
        planes, family = planes[first_of], family[first_of]
        member_peak = fam_peak[family]
        share = counts / np.where(totals[fam_peak] > 0, totals[fam_peak], 1)
        member_weight = share[family] * repeats / len(ops)
        cos2 = _cos2(planes.astype(float), directions, metric)
        return cls(first, metric, ops, _invariant_basis(ops), directions, cos2, member_peak, member_weight, has)

    def texture_factors(self, direction: int, r: float | np.ndarray) -> np.ndarray:
        """March-Dollase factors ``(n_peaks,)`` (``(len(r), n_peaks)`` for several ``r``) about a direction.

        :param direction: row of :attr:`directions`.
        """
        from scipy import sparse

        if self._aggregate is None:  # members -> peaks, weighted by their share of the peak
            n_peaks = len(self.has_planes)
            self._aggregate = sparse.csr_matrix(
                (self.member_weight, (np.arange(len(self.member_peak)), self.member_peak)),
                shape=(len(self.member_peak), n_peaks),
            )
        r_arr = np.atleast_1d(np.asarray(r, dtype=float))
        values = march_dollase(self.cos2[direction][None, :], r_arr[:, None])
        out = np.asarray(self._aggregate.T @ values.T).T
        out[:, ~self.has_planes] = 1.0
        return out[0] if np.ndim(r) == 0 else out

    def refine_metric(
        self, keep: np.ndarray, observed: np.ndarray, matched: np.ndarray, weight: np.ndarray, wavelength: float,
        d_scale: float, zero_shift: float, max_zero_shift: float, max_strain: float,
    ) -> tuple[np.ndarray, float]:  # fmt: skip
        """Refine ``G*`` (in the invariant subspace) and the zero shift on matched peaks (module docstring).

        :param keep: indices of the candidate's peaks used; :param observed: ``(len(keep),)`` measured 2θ (degrees)
            of each, :param matched: which of them are matched, :param weight: their least-squares weights.
        :return: the refined ``G*`` and zero shift; the start (``G* / s^2``, ``zero_shift``) when under-determined.
        """
        metric = self.metric / d_scale**2
        start = metric.copy()
        zero = float(zero_shift)
        h = self.hkl[keep][matched].astype(float)
        obs, wt = observed[matched], np.sqrt(weight[matched])
        n_par = len(self.basis)
        if len(h) < n_par + 2:
            return start, zero
        design_q = _metric_design(h) @ self.basis.T  # ∂Q / ∂p for the invariant parameters p
        params = self.basis @ np.array([metric[0, 0], metric[1, 1], metric[2, 2], metric[0, 1], metric[0, 2],
                                        metric[1, 2]])  # fmt: skip
        params0 = params.copy()
        for _ in range(4):
            q = design_q @ params
            sine = wavelength * np.sqrt(np.maximum(q, 1e-12)) / 2
            if np.any(sine >= 1):
                return start, zero_shift
            calc = np.degrees(2 * np.arcsin(sine)) + zero
            # ∂2θ/∂Q = λ / (2 sqrt(Q) cos θ) (radians)
            dq = wavelength / (2 * np.sqrt(q) * np.sqrt(1 - sine**2)) / _RAD
            jacobian = np.column_stack([design_q * dq[:, None], np.ones(len(q))])
            step, *_ = np.linalg.lstsq(jacobian * wt[:, None], (obs - calc) * wt, rcond=None)
            params = params + step[:-1]
            zero = float(np.clip(zero + step[-1], -max_zero_shift, max_zero_shift))
        refined = _metric_from(self.basis.T @ params)
        # stay within the strain the search allows (per axis of the metric) and positive definite
        ratio = np.diag(refined) / np.diag(self.metric)
        bounds = ((1 + max_strain) ** -2 * 0.99, (1 - max_strain) ** -2 * 1.01)
        if (
            np.any(np.linalg.eigvalsh(refined) <= 0)
            or np.any(ratio < bounds[0])
            or np.any(ratio > bounds[1])
            or not np.all(np.isfinite(params))
        ):
            del params0
            return start, zero_shift
        return refined, zero

    def two_theta(self, metric: np.ndarray, wavelength: float, zero_shift: float) -> np.ndarray:
        """2θ (degrees) of every peak for the metric ``G*`` (NaN beyond 180°)."""
        q = np.einsum('ni,ij,nj->n', self.hkl.astype(float), metric, self.hkl.astype(float))
        sine = wavelength * np.sqrt(np.maximum(q, 0)) / 2
        with np.errstate(invalid='ignore'):
            return np.where(sine < 1, np.degrees(2 * np.arcsin(np.minimum(sine, 1))) + zero_shift, np.nan)


def _cos2(planes: np.ndarray, directions: np.ndarray, metric: np.ndarray) -> np.ndarray:
    """``(n_dir, n_planes)`` squared cosines between reciprocal vectors (metric ``G*``)."""
    dot = directions.astype(float) @ metric @ planes.T
    norm_p = np.einsum('ni,ij,nj->n', planes, metric, planes)
    norm_d = np.einsum('ni,ij,nj->n', directions.astype(float), metric, directions.astype(float))
    with np.errstate(invalid='ignore', divide='ignore'):
        cos2 = dot**2 / (norm_d[:, None] * norm_p[None, :])
    return np.clip(np.nan_to_num(cos2, nan=0.0), 0.0, 1.0)


def _directions(ops: np.ndarray, metric: np.ndarray) -> np.ndarray:
    """Low-index reciprocal directions (indices in -1, 0, 1), one of each set equivalent under ``ops`` or sign."""
    vectors = np.array([v for v in itertools.product((0, 1, -1), repeat=3) if any(v)], dtype=np.int64)
    images = np.einsum('vi,nij->vnj', vectors, ops)
    images = np.concatenate([images, -images], axis=1)  # (26, 2 n_ops, 3); hexagonal images can leave -1..1
    low_index = (np.abs(images) <= 1).all(axis=2)
    codes = images @ np.array([9, 3, 1]) + 13
    seen = np.zeros(27, dtype=bool)
    out = []
    for vector, orbit, valid in zip(vectors, codes, low_index, strict=True):
        if seen[int(vector @ np.array([9, 3, 1]) + 13)]:
            continue
        seen[orbit[valid]] = True
        out.append(vector)
    return np.array(out, dtype=np.int64)


# -------------------------------------------------------------------------------------------------- profile
def _pseudo_voigt(x: np.ndarray, fwhm: np.ndarray, eta: float) -> np.ndarray:
    """Unit-area pseudo-Voigt ``eta L + (1 - eta) G`` of full width ``fwhm`` at offsets ``x`` (same units)."""
    u = (x / fwhm) ** 2
    gauss = math.sqrt(4 * math.log(2) / math.pi) / fwhm * np.exp(-4 * math.log(2) * u)
    lorentz = 2 / (math.pi * fwhm) / (1 + 4 * u)
    return eta * lorentz + (1 - eta) * gauss


@dataclass
class ProfileBasis:
    """Unit-area pseudo-Voigt profiles ``φ_k`` of a candidate's peaks on a grid, and their weighted Gram matrix."""

    peaks: np.ndarray
    """Indices (into the candidate's peaks) of the rendered ones."""
    rows: Any
    """``scipy.sparse`` CSR ``(len(peaks), G)``."""
    gram: np.ndarray
    """``M = Φ diag(w) Φ^T``."""

    @classmethod
    def render(cls, grid: np.ndarray, two_theta: np.ndarray, fwhm: np.ndarray, weight: np.ndarray,
               peaks: np.ndarray, *, eta: float = _PSEUDO_VOIGT_ETA,
               companion: tuple[np.ndarray, float] | None = None, window: float = _WINDOW) -> ProfileBasis:  # fmt: skip
        """Profiles of the peaks at ``two_theta`` (degrees) with widths ``fwhm`` (degrees) on the even ``grid``.

        :param weight: the least-squares weight ``w`` of each grid point; :param eta: Lorentzian share.
        :param companion: ``(two_theta_2, ratio)``: each peak also has a companion of ``ratio`` times its area at
            ``two_theta_2`` (the K-alpha2 line of a doublet), in the same row.
        :param window: each row covers this many of the largest FWHM either side of its peak(s).
        """
        from scipy import sparse

        n, n_grid = len(two_theta), len(grid)
        step = float(grid[1] - grid[0])
        half = math.ceil(window * float(np.max(fwhm, initial=step)) / step)
        second = None if companion is None else np.asarray(companion[0], dtype=float)
        ratio = 0.0 if companion is None else float(companion[1])
        # one window per peak from its first component's left edge to its last one's right edge
        first = np.rint((two_theta - grid[0]) / step).astype(np.int64)
        last = first
        if second is not None:
            last = np.rint((np.where(np.isfinite(second), second, two_theta) - grid[0]) / step).astype(np.int64)
        length = int(np.max(last - first, initial=0)) + 2 * half + 1
        cols = (first - half)[:, None] + np.arange(length)[None, :]
        x = grid[np.clip(cols, 0, n_grid - 1)]
        h = fwhm[:, None]
        values = _pseudo_voigt(x - two_theta[:, None], h, eta)
        if second is not None:
            ok = np.isfinite(second)
            values[ok] = values[ok] + ratio * _pseudo_voigt(x[ok] - second[ok, None], h[ok], eta)
        inside = (cols >= 0) & (cols < n_grid)
        counts = inside.sum(axis=1)
        rows = sparse.csr_matrix(
            (values[inside], cols[inside], np.concatenate([[0], np.cumsum(counts)])), shape=(n, n_grid)
        )
        gram = (rows.multiply(weight[None, :]).tocsr() @ rows.T).toarray()
        return cls(np.asarray(peaks, dtype=np.int64), rows, gram)

    def projection(self, weighted_target: np.ndarray) -> np.ndarray:
        """``b = Φ (w y)`` for ``weighted_target = w y``."""
        return np.asarray(self.rows @ weighted_target).ravel()

    def profile(self, areas: np.ndarray) -> np.ndarray:
        """``Φ^T a`` on the grid for the areas of the rendered peaks."""
        return np.asarray(self.rows.T @ areas).ravel()


@dataclass(frozen=True)
class TextureFit:
    """The best preferred orientation of one candidate for a target profile."""

    direction: tuple[int, int, int] | None
    """Preferred reciprocal direction ``H`` (Miller indices of the candidate's cell); ``None``: no texture."""
    ratio: float
    """March-Dollase ``r`` (1 = random powder, < 1 platelets normal to ``H``, > 1 needles along ``H``)."""
    scale: float
    """Least-squares scale of the textured areas."""
    reduction: float
    """Drop of the weighted squared residual, ``(a.b)^2 / (a M a)`` (0 when the best scale would be negative)."""


def fit_texture(basis: ProfileBasis, areas: np.ndarray, b: np.ndarray, geometry: CandidateGeometry | None,
                *, texture: bool = True) -> TextureFit:  # fmt: skip
    """The ``(H, r)`` and scale that lower the weighted residual against the target most (module docstring).

    :param areas: untextured areas of the rendered peaks; :param b: :meth:`ProfileBasis.projection` of the target.
    """
    best = _score(areas[None, :], b, basis.gram)
    fit = TextureFit(None, 1.0, float(best[1][0]), float(best[0][0]))
    if not texture or geometry is None or not len(geometry.directions):
        return fit
    log_r = np.linspace(-math.log(MAX_TEXTURE), math.log(MAX_TEXTURE), _TEXTURE_STEPS)
    for k, direction in enumerate(geometry.directions):
        factors = geometry.texture_factors(k, np.exp(log_r))[:, basis.peaks]
        reduction, scale = _score(areas[None, :] * factors, b, basis.gram)
        i = int(np.argmax(reduction))
        t = log_r[i]
        if 0 < i < len(log_r) - 1:  # parabola through the best and its neighbours
            y0, y1, y2 = reduction[i - 1], reduction[i], reduction[i + 1]
            curvature = y0 - 2 * y1 + y2
            if curvature < 0:
                t = float(log_r[i] + 0.5 * (y0 - y2) / curvature * (log_r[1] - log_r[0]))
                refined = _score(areas[None, :] * geometry.texture_factors(k, np.exp([t]))[:, basis.peaks], b,
                                 basis.gram)  # fmt: skip
                if refined[0][0] >= y1:
                    reduction, scale, i = refined[0], refined[1], 0
                else:
                    t = log_r[i]
        if reduction[i] > fit.reduction:
            fit = TextureFit(
                (int(direction[0]), int(direction[1]), int(direction[2])), float(math.exp(t)), float(scale[i]),
                float(reduction[i]),
            )  # fmt: skip
    return fit


def _score(areas: np.ndarray, b: np.ndarray, gram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Residual drop ``(a.b)^2 / (a M a)`` and scale ``a.b / (a M a)`` of each row of ``areas``.

    Both are 0 where ``a.b <= 0`` (the best scale would be negative).
    """
    numerator = areas @ b
    denominator = ((areas @ gram) * areas).sum(axis=1)
    ok = (numerator > 0) & (denominator > 0)
    safe = np.where(ok, denominator, 1.0)
    return np.where(ok, numerator**2 / safe, 0.0), np.where(ok, numerator / safe, 0.0)
