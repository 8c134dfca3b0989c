"""Crystal graphs against the way CGCNN builds them: pymatgen ``get_all_neighbors`` + sort + truncate."""

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch

from aiida_matembed.core.neighbors import check_cutoff, neighbor_list
from aiida_matembed.core.representations import FeaturizationError, get_representation
from aiida_matembed.core.structures import InvalidStructureError


@pytest.fixture(scope='module')
def structures(prototypes):
    return [p.structure for p in prototypes if p.structure.is_ordered][::3]


def test_edges_are_the_nearest_neighbours_cgcnn_finds(structures):
    rep = get_representation('matembed.crystal_graph')
    graphs = rep.graphs_many(structures).graphs
    for structure, data in zip(structures, graphs, strict=True):
        neighbours = structure.get_all_neighbors(8.0)
        target = data.edge_index[1].numpy()
        lengths = data.edge_weight.numpy().astype(float)
        for i, site_neighbours in enumerate(neighbours):
            expected = sorted(n.nn_distance for n in site_neighbours)[:12]
            np.testing.assert_allclose(np.sort(lengths[target == i]), expected, rtol=1e-6)


def test_data_fields_are_consistent_and_batch(structures):
    rep = get_representation('matembed.crystal_graph')
    graphs = rep.graphs_many(structures[:10]).graphs
    for data, structure in zip(graphs, structures[:10], strict=True):
        assert data.num_nodes == len(structure)
        assert data.x.shape == (len(structure), 90) and data.x.dtype == torch.float32
        source, target = data.edge_index
        vectors = data.pos[source] + data.edge_image.float() @ data.cell[0] - data.pos[target]
        torch.testing.assert_close(data.edge_vec, vectors, rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(data.edge_weight, data.edge_vec.norm(dim=1), rtol=1e-5, atol=1e-5)
        assert data.edge_attr.shape == (data.edge_index.shape[1], len(rep.gaussian_centers))
        assert data.z.tolist() == list(structure.atomic_numbers)
    batch = Batch.from_data_list(graphs)
    assert batch.num_graphs == 10
    assert batch.num_nodes == sum(len(s) for s in structures[:10])
    assert int(batch.edge_index.max()) < batch.num_nodes


def test_a_cell_much_smaller_than_the_cutoff_links_to_its_own_images():
    polonium = Structure(Lattice.cubic(3.35), ['Po'], [[0, 0, 0]])
    data = get_representation('matembed.crystal_graph').graph(polonium)
    assert data.edge_index.shape[1] == 12
    lengths = np.sort(data.edge_weight.numpy())
    np.testing.assert_allclose(lengths[:6], 3.35, rtol=1e-6)  # the 6 faces
    np.testing.assert_allclose(lengths[6:], 3.35 * np.sqrt(2), rtol=1e-6)  # 6 of the 12 edges
    assert (data.edge_index == 0).all()


def test_graph_is_deterministic_under_ties():
    rep = get_representation('matembed.crystal_graph')
    polonium = Structure(Lattice.cubic(3.35), ['Po'], [[0, 0, 0]])
    first, second = rep.graph(polonium), rep.graph(polonium)
    assert torch.equal(first.edge_image, second.edge_image)


def test_pooled_vector_view(structures):
    rep = get_representation('matembed.crystal_graph')
    structure = structures[0]
    vector = rep.featurize(structure)
    data = rep.graph(structure)
    width = data.x.shape[1]
    np.testing.assert_allclose(vector[:width], data.x.numpy().mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(vector[width : 2 * width], data.x.numpy().max(axis=0), rtol=1e-6)
    np.testing.assert_allclose(vector[2 * width :], data.edge_attr.numpy().mean(axis=0), rtol=1e-5, atol=1e-7)


def test_element_missing_from_the_atom_table_is_named():
    rep = get_representation('matembed.crystal_graph')  # cgnf covers Z = 1..100
    heavy = Structure(Lattice.cubic(4.0), ['Na', 'Og'], [[0, 0, 0], [0.5, 0.5, 0.5]])
    good = Structure(Lattice.cubic(4.0), ['Na', 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(FeaturizationError, match="element Og is not in the atom feature table 'cgnf'"):
        rep.graph(heavy)
    result = rep.graphs_many([good, heavy], errors='record')
    assert result.graphs[0] is not None and result.graphs[1] is None
    assert [f.index for f in result.failures] == [1]


@pytest.mark.parametrize(
    ('params', 'message'),
    [
        ({'cutoff': 0.0}, 'cutoff must be > 0'),
        ({'cutoff': 500.0}, 'supported maximum'),
        ({'max_neighbors': 0}, 'max_neighbors must be an integer'),
        ({'gaussian_width': -1}, 'gaussian_width must be a number'),
        ({'atom_features': 'nope'}, 'unknown atom_features table'),
    ],
)
def test_bad_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        get_representation('matembed.crystal_graph', **params)


def test_neighbor_list_guards():
    with pytest.raises(ValueError, match='must be a number'):
        check_cutoff('5')
    cart = np.zeros((1, 3))
    with pytest.raises(InvalidStructureError, match='neighbour pairs'):
        neighbor_list(cart, np.eye(3) * 2.0, 10.0, max_pairs=100)
    pairs = neighbor_list(cart, np.eye(3) * 2.0, 2.5)
    assert len(pairs.distances) == 6 and not (pairs.images == 0).all(axis=1).any()


def test_direct_batch_equals_torch_geometric_collate(structures):
    rep = get_representation('matembed.crystal_graph')
    batch, rows, failures = rep.graphs_batch(structures[:20])
    reference = Batch.from_data_list(rep.graphs_many(structures[:20]).graphs)
    assert rows == list(range(20)) and not failures
    assert batch.num_graphs == reference.num_graphs == 20
    for key in (
        'x',
        'z',
        'pos',
        'cell',
        'edge_index',
        'edge_vec',
        'edge_weight',
        'edge_attr',
        'edge_image',
        'batch',
        'ptr',
    ):
        torch.testing.assert_close(batch[key], reference[key], msg=key)
    for mine, theirs in zip(batch.to_data_list(), reference.to_data_list(), strict=True):
        torch.testing.assert_close(mine.edge_index, theirs.edge_index)
        torch.testing.assert_close(mine.x, theirs.x)
    torch.testing.assert_close(batch.get_example(7).edge_attr, reference.get_example(7).edge_attr)
