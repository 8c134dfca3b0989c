"""Powder patterns on an evenly spaced 2θ grid: every reflection broadened by a peak shape.

Shapes (``x = 2θ - 2θ_k``, ``H`` = full width at half maximum, all in degrees), each of unit area:

* Gaussian ``G(x) = sqrt(4 ln 2 / pi) / H * exp(-4 ln 2 x^2 / H^2)``;
* Lorentzian ``L(x) = 2 / (pi H) / (1 + 4 x^2 / H^2)``;
* pseudo-Voigt ``eta L(x) + (1 - eta) G(x)`` (Thompson, Cox & Hastings, J. Appl. Cryst. 20, 79 (1987)).

The width is constant (``fwhm``), or Caglioti's ``H^2 = U tan^2 θ + V tan θ + W`` (Caglioti, Paoletti &
Ricci, Nucl. Instrum. 3, 223 (1958); U, V, W in deg^2), or Scherrer's crystallite-size broadening
``H = K λ / (L cos θ)`` (radians; K = 0.9, L in Å; Patterson, Phys. Rev. 56, 978 (1939)).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

__all__ = ('PROFILE_SHAPES', 'peak_widths', 'render_profile', 'two_theta_grid')

ProfileShape = Literal['gaussian', 'lorentzian', 'pseudo-voigt']
PROFILE_SHAPES: tuple[str, ...] = ('gaussian', 'lorentzian', 'pseudo-voigt')
SCHERRER_K = 0.9
_BLOCK = 4_000_000
"""Largest (reflections x grid points) block evaluated at once."""


def two_theta_grid(two_theta_range: tuple[float, float], step: float) -> np.ndarray:
    """Evenly spaced grid from min to max 2θ inclusive (10-110° at 0.02° gives 5001 points)."""
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not math.isfinite(step) or step <= 0:
        raise ValueError(f'step must be > 0 degrees, got {step!r}')
    low, high = two_theta_range
    n = round((high - low) / step)
    if n < 1 or abs(n * step - (high - low)) > 1e-6 * step:
        raise ValueError(f'the 2θ range {two_theta_range} is not a whole number of steps of {step}°')
    return low + step * np.arange(n + 1)


def peak_widths(
    two_theta: np.ndarray,
    wavelength: float,
    *,
    fwhm: float | None = None,
    caglioti: tuple[float, float, float] | None = None,
    crystallite_size: float | None = None,
) -> np.ndarray:
    """FWHM (degrees) of each reflection: exactly one of ``fwhm``, ``caglioti`` or ``crystallite_size``."""
    given = [x is not None for x in (fwhm, caglioti, crystallite_size)]
    if sum(given) != 1:
        raise ValueError('give exactly one of fwhm (degrees), caglioti (U, V, W) or crystallite_size (Å)')
    theta = np.radians(two_theta) / 2
    if fwhm is not None:
        if not math.isfinite(fwhm) or fwhm <= 0:
            raise ValueError(f'fwhm must be > 0 degrees, got {fwhm!r}')
        return np.full(len(two_theta), float(fwhm))
    if caglioti is not None:
        u, v, w = (float(x) for x in caglioti)
        squared = u * np.tan(theta) ** 2 + v * np.tan(theta) + w
        if np.any(squared <= 0):
            raise ValueError(f'Caglioti parameters {caglioti} give a non-positive width inside the 2θ range')
        return np.sqrt(squared)
    assert crystallite_size is not None
    if not math.isfinite(crystallite_size) or crystallite_size <= 0:
        raise ValueError(f'crystallite_size must be > 0 Å, got {crystallite_size!r}')
    return np.degrees(SCHERRER_K * wavelength / (crystallite_size * np.cos(theta)))


def render_profile(
    grid: np.ndarray,
    two_theta: np.ndarray,
    intensity: np.ndarray,
    widths: np.ndarray,
    shape: ProfileShape = 'pseudo-voigt',
    eta: float = 0.5,
) -> np.ndarray:
    """Sum of unit-area peaks of the given shape, weighted by ``intensity``, on ``grid`` (degrees)."""
    if shape not in PROFILE_SHAPES:
        raise ValueError(f'shape must be one of {PROFILE_SHAPES}, got {shape!r}')
    if not 0 <= eta <= 1:
        raise ValueError(f'eta must be in [0, 1], got {eta!r}')
    out = np.zeros(len(grid))
    rows = max(1, _BLOCK // max(1, len(grid)))
    for start in range(0, len(two_theta), rows):
        part = slice(start, start + rows)
        x = (grid[None, :] - two_theta[part, None]) / widths[part, None]  # in units of the FWHM
        values = np.zeros_like(x)
        if shape in ('gaussian', 'pseudo-voigt'):
            weight = 1.0 if shape == 'gaussian' else 1.0 - eta
            values += weight * math.sqrt(4 * math.log(2) / math.pi) * np.exp(-4 * math.log(2) * x**2)
        if shape in ('lorentzian', 'pseudo-voigt'):
            weight = 1.0 if shape == 'lorentzian' else eta
            values += weight * (2 / math.pi) / (1 + 4 * x**2)
        out += (intensity[part] / widths[part]) @ values
    return out
