"""Plot one simulated powder pattern: the gridded profile, the peaks as sticks and hkl labels.

matplotlib is imported when :func:`plot_pattern` is called (not with :mod:`aiida_matembed.core.xrd`). The
figure is a bare :class:`matplotlib.figure.Figure` (no ``pyplot``, so no GUI backend and no global state);
``savefig`` renders it with Agg.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .peaks import Peaks

__all__ = ('format_hkl', 'plot_pattern')


def format_hkl(hkl: Sequence[int]) -> str:
    """Miller indices as a label: ``(200)`` when all are single digits >= 0, else ``(1 0 -1 0)``.

    Four-index (hexagonal Miller-Bravais) indices are always separated by spaces.
    """
    indices = [int(i) for i in hkl]
    if len(indices) == 3 and all(0 <= i <= 9 for i in indices):
        return '(' + ''.join(str(i) for i in indices) + ')'
    return '(' + ' '.join(str(i) for i in indices) + ')'


def plot_pattern(
    grid: np.ndarray,
    profile: np.ndarray,
    peaks: Peaks,
    *,
    title: str = '',
    n_labels: int = 5,
    path: str | Path | None = None,
) -> Figure:
    """Draw a powder pattern: profile scaled to 100 as a line, peaks as sticks, hkl of the strongest peaks.

    :param grid: 2θ grid (degrees) of ``profile``.
    :param profile: gridded intensities on ``grid`` (any scale; drawn divided by the maximum, times 100).
    :param peaks: the peaks (intensity 0-100): a vertical stick at each 2θ with height = intensity.
    :param title: figure title, e.g. formula and wavelength.
    :param n_labels: how many of the strongest peaks get the Miller indices of their first hkl family
        (``(200)``, ``(1 0 -1 0)`` for hexagonal cells); labels are added strongest first, so
        ``figure.axes[0].texts[0]`` is the label of the strongest peak.
    :param path: if given, the figure is also saved there (format from the suffix, e.g. ``.png``).
    :returns: the figure (one axes).
    :raises ValueError: if ``grid`` and ``profile`` differ in length.
    """
    from matplotlib.figure import Figure

    grid = np.asarray(grid, dtype=float)
    profile = np.asarray(profile, dtype=float)
    if grid.shape != profile.shape:
        raise ValueError(f'grid {grid.shape} and profile {profile.shape} differ in shape')
    finite = profile[np.isfinite(profile)]
    top = float(finite.max()) if finite.size else 0.0
    scaled = profile * (100.0 / top) if top > 0 else profile

    figure = Figure(figsize=(8, 4.5), layout='constrained')
    ax = figure.add_subplot()
    ax.plot(grid, scaled, color='tab:blue', linewidth=1.0, label='profile')
    two_theta = np.asarray(peaks.two_theta, dtype=float)
    intensity = np.asarray(peaks.intensity, dtype=float)
    if len(two_theta):
        ax.vlines(two_theta, 0.0, intensity, colors='tab:red', linewidth=1.0, label='peaks')
    strongest = np.argsort(-intensity, kind='stable')[: max(n_labels, 0)]
    for index in strongest:
        families = peaks.hkls[int(index)] if int(index) < len(peaks.hkls) else {}
        if not families:
            continue
        hkl = next(iter(families))
        ax.text(
            float(two_theta[index]),
            float(intensity[index]) + 1.5,
            format_hkl(hkl),
            ha='center',
            va='bottom',
            rotation=90,
            fontsize=8,
        )
    if grid.size:
        ax.set_xlim(float(grid[0]), float(grid[-1]))
    ax.set_ylim(0.0, 118.0)
    ax.set_xlabel('2θ (°)')
    ax.set_ylabel('Intensity (a.u.)')
    if title:
        ax.set_title(title)
    ax.legend(loc='upper right', frameon=False)
    if path is not None:
        figure.savefig(Path(path), dpi=150)
    return figure
