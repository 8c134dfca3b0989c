"""Phase identification of a measured powder pattern: background, peak search, search-match, multi-phase fit.

The route is the classical one of search-match programs (Hanawalt, Rinn & Frevel, Ind. Eng. Chem. Anal. Ed. 10,
457 (1938); Marquart et al., J. Appl. Cryst. 12, 629 (1979); Gilmore, Barr & Paisley, J. Appl. Cryst. 37, 231
(2004)), with a full-profile quantification at the end:

1. **background**: SNIP clipping (Ryan et al., Nucl. Instrum. Meth. B 34, 396 (1988); Morháč et al., Nucl.
   Instrum. Meth. A 401, 113 (1997)) of the log-log-square-root transformed intensities, over a window of
   ``background_window`` degrees;
2. **K-alpha2 stripping** (Rachinger, J. Sci. Instrum. 25, 254 (1948)) when the measurement has the doublet:
   ``I1(2θ) = I(2θ) - r I1(2θ')`` with ``sin θ' = (λ1 / λ2) sin θ`` and ``r = 0.5``, point by point upwards;
3. **peak search**: Savitzky-Golay smoothing, local maxima with a prominence above ``min_snr`` times the noise
   (the median absolute deviation of the point-to-point differences), positions by a parabola through the top
   three points, widths at half height;
4. **search-match** against every candidate's peaks (``d`` in Å, intensity 0-100). Lattice strain scales all
   ``d`` of a candidate by one factor ``s``, i.e. shifts ``ln d`` by ``ln s``: a *screening* scores every
   candidate at every ``ln s`` in ``±ln(1 + max_strain)`` by how much of its (square-root) intensity lands on
   measured peaks, blurred by the position tolerance (vectorised over all candidates at once); the best
   ``n_refine`` are then *refined*: ``s`` and a zero shift ``z`` (2θ_obs = 2 asin(λ / 2 s d) + z, ``|z| <=
   max_zero_shift``) by weighted least squares on matched peak pairs with a shrinking tolerance, and scored by
   the figure of merit ``f_c * sqrt(f_m) * (1 - <|Δ2θ|> / 2 tol)``, ``f_c`` the fraction of the candidate's
   square-root intensity observed, ``f_m`` that of the measured peaks the candidate explains. Weak candidate
   peaks that are missing and measured peaks that are not explained therefore cost little, as in real data;
5. **profile re-rank**: the best ``n_rerank`` are fitted alone to the background-free pattern (K-alpha2 kept:
   each peak is rendered with its companion) as a Rietveld program would, within what their indexed peaks allow
   (:mod:`.refinement`): the lattice metric in the candidate's lattice symmetry and the zero shift on the matched
   peaks, the peak widths ``FWHM^2 = W + U tan^2 θ`` and the Lorentzian share (refined once, on the best
   candidate of the search: they belong to the instrument and sample), a March-Dollase texture about a low-index
   direction and the scale; the score is the figure of merit times ``1 - Rwp`` of that fit. Isostructural
   candidates (the same positions within the strain allowed, other elements) differ only in their intensities:
   the refined texture keeps a textured pattern of the right one from looking like another's;
6. **multi-phase fit**: the net pattern is fitted by non-negative least squares with Rietveld's weights
   ``1 / counts`` (Lawson & Hanson, Solving Least Squares Problems (1974), ch. 23, ``scipy.optimize.nnls``) to
   the profiles of the refined candidates; phases are added greedily (the one that lowers the weighted residual
   most, its texture refined against the pattern less the phases already chosen, searched again among candidates
   that explain the peaks left unexplained, i.e. those the fit reaches less than 30 % of), up to ``max_phases``,
   while each addition explains such a peak and lowers the residual by ``min_improvement``; each phase's texture
   is then refined again against the pattern less the others. Weight fractions follow Hill & Howard
   (J. Appl. Cryst. 20, 467 (1987)): ``w_p ∝ S_p (Z M V)_p``, with ``S_p`` the fitted scale of the phase's
   absolute intensities, ``Z M`` the mass of the cell (amu) and ``V`` its volume (Å^3); without structures the
   fractions are of integrated intensity (``weight_basis = 'intensity'``).

Preferred orientation changes intensities, not positions: the figure of merit uses square-root intensities only
as weights, so a textured pattern still matches, and the profile fit refines it. Without hkl families for a
candidate (:attr:`ReferencePeaks.hkls`), its peaks keep one d scale and no texture in the profile fit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..xrd import Peaks, XrdSimulator
from ..xrd.wavelengths import WAVELENGTHS, resolve_wavelength
from .refinement import CandidateGeometry, ProfileBasis, _score, fit_texture, lattice_parameters

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = (
    'Identification',
    'Match',
    'MeasuredPeaks',
    'Phase',
    'ReferencePeaks',
    'find_peaks',
    'identify_phases',
    'plot_identification',
    'snip_background',
    'strip_kalpha2',
)

KALPHA2_RATIO = 0.5
"""Intensity ratio K-alpha2 / K-alpha1 used by :func:`strip_kalpha2`."""
_SCREEN_PEAKS = 30
"""Strongest peaks per candidate used by the screening (all peaks above ``min_intensity`` are refined)."""
_SCREEN_SIGMA_FLOOR = 0.0015
"""Smallest blur (in ln d) of a measured peak in the screening; matches the ln-s step of the screening."""
_RAD = math.pi / 180
_EXPLAINED = 0.3
"""A measured peak is unexplained while the fit reaches less than this fraction of its net height."""


# -------------------------------------------------------------------------------------------- references
@dataclass
class ReferencePeaks:
    """Peaks of ``N`` candidate phases, concatenated: candidate ``i`` owns ``ptr[i]:ptr[i + 1]``.

    Intensities are on each candidate's 0-100 scale at ``wavelength``; only the ``d`` range
    ``[d_min, d_max]`` (Å) was simulated.
    """

    d_spacing: np.ndarray
    intensity: np.ndarray
    ptr: np.ndarray
    wavelength: float
    """Wavelength (Å) at which the intensities were computed (they carry its Lorentz-polarisation factor)."""
    d_min: float
    d_max: float
    keys: list[Any]
    formulas: list[str]
    structures: Sequence[Any] | None = None
    """Optional: the structures (or callables that return one), for Hill-Howard weight fractions."""
    hkls: Sequence[Any] | None = None
    """Optional: the hkl families of each candidate's peaks (:attr:`Peaks.hkls <aiida_matembed.core.xrd.Peaks.hkls>`,
    or a callable that returns them), for the refinement of its lattice and texture (:mod:`.refinement`)."""
    _prepared: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_peaks(
        cls,
        peaks: Sequence[Peaks],
        *,
        wavelength: str | float,
        two_theta_range: tuple[float, float],
        keys: Sequence[Any] | None = None,
        formulas: Sequence[str] | None = None,
        structures: Sequence[Any] | None = None,
    ) -> ReferencePeaks:
        """From :class:`~aiida_matembed.core.xrd.Peaks` simulated at ``wavelength`` over ``two_theta_range``.

        Their hkl families are kept (read only for the few candidates refined against the profile).
        """
        lam = resolve_wavelength(wavelength)
        n = len(peaks)
        counts = np.array([len(p) for p in peaks], dtype=np.int64)
        d = np.concatenate([np.asarray(p.d_spacing, dtype=float) for p in peaks]) if n else np.zeros(0)
        intensity = np.concatenate([np.asarray(p.intensity, dtype=float) for p in peaks]) if n else np.zeros(0)
        low, high = two_theta_range
        return cls(
            d_spacing=d,
            intensity=intensity,
            ptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            wavelength=lam,
            d_min=lam / (2 * math.sin(math.radians(high) / 2)),
            d_max=lam / (2 * math.sin(math.radians(low) / 2)),
            keys=list(range(n)) if keys is None else list(keys),
            formulas=[''] * n if formulas is None else list(formulas),
            structures=structures,
            hkls=[p.hkls for p in peaks],
        )

    @classmethod
    def from_structures(
        cls,
        structures: Sequence[Any],
        *,
        wavelength: str | float = 'CuKa',
        two_theta_range: tuple[float, float] = (5.0, 120.0),
        keys: Sequence[Any] | None = None,
    ) -> ReferencePeaks:
        """Simulate the candidates' peaks (:meth:`XrdSimulator.peaks_many`); failed structures get no peaks."""
        from ..structures import to_pymatgen

        simulator = XrdSimulator(wavelength, two_theta_range)
        peaks = simulator.peaks_many(structures, errors='record')
        formulas = []
        for s in structures:
            try:
                formulas.append(to_pymatgen(s).composition.reduced_formula)
            except Exception:
                formulas.append('')
        return cls.from_peaks(
            peaks, wavelength=wavelength, two_theta_range=two_theta_range, keys=keys, formulas=formulas,
            structures=structures,
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.ptr) - 1

    def peaks_of(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(d, intensity)`` of candidate ``index``."""
        part = slice(int(self.ptr[index]), int(self.ptr[index + 1]))
        return self.d_spacing[part], self.intensity[part]

    def structure_of(self, index: int) -> Any:
        if self.structures is None:
            return None
        item = self.structures[index]
        return item() if callable(item) else item

    def hkls_of(self, index: int) -> Any:
        """The hkl families of candidate ``index``'s peaks, or ``None`` when they are not known."""
        if self.hkls is None:
            return None
        item = self.hkls[index]
        return item() if callable(item) else item

    def screening_arrays(self, min_intensity: float) -> dict[str, np.ndarray]:
        """The strongest :data:`_SCREEN_PEAKS` peaks of each candidate: ``u = ln d``, weight, owner (cached)."""
        key = f'screen-{min_intensity}'
        if key not in self._prepared:
            owner = np.repeat(np.arange(len(self)), np.diff(self.ptr))
            keep = self.intensity >= min_intensity
            # rank of each peak by intensity within its candidate (strongest first)
            order = np.lexsort((-self.intensity, owner))
            rank = np.empty(len(order), dtype=np.int64)
            starts = self.ptr[owner[order]]
            rank[order] = np.arange(len(order)) - starts
            keep &= rank < _SCREEN_PEAKS
            self._prepared[key] = {
                'u': np.log(self.d_spacing[keep]),
                'w': np.sqrt(self.intensity[keep]),
                'owner': owner[keep],
            }
        return self._prepared[key]


# --------------------------------------------------------------------------------------- pattern steps
def snip_background(intensity: np.ndarray, window: int) -> np.ndarray:
    """SNIP background (see the module docstring) with clipping windows ``window, window - 1, ..., 1`` points."""
    y = np.maximum(np.asarray(intensity, dtype=float), 0.0)
    v = np.log(np.log(np.sqrt(y + 1) + 1) + 1)
    n = len(v)
    for m in range(min(int(window), (n - 1) // 2), 0, -1):
        mean = 0.5 * (v[: n - 2 * m] + v[2 * m :])
        v[m : n - m] = np.minimum(v[m : n - m], mean)
    return (np.exp(np.exp(v) - 1) - 1) ** 2 - 1


def strip_kalpha2(two_theta: np.ndarray, intensity: np.ndarray, lambda1: float, lambda2: float,
                  ratio: float = KALPHA2_RATIO) -> np.ndarray:  # fmt: skip
    """Rachinger correction of an even 2θ grid (degrees): the K-alpha1 part of a doublet pattern, clipped at 0."""
    x = np.asarray(two_theta, dtype=float)
    y = np.asarray(intensity, dtype=float)
    step = float(x[1] - x[0])
    sin_source = np.clip(np.sin(np.radians(x) / 2) * (lambda1 / lambda2), -1, 1)
    source = np.degrees(2 * np.arcsin(sin_source))  # where the K-alpha1 line whose K-alpha2 falls at x lies
    position = (source - x[0]) / step
    base = np.floor(position).astype(np.int64)
    frac = position - base
    out = y.astype(float).copy()
    values = out.tolist()
    base_list, frac_list = base.tolist(), frac.tolist()
    for i in range(len(values)):
        j = base_list[i]
        if j < 0:
            continue
        f = frac_list[i]
        upper = values[j + 1] if j + 1 < i else values[j]
        values[i] -= ratio * ((1 - f) * values[j] + f * upper)
    return np.maximum(np.asarray(values), 0.0)


@dataclass(frozen=True)
class MeasuredPeaks:
    """Peaks found in a measured pattern."""

    two_theta: np.ndarray
    """Positions (degrees)."""
    intensity: np.ndarray
    """Net heights scaled to 100 for the strongest."""
    fwhm: np.ndarray
    """Full widths at half maximum (degrees)."""

    def __len__(self) -> int:
        return len(self.two_theta)


def find_peaks(
    two_theta: np.ndarray, net: np.ndarray, *, min_snr: float = 4.0, min_height: float = 0.5
) -> MeasuredPeaks:
    """Peaks of a background-free pattern on an even grid (module docstring, step 3).

    :param min_snr: smallest prominence in units of the noise; :param min_height: smallest height, % of the
        strongest peak.
    """
    from scipy.signal import find_peaks as scipy_find_peaks
    from scipy.signal import peak_widths, savgol_filter

    x = np.asarray(two_theta, dtype=float)
    y = np.asarray(net, dtype=float)
    step = float(x[1] - x[0])
    smooth = savgol_filter(y, 7, 2) if len(y) > 7 else y
    noise = 1.4826 * float(np.median(np.abs(np.diff(y) - np.median(np.diff(y))))) / math.sqrt(2)
    top = float(smooth.max()) if len(smooth) else 0.0
    if not top > 0:
        return MeasuredPeaks(np.zeros(0), np.zeros(0), np.zeros(0))
    threshold = max(min_snr * noise, min_height / 100 * top)
    index, _ = scipy_find_peaks(smooth, prominence=threshold, height=threshold)
    if not len(index):
        return MeasuredPeaks(np.zeros(0), np.zeros(0), np.zeros(0))
    inner = index[(index > 0) & (index < len(y) - 1)]
    left, centre, right = smooth[inner - 1], smooth[inner], smooth[inner + 1]
    curvature = left - 2 * centre + right
    offset = np.where(curvature < 0, 0.5 * (left - right) / np.where(curvature < 0, curvature, -1), 0.0)
    positions = x[index].astype(float)
    heights = smooth[index].astype(float)
    mask = np.isin(index, inner)
    positions[mask] += np.clip(offset, -1, 1) * step
    widths = peak_widths(smooth, index, rel_height=0.5)[0] * step
    return MeasuredPeaks(positions, heights / heights.max() * 100, np.maximum(widths, step))


# ------------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Match:
    """A candidate and how well its refined peaks match the measured ones."""

    index: int
    key: Any
    formula: str
    score: float
    """Figure of merit in [0, 1] (module docstring, step 4), times ``1 - Rwp`` of the candidate alone for the best
    ``n_rerank`` candidates."""
    d_scale: float
    """Refined factor ``s`` of the candidate's d-spacings (1.02 = expanded by 2 %)."""
    zero_shift: float
    """Refined 2θ zero shift (degrees)."""
    candidate_fraction: float
    """``f_c``: share of the candidate's square-root intensity observed."""
    measured_fraction: float
    """``f_m``: share of the measured square-root intensity the candidate explains."""
    n_matched: int
    peak_score: float = math.nan
    """The figure of merit of the peaks alone (``score`` also weighs in the profile fit of the candidate alone)."""
    metric: tuple[float, ...] | None = field(default=None, repr=False)
    """Refined reciprocal metric ``(G*11, G*22, G*33, G*12, G*13, G*23)`` (Å^-2) of the candidate's cell, when its
    peaks are indexed (:mod:`.refinement`); the peaks then sit at ``1 / d^2 = h G* h^T`` rather than at ``s d``."""
    texture_direction: tuple[int, int, int] | None = None
    """Refined March-Dollase preferred direction (reciprocal lattice vector, Miller indices); ``None``: untextured."""
    texture_ratio: float = 1.0
    """Refined March-Dollase ``r`` (1 = random powder)."""
    profile_rwp: float = math.nan
    """Weighted-profile R of the candidate alone (scale, lattice and texture refined) against the whole pattern."""

    @property
    def lattice(self) -> tuple[float, float, float, float, float, float] | None:
        """Refined ``(a, b, c, alpha, beta, gamma)`` (Å, degrees) in the setting of the candidate's Miller indices."""
        if self.metric is None:
            return None
        return lattice_parameters(_metric_matrix(self.metric))

    def as_dict(self) -> dict[str, Any]:
        return {
            'key': self.key, 'formula': self.formula, 'score': self.score, 'peak_score': self.peak_score,
            'd_scale': self.d_scale,
            'zero_shift': self.zero_shift, 'candidate_fraction': self.candidate_fraction,
            'measured_fraction': self.measured_fraction, 'n_matched': self.n_matched,
            'lattice': None if self.lattice is None else list(self.lattice),
            'texture_direction': None if self.texture_direction is None else list(self.texture_direction),
            'texture_ratio': self.texture_ratio,
            'profile_rwp': None if math.isnan(self.profile_rwp) else self.profile_rwp,
        }  # fmt: skip


@dataclass(frozen=True)
class Phase:
    """A phase of the multi-phase fit."""

    match: Match
    scale: float
    """Fitted NNLS coefficient of the phase's profile (peaks on its 0-100 scale)."""
    weight_fraction: float
    intensity_fraction: float
    """Share of the fitted integrated intensity."""

    def as_dict(self) -> dict[str, Any]:
        return {**self.match.as_dict(), 'scale': self.scale, 'weight_fraction': self.weight_fraction,
                'intensity_fraction': self.intensity_fraction}  # fmt: skip


@dataclass
class Identification:
    """What :func:`identify_phases` found, with the processed pattern for plots."""

    matches: list[Match]
    phases: list[Phase]
    rwp: float
    """Weighted-profile residual ``sqrt(sum w (y - f)^2 / sum w y^2)`` of the net pattern, ``w = 1 / counts``
    (Rietveld's R_wp with Poisson weights; 0 = perfect)."""
    weight_basis: str
    """``'Hill-Howard'`` (from the structures) or ``'intensity'`` (integrated intensity shares)."""
    unexplained: MeasuredPeaks
    peaks: MeasuredPeaks
    two_theta: np.ndarray
    measured: np.ndarray
    background: np.ndarray
    net: np.ndarray
    """Background-free (and K-alpha2-stripped) pattern the peaks were searched on; the profile fit (:attr:`fitted`)
    models a doublet instead and is fitted to ``measured - background``."""
    fitted: np.ndarray
    phase_profiles: list[np.ndarray]
    phase_sticks: list[tuple[np.ndarray, np.ndarray]]
    """Refined peak positions (2θ, degrees) and intensities (0-100) of each phase."""
    wavelength: float
    n_candidates: int
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            'matches': [m.as_dict() for m in self.matches],
            'phases': [p.as_dict() for p in self.phases],
            'weight_basis': self.weight_basis,
            'rwp': self.rwp,
            'unexplained_peaks': [
                {'two_theta': float(t), 'intensity': float(i)}
                for t, i in zip(self.unexplained.two_theta, self.unexplained.intensity, strict=True)
            ],
            'n_peaks': len(self.peaks),
            'n_candidates': self.n_candidates,
            'wavelength': self.wavelength,
            'warnings': list(self.warnings),
        }


# ------------------------------------------------------------------------------------------ matching
def _two_theta(d: np.ndarray, wavelength: float) -> np.ndarray:
    """2θ (degrees) of spacings ``d`` (Å); NaN where ``λ / 2d > 1``."""
    sine = wavelength / (2 * d)
    with np.errstate(invalid='ignore'):
        return np.where(sine < 1, np.degrees(2 * np.arcsin(np.minimum(sine, 1))), np.nan)


def _screen(
    refs: ReferencePeaks, u_obs: np.ndarray, sigma: np.ndarray, n_obs: int, u_range: tuple[float, float],
    max_strain: float, min_intensity: float, among: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Screening score and best ``ln s`` of every candidate (module docstring, step 4)."""
    arrays = refs.screening_arrays(min_intensity)
    u, w, owner = arrays['u'], arrays['w'], arrays['owner']
    n = len(refs)
    inside = (u > u_range[0]) & (u < u_range[1])
    if among is not None:
        inside &= np.isin(owner, among)
    u, w, owner = u[inside], w[inside], owner[inside]
    best = np.full(n, -1.0)
    best_shift = np.zeros(n)
    if not len(u):
        return best, best_shift
    # owner is sorted (peaks are stored candidate by candidate): sum each candidate's run with reduceat
    present, starts = np.unique(owner, return_index=True)
    total = np.add.reduceat(w, starts)
    delta = _SCREEN_SIGMA_FLOOR
    lo, hi = u_range[0] - 0.1, u_range[1] + 0.1  # wider than any shift: every index stays on the grid
    grid = np.arange(lo, hi + delta / 4, delta / 4)
    presence = np.zeros(len(grid), dtype=np.float32)
    for centre, s in zip(u_obs, sigma, strict=True):
        window = (grid > centre - 4 * s) & (grid < centre + 4 * s)
        presence[window] = np.maximum(presence[window], np.exp(-0.5 * ((grid[window] - centre) / s) ** 2))
    limit = math.log1p(max_strain)
    shifts = np.arange(-limit, limit + delta / 2, delta)
    scale = 4 / delta
    base = (u - lo) * scale
    w32 = w.astype(np.float32)
    inverse_total = np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)
    best_present = np.full(len(present), -1.0)
    shift_present = np.zeros(len(present))
    for shift in shifts:
        hit = presence[np.rint(base + shift * scale).astype(np.intp)]
        covered = np.add.reduceat(w32 * hit, starts)
        count = np.add.reduceat(hit, starts)
        score = covered * inverse_total * np.sqrt(np.minimum(1.0, count / max(n_obs, 1)))
        better = score > best_present
        best_present[better], shift_present[better] = score[better], shift
    best[present], best_shift[present] = best_present, shift_present
    return best, best_shift


def _match_pairs(calc: np.ndarray, observed: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """Index of the nearest observed peak of each calculated one (``-1`` beyond its tolerance)."""
    if not len(observed):
        return np.full(len(calc), -1)
    right = np.clip(np.searchsorted(observed, calc), 0, len(observed) - 1)
    left = np.clip(right - 1, 0, len(observed) - 1)
    nearest = np.where(np.abs(observed[left] - calc) <= np.abs(observed[right] - calc), left, right)
    return np.where(np.abs(observed[nearest] - calc) <= tol, nearest, -1)


def _refine(
    d: np.ndarray, intensity: np.ndarray, shift: float, peaks: MeasuredPeaks, wavelength: float,
    two_theta_range: tuple[float, float], max_strain: float, max_zero_shift: float, tolerance: float,
    min_intensity: float,
) -> tuple[float, float, float, float, float, int, np.ndarray, np.ndarray]:  # fmt: skip
    """Refine ``(s, z)`` of one candidate on matched pairs; return its figure of merit and parts."""
    keep = intensity >= min_intensity
    d, intensity = d[keep], intensity[keep]
    observed = peaks.two_theta
    obs_weight = np.sqrt(peaks.intensity)
    log_s, zero = float(shift), 0.0
    limit = math.log1p(max_strain)
    for tol in (3 * tolerance, 2 * tolerance, 1.5 * tolerance, tolerance, tolerance):
        calc = _two_theta(d * math.exp(log_s), wavelength) + zero
        ok = np.isfinite(calc) & (calc > two_theta_range[0]) & (calc < two_theta_range[1])
        pair = np.full(len(calc), -1)
        pair[ok] = _match_pairs(calc[ok], observed, np.full(int(ok.sum()), tol))
        matched = pair >= 0
        if matched.sum() < 2:
            break
        theta = np.radians(calc[matched]) / 2
        # 2θ = 2 asin(λ / 2 s d) + z:  ∂2θ/∂ln s = -2 tan θ (rad -> degrees), ∂2θ/∂z = 1
        design = np.column_stack([-2 * np.tan(theta) / _RAD, np.ones(int(matched.sum()))])
        residual = observed[pair[matched]] - calc[matched]
        weight = np.sqrt(intensity[matched])
        step, *_ = np.linalg.lstsq(design * weight[:, None], residual * weight, rcond=None)
        log_s = float(np.clip(log_s + step[0], -limit, limit))
        zero = float(np.clip(zero + step[1], -max_zero_shift, max_zero_shift))
    calc = _two_theta(d * math.exp(log_s), wavelength) + zero
    ok = np.isfinite(calc) & (calc > two_theta_range[0]) & (calc < two_theta_range[1])
    calc_ok, intensity_ok = calc[ok], intensity[ok]
    pair = _match_pairs(calc_ok, observed, np.full(len(calc_ok), tolerance))
    matched = pair >= 0
    weight = np.sqrt(intensity_ok)
    f_c = float(weight[matched].sum() / weight.sum()) if weight.sum() > 0 else 0.0
    explained = np.zeros(len(observed), dtype=bool)
    explained[pair[matched]] = True
    f_m = float(obs_weight[explained].sum() / obs_weight.sum()) if obs_weight.sum() > 0 else 0.0
    error = np.abs(observed[pair[matched]] - calc_ok[matched]) if matched.any() else np.zeros(0)
    quality = 1 - 0.5 * float(np.average(error, weights=weight[matched]) / tolerance) if matched.any() else 0.0
    score = f_c * math.sqrt(f_m) * quality
    return score, math.exp(log_s), zero, f_c, f_m, int(matched.sum()), calc_ok, intensity_ok


def _lp(two_theta: np.ndarray) -> np.ndarray:
    theta = np.radians(two_theta) / 2
    return (1 + np.cos(2 * theta) ** 2) / (np.sin(theta) ** 2 * np.cos(theta))


def _zmv_over_imax(structure: Any, refs: ReferencePeaks) -> float:
    """``M V / I_max`` (amu Å^3 per absolute intensity unit) of a candidate, for Hill-Howard weight fractions."""
    from ..structures import to_pymatgen

    structure = to_pymatgen(structure)
    low = math.degrees(2 * math.asin(min(1.0, refs.wavelength / (2 * refs.d_max))))
    high = math.degrees(2 * math.asin(min(1.0, refs.wavelength / (2 * refs.d_min))))
    simulator = XrdSimulator(refs.wavelength, (max(low, 0.5), min(high, 179.5)))
    _, _, two_theta, intensity = simulator.reflections(structure)
    if not len(intensity):
        return math.nan
    keys = np.round(two_theta / 1e-5).astype(np.int64)
    _, group = np.unique(keys, return_inverse=True)
    merged = np.bincount(group.reshape(-1), weights=intensity)
    mass = float(structure.composition.weight)
    return mass * float(structure.volume) / float(merged.max())


# ------------------------------------------------------------------------------------------- driver
def identify_phases(
    two_theta: Any,
    intensity: Any,
    references: ReferencePeaks,
    *,
    wavelength: str | float = 'CuKa',
    strip_doublet: bool | None = None,
    top: int = 5,
    max_phases: int = 3,
    max_strain: float = 0.04,
    max_zero_shift: float = 0.15,
    tolerance: float | None = None,
    min_intensity: float = 1.0,
    min_snr: float = 4.0,
    background_window: float = 1.5,
    n_refine: int = 60,
    n_rerank: int = 10,
    min_improvement: float = 0.05,
    min_weight_fraction: float = 0.02,
    candidate_filter: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Identification:
    """Identify the phases of a measured powder pattern among ``references`` (see the module docstring).

    :param two_theta: 2θ (degrees, increasing) and :param intensity: counts of the measurement.
    :param wavelength: of the measurement: an anode (``'CuKa'``, ``'MoKa1'``, ...) or Å.
    :param strip_doublet: remove K-alpha2 first; default: for an anode name ending in ``Ka`` (a laboratory tube
        without monochromator). Positions are then matched at K-alpha1.
    :param max_strain: largest ``|s - 1|`` of the refined d-spacing scale; :param max_zero_shift: largest zero
        shift (degrees).
    :param tolerance: 2θ tolerance (degrees) of a peak match after refinement; default ``max(0.06, FWHM / 2)``
        from the measured widths.
    :param min_intensity: candidate peaks weaker than this (0-100) are ignored (missing weak peaks are normal).
    :param n_refine: candidates refined after the screening; :param n_rerank: of those, the best re-ranked with the
        profile fit of each alone.
    :param candidate_filter: optional callable taking the candidates' screening scores ``(N,)`` and returning a
        boolean mask or indices of candidates to refine as well (e.g. a pre-filter by learned embeddings); the
        classical top ``n_refine`` are always refined too, so a filter can only add candidates.
    :raises ValueError: for an empty or flat pattern, too few points, or a 2θ range the candidates' simulated peaks
        do not cover.
    """
    x = np.asarray(two_theta, dtype=float)
    y = np.asarray(intensity, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f'two_theta {x.shape} and intensity {y.shape} must be 1D arrays of the same length')
    if len(x) < 50:
        raise ValueError(f'the pattern has {len(x)} points; a powder pattern needs at least 50')
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError('the pattern has NaN or infinite values')
    if not (np.diff(x) > 0).all():
        raise ValueError('2θ must increase strictly')
    if not (x[0] > 0 and x[-1] < 180):
        raise ValueError(f'2θ must lie within (0, 180) degrees, got {x[0]:g}-{x[-1]:g}')
    if not len(references):
        raise ValueError('no candidates to match against')
    anode = wavelength if isinstance(wavelength, str) else None
    lam = resolve_wavelength(wavelength)
    if strip_doublet is None:
        strip_doublet = bool(anode and anode.endswith('Ka') and f'{anode}2' in WAVELENGTHS)
    warnings: list[str] = []
    if strip_doublet:
        if not (anode and anode.endswith('Ka') and f'{anode}2' in WAVELENGTHS):
            raise ValueError(f"stripping K-alpha2 needs an anode name such as 'CuKa', got {wavelength!r}")
        lam1, lam2 = WAVELENGTHS[f'{anode}1'], WAVELENGTHS[f'{anode}2']
        lam = lam1
    # even grid
    step = float(np.median(np.diff(x)))
    if np.ptp(np.diff(x)) > 0.01 * step:
        grid = np.arange(x[0], x[-1] + step / 2, step)
        y = np.interp(grid, x, y)
        x = grid
    if not np.ptp(y) > 0:
        raise ValueError('the pattern is flat (no peaks)')
    # d range covered by the candidates, with the strain margin
    d_pattern = (lam / (2 * math.sin(math.radians(x[-1]) / 2)), lam / (2 * math.sin(math.radians(x[0]) / 2)))
    d_lo = max(d_pattern[0], references.d_min * (1 + max_strain))
    d_hi = min(d_pattern[1], references.d_max * (1 - max_strain))
    t_lo, t_hi = (float(_two_theta(np.array([d_hi]), lam)[0]), float(_two_theta(np.array([d_lo]), lam)[0]))
    if not (d_hi > d_lo and (t_hi - t_lo) >= 0.6 * (x[-1] - x[0])):
        raise ValueError(
            f'the pattern spans 2θ {x[0]:g}-{x[-1]:g}° (d {d_pattern[0]:.3f}-{d_pattern[1]:.3f} Å at {lam:g} Å), '
            f"but the candidates' peaks cover d {references.d_min:.3f}-{references.d_max:.3f} Å only (simulated at "
            f"{references.wavelength:g} Å): simulate them over the pattern's range, or check the wavelength"
        )
    if t_lo > x[0] + 1 or t_hi < x[-1] - 1:
        warnings.append(f"only 2θ {t_lo:.2f}-{t_hi:.2f}° of the pattern is covered by the candidates' peaks")
    # background, K-alpha2, peaks
    window = max(3, round(background_window / step))
    background = snip_background(y, window)
    net = np.maximum(y - background, 0.0)
    fitted_net, doublet = net, None  # the profile fit models the doublet rather than fit the stripped pattern
    if strip_doublet:
        net = strip_kalpha2(x, net, lam1, lam2)
        doublet = (lam2 / lam1, KALPHA2_RATIO)
    peaks = find_peaks(x, net, min_snr=min_snr)
    if len(peaks) < 1:
        raise ValueError('no peaks found in the pattern (empty, flat or pure noise?)')
    inside = (peaks.two_theta >= t_lo) & (peaks.two_theta <= t_hi)
    peaks = MeasuredPeaks(peaks.two_theta[inside], peaks.intensity[inside], peaks.fwhm[inside])
    if len(peaks) < 1:
        raise ValueError(f'no peaks within 2θ {t_lo:.2f}-{t_hi:.2f}°, the range the candidates cover')
    fwhm = (
        float(np.median(peaks.fwhm[peaks.intensity >= 5]))
        if (peaks.intensity >= 5).any()
        else float(np.median(peaks.fwhm))
    )
    tol = float(tolerance) if tolerance is not None else max(0.06, 0.5 * fwhm)
    # intensities of the references at this wavelength (Lorentz-polarisation factor of the new angles)
    refs = references
    scale_intensity = not math.isclose(refs.wavelength, lam, rel_tol=1e-4)
    context = _Context(refs, peaks, lam, (t_lo, t_hi), max_strain, max_zero_shift, tol, min_intensity, scale_intensity)

    ranked = context.search(peaks, n_refine, candidate_filter)
    if not ranked:
        raise ValueError("no candidate has peaks in the pattern's range")
    # multi-phase fit
    fit = _PhaseFit(context, x, fitted_net, y, doublet)
    fit.tune_shape(ranked[0])
    # re-rank the best by the profile: figure of merit times (1 - Rwp of the candidate alone, lattice, texture and
    # scale refined)
    head = []
    for m in ranked[:n_rerank]:
        refined = fit.refine(m)
        head.append(replace(refined, score=float(m.score * (1 - refined.profile_rwp))))
    ranked = sorted(head, key=lambda m: (-m.score, m.index)) + ranked[n_rerank:]
    matches = ranked[:top]
    if matches[0].score < 0.15:
        warnings.append(
            f'no candidate explains the pattern well (best figure of merit {matches[0].score:.2f}): is the phase among '
            'the candidates, and is the wavelength right?'
        )
    selected = _select_phases(context, fit, ranked, peaks, n_refine, top, max_phases, min_improvement)
    coefficients, profiles, _ = fit.solve(selected)
    keep = [i for i, c in enumerate(coefficients) if c > 0]
    selected = [selected[i] for i in keep]
    coefficients = coefficients[keep]
    profiles = [profiles[i] for i in keep]
    areas = np.array([c * p.sum() for c, p in zip(coefficients, profiles, strict=True)])
    intensity_fractions = areas / areas.sum() if areas.sum() > 0 else areas
    zmv = np.array([_zmv_safe(refs, m.index) for m in selected])
    if len(selected) and np.isfinite(zmv).all():
        mass = coefficients * zmv
        weights, basis = mass / mass.sum(), 'Hill-Howard'
    else:
        weights, basis = intensity_fractions, 'intensity'
    phases = [
        Phase(m, float(c), float(w), float(f))
        for m, c, w, f in zip(selected, coefficients, weights, intensity_fractions, strict=True)
    ]
    # drop phases below the smallest weight fraction (refit without them)
    if len(phases) > 1 and any(p.weight_fraction < min_weight_fraction for p in phases):
        kept = [p.match for p in phases if p.weight_fraction >= min_weight_fraction]
        return _finish(context, fit, kept, x, y, background, net, peaks, matches, warnings, refs)
    return _result(context, fit, phases, basis, x, y, background, net, peaks, matches, warnings, refs)


def _select_phases(context: _Context, fit: _PhaseFit, ranked: list[Match], peaks: MeasuredPeaks, n_refine: int,
                   top: int, max_phases: int, min_improvement: float) -> list[Match]:  # fmt: skip
    """Greedy multi-phase selection (module docstring, step 5), each phase's texture refined in the mixture."""
    selected: list[Match] = []
    refined: dict[int, Match] = {}

    def alone(m: Match) -> Match:  # lattice and texture refined against the whole pattern, once per candidate
        if m.index not in refined:
            refined[m.index] = m if not math.isnan(m.profile_rwp) else fit.refine(m)
        return refined[m.index]

    pool = {m.index: m for m in ranked[: max(15, top)]}
    residual_rwp = 1.0
    for _ in range(max_phases):
        unexplained = fit.unexplained(peaks, selected)
        if selected and not (unexplained.intensity >= 3).any():
            break
        if selected and len(unexplained):
            for m in context.search(unexplained, 30, None, restrict_observed=unexplained)[:10]:
                pool.setdefault(m.index, m)
            by_coverage = sorted(ranked[:n_refine], key=lambda m: -m.peak_score * fit.coverage(m, unexplained))
            for m in by_coverage[:10]:
                pool.setdefault(m.index, m)
        rest = fit.net - fit.solve(selected)[2] if selected else None
        best: tuple[float, Match] | None = None
        for m in pool.values():
            if any(m.index == s.index for s in selected):
                continue
            if selected and not fit.explains_new(m, unexplained):
                continue
            candidate = alone(m) if rest is None else fit.refine(alone(m), target=rest)
            rwp = fit.rwp([*selected, candidate])
            if best is None or rwp < best[0] or (math.isclose(rwp, best[0]) and m.score > best[1].score):
                best = (rwp, candidate)
        if best is None:
            break
        if selected and best[0] > residual_rwp * (1 - min_improvement):
            break
        selected.append(best[1])
        residual_rwp = best[0]
    # texture of each phase refined against the pattern less the others, twice
    for _ in range(2 if len(selected) > 1 else 0):
        for i in range(len(selected)):
            coefficients, profiles, fitted = fit.solve(selected)
            others = fitted - coefficients[i] * profiles[i]
            selected[i] = fit.refine(selected[i], target=fit.net - others)
    return selected


def _zmv_safe(refs: ReferencePeaks, index: int) -> float:
    try:
        structure = refs.structure_of(index)
        return math.nan if structure is None else _zmv_over_imax(structure, refs)
    except Exception:
        return math.nan


def _finish(context: _Context, fit: _PhaseFit, selected: list[Match], x: np.ndarray, y: np.ndarray,
            background: np.ndarray, net: np.ndarray, peaks: MeasuredPeaks, matches: list[Match],
            warnings: list[str], refs: ReferencePeaks) -> Identification:  # fmt: skip
    coefficients, profiles, _ = fit.solve(selected)
    areas = np.array([c * p.sum() for c, p in zip(coefficients, profiles, strict=True)])
    fractions = areas / areas.sum() if areas.sum() > 0 else areas
    zmv = np.array([_zmv_safe(refs, m.index) for m in selected])
    if len(selected) and np.isfinite(zmv).all() and (coefficients * zmv).sum() > 0:
        weights, basis = coefficients * zmv / (coefficients * zmv).sum(), 'Hill-Howard'
    else:
        weights, basis = fractions, 'intensity'
    phases = [Phase(m, float(c), float(w), float(f))
              for m, c, w, f in zip(selected, coefficients, weights, fractions, strict=True)]  # fmt: skip
    return _result(context, fit, phases, basis, x, y, background, net, peaks, matches, warnings, refs)


def _result(context: _Context, fit: _PhaseFit, phases: list[Phase], basis: str, x: np.ndarray, y: np.ndarray,
            background: np.ndarray, net: np.ndarray, peaks: MeasuredPeaks, matches: list[Match],
            warnings: list[str], refs: ReferencePeaks) -> Identification:  # fmt: skip
    selected = [p.match for p in phases]
    coefficients, profiles, fitted = fit.solve(selected)
    unexplained = fit.unexplained(peaks, selected)
    rwp = fit.rwp(selected)
    sticks = [context.sticks(m) for m in selected]
    return Identification(
        matches=matches, phases=phases, rwp=rwp, weight_basis=basis, unexplained=unexplained, peaks=peaks,
        two_theta=x, measured=y, background=background, net=net, fitted=fitted,
        phase_profiles=[c * p for c, p in zip(coefficients, profiles, strict=True)], phase_sticks=sticks,
        wavelength=context.wavelength, n_candidates=len(refs), warnings=warnings,
    )  # fmt: skip


class _Context:
    """Everything the search needs about one measured pattern."""

    def __init__(self, refs: ReferencePeaks, peaks: MeasuredPeaks, wavelength: float,
                 two_theta_range: tuple[float, float],
                 max_strain: float, max_zero_shift: float, tolerance: float, min_intensity: float,
                 scale_intensity: bool) -> None:  # fmt: skip
        self.refs, self.peaks, self.wavelength, self.range = refs, peaks, wavelength, two_theta_range
        self.max_strain, self.max_zero_shift, self.tolerance = max_strain, max_zero_shift, tolerance
        self.min_intensity, self.scale_intensity = min_intensity, scale_intensity
        d_hi = wavelength / (2 * math.sin(math.radians(two_theta_range[0]) / 2))
        d_lo = wavelength / (2 * math.sin(math.radians(two_theta_range[1]) / 2))
        self.u_range = (math.log(d_lo), math.log(d_hi))
        self._geometry: dict[int, CandidateGeometry | None] = {}

    def geometry(self, index: int) -> CandidateGeometry | None:
        """The indexed peaks of candidate ``index`` (:class:`.refinement.CandidateGeometry`), when it has hkls."""
        if index not in self._geometry:
            try:
                hkls = self.refs.hkls_of(index)
                d, _ = self.refs.peaks_of(index)
                self._geometry[index] = None if hkls is None else CandidateGeometry.from_peaks(d, hkls)
            except Exception:  # unusable indices: the candidate is refined without lattice and texture
                self._geometry[index] = None
        return self._geometry[index]

    def positions(self, match: Match) -> np.ndarray:
        """2θ (degrees, NaN beyond 180°) of every peak of the candidate of ``match``."""
        geometry = self.geometry(match.index) if match.metric is not None else None
        if geometry is not None and match.metric is not None:
            return geometry.two_theta(_metric_matrix(match.metric), self.wavelength, match.zero_shift)
        d, _ = self.candidate(match.index)
        return _two_theta(d * match.d_scale, self.wavelength) + match.zero_shift

    def candidate(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        d, intensity = self.refs.peaks_of(index)
        if self.scale_intensity and len(d):
            old, new = _two_theta(d, self.refs.wavelength), _two_theta(d, self.wavelength)
            ok = np.isfinite(old) & np.isfinite(new)
            intensity = np.where(ok, intensity * _lp(np.where(ok, new, 90)) / _lp(np.where(ok, old, 90)), 0.0)
        return d, intensity

    def search(self, peaks: MeasuredPeaks, n_refine: int, candidate_filter: Callable[[np.ndarray], np.ndarray] | None,
               restrict_observed: MeasuredPeaks | None = None) -> list[Match]:  # fmt: skip
        theta = np.radians(peaks.two_theta) / 2
        u_obs = np.log(self.wavelength / (2 * np.sin(theta)))
        # position tolerance in ln d: |d ln d| = cot θ dθ, floored for the screening's step
        sigma = np.maximum(
            0.5 * _RAD * (self.tolerance + 0.5 * self.max_zero_shift) / np.tan(theta) / 2, _SCREEN_SIGMA_FLOOR
        )
        scores, shifts = _screen(self.refs, u_obs, sigma, len(peaks), self.u_range, self.max_strain,
                                 self.min_intensity, None)  # fmt: skip
        order = np.argsort(-scores, kind='stable')[:n_refine]
        chosen = list(order[scores[order] > 0])
        if candidate_filter is not None:
            extra = np.asarray(candidate_filter(scores))
            extra = np.flatnonzero(extra) if extra.dtype == bool else extra.astype(np.int64)
            chosen += [int(i) for i in extra if int(i) not in set(chosen)]
        observed = restrict_observed if restrict_observed is not None else self.peaks
        out = [self.rescore(int(i), math.exp(shifts[i]), 0.0, observed) for i in chosen]
        return sorted(out, key=lambda m: (-m.score, m.index))

    def rescore(self, index: int, d_scale: float, zero_shift: float, observed: MeasuredPeaks | None = None) -> Match:
        d, intensity = self.candidate(index)
        observed = observed if observed is not None else self.peaks
        score, s, z, f_c, f_m, n_matched, _, _ = _refine(
            d, intensity, math.log(d_scale), observed, self.wavelength, self.range, self.max_strain,
            self.max_zero_shift, self.tolerance, self.min_intensity,
        )  # fmt: skip
        if observed is not self.peaks:  # found on the unexplained peaks: score it on the whole pattern
            score, s, z, f_c, f_m, n_matched, _, _ = _refine(
                d, intensity, math.log(s), self.peaks, self.wavelength, self.range, self.max_strain,
                self.max_zero_shift, self.tolerance, self.min_intensity,
            )  # fmt: skip
        return Match(index, self.refs.keys[index], self.refs.formulas[index], float(score), float(s), float(z),
                     float(f_c), float(f_m), n_matched, float(score))  # fmt: skip

    def sticks(self, match: Match) -> tuple[np.ndarray, np.ndarray]:
        _, intensity = self.candidate(match.index)
        calc = self.positions(match)
        ok = np.isfinite(calc) & (calc >= self.range[0]) & (calc <= self.range[1])
        return calc[ok], intensity[ok]


_SHAPE_EVALUATIONS = 18
"""Most profile evaluations spent refining the peak widths and shape on the best candidate."""
_SHAPE_WINDOW = 6.0
"""Half width (FWHM) of the peak profiles while the shape is refined (12 otherwise)."""
_PEAK_HEIGHT = 0.5 * 0.9394372786996513 + 0.5 * 2 / math.pi
"""Height times FWHM of a unit-area pseudo-Voigt peak with eta 0.5."""


def _caglioti(peaks: MeasuredPeaks, fwhm: float) -> tuple[float, float]:
    """``(U, W)`` of ``FWHM^2 = W + U tan^2 θ`` fitted to the measured widths of the strong peaks.

    Robust: peaks broadened by a neighbour are dropped; ``(0, fwhm^2)`` when the peaks do not determine it.
    """
    strong = peaks.intensity >= 5
    t2 = np.tan(np.radians(peaks.two_theta[strong]) / 2) ** 2
    h2 = peaks.fwhm[strong] ** 2
    keep = np.ones(len(t2), dtype=bool)
    params = (0.0, fwhm**2)
    for _ in range(3):
        if keep.sum() < 4 or np.ptp(t2[keep]) < 0.05:
            return params
        design = np.column_stack([t2[keep], np.ones(int(keep.sum()))])
        (u, w), *_ = np.linalg.lstsq(design, h2[keep], rcond=None)
        if w <= 0:
            u, w = 0.0, float(np.median(h2[keep]))
        params = (max(float(u), 0.0), float(w))
        model = params[1] + params[0] * t2
        keep = h2 <= 1.5**2 * model
    return params


def _metric_matrix(metric: tuple[float, ...]) -> np.ndarray:
    g11, g22, g33, g12, g13, g23 = metric
    return np.array([[g11, g12, g13], [g12, g22, g23], [g13, g23, g33]])


class _PhaseFit:
    """Profiles of refined candidates on the measured grid, their refinement and NNLS fit to the net pattern."""

    def __init__(self, context: _Context, grid: np.ndarray, net: np.ndarray, gross: np.ndarray,
                 doublet: tuple[float, float] | None = None) -> None:  # fmt: skip
        """Fit profiles to ``net``, the background-free pattern, with Poisson weights from ``gross`` (counts).

        :param doublet: ``(λ2 / λ1, I2 / I1)`` when ``net`` still has the K-alpha2 lines (each peak is then rendered
            with its companion).
        """
        self.context, self.grid, self.net, self.doublet = context, grid, net, doublet
        strong = context.peaks.intensity >= 5
        self.fwhm = float(np.median(context.peaks.fwhm[strong])) if strong.any() else float(
            np.median(context.peaks.fwhm))  # fmt: skip
        self.width_params = _caglioti(context.peaks, self.fwhm)
        self.eta = 0.5
        # Rietveld weights 1 / sigma^2 = 1 / counts (Poisson), floored at 1 % of the maximum for empty regions
        floor = max(float(gross.max()) * 0.01, 1e-12)
        self.sqrt_weight = 1 / np.sqrt(np.maximum(gross, floor))
        self.weight = self.sqrt_weight**2
        self.weighted_net = net * self.sqrt_weight
        self.total = float((self.weighted_net**2).sum())
        self._bases: dict[tuple[Any, ...], tuple[ProfileBasis, np.ndarray]] = {}
        self._profiles: dict[tuple[Any, ...], np.ndarray] = {}

    def widths(self, two_theta: np.ndarray) -> np.ndarray:
        """FWHM (degrees) at ``two_theta``: ``sqrt(W + U tan^2 θ)``.

        Caglioti, Paoletti & Ricci, Nucl. Instrum. 3, 223 (1958), without the ``V tan θ`` term.
        """
        u, w = self.width_params
        return np.sqrt(w + u * np.tan(np.radians(two_theta) / 2) ** 2)

    def set_shape(self, width_params: tuple[float, float], eta: float) -> None:
        """Use other peak widths and Lorentzian share for every profile from now on."""
        self.width_params, self.eta = width_params, eta
        self._bases.clear()
        self._profiles.clear()

    def tune_shape(self, match: Match) -> None:
        """Refine the widths (``U``, ``W``) and the Lorentzian share on ``match`` alone.

        Its lattice and texture are refined first, then kept; Nelder-Mead on the weighted residual, from the widths
        of the measured peaks.
        """
        from scipy.optimize import minimize

        refined = self.refine(match)
        weighted = self.net * self.weight

        def residual(params: np.ndarray) -> float:
            log_u, log_w, eta = (float(v) for v in params)
            if not 0 <= eta <= 1 or log_w > 0 or log_u > 0:
                return 2.0
            self.set_shape((math.exp(log_u), math.exp(log_w)), eta)
            basis, areas = self.basis(refined, _SHAPE_WINDOW)
            reduction, _ = _score((areas * self.texture_factors(refined, basis.peaks))[None, :],
                                  basis.projection(weighted), basis.gram)  # fmt: skip
            return 1 - float(reduction[0]) / self.total if self.total > 0 else 0.0

        u0, w0 = self.width_params
        start = np.array([math.log(max(u0, 1e-4)), math.log(max(w0, 1e-6)), self.eta])
        simplex = start + np.array([[0, 0, 0], [1, 0, 0], [0, 0.4, 0], [0, 0, 0.2]])
        options = {'maxfev': _SHAPE_EVALUATIONS, 'xatol': 0.02, 'fatol': 1e-4, 'initial_simplex': simplex}
        best = minimize(residual, start, method='Nelder-Mead', options=options)
        params = best.x if best.fun < residual(start) else start
        self.set_shape((math.exp(params[0]), math.exp(params[1])), float(params[2]))

    def basis(self, match: Match, window: float = 12.0) -> tuple[ProfileBasis, np.ndarray]:
        """Unit-area profiles of the candidate's peaks at the match's positions, and their untextured areas.

        :param window: half width of each peak's profile, in FWHM.
        """
        key = (match.index, match.d_scale, match.zero_shift, match.metric, window)
        if key not in self._bases:
            two_theta = self.context.positions(match)
            _, intensity = self.context.candidate(match.index)
            low, high = self.context.range
            with np.errstate(invalid='ignore'):
                keep = np.flatnonzero(np.isfinite(two_theta) & (two_theta >= low) & (two_theta <= high)
                                      & (intensity > 0.05))  # fmt: skip
            centres = two_theta[keep]
            companion = None
            if self.doublet is not None:
                sine = np.sin(np.radians(centres - match.zero_shift) / 2) * self.doublet[0]
                with np.errstate(invalid='ignore'):
                    second = np.where(sine < 1, np.degrees(2 * np.arcsin(np.minimum(sine, 1))) + match.zero_shift,
                                      np.nan)  # fmt: skip
                second[second > self.grid[-1]] = np.nan
                companion = (second, self.doublet[1])
            widths = self.widths(centres)
            basis = ProfileBasis.render(self.grid, centres, widths, self.weight, keep, eta=self.eta,
                                        companion=companion, window=window)  # fmt: skip
            # areas of peaks as high as their intensity (0-100) at the median width, so that a scale of 1 reproduces
            # the sticks
            self._bases[key] = (basis, intensity[keep] * self.fwhm / _PEAK_HEIGHT)
        return self._bases[key]

    def texture_factors(self, match: Match, peaks: np.ndarray) -> np.ndarray:
        """March-Dollase factors of the rendered ``peaks`` of ``match`` (1 without texture)."""
        geometry = self.context.geometry(match.index)
        if match.texture_direction is None or geometry is None:
            return np.ones(len(peaks))
        row = np.flatnonzero((geometry.directions == np.asarray(match.texture_direction)).all(axis=1))
        if not len(row):
            return np.ones(len(peaks))
        return geometry.texture_factors(int(row[0]), match.texture_ratio)[peaks]

    def profile(self, match: Match) -> np.ndarray:
        key = (match.index, match.d_scale, match.zero_shift, match.metric, match.texture_direction,
               match.texture_ratio)  # fmt: skip
        if key not in self._profiles:
            basis, areas = self.basis(match)
            self._profiles[key] = basis.profile(areas * self.texture_factors(match, basis.peaks))
        return self._profiles[key]

    def refine(self, match: Match, target: np.ndarray | None = None) -> Match:
        """``match`` with its lattice refined on the measured peaks (once) and its texture against ``target``.

        :param target: the profile the candidate alone should explain (default: the net pattern; in a mixture the
            net pattern less the other phases); ``profile_rwp`` is set when it is the net pattern.
        """
        geometry = self.context.geometry(match.index)
        if geometry is not None and match.metric is None:
            match = self._refine_lattice(match, geometry)
        basis, areas = self.basis(match)
        weighted = (self.net if target is None else target) * self.weight
        texture = fit_texture(basis, areas, basis.projection(weighted), geometry)
        changes: dict[str, Any] = {'texture_direction': texture.direction, 'texture_ratio': texture.ratio}
        if target is None:
            changes['profile_rwp'] = math.sqrt(max(0.0, 1 - texture.reduction / self.total)) if self.total > 0 else 0.0
        return replace(match, **changes)

    def _refine_lattice(self, match: Match, geometry: CandidateGeometry) -> Match:
        """Metric and zero shift of the candidate on its matched peaks, matched again once refined."""
        context = self.context
        _, intensity = context.candidate(match.index)
        observed_all = context.peaks.two_theta
        low, high = context.range
        refined = match
        for _ in range(2):
            two_theta = context.positions(refined)
            with np.errstate(invalid='ignore'):
                keep = np.flatnonzero(np.isfinite(two_theta) & (two_theta > low) & (two_theta < high)
                                      & (intensity >= context.min_intensity))  # fmt: skip
            pair = _match_pairs(two_theta[keep], observed_all, np.full(len(keep), context.tolerance))
            matched = pair >= 0
            observed = np.where(matched, observed_all[np.maximum(pair, 0)], np.nan)
            metric, zero = geometry.refine_metric(
                keep, observed, matched, intensity[keep], context.wavelength, match.d_scale, match.zero_shift,
                context.max_zero_shift, context.max_strain,
            )  # fmt: skip
            refined = replace(
                match, metric=(metric[0, 0], metric[1, 1], metric[2, 2], metric[0, 1], metric[0, 2], metric[1, 2]),
                zero_shift=zero,
            )  # fmt: skip
        return refined

    def solve(self, selected: list[Match]) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        from scipy.optimize import nnls

        if not selected:
            return np.zeros(0), [], np.zeros_like(self.grid)
        profiles = [self.profile(m) for m in selected]
        design = np.column_stack(profiles)
        coefficients, _ = nnls(design * self.sqrt_weight[:, None], self.weighted_net)
        return coefficients, profiles, design @ coefficients

    def rwp(self, selected: list[Match]) -> float:
        """Weighted-profile R factor ``sqrt(sum w (y - f)^2 / sum w y^2)``, ``w = 1 / counts``, of the net pattern."""
        _, _, fitted = self.solve(selected)
        total = float((self.weighted_net**2).sum())
        residual = float((((self.net - fitted) * self.sqrt_weight) ** 2).sum())
        return math.sqrt(residual / total) if total > 0 else 0.0

    def unexplained(self, peaks: MeasuredPeaks, selected: list[Match]) -> MeasuredPeaks:
        """Measured peaks of which the fit of the selected phases reaches less than :data:`_EXPLAINED` of the height.

        Judged on the fitted profile rather than on peak positions, so that a dense pattern does not "explain" a
        peak by a weak line nearby; texture rarely scales a peak by more than ``1 / _EXPLAINED``.
        """
        if not selected:
            return peaks
        _, _, fitted = self.solve(selected)
        measured = np.interp(peaks.two_theta, self.grid, self.net)
        model = np.interp(peaks.two_theta, self.grid, fitted)
        rest = model < _EXPLAINED * measured
        return MeasuredPeaks(peaks.two_theta[rest], peaks.intensity[rest], peaks.fwhm[rest])

    def coverage(self, match: Match, unexplained: MeasuredPeaks) -> float:
        """Share of the square-root intensity of the ``unexplained`` peaks that ``match`` has a line (>= 1) at."""
        if not len(unexplained):
            return 0.0
        two_theta, intensity = self.context.sticks(match)
        calc = np.sort(two_theta[intensity >= 1])
        if not len(calc):
            return 0.0
        right = np.clip(np.searchsorted(calc, unexplained.two_theta), 0, len(calc) - 1)
        left = np.clip(right - 1, 0, len(calc) - 1)
        gap = np.minimum(np.abs(calc[left] - unexplained.two_theta), np.abs(calc[right] - unexplained.two_theta))
        weight = np.sqrt(unexplained.intensity)
        return float(weight[gap <= self.context.tolerance].sum() / weight.sum())

    def explains_new(self, match: Match, unexplained: MeasuredPeaks) -> bool:
        """Whether ``match`` has a peak at an unexplained measured peak of relative intensity >= 3."""
        strong = unexplained.intensity >= 3
        if not strong.any():
            return False
        two_theta, intensity = self.context.sticks(match)
        calc = two_theta[intensity >= 1]
        if not len(calc):
            return False
        gaps = np.abs(unexplained.two_theta[strong][:, None] - calc[None, :]).min(axis=1)
        return bool((gaps <= self.context.tolerance).any())


# ------------------------------------------------------------------------------------------------ plot
def plot_identification(result: Identification, *, path: str | Path | None = None, title: str = '') -> Figure:
    """Measured pattern, background, fitted sum and each phase's profile, with the phases' peaks as sticks below."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 5.5), layout='constrained')
    ax, sticks_ax = figure.subplots(2, 1, sharex=True, height_ratios=[4, 1])
    x = result.two_theta
    top = float(result.measured.max()) or 1.0
    ax.plot(x, result.measured / top * 100, color='black', linewidth=0.8, label='measured')
    stripped = result.net + result.background
    if np.abs(stripped - np.maximum(result.measured, result.background)).max() > 0.02 * top:  # K-alpha2 was removed
        ax.plot(
            x, stripped / top * 100, color='tab:cyan', linewidth=0.6, alpha=0.8, label='measured, K-alpha2 stripped'
        )
    ax.plot(x, result.background / top * 100, color='grey', linewidth=0.8, linestyle='--', label='background')
    ax.plot(x, (result.fitted + result.background) / top * 100, color='tab:red', linewidth=0.9, label='fit')
    colours = ['tab:blue', 'tab:green', 'tab:orange', 'tab:purple', 'tab:brown']
    for i, (phase, profile) in enumerate(zip(result.phases, result.phase_profiles, strict=True)):
        colour = colours[i % len(colours)]
        label = f'{phase.match.formula or phase.match.key} ({phase.weight_fraction:.0%})'
        ax.plot(x, profile / top * 100, color=colour, linewidth=0.8, alpha=0.8, label=label)
        positions, intensity = result.phase_sticks[i]
        sticks_ax.vlines(
            positions, i, i + 0.9 * intensity / max(float(intensity.max()), 1e-12), colors=colour, linewidth=1
        )
    if len(result.unexplained):
        marks = np.interp(result.unexplained.two_theta, x, result.measured) / top * 100 + 3
        ax.plot(result.unexplained.two_theta, marks,
                'v', color='magenta', markersize=4, label='unexplained')  # fmt: skip
    ax.set_ylabel('Intensity (% of max)')
    ax.legend(loc='upper right', frameon=False, fontsize=8)
    ax.set_title(title or f'Rwp {result.rwp:.3f}')
    sticks_ax.set_yticks([i + 0.45 for i in range(len(result.phases))],
                         [p.match.formula or str(p.match.key) for p in result.phases], fontsize=8)  # fmt: skip
    sticks_ax.set_xlabel('2θ (°)')
    sticks_ax.set_xlim(float(x[0]), float(x[-1]))
    if path is not None:
        figure.savefig(Path(path), dpi=150)
    return figure
