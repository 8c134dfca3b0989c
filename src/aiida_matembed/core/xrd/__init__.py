"""Powder X-ray diffraction: kinematic peaks, gridded profiles and measured-pattern files.

* :class:`XrdSimulator`: :meth:`~XrdSimulator.peaks` (numpy, one structure), :meth:`~XrdSimulator.peaks_many`,
  :meth:`~XrdSimulator.profiles_many` and :meth:`~XrdSimulator.patterns_many` (batched path of
  :mod:`.batched`: compiled kernels on the CPU, torch on a GPU); pinned peak by peak against pymatgen's
  ``XRDCalculator``;
* profiles (:mod:`.profiles`): Gaussian / Lorentzian / pseudo-Voigt on an even 2θ grid, constant, Caglioti or
  Scherrer widths, optional K-alpha doublet; seeded augmentations (:class:`XrdAugmentation`);
* ``.xy`` / ``.xye`` files (:func:`read_xy`, :func:`write_xy`);
* :class:`XrdSettings`, the one frozen object for a pattern's settings, and its presets :data:`DEFAULT_XRD`
  and :data:`MODEL_XRD` (:mod:`.settings`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .augment import XrdAugmentation
    from .io import MeasuredPattern, PatternFileError, read_xy, write_xy
    from .peaks import Peaks, XrdSimulator
    from .settings import DEFAULT_XRD, MODEL_XRD, XrdSettings
    from .wavelengths import WAVELENGTHS, resolve_wavelength

_WHERE = {
    'XrdAugmentation': 'augment',
    'MeasuredPattern': 'io',
    'PatternFileError': 'io',
    'read_xy': 'io',
    'write_xy': 'io',
    'Peaks': 'peaks',
    'XrdSimulator': 'peaks',
    'DEFAULT_XRD': 'settings',
    'MODEL_XRD': 'settings',
    'XrdSettings': 'settings',
    'WAVELENGTHS': 'wavelengths',
    'resolve_wavelength': 'wavelengths',
}
"""Where each public name lives: imported on first use, so that reading the settings or the wavelengths does not
import torch and the compiled kernels (``verdi`` and the CLI stay quick to start)."""

__all__ = (
    'DEFAULT_XRD',
    'MODEL_XRD',
    'WAVELENGTHS',
    'MeasuredPattern',
    'PatternFileError',
    'Peaks',
    'XrdAugmentation',
    'XrdSettings',
    'XrdSimulator',
    'read_xy',
    'resolve_wavelength',
    'write_xy',
)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f'.{_WHERE[name]}', __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
