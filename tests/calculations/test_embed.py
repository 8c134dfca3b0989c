"""``matembed.embed``: one process per batch, model node as input, same numbers as the core model."""

import numpy as np
import pytest
from aiida import orm
from aiida.common.exceptions import NotExistent
from aiida.common.links import LinkType
from pymatgen.core import Lattice, Structure

from aiida_matembed.calculations import embed_patterns, embed_structures, simulate_xrd_structures
from aiida_matembed.core.models import load_model
from aiida_matembed.data import import_model
from aiida_matembed.query import embedded_structure_pks, get_embedding, get_embedding_node, model_embeddings
from aiida_matembed.testing import bad_inputs


@pytest.fixture
def stored(aiida_profile_clean, examples):
    ordered = [e for e in examples if e.structure.is_ordered][:5]
    return [orm.StructureData(pymatgen=e.structure).store() for e in ordered], [e.structure for e in ordered]


def test_embeddings_are_linked_to_the_model_and_equal_the_core_model(stored):
    nodes, structures = stored
    features, process = embed_structures(nodes, 'matembed.cmml', device='cpu')
    model = import_model('matembed.cmml')
    assert process.is_finished_ok and process.inputs.model.pk == model.pk
    links = process.base.links.get_incoming(link_type=LinkType.INPUT_CALC).all()
    assert sorted(link.node.pk for link in links if link.link_label.startswith('structures__')) == sorted(
        n.pk for n in nodes
    )
    assert features.creator.pk == process.pk and features.rows == [n.uuid for n in nodes]
    attrs = features.base.attributes
    assert attrs.get('representation') == 'matembed.cmml' and attrs.get('n_features') == 256
    assert attrs.get('params') == {'model': 'matembed.cmml', 'model_sha256': model.sha256, 'modality': 'structure'}
    assert attrs.get('device') == 'cpu'
    expected = load_model('matembed.cmml', device='cpu').embed_structures(structures)
    np.testing.assert_allclose(features.features, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(features.features, axis=1), 1.0, rtol=1e-5)
    # query helpers
    np.testing.assert_array_equal(get_embedding(nodes[2], model), features.features[2])
    assert get_embedding_node(nodes[2], 'matembed.cmml')[1] == 2
    assert [f.pk for f in model_embeddings(model)] == [features.pk]
    assert embedded_structure_pks(model, modality='structure') == {n.pk for n in nodes}
    assert embedded_structure_pks(model, modality='xrd') == set()


def test_bad_structures_are_recorded_and_the_rest_kept(stored):
    nodes, _ = stored
    bad = {b.label: b.structure for b in bad_inputs()}
    overlapping = orm.StructureData(pymatgen=bad['overlapping atoms']).store()
    alloy = Structure(Lattice.cubic(3.6), [{'Cu': 0.5, 'Au': 0.5}], [[0, 0, 0]])
    batch = [nodes[0], overlapping, nodes[1], orm.StructureData(pymatgen=alloy).store()]
    features, process = embed_structures(batch, 'matembed.cmml', device='cpu')
    assert process.is_finished_ok
    assert [f['index'] for f in features.failures] == [1, 3]
    assert 'overlapping atoms' in features.failures[0]['message']
    assert features.failures[1]['error_type'] == 'PartiallyOccupiedError'
    assert np.isnan(features.features[[1, 3]]).all() and np.isfinite(features.features[[0, 2]]).all()
    assert process.outputs.failures.get_list() == features.failures
    with pytest.raises(NotExistent):
        get_embedding(overlapping, 'matembed.cmml')


def test_second_run_is_cached_whatever_the_device_and_batch_size(stored):
    nodes, _ = stored
    first, process = embed_structures(nodes, 'matembed.cmml', device='cpu', batch_size=2)
    second, cached = embed_structures(nodes, 'matembed.cmml', device='auto', batch_size=64)
    assert cached.base.caching.get_cache_source() == process.uuid
    np.testing.assert_array_equal(first.features, second.features)
    fresh = orm.load_node(process.pk)  # the bulk-linking shortcut gives aiida-core's standard hash
    assert fresh.base.caching.compute_hash() == process.base.caching.get_hash()
    other, not_cached = embed_structures(nodes, 'matembed.cmml', modality='xrd', device='cpu')
    assert not_cached.base.caching.get_cache_source() is None
    assert other.base.attributes.get('params')['modality'] == 'xrd'


def test_xrd_modality_and_stored_patterns_agree(stored):
    nodes, _ = stored
    vae = import_model('matembed.xrd_vae')
    from_structures, _ = embed_structures(nodes, vae, device='cpu')
    xrd = load_model('matembed.xrd_vae', device='cpu').xrd_input
    patterns, _ = simulate_xrd_structures(nodes, {'step': xrd.step, 'fwhm': xrd.fwhm, 'eta': xrd.eta})
    from_patterns, process = embed_patterns(patterns, vae, device='cpu')
    assert process.inputs.patterns.pk == patterns.pk
    np.testing.assert_allclose(from_patterns.features, from_structures.features, rtol=1e-4, atol=1e-5)
    # the structure -> simulate_xrd -> patterns -> embed path is found by the query helper
    features, row = get_embedding_node(nodes[1], vae)
    assert row == 1 and features.pk in {from_patterns.pk, from_structures.pk}


def test_patterns_simulated_with_other_settings_are_refused(stored):
    nodes, _ = stored
    patterns, _ = simulate_xrd_structures(nodes[:2])  # default 0.02° step and 0.1° width, not the model's
    with pytest.raises(ValueError, match=r'not simulated with the settings of matembed\.cmml: .*step 0\.02 vs 0\.05'):
        embed_patterns(patterns, 'matembed.cmml')


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'model': 'matembed.nope'}, "unknown model 'matembed.nope'"),
        ({'batch_size': 0}, 'batch_size must be a positive integer'),
        ({'device': 'gpu'}, "device must be 'cpu', 'cuda', 'cuda:N' or 'auto'"),
        ({'model': 'matembed.xrd_symmetry', 'modality': 'structure'}, 'reads xrd, not'),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_stored(aiida_profile_clean, examples, kwargs, message):
    kwargs = {'model': 'matembed.cmml', **kwargs}
    with pytest.raises(ValueError, match=message):
        embed_structures([examples[0].structure], **kwargs)
    assert orm.QueryBuilder().append(orm.StructureData).count() == 0


def test_cuda_without_a_gpu_is_a_clear_error(aiida_profile_clean, examples):
    import torch

    if torch.cuda.is_available():
        pytest.skip('a GPU is present')
    with pytest.raises(ValueError, match='sees no GPU'):
        embed_structures([examples[0].structure], 'matembed.cmml', device='cuda')
