"""``matembed.xrd``: the normalised pattern, with its strongest point at pymatgen's strongest peak."""

import numpy as np
import pytest

from aiida_matembed.core.representations import FeaturizationError, get_representation


def test_xrd_pattern_peaks_where_pymatgen_puts_the_strongest_peak(prototypes):
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    structures = [p.structure for p in prototypes[::24]]
    rep = get_representation('matembed.xrd')
    features = rep.featurize_many(structures).features
    assert features.shape == (len(structures), 5001)
    np.testing.assert_allclose(features.max(axis=1), 1.0)
    grid = np.array([float(label.split()[1]) for label in rep.feature_labels()])
    for structure, pattern in zip(structures, features, strict=True):
        reference = XRDCalculator().get_pattern(structure, two_theta_range=(10, 110))
        strongest = reference.x[np.argmax(reference.y)]
        second = np.sort(reference.y)[-2] if len(reference.y) > 1 else 0
        if second < 90:  # a clear strongest peak (no near-tie with a neighbour)
            assert grid[np.argmax(pattern)] == pytest.approx(strongest, abs=0.011)


def test_xrd_options_and_bad_values():
    rep = get_representation('matembed.xrd', wavelength='MoKa', two_theta_range=[5, 45], step=0.05)
    assert rep.n_features == 801 and rep.feature_labels()[0] == 'xrd 5.000'
    with pytest.raises(ValueError, match='unknown anode'):
        get_representation('matembed.xrd', wavelength='Unobtainium')
    with pytest.raises(ValueError, match='0 < min < max < 180'):
        get_representation('matembed.xrd', two_theta_range=[50, 20])
    with pytest.raises(ValueError, match='fwhm must be in'):
        get_representation('matembed.xrd', fwhm=0)
    with pytest.raises(
        FeaturizationError, match=r'^structure 0: no X-ray scattering factors for element Og \(InvalidStructureError\)'
    ):
        from pymatgen.core import Lattice, Structure

        get_representation('matembed.xrd').featurize(
            Structure(Lattice.cubic(4), ['Og', 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]])
        )
