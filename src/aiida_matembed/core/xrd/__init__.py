"""Powder X-ray diffraction: kinematic peak positions, intensities and hkl families.

Issue #4 is in progress. What exists: :class:`XrdSimulator` with :meth:`~XrdSimulator.peaks` /
:meth:`~XrdSimulator.peaks_many` (numpy, pinned peak by peak against pymatgen's ``XRDCalculator``) and
:meth:`~XrdSimulator.profiles_many` (Gaussian / Lorentzian / pseudo-Voigt on an even 2θ grid; constant,
Caglioti or Scherrer widths), the ``matembed.xrd`` representation, and ``.xy`` / ``.xye`` files
(:func:`read_xy`, :func:`write_xy`); in the AiiDA layer the ``matembed.xrd_patterns`` node and the batched
``matembed.simulate_xrd`` calcfunction. Still to come: the batched torch path, K-alpha doublets,
augmentations, the ``verdi data matembed xrd`` command and the speed
targets (not met yet: the numpy path computes one structure at a time).
"""

from .io import MeasuredPattern, PatternFileError, read_xy, write_xy
from .peaks import Peaks, XrdSimulator
from .wavelengths import WAVELENGTHS, resolve_wavelength

__all__ = (
    'WAVELENGTHS',
    'MeasuredPattern',
    'PatternFileError',
    'Peaks',
    'XrdSimulator',
    'read_xy',
    'resolve_wavelength',
    'write_xy',
)
