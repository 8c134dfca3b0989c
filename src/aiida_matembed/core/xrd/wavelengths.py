"""X-ray wavelengths (Å) by anode line, the values pymatgen's ``XRDCalculator`` uses.

K-alpha is the intensity-weighted mean of K-alpha1 and K-alpha2 (2:1), as tabulated there.
"""

from __future__ import annotations

import math

__all__ = ('WAVELENGTHS', 'resolve_wavelength')

WAVELENGTHS: dict[str, float] = {
    'CuKa': 1.54184,
    'CuKa2': 1.54439,
    'CuKa1': 1.54056,
    'CuKb1': 1.39222,
    'MoKa': 0.71073,
    'MoKa2': 0.71359,
    'MoKa1': 0.70930,
    'MoKb1': 0.63229,
    'CrKa': 2.29100,
    'CrKa2': 2.29361,
    'CrKa1': 2.28970,
    'CrKb1': 2.08487,
    'FeKa': 1.93735,
    'FeKa2': 1.93998,
    'FeKa1': 1.93604,
    'FeKb1': 1.75661,
    'CoKa': 1.79026,
    'CoKa2': 1.79285,
    'CoKa1': 1.78896,
    'CoKb1': 1.63079,
    'AgKa': 0.560885,
    'AgKa2': 0.563813,
    'AgKa1': 0.559421,
    'AgKb1': 0.497082,
}
"""Wavelength (Å) of each anode line."""


def resolve_wavelength(wavelength: str | float) -> float:
    """Return a wavelength in Å from an anode name (``'CuKa'``, ``'MoKa1'``, ...) or a number of Å.

    :raises ValueError: for an unknown anode name or a wavelength that is not a positive finite number.
    """
    if isinstance(wavelength, str):
        try:
            return WAVELENGTHS[wavelength]
        except KeyError:
            raise ValueError(f'unknown anode {wavelength!r}; known: {", ".join(WAVELENGTHS)} (or give Å)') from None
    if isinstance(wavelength, bool) or not isinstance(wavelength, (int, float)):
        raise ValueError(f'wavelength must be an anode name or a number of Å, got {wavelength!r}')
    value = float(wavelength)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f'wavelength must be > 0 Å, got {wavelength!r}')
    return value
