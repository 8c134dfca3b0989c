"""``matembed.xrd``: the simulated powder pattern on a fixed 2θ grid, as a representation.

Lee et al. (2022) show that the powder pattern alone predicts symmetry and properties; Suzuki et al.
(2022) use it, divided by its maximum, as the second view of every structure. The values are those of
:meth:`aiida_matembed.core.xrd.XrdSimulator.profiles_many` (kinematic intensities as pymatgen's
``XRDCalculator``, broadened by a pseudo-Voigt of constant width), normalised to a maximum of 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..structures import InvalidStructureError, to_pymatgen, validate_structure
from ..xrd.peaks import scattering_params
from ..xrd.profiles import ProfileShape
from ..xrd.settings import DEFAULT_XRD, XrdSettings
from .base import Representation

__all__ = ('XrdPattern',)

LEE_2022 = (
    '@article{lee2022powder, title={Powder X-ray diffraction pattern is all you need for machine-learning-based '
    'symmetry identification and property prediction}, author={Lee, Byung Do and Lee, Jin-Woong and Park, '
    'Woon Bae and Park, Joonseo and Cho, Min-Young and Singh, Satendra Pal and Pyo, Myoungho and Sohn, '
    'Kee-Sun}, journal={Advanced Intelligent Systems}, volume={4}, pages={2200042}, year={2022}, '
    'doi={10.1002/aisy.202200042}}'
)


class XrdPattern(Representation):
    """Powder XRD pattern on an even 2θ grid, divided by its maximum.

    The options are those of :class:`~aiida_matembed.core.xrd.settings.XrdSettings` that shape a profile
    (defaults :data:`~aiida_matembed.core.xrd.settings.DEFAULT_XRD`); they are validated there.

    :param wavelength: anode name (``'CuKa'``, ``'MoKa'``, ...) or Å.
    :param two_theta_range: ``[min, max]`` 2θ of the grid (degrees).
    :param step: grid step (degrees); the range must be a whole number of steps.
    :param shape: ``'gaussian'``, ``'lorentzian'`` or ``'pseudo-voigt'``.
    :param fwhm: constant peak width (degrees).
    :param eta: Lorentzian fraction of the pseudo-Voigt.
    :param doublet: render the K-alpha1 / K-alpha2 doublet (anode wavelengths only).
    """

    name = 'matembed.xrd'
    threaded = True
    """The batched torch path already uses torch's threads; forking a process that holds them deadlocks."""
    version = 1
    input_kind = 'structure'
    output_kind = 'pattern'
    supports_partial_occupancy = True
    description = 'Powder XRD pattern (Cu Ka, 10-110° in 0.02° steps, pseudo-Voigt), divided by its maximum'

    def __init__(
        self,
        *,
        wavelength: str | float = DEFAULT_XRD.wavelength,
        two_theta_range: tuple[float, float] = DEFAULT_XRD.two_theta_range,
        step: float = DEFAULT_XRD.step,
        shape: ProfileShape = DEFAULT_XRD.shape,
        fwhm: float = DEFAULT_XRD.fwhm,
        eta: float = DEFAULT_XRD.eta,
        doublet: bool = DEFAULT_XRD.doublet,
    ) -> None:
        self.settings = XrdSettings.from_dict(
            {
                'wavelength': wavelength,
                'two_theta_range': two_theta_range,
                'step': step,
                'shape': shape,
                'fwhm': fwhm,
                'eta': eta,
                'doublet': doublet,
                'hkl_setting': 'input',
            }
        )
        self.wavelength, self.two_theta_range = self.settings.wavelength, self.settings.two_theta_range
        self.step, self.shape, self.fwhm = self.settings.step, self.settings.shape, self.settings.fwhm
        self.eta, self.doublet = self.settings.eta, self.settings.doublet
        self._simulator = self.settings.simulator()
        self._grid = self.settings.grid

    def citations(self) -> list[str]:
        return [LEE_2022]

    def feature_labels(self) -> list[str]:
        decimals = max(2, -int(np.floor(np.log10(self.step))) + 1)
        return [f'xrd {x:.{decimals}f}' for x in self._grid]

    def _prepare(self, item: Any) -> Any:
        structure = to_pymatgen(item)
        validate_structure(structure, allow_partial_occupancy=True)
        known = scattering_params()
        for element in structure.composition.elements:
            if element.symbol not in known:
                raise InvalidStructureError(f'no X-ray scattering factors for element {element.symbol}')
        return structure

    def _compute(self, prepared: list[Any]) -> np.ndarray:
        _, patterns = self._simulator.profiles_many(prepared, **self.settings.profile_options(), normalize=True)
        return patterns
