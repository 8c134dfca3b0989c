"""One frozen object for the settings of a simulated powder pattern: :class:`XrdSettings`.

Every layer that simulates or compares patterns reads its settings from here: the ``matembed.xrd``
representation, the ``matembed.simulate_xrd`` calcfunction and its stored :class:`XrdPatternsData`
attributes, the worker's ``xrd`` task, the models' input grid (stored in each model card as
``inputs.xrd``) and the ``verdi data matembed xrd`` command. Two presets name the grids in use:

* :data:`DEFAULT_XRD`: Cu K-alpha, 10-110° in 0.02° steps, pseudo-Voigt of 0.1° FWHM (the setting of
  Suzuki et al. 2022 for the patterns themselves);
* :data:`MODEL_XRD`: the same range in 0.05° steps with 0.2° FWHM (2,001 points), the grid the shipped
  learned models read.

Units: degrees for 2θ, steps and widths; Å for a numeric wavelength.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .profiles import ProfileShape, shape_weights, two_theta_grid
from .wavelengths import WAVELENGTHS, resolve_wavelength

if TYPE_CHECKING:
    from .augment import XrdAugmentation
    from .peaks import Peaks, XrdSimulator

__all__ = ('DEFAULT_XRD', 'MODEL_XRD', 'XrdSettings', 'check_two_theta_range', 'doublet_wavelengths')

HklSetting = Literal['conventional', 'input']
_DERIVED = ('wavelength_angstrom',)
"""Keys that stored settings may carry but that are derived from the others (ignored when read back)."""
_PROFILE_KEYS = ('two_theta_range', 'step', 'shape', 'fwhm', 'eta', 'doublet')
"""The settings that change a gridded profile (besides the wavelength); ``hkl_setting`` changes only labels."""


def check_two_theta_range(value: Any) -> tuple[float, float]:
    """``(min, max)`` 2θ (degrees) as floats, ``0 < min < max < 180``; :raises ValueError: otherwise."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f'two_theta_range must be two numbers (degrees), got {value!r}') from None
    if not (0 < low < high < 180):
        raise ValueError(f'two_theta_range must satisfy 0 < min < max < 180 degrees, got {value!r}')
    return low, high


def doublet_wavelengths(wavelength: str | float) -> tuple[float, float]:
    """K-alpha1 and K-alpha2 wavelengths (Å) of an anode line ``'XxKa'`` / ``'XxKa1'``.

    :raises ValueError: for a wavelength given in Å or a line that is not a K-alpha line.
    """
    if isinstance(wavelength, str):
        stem = wavelength[:-1] if wavelength.endswith('Ka1') else wavelength
        if stem.endswith('Ka') and f'{stem}2' in WAVELENGTHS:
            return WAVELENGTHS[f'{stem}1'], WAVELENGTHS[f'{stem}2']
    raise ValueError(f"doublet needs an anode name such as 'CuKa' or 'CuKa1', got {wavelength!r}")


@dataclass(frozen=True)
class XrdSettings:
    """Settings of a simulated powder pattern (peaks and gridded profile), validated on creation.

    :param wavelength: anode line (``'CuKa'``, ``'MoKa1'``, ... see :data:`~.wavelengths.WAVELENGTHS`) or Å.
    :param two_theta_range: ``(min, max)`` 2θ of the grid (degrees), ``0 < min < max < 180``.
    :param step: grid step (degrees); the range must be a whole number of steps.
    :param shape: peak shape, ``'gaussian'``, ``'lorentzian'`` or ``'pseudo-voigt'``.
    :param fwhm: constant full width at half maximum (degrees), in ``(0, 10)``.
    :param eta: Lorentzian fraction of the pseudo-Voigt, in ``[0, 1]``.
    :param doublet: render the K-alpha1 / K-alpha2 doublet in profiles (``wavelength`` an anode ``'XxKa'`` or
        ``'XxKa1'``; peaks are listed at K-alpha1).
    :param hkl_setting: ``'conventional'``: label peaks with the Miller indices of the conventional standard
        cell; ``'input'``: of the cell as given (positions and intensities do not depend on it).
    :raises ValueError: naming the bad setting.
    """

    wavelength: str | float = 'CuKa'
    two_theta_range: tuple[float, float] = (10.0, 110.0)
    step: float = 0.02
    shape: ProfileShape = 'pseudo-voigt'
    fwhm: float = 0.1
    eta: float = 0.5
    doublet: bool = False
    hkl_setting: HklSetting = 'conventional'

    def __post_init__(self) -> None:
        if isinstance(self.wavelength, str):
            resolve_wavelength(self.wavelength)
        elif isinstance(self.wavelength, bool) or not isinstance(self.wavelength, (int, float)):
            raise ValueError(f'wavelength must be an anode name or a number (Å), got {self.wavelength!r}')
        else:
            resolve_wavelength(self.wavelength)
            object.__setattr__(self, 'wavelength', float(self.wavelength))
        low, high = check_two_theta_range(self.two_theta_range)
        object.__setattr__(self, 'two_theta_range', (low, high))
        two_theta_grid((low, high), self.step)  # checks the step and that the range is whole steps
        object.__setattr__(self, 'step', float(self.step))
        shape_weights(self.shape, self.eta)  # checks shape and eta
        object.__setattr__(self, 'eta', float(self.eta))
        fwhm = self.fwhm
        if isinstance(fwhm, bool) or not isinstance(fwhm, (int, float)) or not (math.isfinite(fwhm) and 0 < fwhm < 10):
            raise ValueError(f'fwhm must be in (0, 10) degrees, got {fwhm!r}')
        object.__setattr__(self, 'fwhm', float(fwhm))
        if not isinstance(self.doublet, bool):
            raise ValueError(f'doublet must be true or false, got {self.doublet!r}')
        if self.doublet:
            doublet_wavelengths(self.wavelength)
        if self.hkl_setting not in ('conventional', 'input'):
            raise ValueError(f"hkl_setting must be 'conventional' or 'input', got {self.hkl_setting!r}")

    # ------------------------------------------------------------------------------------ derived
    @property
    def wavelength_angstrom(self) -> float:
        """The wavelength peaks are computed with (Å): K-alpha1 when the doublet is rendered."""
        if self.doublet:
            return doublet_wavelengths(self.wavelength)[0]
        return resolve_wavelength(self.wavelength)

    @property
    def grid(self) -> np.ndarray:
        """The 2θ grid (degrees) of the profiles: ``min`` to ``max`` inclusive in ``step``."""
        return two_theta_grid(self.two_theta_range, self.step)

    @property
    def n_points(self) -> int:
        return len(self.grid)

    def simulator(self, debye_waller: Mapping[str, float] | None = None) -> XrdSimulator:
        """An :class:`~.peaks.XrdSimulator` for these settings (``debye_waller``: B factors in Å^2 by element)."""
        from .peaks import XrdSimulator

        return XrdSimulator(
            self.wavelength,
            self.two_theta_range,
            dict(debye_waller) if debye_waller else None,
            doublet=self.doublet,
            hkl_setting=self.hkl_setting,
        )

    def profile_options(self) -> dict[str, Any]:
        """The keyword options of :meth:`XrdSimulator.profiles_many` these settings fix."""
        return {'step': self.step, 'shape': self.shape, 'fwhm': self.fwhm, 'eta': self.eta}

    # ---------------------------------------------------------------------------------- simulation
    def patterns(
        self, structures: Iterable[Any], *, device: str | None = None
    ) -> tuple[list[Peaks], np.ndarray, np.ndarray]:
        """Peaks, grid and normalised profiles of a batch (bad structures recorded, their rows NaN)."""
        return self.simulator().patterns_many(structures, **self.profile_options(), errors='record', device=device)

    def profiles(
        self,
        structures: Iterable[Any],
        *,
        augment: XrdAugmentation | None = None,
        seed: int = 0,
        errors: Literal['raise', 'record'] = 'raise',
        device: str | None = None,
    ) -> np.ndarray:
        """``(N, G)`` float32 profiles of a batch on :attr:`grid`, each divided by its maximum."""
        _, profiles = self.simulator().profiles_many(
            structures, **self.profile_options(), augment=augment, seed=seed, errors=errors, device=device
        )
        return profiles

    def check_patterns(self, patterns: Any) -> np.ndarray:
        """``patterns`` as a float32 ``(N, G)`` array on this grid, each divided by its maximum.

        :raises ValueError: for a wrong shape (a pattern made on another grid), NaN / infinite values or an
            all-zero pattern.
        """
        array = np.asarray(patterns, dtype=np.float32)
        if array.ndim == 1:
            array = array[None]
        if array.ndim != 2 or array.shape[1] != self.n_points:
            low, high = self.two_theta_range
            raise ValueError(
                f'expected patterns of {self.n_points} points on the grid {low:g}-{high:g}° step {self.step:g}° '
                f'({self.wavelength}); got shape {array.shape}. Simulate them with these settings or re-grid them.'
            )
        if not np.isfinite(array).all():
            raise ValueError('patterns contain NaN or infinite values')
        peak = array.max(axis=1, keepdims=True)
        if (peak <= 0).any():
            raise ValueError(f'pattern {int(np.flatnonzero(peak[:, 0] <= 0)[0])} has no positive intensity')
        return array / peak

    # ---------------------------------------------------------------------------- (de)serialisation
    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (``two_theta_range`` a list), as stored on nodes and in model cards."""
        out = asdict(self)
        out['two_theta_range'] = list(self.two_theta_range)
        return out

    def stored_attributes(self) -> dict[str, Any]:
        """The queryable attributes of :class:`XrdPatternsData` made with these settings (wavelength in Å too)."""
        return {**self.as_dict(), 'wavelength_angstrom': self.wavelength_angstrom}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, *, base: XrdSettings | None = None) -> XrdSettings:
        """Settings from a (partial) dictionary; missing keys are taken from ``base`` (default: the defaults).

        Derived keys (``wavelength_angstrom``) are ignored.

        :raises ValueError: naming unknown keys and listing the valid ones, or a bad value.
        """
        data = {k: v for k, v in dict(data or {}).items() if k not in _DERIVED}
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(valid))
        if unknown:
            raise ValueError(f'unknown XRD setting(s) {unknown}; valid settings: {valid}')
        if 'two_theta_range' in data and isinstance(data['two_theta_range'], list):
            data['two_theta_range'] = tuple(data['two_theta_range'])
        return replace(base, **data) if base is not None else cls(**data)

    def differences(self, other: XrdSettings) -> list[str]:
        """What would make ``other``'s profiles differ from these (wavelength in Å, grid, shape, width, doublet)."""
        out = []
        if abs(self.wavelength_angstrom - other.wavelength_angstrom) > 1e-6:
            out.append(f'wavelength {other.wavelength_angstrom:.5f} Å vs {self.wavelength_angstrom:.5f} Å')
        for key in _PROFILE_KEYS:
            mine, theirs = getattr(self, key), getattr(other, key)
            if isinstance(mine, tuple):
                same = bool(np.allclose(mine, theirs, rtol=0, atol=1e-9))
            elif isinstance(mine, float):
                same = abs(mine - float(theirs)) < 1e-9
            else:
                same = mine == theirs
            if not same:
                out.append(f'{key} {theirs!r} vs {mine!r}')
        return out


DEFAULT_XRD = XrdSettings()
"""Cu K-alpha, 10-110° in 0.02° steps, pseudo-Voigt of 0.1° FWHM, conventional-cell labels."""

MODEL_XRD = XrdSettings(step=0.05, fwhm=0.2)
"""The grid the shipped learned models read: 10-110° in 0.05° steps (2,001 points), 0.2° FWHM."""
