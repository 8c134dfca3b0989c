"""Gridded XRD profiles: shapes with the declared FWHM and unit area, widths, invariances, bad options."""

import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from aiida_matembed.core.xrd import XrdSimulator
from aiida_matembed.core.xrd.profiles import peak_widths, render_profile, two_theta_grid

ROCKSALT = Structure.from_spacegroup('Fm-3m', Lattice.cubic(5.6402), ['Na', 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _measured_fwhm(grid, values):
    above = grid[values >= values.max() / 2]
    return above[-1] - above[0]


@pytest.mark.parametrize('shape', ['gaussian', 'lorentzian', 'pseudo-voigt'])
def test_single_peak_has_the_declared_width_and_unit_area(shape):
    grid = two_theta_grid((10.0, 110.0), 0.001)
    values = render_profile(grid, np.array([60.0]), np.array([3.0]), np.array([0.2]), shape)
    assert _measured_fwhm(grid, values) == pytest.approx(0.2, abs=0.0021)
    area = values.sum() * 0.001
    assert area == pytest.approx(3.0, rel=0.01 if shape != 'gaussian' else 1e-6)  # Lorentzian tails leave the grid
    assert grid[np.argmax(values)] == pytest.approx(60.0, abs=1e-9)


def test_widths_constant_caglioti_and_scherrer():
    two_theta = np.array([20.0, 60.0, 100.0])
    np.testing.assert_allclose(peak_widths(two_theta, 1.54, fwhm=0.05), 0.05)
    theta = np.radians(two_theta / 2)
    np.testing.assert_allclose(
        peak_widths(two_theta, 1.54, caglioti=(0.01, -0.002, 0.003)),
        np.sqrt(0.01 * np.tan(theta) ** 2 - 0.002 * np.tan(theta) + 0.003),
    )
    scherrer = peak_widths(two_theta, 1.54184, crystallite_size=200.0)
    np.testing.assert_allclose(scherrer, np.degrees(0.9 * 1.54184 / (200.0 * np.cos(theta))))
    assert scherrer[2] > scherrer[0]  # size broadening grows with angle


def test_profiles_of_rock_salt_peak_at_200_and_are_cell_independent():
    simulator = XrdSimulator('CuKa')
    grid, patterns = simulator.profiles_many([ROCKSALT, ROCKSALT * (2, 1, 1), ROCKSALT.get_primitive_structure()])
    assert grid.shape == (5001,) and grid[0] == 10.0 and grid[-1] == pytest.approx(110.0)
    assert patterns.max(axis=1) == pytest.approx(np.ones(3))
    d200 = 5.6402 / 2
    expected = 2 * math.degrees(math.asin(1.54184 / (2 * d200)))
    assert grid[np.argmax(patterns[0])] == pytest.approx(expected, abs=0.011)
    np.testing.assert_allclose(patterns[1], patterns[0], atol=1e-9)
    np.testing.assert_allclose(patterns[2], patterns[0], atol=1e-9)


def test_profile_sticks_add_up_to_the_peaks():
    """With a very narrow Gaussian the pattern integrates to the sum of all peak intensities."""
    simulator = XrdSimulator('CuKa')
    peaks = simulator.peaks(ROCKSALT)
    grid, patterns = simulator.profiles_many([ROCKSALT], step=0.005, shape='gaussian', fwhm=0.03, normalize=False)
    total = patterns[0].sum() * 0.005
    scale = total / peaks.intensity.sum()
    strongest = np.argmax(peaks.intensity)
    window = np.abs(grid - peaks.two_theta[strongest]) < 0.1
    assert patterns[0][window].sum() * 0.005 / scale == pytest.approx(100.0, rel=1e-4)


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'step': 0}, 'step must be > 0'),
        ({'step': 0.03}, 'whole number of steps'),
        ({'shape': 'voigt'}, 'shape must be one of'),
        ({'fwhm': 0.1, 'crystallite_size': 100.0}, 'exactly one of'),
        ({'fwhm': -0.1}, 'fwhm must be > 0'),
        ({'crystallite_size': 0.0}, 'crystallite_size must be > 0'),
        ({'caglioti': (0, 0, -1)}, 'non-positive width'),
    ],
)
def test_bad_profile_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        XrdSimulator().profiles_many([ROCKSALT], **kwargs)


def test_bad_structure_in_a_batch_is_a_nan_row():
    overlapping = Structure(Lattice.cubic(4), ['Na', 'Cl'], [[0, 0, 0], [0.05, 0, 0]])
    with pytest.raises(ValueError, match='structure 1: overlapping atoms'):
        XrdSimulator().profiles_many([ROCKSALT, overlapping])
    _, patterns = XrdSimulator().profiles_many([ROCKSALT, overlapping, ROCKSALT], errors='record')
    assert np.isnan(patterns[1]).all() and np.isfinite(patterns[[0, 2]]).all()


def test_peaks_just_outside_the_grid_add_their_tails_to_their_own_row_only():
    """Regression: a peak centred beyond the grid end (K-alpha2 companions, zero shifts) must not spill over."""
    import torch

    from aiida_matembed.core.xrd.profiles import render_batch

    grid = two_theta_grid((10.0, 20.0), 0.05)
    centers = torch.tensor([20.3, 9.8, 15.0], dtype=torch.float64)
    rows = torch.tensor([0, 0, 2])
    out = render_batch(3, grid, rows, centers, torch.ones(3, dtype=torch.float64),
                       torch.full((3,), 0.2, dtype=torch.float64), 'lorentzian', window=math.inf)  # fmt: skip
    expected = render_profile(grid, np.array([20.3, 9.8]), np.ones(2), np.full(2, 0.2), 'lorentzian')
    np.testing.assert_allclose(out[0].numpy(), expected, rtol=1e-5)
    assert not out[1].any()
    _, patterns = XrdSimulator('MoKa', (10, 110), doublet=True).profiles_many([ROCKSALT] * 2, step=0.05, fwhm=0.2)
    np.testing.assert_allclose(patterns[0], patterns[1])
