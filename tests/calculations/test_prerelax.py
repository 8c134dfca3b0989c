"""``matembed.prerelax``: CHGNet relaxations as one provenance-tracked batch (CHGNet's shipped weights)."""

import numpy as np
import pytest
from aiida import orm
from pymatgen.core import Lattice, Structure

pytest.importorskip('chgnet', reason='the chgnet extra is not installed (pip install "aiida-matembed[chgnet]")')

from aiida_matembed.calculations.prerelax import check_parameters, prerelax_structures


def test_relaxes_a_distorted_cell_and_keeps_the_good_items_of_a_bad_batch(aiida_profile_clean):
    from chgnet.model import CHGNet

    silicon = Structure.from_spacegroup('Fd-3m', Lattice.cubic(5.43), ['Si'], [[0, 0, 0]]).get_primitive_structure()
    distorted = silicon.copy()
    distorted.apply_strain(0.04)
    distorted.translate_sites([0], [0.03, -0.02, 0.01])
    disordered = Structure(Lattice.cubic(3.6), [{'Cu': 0.5, 'Au': 0.5}], [[0, 0, 0]])
    relaxed, process = prerelax_structures([distorted, disordered], {'fmax': 0.05})
    assert process.is_finished_ok
    assert relaxed[1] is None
    failures = process.outputs.failures.get_list()
    assert [f['index'] for f in failures] == [1]
    summary = process.outputs.summary.get_array('summary')
    start, end, max_force, steps = summary[0]
    assert end < start and max_force < 0.05 and steps > 1
    assert np.isnan(summary[1]).all()
    # the relaxed structure is an output of the process, and CHGNet agrees that it is relaxed
    node = relaxed[0]
    assert node.creator.pk == process.pk
    prediction = CHGNet.load(verbose=False).predict_structure(node.get_pymatgen_structure())
    assert np.abs(prediction['f']).max() < 0.06
    assert abs(node.get_pymatgen_structure().volume / silicon.volume - 1) < 0.06  # CHGNet's Si is within a few %


@pytest.mark.parametrize(
    ('options', 'match'),
    [({'fmax': 0}, 'fmax'), ({'steps': 0}, 'steps'), ({'model_version': '9'}, 'model_version'), ({'x': 1}, 'unknown')],
)
def test_bad_parameters(options, match):
    with pytest.raises(ValueError, match=match):
        check_parameters(options)


def test_inputs_are_stored_structures(aiida_profile_clean):
    silicon = Structure.from_spacegroup('Fd-3m', Lattice.cubic(5.43), ['Si'], [[0, 0, 0]]).get_primitive_structure()
    node = orm.StructureData(pymatgen=silicon).store()
    relaxed, process = prerelax_structures([node], {'steps': 5})
    assert process.inputs.structures['s0000000'].pk == node.pk
    assert relaxed[0] is not None
