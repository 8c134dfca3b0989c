"""Powder X-ray diffraction: kinematic peaks, gridded profiles and measured-pattern files.

* :class:`XrdSimulator`: :meth:`~XrdSimulator.peaks` (numpy, one structure), :meth:`~XrdSimulator.peaks_many`,
  :meth:`~XrdSimulator.profiles_many` and :meth:`~XrdSimulator.patterns_many` (batched path of
  :mod:`.batched`: compiled kernels on the CPU, torch on a GPU); pinned peak by peak against pymatgen's
  ``XRDCalculator``;
* profiles (:mod:`.profiles`): Gaussian / Lorentzian / pseudo-Voigt on an even 2θ grid, constant, Caglioti or
  Scherrer widths, optional K-alpha doublet; seeded augmentations (:class:`XrdAugmentation`);
* ``.xy`` / ``.xye`` files (:func:`read_xy`, :func:`write_xy`).
"""

from .augment import XrdAugmentation
from .io import MeasuredPattern, PatternFileError, read_xy, write_xy
from .peaks import Peaks, XrdSimulator
from .wavelengths import WAVELENGTHS, resolve_wavelength

__all__ = (
    'WAVELENGTHS',
    'MeasuredPattern',
    'PatternFileError',
    'Peaks',
    'XrdAugmentation',
    'XrdSimulator',
    'read_xy',
    'resolve_wavelength',
    'write_xy',
)
