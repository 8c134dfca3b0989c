"""``matembed.simulate_xrd``: one process per batch, every structure an input, one patterns node."""

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType

from aiida_matembed.calculations import simulate_xrd_structures
from aiida_matembed.core.xrd import XrdSimulator
from aiida_matembed.data import XrdPatternsData
from aiida_matembed.testing import bad_inputs


def test_patterns_of_a_batch_are_one_node_with_provenance(aiida_profile_clean, examples):
    nodes = [orm.StructureData(pymatgen=e.structure).store() for e in examples[:4]]
    overlapping = next(b for b in bad_inputs() if b.label == 'overlapping atoms').structure
    bad = orm.StructureData(pymatgen=overlapping).store()
    patterns, process = simulate_xrd_structures([*nodes, bad], {'wavelength': 'MoKa', 'step': 0.05})
    assert isinstance(patterns, XrdPatternsData) and process.is_finished_ok
    links = process.base.links.get_incoming(link_type=LinkType.INPUT_CALC).all()
    assert len([link for link in links if link.link_label.startswith('structures__')]) == 5
    assert patterns.rows == [n.uuid for n in [*nodes, bad]]
    attributes = patterns.base.attributes
    assert attributes.get('wavelength') == 'MoKa' and attributes.get('n_failed') == 1
    assert attributes.get('settings')['wavelength_angstrom'] == pytest.approx(0.71073)
    assert np.isnan(patterns.profiles[4]).all() and 'overlapping atoms' in patterns.failures[0]['message']
    simulator = XrdSimulator('MoKa')
    expected = simulator.peaks(examples[2].structure)
    stored = orm.load_node(patterns.pk).peaks(2)
    np.testing.assert_allclose(stored.two_theta, expected.two_theta)
    np.testing.assert_allclose(stored.intensity, expected.intensity)
    assert stored.hkls == expected.hkls
    _, profiles = simulator.profiles_many([examples[2].structure], step=0.05)
    np.testing.assert_allclose(patterns.profiles[2], profiles[0])
    assert len(patterns.grid) == 2001


def test_bad_settings_are_refused_before_storing(aiida_profile_clean, examples):
    with pytest.raises(ValueError, match='unknown anode'):
        simulate_xrd_structures([examples[0].structure], {'wavelength': 'Kryptonite'})
    with pytest.raises(ValueError, match=r'unknown XRD setting\(s\)'):
        simulate_xrd_structures([examples[0].structure], {'wavelenght': 'CuKa'})
    for bad, message in (({'step': 0.03}, 'whole number of steps'), ({'fwhm': 0}, r'fwhm must be in \(0, 10\)'),
                         ({'shape': 'voigt'}, 'shape must be one of'), ({'eta': 2}, 'eta must be in')):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            simulate_xrd_structures([examples[0].structure], bad)
    assert orm.QueryBuilder().append(orm.StructureData).count() == 0
