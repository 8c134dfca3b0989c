"""Crystal system and space group of an unknown phase from its powder pattern: indexing, absences, classifier.

:func:`predict_symmetry` takes a measured profile (2θ grid and counts) or a peak list, and

1. for a profile, removes the background, strips K-alpha2 and finds the peaks with the phase-identification
   steps of :mod:`aiida_matembed.core.search.identify` (``snip_background``, ``strip_kalpha2``, ``find_peaks``);
2. indexes the lines (:func:`~.indexing.index_peaks`) and takes the solution of the highest symmetry whose
   figure of merit is at least half the best and at least ``min_score`` (:meth:`~.indexing.IndexingResult.chosen`);
3. ranks the space groups of its lattice system by their systematic absences and the Materials Project prior
   (:func:`~.extinction.rank_space_groups`); the crystal system is that of the most probable group (the
   hexagonal lattice holds the trigonal and the hexagonal groups);
4. uses the learned classifier (``matembed.xrd_symmetry``, Lee et al., Adv. Intell. Syst. 2022) where the indexing
   is ambiguous: when no cell reaches ``min_score`` it decides alone (``route = 'classifier'``); when the chosen
   cell's score is below ``confident_score``, its space-group probabilities multiply those of the absences
   (``route = 'indexing+classifier'``); otherwise the indexing decides (``route = 'indexing'``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any, Literal

import numpy as np

from ..xrd.wavelengths import WAVELENGTHS, resolve_wavelength
from .extinction import GroupScore, crystal_system_of, rank_space_groups
from .indexing import IndexingResult, IndexingSolution, index_peaks
from .lattice import Cell

__all__ = ('SymmetryResult', 'peaks_of_profile', 'predict_symmetry', 'symmetry_of_unexplained')

Route = Literal['indexing', 'indexing+classifier', 'classifier']
SHOULDER_RATIO = 0.05
"""Peaks weaker than this fraction of a neighbour within 3 FWHM of it are dropped (:func:`peaks_of_profile`)."""


@dataclass(frozen=True)
class SymmetryResult:
    """What :func:`predict_symmetry` found."""

    crystal_system: str
    """One of the seven crystal systems."""
    space_group: tuple[int, ...]
    """Most probable space-group numbers (1-230), best first (top ``k``)."""
    space_group_symbols: tuple[str, ...]
    probabilities: tuple[float, ...]
    """Probability of each of :attr:`space_group`."""
    route: Route
    """Which route decided (module docstring)."""
    cell: Cell | None
    """Refined conventional cell of the chosen indexing (``None`` when the classifier decided alone)."""
    lattice_system: str | None
    centring: str | None
    m20: float
    """de Wolff figure of merit of the chosen cell (NaN without one)."""
    f_n: float
    """Smith-Snyder figure of merit (NaN without one)."""
    n_indexed: int
    n_lines: int
    zero_shift: float
    """Refined zero shift (degrees; NaN without a cell)."""
    two_theta: np.ndarray = field(repr=False)
    """Line positions used (degrees, at :attr:`wavelength`)."""
    intensity: np.ndarray = field(repr=False)
    wavelength: float = math.nan
    """Wavelength (Å) of :attr:`two_theta` (K-alpha1 where the doublet was stripped)."""
    solutions: tuple[IndexingSolution, ...] = field(default=(), repr=False)
    """Every indexing solution, best first."""
    groups: tuple[GroupScore, ...] = field(default=(), repr=False)
    """Every ranked space group of the chosen lattice system."""
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe summary."""
        return {
            'crystal_system': self.crystal_system, 'space_group': list(self.space_group),
            'space_group_symbols': list(self.space_group_symbols), 'probabilities': list(self.probabilities),
            'route': self.route, 'cell': self.cell.as_dict() if self.cell else None,
            'lattice_system': self.lattice_system, 'centring': self.centring,
            'm20': None if math.isnan(self.m20) else self.m20, 'f_n': None if math.isnan(self.f_n) else self.f_n,
            'n_indexed': self.n_indexed, 'n_lines': self.n_lines,
            'zero_shift': None if math.isnan(self.zero_shift) else self.zero_shift,
            'wavelength': self.wavelength, 'n_peaks': len(self.two_theta),
            'solutions': [s.as_dict() for s in self.solutions[:5]], 'warnings': list(self.warnings),
        }  # fmt: skip


def _is_profile(x: np.ndarray) -> bool:
    if len(x) < 200:
        return False
    step = np.diff(x)
    return bool((step > 0).all() and np.ptp(step) <= 0.01 * float(np.median(step)) + 1e-12)


def peaks_of_profile(
    two_theta: Any, intensity: Any, *, wavelength: str | float = 'CuKa', strip_doublet: bool | None = None,
    min_snr: float = 4.0, background_window: float = 1.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:  # fmt: skip
    """Peaks of a measured profile on an even grid: ``(two_theta, intensity 0-100, fwhm, wavelength Å)``.

    The background (SNIP), K-alpha2 stripping (default: for an anode name ending in ``Ka``) and peak search are
    those of :func:`~aiida_matembed.core.search.identify.identify_phases`; the returned wavelength is K-alpha1's
    where the doublet was stripped. Shoulders (a peak under :data:`SHOULDER_RATIO` of a neighbour within 3 of the
    neighbour's FWHM: a stripping residue or noise on its tail) are dropped.
    """
    from ..search.identify import find_peaks, snip_background, strip_kalpha2

    x = np.asarray(two_theta, dtype=float)
    y = np.asarray(intensity, dtype=float)
    anode = wavelength if isinstance(wavelength, str) else None
    lam = resolve_wavelength(wavelength)
    doublet = bool(anode and anode.endswith('Ka') and f'{anode}2' in WAVELENGTHS)
    if strip_doublet is None:
        strip_doublet = doublet
    if strip_doublet and not doublet:
        raise ValueError(f"stripping K-alpha2 needs an anode name such as 'CuKa', got {wavelength!r}")
    step = float(np.median(np.diff(x)))
    background = snip_background(y, max(3, round(background_window / step)))
    net = np.maximum(y - background, 0.0)
    if strip_doublet:
        lam1, lam2 = WAVELENGTHS[f'{anode}1'], WAVELENGTHS[f'{anode}2']
        net = strip_kalpha2(x, net, lam1, lam2)
        lam = lam1
    peaks = find_peaks(x, net, min_snr=min_snr)
    px, py, width = peaks.two_theta, peaks.intensity, peaks.fwhm
    if len(px):
        # shoulders: a peak under 5 % of a neighbour within 3 of its FWHM is a residue of the K-alpha2 stripping or
        # counting noise on that neighbour's tail, not a resolved line
        shoulder = np.zeros(len(px), dtype=bool)
        for i in range(len(px)):
            near = np.abs(px - px[i]) <= 3 * max(float(width[i]), 0.02)
            shoulder |= near & (py <= SHOULDER_RATIO * py[i])
        px, py, width = px[~shoulder], py[~shoulder], width[~shoulder]
        py = py / py.max() * 100 if len(py) else py
    return px, py, width, lam


@lru_cache(maxsize=1)
def _classifier() -> Any:
    from ..models import load_model

    return load_model('matembed.xrd_symmetry', device='cpu')


def _classifier_probabilities(two_theta: np.ndarray, intensity: np.ndarray, wavelength: float) -> np.ndarray:
    """``(230,)`` space-group probabilities of the shipped classifier for the lines, drawn on its grid."""
    from ..xrd.profiles import render_profile

    model = _classifier()
    settings = model._xrd()
    grid = model.two_theta_grid
    lam_model = resolve_wavelength(settings.wavelength)
    fwhm = float(settings.fwhm)
    sin = np.sin(np.radians(two_theta) / 2) * lam_model / wavelength
    ok = sin < 1
    positions = np.degrees(2 * np.arcsin(sin[ok]))
    profile = render_profile(grid, positions, intensity[ok], np.full(int(ok.sum()), fwhm))
    if not profile.max() > 0:
        return np.full(230, 1 / 230)
    prediction = model.predict(profile[None] / profile.max())
    return np.asarray(prediction.space_group_probabilities[0], dtype=float)


def predict_symmetry(
    two_theta: Any,
    intensity: Any,
    wavelength: str | float = 'CuKa',
    *,
    top_k: int = 5,
    use_classifier: bool = True,
    min_score: float = 10.0,
    confident_score: float = 20.0,
    tolerance: float | None = None,
    max_zero_shift: float = 0.1,
    strip_doublet: bool | None = None,
) -> SymmetryResult:
    """Crystal system and space group of a single-phase powder pattern (see the module docstring).

    :param two_theta: 2θ (degrees) and :param intensity: counts of a profile on an even grid (at least 200
        points), or the positions and intensities of a peak list.
    :param wavelength: anode name (``'CuKa'``, ``'MoKa1'``, ...) or Å. A profile measured with ``'CuKa'`` has its
        K-alpha2 stripped first; give peak positions of K-alpha1 lines with ``'CuKa1'``.
    :param top_k: space groups returned.
    :param use_classifier: allow the learned classifier where the indexing is ambiguous.
    :param min_score: and :param confident_score: the indexing score (:attr:`~.indexing.IndexingSolution.score`)
        below which a cell is not accepted, and below which the classifier is consulted as well.
    :param tolerance: ``|Δ2θ|`` (degrees) of an indexed line; default ``max(0.03, FWHM / 4)`` for a profile,
        0.03° for a peak list.
    :raises ValueError: for empty input, NaN or infinite values, arrays of different lengths, an unknown
        wavelength, fewer than 6 peaks when the classifier may not decide alone, or ``top_k < 1``.
    """
    x = np.asarray(two_theta, dtype=float)
    y = np.asarray(intensity, dtype=float)
    lam = resolve_wavelength(wavelength)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f'two_theta {x.shape} and intensity {y.shape} must be 1D arrays of the same length')
    if not len(x):
        raise ValueError('the pattern is empty')
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError('the pattern has NaN or infinite values')
    if not (x.min() > 0 and x.max() < 180):
        raise ValueError(f'2θ must lie within (0, 180) degrees, got {x.min():g}-{x.max():g}')
    if not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f'top_k must be a positive integer, got {top_k!r}')
    warnings: list[str] = []
    fwhm: np.ndarray | None = None
    if _is_profile(x):
        if not np.ptp(y) > 0:
            raise ValueError('the pattern is flat (no peaks)')
        px, py, fwhm, lam = peaks_of_profile(x, y, wavelength=wavelength, strip_doublet=strip_doublet)
        strong = fwhm[py >= 5] if (py >= 5).any() else fwhm
        tol = float(tolerance) if tolerance is not None else max(0.03, 0.25 * float(np.median(strong)) if len(strong)
                                                                 else 0.03)  # fmt: skip
    else:
        order = np.argsort(x)
        px, py = x[order], y[order]
        if (py < 0).any():
            raise ValueError('peak intensities must be >= 0')
        tol = float(tolerance) if tolerance is not None else 0.03
    result: IndexingResult | None = None
    chosen: IndexingSolution | None = None
    if len(px) >= 6:
        result = index_peaks(px, py, wavelength=lam, tolerance=tol, max_zero_shift=max_zero_shift)
        chosen = result.chosen(min_score)
    elif not use_classifier:
        raise ValueError(f'indexing needs at least 6 peaks, found {len(px)}')
    else:
        warnings.append(f'only {len(px)} peaks: too few to index, the classifier decides alone')
    if chosen is None and not use_classifier:
        raise ValueError('no cell indexes the lines (figure of merit below min_score); allow the classifier')
    if chosen is None:
        probabilities = _classifier_probabilities(px, py, lam) if len(px) else np.full(230, 1 / 230)
        order = np.argsort(-probabilities, kind='stable')[:top_k]
        numbers = tuple(int(i) + 1 for i in order)
        if result is not None:
            warnings.append('no cell reached the figure of merit threshold: the classifier decided')
        return SymmetryResult(
            crystal_system_of(numbers[0]), numbers, tuple(_symbol(n) for n in numbers),
            tuple(float(probabilities[i]) for i in order), 'classifier', None, None, None, math.nan, math.nan, 0,
            min(20, len(px)), math.nan, px, py, lam, result.solutions if result else (), (), tuple(warnings),
        )  # fmt: skip
    resolution = max(3 * tol, float(np.median(fwhm))) if fwhm is not None and len(fwhm) else None
    groups = rank_space_groups(
        chosen.lattice_system, chosen.g6, chosen.zero_shift, px, py, lam, tolerance=tol, resolution=resolution
    )
    route: Route = 'indexing'
    if use_classifier and chosen.score < confident_score:
        route = 'indexing+classifier'
        learned = _classifier_probabilities(px, py, lam)
        weights = np.array([g.probability * max(float(learned[g.number - 1]), 1e-6) for g in groups])
        weights /= weights.sum()
        groups = sorted(
            (GroupScore(g.number, g.symbol, g.setting, g.log_likelihood, float(w), g.n_violations)
             for g, w in zip(groups, weights, strict=True)), key=lambda g: (-g.probability, g.number),
        )  # fmt: skip
    head = groups[:top_k]
    return SymmetryResult(
        crystal_system_of(head[0].number), tuple(g.number for g in head), tuple(g.symbol for g in head),
        tuple(g.probability for g in head), route, chosen.cell, chosen.lattice_system, chosen.centring, chosen.m20,
        chosen.f_n, chosen.n_indexed, chosen.n_lines, chosen.zero_shift, px, py, lam,
        result.solutions if result else (), tuple(groups), tuple(warnings),
    )  # fmt: skip


def symmetry_of_unexplained(identification: Any, **options: Any) -> SymmetryResult | None:
    """Symmetry of the peaks a phase identification left unexplained (all its peaks if it found no phase).

    :param identification: an :class:`~aiida_matembed.core.search.identify.Identification`.
    :param options: keyword options of :func:`predict_symmetry`.
    :return: ``None`` when fewer than 6 peaks are left.
    """
    peaks = identification.unexplained if identification.phases else identification.peaks
    if len(peaks) < 6:
        return None
    if options.get('tolerance') is None:
        options['tolerance'] = max(0.03, 0.25 * float(np.median(peaks.fwhm)))
    return predict_symmetry(peaks.two_theta, peaks.intensity, identification.wavelength, **options)


@cache
def _symbol(number: int) -> str:
    import spglib

    for hall in range(1, 531):
        kind = spglib.get_spacegroup_type(hall)
        if kind is not None and kind.number == number:
            return str(kind.international_short)
    return str(number)
