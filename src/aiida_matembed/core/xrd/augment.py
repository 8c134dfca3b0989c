"""Seeded augmentations that make simulated powder patterns look measured (for training, Lee et al. 2022).

Each pattern ``i`` of a call draws its own random numbers from ``numpy.random.default_rng((seed, i))``, so
a pattern's augmentation does not depend on the batch size, the device or the other structures.

Applied in physical order while simulating:

1. preferred orientation (March-Dollase, on every reflection before merging; Dollase, J. Appl. Cryst. 19,
   267 (1986)): a random low-index axis and ``r`` uniform in ``preferred_orientation = (r_min, r_max)``;
2. zero shift: every peak moves by ``d`` uniform in ``[-zero_shift, zero_shift]`` degrees;
3. broadening: every FWHM multiplied by a factor uniform in ``[1, 1 + broadening]``;
4. background: a smooth, non-negative cubic (Chebyshev) curve whose maximum is ``b`` uniform in
   ``[0, background]`` times the pattern maximum;
5. noise: Gaussian with standard deviation ``noise`` times the pattern maximum, clipped at zero.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ('ORIENTATION_AXES', 'XrdAugmentation')

ORIENTATION_AXES = np.array([(0, 0, 1), (1, 0, 0), (0, 1, 0), (1, 1, 0), (1, 0, 1), (0, 1, 1), (1, 1, 1)], dtype=float)
"""Candidate preferred-orientation axes (reciprocal-lattice directions ``hkl``), drawn uniformly."""


@dataclass(frozen=True)
class XrdAugmentation:
    """Amplitudes of the augmentations (0 / ``None`` switches one off); see the module docstring.

    :param noise: Gaussian noise, standard deviation as a fraction of the pattern maximum (e.g. 0.01).
    :param background: largest background maximum as a fraction of the pattern maximum (e.g. 0.1).
    :param zero_shift: largest 2θ zero shift in degrees (e.g. 0.1).
    :param broadening: largest relative FWHM increase (e.g. 0.5 for up to 1.5x).
    :param preferred_orientation: range ``(r_min, r_max)`` of the March-Dollase parameter, within
        ``(0, inf)``; ``r < 1`` platelets, ``r > 1`` needles, 1 = random powder (e.g. ``(0.7, 1.3)``).
    """

    noise: float = 0.0
    background: float = 0.0
    zero_shift: float = 0.0
    broadening: float = 0.0
    preferred_orientation: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        for name in ('noise', 'background', 'zero_shift', 'broadening'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f'augmentation {name} must be a number >= 0, got {value!r}')
        if self.preferred_orientation is not None:
            try:
                low, high = (float(v) for v in self.preferred_orientation)
            except (TypeError, ValueError):
                raise ValueError(
                    f'preferred_orientation must be (r_min, r_max), got {self.preferred_orientation!r}'
                ) from None
            if not (0 < low <= high < math.inf):
                raise ValueError(f'preferred_orientation must satisfy 0 < r_min <= r_max, got {(low, high)}')
            object.__setattr__(self, 'preferred_orientation', (low, high))

    @property
    def active(self) -> bool:
        return any((self.noise, self.background, self.zero_shift, self.broadening, self.preferred_orientation))

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def draw(self, rows: np.ndarray, seed: int) -> dict[str, np.ndarray]:
        """Per-pattern parameters for the patterns with global indices ``rows``.

        :return: ``axis (n, 3)``, ``march (n,)``, ``shift (n,)`` degrees, ``broaden (n,)``, ``background (n,)``,
            ``chebyshev (n, 4)`` and one ``noise_seed`` per pattern.
        """
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f'seed must be an integer >= 0, got {seed!r}')
        n = len(rows)
        out = {
            'axis': np.zeros((n, 3)),
            'march': np.ones(n),
            'shift': np.zeros(n),
            'broaden': np.ones(n),
            'background': np.zeros(n),
            'chebyshev': np.zeros((n, 4)),
            'noise_seed': np.zeros(n, dtype=np.uint64),
        }
        for k, row in enumerate(rows):
            rng = np.random.default_rng((int(seed), int(row)))
            # always draw every number, so switching one augmentation off does not change the others
            axis, march = rng.integers(len(ORIENTATION_AXES)), rng.random()
            shift, broaden, background = rng.uniform(-1, 1), rng.random(), rng.random()
            out['chebyshev'][k] = rng.uniform(-1, 1, 4)
            out['noise_seed'][k] = rng.integers(2**63)
            out['axis'][k] = ORIENTATION_AXES[axis]
            if self.preferred_orientation is not None:
                low, high = self.preferred_orientation
                out['march'][k] = low + (high - low) * march
            out['shift'][k] = self.zero_shift * shift
            out['broaden'][k] = 1 + self.broadening * broaden
            out['background'][k] = self.background * background
        return out


def background_curves(grid: np.ndarray, chebyshev: np.ndarray) -> np.ndarray:
    """Smooth curves ``(n, G)`` from Chebyshev coefficients ``(n, 4)``, shifted to min 0 and scaled to max 1."""
    u = 2 * (grid - grid[0]) / (grid[-1] - grid[0]) - 1
    basis = np.stack([np.ones_like(u), u, 2 * u**2 - 1, 4 * u**3 - 3 * u])
    curves = chebyshev @ basis
    curves -= curves.min(axis=1, keepdims=True)
    peak = curves.max(axis=1, keepdims=True)
    return np.divide(curves, peak, out=np.zeros_like(curves), where=peak > 0)
