"""The batched calcfunction: one process, every structure an input, one output matrix."""

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType

from aiida_matembed.calculations import featurize, featurize_structures
from aiida_matembed.core.representations import get_representation
from aiida_matembed.testing import bad_inputs


@pytest.fixture
def stored_examples(aiida_profile_clean, examples):
    return [orm.StructureData(pymatgen=e.structure).store() for e in examples]


def test_one_process_one_output_every_structure_an_input(stored_examples, examples):
    features, process = featurize_structures(stored_examples, 'matembed.magpie')
    assert isinstance(process, orm.CalcFunctionNode) and process.is_finished_ok
    inputs = process.base.links.get_incoming(link_type=LinkType.INPUT_CALC).all()
    structure_links = [link for link in inputs if link.link_label.startswith('structures__')]
    assert len(structure_links) == len(stored_examples)
    assert {link.node.uuid for link in structure_links} == {s.uuid for s in stored_examples}
    assert features.creator.uuid == process.uuid
    assert features.rows == [s.uuid for s in stored_examples]
    expected = get_representation('matembed.magpie').featurize_many([e.structure for e in examples]).features
    np.testing.assert_allclose(features.features, expected, rtol=1e-12)
    assert process.base.attributes.get('representation_version') == 1


def test_bad_structures_are_recorded_and_good_rows_kept(aiida_profile_clean, examples):
    good = [orm.StructureData(pymatgen=e.structure).store() for e in examples[:3]]
    overlapping = next(b for b in bad_inputs() if b.label == 'overlapping atoms').structure
    bad = orm.StructureData(pymatgen=overlapping).store()
    features, process = featurize_structures([good[0], bad, good[1], good[2]], 'matembed.magpie')
    assert process.is_finished_ok
    assert features.base.attributes.get('n_failed') == 1
    (failure,) = features.failures
    assert (failure['index'], failure['pk']) == (1, bad.pk)
    assert 'overlapping atoms' in failure['message']
    assert process.outputs.failures.get_list() == features.failures
    assert np.isnan(features.features[1]).all()
    assert np.isfinite(features.features[[0, 2, 3]]).all()


def test_second_run_is_served_from_the_cache_with_a_standard_hash(stored_examples):
    first, process = featurize_structures(stored_examples, 'matembed.element_fraction')
    second, cached = featurize_structures(stored_examples, 'matembed.element_fraction')
    assert cached.base.caching.get_cache_source() == process.uuid
    np.testing.assert_array_equal(first.features, second.features)
    # the bulk-linking shortcut must give the hash aiida-core computes the standard way
    fresh = orm.load_node(process.pk)
    assert fresh.base.caching.compute_hash() == process.base.caching.get_hash()


def test_pymatgen_and_ase_inputs_are_stored_first(aiida_profile_clean, examples):
    from pymatgen.io.ase import AseAtomsAdaptor

    structures = [examples[0].structure, AseAtomsAdaptor.get_atoms(examples[1].structure)]
    features, _ = featurize_structures(structures, 'matembed.magpie')
    assert features.base.attributes.get('n_rows') == 2
    assert all(orm.load_node(uuid).is_stored for uuid in features.rows)


def test_bad_representation_or_parameters_fail_before_storing(aiida_profile_clean, examples):
    with pytest.raises(ValueError, match='unknown representation'):
        featurize_structures([examples[0].structure], 'matembed.nope')
    with pytest.raises(ValueError, match='unknown option'):
        featurize_structures([examples[0].structure], 'matembed.magpie', {'bogus': 1})
    assert orm.QueryBuilder().append(orm.StructureData).count() == 0
    with pytest.raises(ValueError, match='no structures'):
        featurize_structures([], 'matembed.magpie')


def test_calcfunction_rejects_inputs_outside_the_structures_namespace(stored_examples):
    with pytest.raises(ValueError, match='unexpected inputs'):
        featurize.run_get_node(representation=orm.Str('matembed.magpie'), other=stored_examples[0])


def test_equal_structures_of_other_nodes_are_not_a_cache_hit(aiida_profile_clean, examples):
    # the output names its rows' structure UUIDs: a cached copy would name the original's structures
    from aiida_matembed.query import get_features

    first = [orm.StructureData(pymatgen=e.structure).store() for e in examples[:3]]
    again = [orm.StructureData(pymatgen=e.structure).store() for e in examples[:3]]
    _, process = featurize_structures(first, 'matembed.element_fraction')
    copy, other = featurize_structures(again, 'matembed.element_fraction')
    assert other.base.caching.get_cache_source() is None
    assert copy.rows == [node.uuid for node in again]
    assert get_features(again[0], 'matembed.element_fraction').shape == (103,)
    _, same = featurize_structures(first, 'matembed.element_fraction')
    assert same.base.caching.get_cache_source() == process.uuid
