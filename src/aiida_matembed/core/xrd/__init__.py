"""Powder X-ray diffraction: kinematic peak positions, intensities and hkl families.

Only the numpy peak path exists so far (issue #4 is in progress): :class:`XrdSimulator` with
:meth:`~XrdSimulator.peaks` / :meth:`~XrdSimulator.peaks_many`, pinned against pymatgen's
``XRDCalculator``. Gridded profiles, the batched torch path and the AiiDA layer come next.
"""

from .peaks import Peaks, XrdSimulator
from .wavelengths import WAVELENGTHS, resolve_wavelength

__all__ = ('WAVELENGTHS', 'Peaks', 'XrdSimulator', 'resolve_wavelength')
