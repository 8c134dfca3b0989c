"""Checkpoints: safetensors + card round trip, checksum verification, pickles refused."""

import json
import pickle

import pytest
import torch

from aiida_matembed.core.models import ChecksumError, ModelCard, load_model, read_card, sha256_file, write_checkpoint
from aiida_matembed.core.models.checkpoint import checkpoint_paths, read_weights


def card(**kw):
    return ModelCard(name='test.model', kind='xrd_vae', architecture={}, inputs={}, **kw)


def test_round_trip_and_sha256(tmp_path):
    state = {'a': torch.arange(6, dtype=torch.float32).reshape(2, 3), 'b': torch.ones(4)}
    weights, card_path = write_checkpoint(tmp_path / 'm', state, card(metrics={'x': 1.0}))
    assert weights.name == 'm.safetensors' and card_path.name == 'm.json'
    loaded = read_card(weights)
    assert loaded.sha256 == sha256_file(weights) and len(loaded.sha256) == 64
    assert loaded.metrics == {'x': 1.0}
    tensors = read_weights(weights, loaded.sha256)
    assert torch.equal(tensors['a'], state['a']) and torch.equal(tensors['b'], state['b'])
    assert checkpoint_paths(card_path) == (weights, card_path)


def test_tampered_weights_fail_the_checksum(tmp_path):
    weights, _ = write_checkpoint(tmp_path / 'm', {'a': torch.zeros(3)}, card())
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match='differs from the model card'):
        read_weights(weights, read_card(weights).sha256)


class _Payload:
    """Unpickling this object would create a file: the test checks that never happens."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), 'w'))


def test_pickled_weights_are_refused_without_unpickling(tmp_path):
    sentinel = tmp_path / 'unpickled'
    weights = tmp_path / 'evil.safetensors'
    weights.write_bytes(pickle.dumps(_Payload(sentinel)))
    (tmp_path / 'evil.json').write_text(json.dumps(card(sha256=sha256_file(weights)).as_dict()))
    with pytest.raises(ValueError, match='not a safetensors file'):
        load_model(weights)
    assert not sentinel.exists()


def test_torch_save_file_is_refused(tmp_path):
    weights = tmp_path / 'zip.safetensors'
    torch.save({'a': torch.zeros(2)}, weights)
    with pytest.raises(ValueError, match='not a safetensors file'):
        read_weights(weights)


def test_bad_cards(tmp_path):
    with pytest.raises(FileNotFoundError, match='no model card'):
        read_card(tmp_path / 'missing')
    (tmp_path / 'bad.json').write_text('{not json')
    with pytest.raises(ValueError, match='not valid JSON'):
        read_card(tmp_path / 'bad')
    (tmp_path / 'partial.json').write_text(json.dumps({'name': 'x'}))
    with pytest.raises(ValueError, match='lacks'):
        read_card(tmp_path / 'partial')
    (tmp_path / 'extra.json').write_text(json.dumps({**card().as_dict(), 'surprise': 1}))
    with pytest.raises(ValueError, match='unknown model-card keys'):
        read_card(tmp_path / 'extra')


def test_card_without_checksum_or_unknown_kind_is_refused(tmp_path):
    write_checkpoint(tmp_path / 'm', {'a': torch.zeros(1)}, card())
    data = json.loads((tmp_path / 'm.json').read_text())
    (tmp_path / 'm.json').write_text(json.dumps({**data, 'sha256': ''}))
    with pytest.raises(ValueError, match='no sha256'):
        load_model(tmp_path / 'm.safetensors')
    (tmp_path / 'm.json').write_text(json.dumps({**data, 'kind': 'mystery'}))
    with pytest.raises(ValueError, match='unknown model kind'):
        load_model(tmp_path / 'm.safetensors')


def test_unknown_registered_name():
    with pytest.raises(ValueError, match=r"unknown model 'matembed\.nope'; registered models: .*matembed\.cmml"):
        load_model('matembed.nope')
