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
from ..xrd import XrdSimulator
from ..xrd.peaks import scattering_params
from ..xrd.profiles import ProfileShape, shape_weights, two_theta_grid
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

    :param wavelength: anode name (``'CuKa'``, ``'MoKa'``, ...) or Å.
    :param two_theta_min: first grid point (degrees).
    :param two_theta_max: last grid point (degrees).
    :param step: grid step (degrees); the range must be a whole number of steps.
    :param shape: ``'gaussian'``, ``'lorentzian'`` or ``'pseudo-voigt'``.
    :param fwhm: constant peak width (degrees).
    :param eta: Lorentzian fraction of the pseudo-Voigt.
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
        wavelength: str | float = 'CuKa',
        two_theta_min: float = 10.0,
        two_theta_max: float = 110.0,
        step: float = 0.02,
        shape: ProfileShape = 'pseudo-voigt',
        fwhm: float = 0.1,
        eta: float = 0.5,
    ) -> None:
        self._simulator = XrdSimulator(wavelength, (two_theta_min, two_theta_max))
        self.wavelength = wavelength
        self.two_theta_min = float(two_theta_min)
        self.two_theta_max = float(two_theta_max)
        self.step = float(step)
        self._grid = two_theta_grid((self.two_theta_min, self.two_theta_max), self.step)
        shape_weights(shape, eta)  # checks shape and eta
        self.shape: ProfileShape = shape
        if isinstance(fwhm, bool) or not isinstance(fwhm, (int, float)) or not 0 < fwhm < 10:
            raise ValueError(f'fwhm must be in (0, 10) degrees, got {fwhm!r}')
        self.fwhm = float(fwhm)
        self.eta = float(eta)

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
        _, patterns = self._simulator.profiles_many(
            prepared, step=self.step, shape=self.shape, fwhm=self.fwhm, eta=self.eta, normalize=True
        )
        return patterns
