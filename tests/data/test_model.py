"""``matembed.model`` nodes: import verifies the checksum, refuses pickles, never duplicates."""

import json
import pickle
import shutil

import numpy as np
import pytest
from aiida import orm

from aiida_matembed.core.models import ChecksumError, load_model, model_path, read_card, sha256_file
from aiida_matembed.data import ModelData, import_model, load_model_node


@pytest.fixture
def cmml_copy(tmp_path):
    """A copy of the shipped CMML checkpoint that tests may damage."""
    source = model_path('matembed.cmml')
    shutil.copy(source, tmp_path / 'copy.safetensors')
    shutil.copy(source.with_suffix('.json'), tmp_path / 'copy.json')
    return tmp_path / 'copy.safetensors'


def test_import_registered_model_has_queryable_attributes(aiida_profile_clean):
    node = import_model('matembed.cmml')
    card = read_card(model_path('matembed.cmml'))
    assert node.is_stored and isinstance(node, ModelData)
    attrs = node.base.attributes
    assert attrs.get('name') == 'matembed.cmml' and attrs.get('kind') == 'cmml'
    assert attrs.get('sha256') == card.sha256 == sha256_file(model_path('matembed.cmml'))
    assert attrs.get('embedding_dim') == 256 and attrs.get('modalities') == ['structure', 'xrd']
    assert attrs.get('metrics')['validation'] == pytest.approx(card.metrics['validation'], rel=1e-12)
    assert attrs.get('inputs') == card.inputs
    found = orm.QueryBuilder().append(ModelData, filters={'attributes.sha256': card.sha256}).all(flat=True)
    assert [n.pk for n in found] == [node.pk]


def test_importing_twice_gives_the_same_node(aiida_profile_clean, cmml_copy):
    first = import_model('matembed.cmml')
    assert import_model('matembed.cmml').pk == first.pk
    assert import_model(cmml_copy).pk == first.pk  # same name and weights from another path
    assert load_model_node('matembed.cmml').pk == first.pk
    assert load_model_node(first.pk).pk == first.pk
    assert orm.QueryBuilder().append(ModelData).count() == 1


def test_loaded_node_embeds_like_the_checkpoint(aiida_profile_clean, examples):
    node = import_model('matembed.cmml')
    structures = [e.structure for e in examples[:4]]
    expected = load_model('matembed.cmml', device='cpu').embed_structures(structures)
    np.testing.assert_allclose(node.load_model(device='cpu').embed_structures(structures), expected, rtol=1e-6)


def test_tampered_weights_are_refused(aiida_profile_clean, cmml_copy):
    data = bytearray(cmml_copy.read_bytes())
    data[-10] ^= 0xFF
    cmml_copy.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match='differs'):
        import_model(cmml_copy)
    assert orm.QueryBuilder().append(ModelData).count() == 0


class _Payload:
    """Unpickling this object would create a file: the test checks that never happens."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), 'w'))


def test_pickle_is_refused_without_unpickling(aiida_profile_clean, cmml_copy, tmp_path):
    sentinel = tmp_path / 'unpickled'
    cmml_copy.write_bytes(pickle.dumps(_Payload(sentinel)))
    card_path = cmml_copy.with_suffix('.json')
    card = json.loads(card_path.read_text())
    card['sha256'] = sha256_file(cmml_copy)  # a consistent card: the format check must still refuse it
    card_path.write_text(json.dumps(card))
    with pytest.raises(ValueError, match='not a safetensors file'):
        import_model(cmml_copy)
    assert not sentinel.exists()


def test_card_without_checksum_and_unknown_names_are_refused(aiida_profile_clean, cmml_copy):
    card_path = cmml_copy.with_suffix('.json')
    card = json.loads(card_path.read_text())
    card['sha256'] = ''
    card_path.write_text(json.dumps(card))
    with pytest.raises(ValueError, match='no sha256'):
        import_model(cmml_copy)
    with pytest.raises(ValueError, match=r"unknown model 'matembed\.nope'; registered models: .*matembed\.cmml"):
        import_model('matembed.nope')
    with pytest.raises(FileNotFoundError):
        import_model('/nonexistent/model.safetensors')


def test_weights_changed_in_the_repository_are_detected(aiida_profile_clean):
    node = ModelData(model_path('matembed.xrd_vae').read_bytes(), read_card(model_path('matembed.xrd_vae')))
    node.base.attributes.set('sha256', '0' * 64)  # unstored: simulate a node whose bytes no longer match
    with pytest.raises(ChecksumError):
        node.load_model(device='cpu')


def test_a_file_borrowing_a_registered_name_with_other_weights_is_refused(aiida_profile_clean, tmp_path):
    model = load_model('matembed.xrd_vae', device='cpu')
    state = model.network.state_dict()
    first = next(iter(state))
    state[first] = state[first] + 1.0
    from aiida_matembed.core.models import write_checkpoint

    weights, _ = write_checkpoint(tmp_path / 'impostor', state, model.card)
    with pytest.raises(ValueError, match="'matembed.xrd_vae' is the name of a registered model"):
        import_model(weights)


def test_load_by_uuid(aiida_profile_clean):
    node = import_model('matembed.xrd_vae')
    assert load_model_node(node.uuid).pk == node.pk
    with pytest.raises(ValueError, match='not a matembed.model'):
        load_model_node(orm.Int(1).store().uuid)
