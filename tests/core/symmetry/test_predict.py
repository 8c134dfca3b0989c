"""predict_symmetry on measured-like profiles (pymatgen peaks, K-alpha doublet, noise) and on peak lists."""

import math

import numpy as np
import pytest
from pymatgen.analysis.diffraction.xrd import XRDCalculator

from aiida_matembed.core.symmetry import predict_symmetry
from aiida_matembed.core.xrd.profiles import render_profile

from .test_indexing import LAMBDA, conventional_cell, corundum, nacl, rutile, simulated_lines

GRID = np.round(np.arange(10.0, 110.0 + 1e-9, 0.02), 6)
LAMBDA2 = 1.544426  # pymatgen's CuKa2 (Å)


def measured_profile(structure, seed=0, zero=0.04):
    """Counts: pymatgen's K-alpha1 peaks plus K-alpha2 at half intensity, pseudo-Voigt 0.08°, background, Poisson."""
    pattern = XRDCalculator('CuKa1').get_pattern(structure, two_theta_range=(9, 111))
    x, y = np.asarray(pattern.x), np.asarray(pattern.y)
    x2 = np.degrees(2 * np.arcsin(np.sin(np.radians(x) / 2) * LAMBDA2 / LAMBDA))
    centres = np.concatenate([x, x2]) + zero
    heights = np.concatenate([y, 0.5 * y])
    signal = render_profile(GRID, centres, heights, np.full(len(centres), 0.08))
    signal *= 5000 / signal.max()
    rng = np.random.default_rng(seed)
    return rng.poisson(signal + 150).astype(float)


@pytest.mark.parametrize(('make', 'system', 'group'), [(nacl, 'cubic', 225), (rutile, 'tetragonal', 136),
                                                       (corundum, 'trigonal', 167)])  # fmt: skip
def test_profile_with_doublet(make, system, group):
    structure = make()
    result = predict_symmetry(GRID, measured_profile(structure), 'CuKa')
    assert result.crystal_system == system
    assert group in result.space_group[:3]
    assert result.route in ('indexing', 'indexing+classifier')
    assert result.wavelength == pytest.approx(1.54056)  # K-alpha1 after stripping
    found, expected = np.array(result.cell.as_tuple()), conventional_cell(structure)
    np.testing.assert_allclose(found, expected, rtol=5e-3)
    assert abs(result.zero_shift - 0.04) < 0.02
    summary = result.as_dict()
    assert summary['space_group'] == list(result.space_group)
    assert summary['cell']['a'] == pytest.approx(result.cell.a)
    assert math.isclose(sum(result.probabilities), sum(g.probability for g in result.groups[:5]))


def test_peak_list():
    x, y = simulated_lines(rutile(), zero=-0.02, noise=0.005)
    result = predict_symmetry(x, y, LAMBDA)
    assert (result.crystal_system, result.space_group[0], result.route) == ('tetragonal', 136, 'indexing')


def test_classifier_decides_when_there_is_nothing_to_index():
    """Five lines that no cell indexes well: the learned classifier's answer, marked as such."""
    result = predict_symmetry([21.3, 27.9, 33.2, 41.7, 57.05], [100, 60, 40, 30, 20], 'CuKa1')
    assert result.route == 'classifier'
    assert result.cell is None and math.isnan(result.m20)
    assert len(result.space_group) == 5 and 1 <= result.space_group[0] <= 230
    assert result.probabilities == tuple(sorted(result.probabilities, reverse=True))
    with pytest.raises(ValueError, match='at least 6 peaks'):
        predict_symmetry([21.3, 27.9, 33.2, 41.7, 57.05], [100, 60, 40, 30, 20], 'CuKa1', use_classifier=False)


@pytest.mark.parametrize(
    ('two_theta', 'intensity', 'wavelength', 'message'),
    [
        ([], [], 'CuKa', 'empty'),
        ([20.0, np.nan], [1.0, 2.0], 'CuKa', 'NaN'),
        ([20.0, 30.0], [1.0], 'CuKa', 'same length'),
        ([20.0, 30.0], [1.0, 2.0], 'CuKb9', 'unknown anode'),
        ([20.0, 30.0], [1.0, 2.0], -1.0, 'must be > 0'),
        ([20.0, 200.0], [1.0, 2.0], 'CuKa', 'within'),
        (GRID, np.ones(len(GRID)), 'CuKa', 'flat'),
    ],
)
def test_bad_input_raises_a_clear_error(two_theta, intensity, wavelength, message):
    with pytest.raises(ValueError, match=message):
        predict_symmetry(two_theta, intensity, wavelength)


def test_top_k_must_be_positive():
    with pytest.raises(ValueError, match='top_k'):
        predict_symmetry([20.0, 30.0], [1.0, 2.0], 'CuKa', top_k=0)
