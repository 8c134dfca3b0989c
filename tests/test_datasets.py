"""Structure sets <-> AiiDA Groups, with DFT results read from the provenance graph."""

import math

import numpy as np
import pytest
from aiida import orm
from aiida.engine import calcfunction

from aiida_matembed.core.datasets import StructureSet
from aiida_matembed.datasets import DATASET_EXTRA, LABELS_EXTRA, structure_set_from_group, structure_set_to_group


@calcfunction
def fake_dft(structure, shift):
    """A DFT-like calculation: an 'energy' from the structure, in the outputs under ``output_parameters``."""
    energy = -1.5 * len(structure.sites) + shift.value
    return {'output_parameters': orm.Dict({'energy': energy, 'scf': {'converged': True}}), 'gap': orm.Float(0.5)}


@calcfunction
def broken_dft(structure):
    raise RuntimeError('SCF did not converge')


@pytest.fixture
def small_set(ordered_examples):
    return StructureSet.from_structures(
        [e.structure for e in ordered_examples[:4]],
        labels={'name': [e.label for e in ordered_examples[:4]], 'weight': [1.0, np.nan, 3.0, 4.0]},
        metadata={'builder': 'test'},
    )


@pytest.fixture(scope='module')
def ordered_examples(examples):
    return [e for e in examples if e.structure.is_ordered]


def test_group_round_trip_keeps_structures_and_labels(aiida_profile_clean, small_set):
    group = structure_set_to_group(small_set, 'training-set')
    assert group.count() == 4
    assert group.base.extras.get(DATASET_EXTRA)['sha256'] == small_set.sha256()
    node = min(group.nodes, key=lambda n: n.pk)
    assert node.base.extras.get(LABELS_EXTRA)['prototype'] == 'AB_cF8_225_a_b'
    assert node.base.extras.get(LABELS_EXTRA)['name'] == 'NaCl'
    back = structure_set_from_group('training-set')
    assert len(back) == 4
    for key in small_set.labels:
        if small_set.labels[key].dtype.kind == 'f':
            np.testing.assert_array_equal(back.labels[key], small_set.labels[key])  # NaN stays NaN
        else:
            assert back.labels[key].tolist() == small_set.labels[key].tolist()
    np.testing.assert_allclose(back.lattices, small_set.lattices)
    np.testing.assert_array_equal(back.numbers, small_set.numbers)
    assert back.labels['pk'].tolist() == sorted(n.pk for n in group.nodes)
    assert back.metadata['source_dataset']['n_structures'] == 4
    with pytest.raises(ValueError, match='already has 4 nodes'):
        structure_set_to_group(small_set, 'training-set')


def test_dft_outputs_come_from_the_newest_finished_process(aiida_profile_clean, small_set):
    group = structure_set_to_group(small_set, 'with-dft')
    nodes = sorted(group.nodes, key=lambda n: n.pk)
    fake_dft(nodes[0], orm.Float(0.0))
    fake_dft(nodes[0], orm.Float(10.0))  # newer: this one counts
    fake_dft(nodes[2], orm.Float(0.0))
    with pytest.raises(RuntimeError):
        broken_dft(nodes[1])  # excepted, not finished: ignored
    dft = structure_set_from_group(
        group,
        dft_outputs={'energy': 'output_parameters.energy', 'converged': 'output_parameters.scf.converged',
                     'gap': 'gap'},
    )  # fmt: skip
    energies = dft.labels['energy']
    assert energies[0] == -1.5 * len(nodes[0].sites) + 10.0
    assert math.isnan(energies[1]) and math.isnan(energies[3])
    assert energies[2] == -1.5 * len(nodes[2].sites)
    assert dft.labels['gap'][0] == 0.5 and math.isnan(dft.labels['gap'][1])
    assert dft.labels['converged'][0] == 1.0
    only_attributes = structure_set_from_group(group, extras=(), attributes=('pbc1',))
    assert only_attributes.labels['pbc1'].tolist() == [True] * 4
    assert set(only_attributes.labels['source']) == {'user'}  # standard labels recomputed without the extras


def test_empty_group_is_an_error(aiida_profile_clean):
    orm.Group(label='empty').store()
    with pytest.raises(ValueError, match='has no StructureData'):
        structure_set_from_group('empty')
