"""``matembed.crystal_graphs``: graphs stored with the batch and reloaded as the same ``Data`` objects."""

import pytest
import torch
from aiida import orm

from aiida_matembed.calculations import featurize_structures
from aiida_matembed.core.representations import get_representation
from aiida_matembed.data import CrystalGraphsData
from aiida_matembed.testing import bad_inputs


@pytest.fixture
def stored(aiida_profile_clean, examples):
    return [orm.StructureData(pymatgen=e.structure).store() for e in examples if e.structure.is_ordered]


def test_graphs_are_stored_next_to_the_features_and_reload(stored, examples):
    params = {'cutoff': 6.0, 'max_neighbors': 8, 'gaussian_step': 0.5}
    features, process = featurize_structures(stored, 'matembed.crystal_graph', params, store_graphs=True)
    graphs = process.outputs.graphs
    assert isinstance(graphs, CrystalGraphsData) and graphs.is_stored
    assert graphs.rows == [s.uuid for s in stored] == features.rows
    assert graphs.base.attributes.get('n_graphs') == len(stored)
    rep = get_representation('matembed.crystal_graph', **params)
    expected = rep.graphs_many([s.get_pymatgen() for s in stored]).graphs
    reloaded = orm.load_node(graphs.pk).to_pyg()
    for ours, reference in zip(reloaded, expected, strict=True):
        for key in ('x', 'z', 'edge_index', 'edge_image', 'edge_attr', 'edge_weight', 'edge_vec', 'cell'):
            torch.testing.assert_close(ours[key], reference[key])
    torch.testing.assert_close(graphs.to_batch().edge_attr, torch.cat([g.edge_attr for g in expected]))
    one = graphs.graph_of(stored[3].uuid)
    torch.testing.assert_close(one.edge_attr, expected[3].edge_attr)


def test_failed_rows_have_no_graph(aiida_profile_clean, examples):
    good = orm.StructureData(pymatgen=examples[0].structure).store()
    overlapping = next(b for b in bad_inputs() if b.label == 'overlapping atoms').structure
    bad = orm.StructureData(pymatgen=overlapping).store()
    features, process = featurize_structures([good, bad], 'matembed.crystal_graph', store_graphs=True)
    assert process.outputs.graphs.rows == [good.uuid]
    assert features.failed_uuids() == {bad.uuid}
    with pytest.raises(KeyError):
        process.outputs.graphs.graph_of(bad.uuid)


def test_store_graphs_needs_a_graph_representation(stored):
    with pytest.raises(ValueError, match='only possible for a graph representation'):
        featurize_structures(stored, 'matembed.rdf', store_graphs=True)
