import numpy as np
import pytest
from aiida import orm
from aiida.common.exceptions import NotExistent

from aiida_matembed.calculations import featurize_structures
from aiida_matembed.query import featurized_structures, get_features, get_features_node
from aiida_matembed.testing import bad_inputs


def test_features_of_a_structure_and_structures_of_a_representation(aiida_profile_clean, examples):
    nodes = [orm.StructureData(pymatgen=e.structure).store() for e in examples[:5]]
    bad = orm.StructureData(pymatgen=bad_inputs()[1].structure).store()
    features, _ = featurize_structures([*nodes, bad], 'matembed.magpie')
    np.testing.assert_array_equal(get_features(nodes[2], 'matembed.magpie'), features.features[2])
    np.testing.assert_array_equal(get_features(nodes[2].pk, 'matembed.magpie', version=1), features.features[2])
    assert {n.pk for n in featurized_structures('matembed.magpie')} == {n.pk for n in nodes}
    assert featurized_structures('matembed.magpie', version=2) == []
    assert featurized_structures('matembed.element_fraction') == []
    with pytest.raises(NotExistent):
        get_features(bad, 'matembed.magpie')  # its row failed
    node, row = get_features_node(bad, 'matembed.magpie', include_failed=True)
    assert node.pk == features.pk and row == 5


def test_params_select_the_matching_result(aiida_profile_clean, examples):
    node = orm.StructureData(pymatgen=examples[0].structure).store()
    magpie_table, _ = featurize_structures([node], 'matembed.element_embedding', {'table': 'magpie'})
    megnet, _ = featurize_structures([node], 'matembed.element_embedding', {'table': 'megnet16'})
    found, _ = get_features_node(node, 'matembed.element_embedding', params={'table': 'magpie'})
    assert found.pk == magpie_table.pk
    found, _ = get_features_node(node, 'matembed.element_embedding', params={'table': 'megnet16'})
    assert found.pk == megnet.pk
    newest, _ = get_features_node(node, 'matembed.element_embedding')
    assert newest.pk == megnet.pk


def test_params_left_to_the_batch_match_the_resolved_ones(aiida_profile_clean, examples):
    node = orm.StructureData(pymatgen=examples[0].structure).store()
    featurize_structures([node], 'matembed.partial_rdf', {'cutoff': 4.0, 'bin_size': 0.5})
    assert get_features(node, 'matembed.partial_rdf', params={'cutoff': 4.0, 'bin_size': 0.5}).shape[0] > 0
    with pytest.raises(NotExistent):
        get_features(node, 'matembed.partial_rdf', params={'cutoff': 5.0, 'bin_size': 0.5})
