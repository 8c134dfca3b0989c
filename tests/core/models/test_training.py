"""Training end to end on real structures (tiny networks, a few steps): checkpoints, reloading, determinism."""

import json

import numpy as np
import pytest
from ase.collections import dcdft

from aiida_matembed.core.datasets.store import StructureSet
from aiida_matembed.core.models import CmmlModel, XrdSymmetryModel, XrdVaeModel, load_model, read_card, sha256_file
from aiida_matembed.core.models.training import TrainConfig, describe_training_data, train
from aiida_matembed.testing import bad_inputs

TINY_XRD = {'wavelength': 'CuKa', 'two_theta_range': [10.0, 110.0], 'step': 0.5, 'fwhm': 0.6}
TINY_MODEL = {'xrd': {'channels': [4, 8], 'positions': 4, 'hidden': 16}}


@pytest.fixture(scope='module')
def small_set(prototypes):
    structures = [p.structure for p in prototypes if len(p.structure) <= 8][:48]
    return StructureSet.from_structures(structures, source='aflow')


def config(tmp_path, task, **training):
    model = dict(TINY_MODEL)
    if task == 'cmml':
        model |= {'embedding_dim': 16, 'crystal': {'hidden': 16, 'layers': 1}}
    if task == 'xrd_symmetry':
        model |= {'features': 16}
    return TrainConfig(
        task=task,
        name=f'test.{task}',
        output=str(tmp_path / task),
        data={'build': {}, 'val_fraction': 0.25},
        inputs={'xrd': TINY_XRD, 'graph': {'cutoff': 4.0}},
        model=model,
        training={'epochs': 2, 'batch_size': 16, 'seed': 7, **training},
    )


def test_cmml_trains_writes_a_card_and_reloads_identically(tmp_path, small_set, examples):
    cfg = config(tmp_path, 'cmml', views=2, augment={'noise': 0.01, 'zero_shift': 0.1})
    result = train(cfg, structure_set=small_set, progress=False, log=lambda _: None)
    assert result.checkpoint.is_file() and len(result.history) == 2
    card = read_card(result.checkpoint)
    assert card.kind == 'cmml' and card.sha256 == sha256_file(result.checkpoint)
    assert card.data['sha256'] == small_set.sha256() and card.data['n_structures'] == len(small_set)
    assert set(card.metrics['validation']) == {'val_loss', 'val_top1', 'val_top5'}
    assert card.inputs['xrd']['step'] == 0.5 and card.inputs['graph']['cutoff'] == 4.0
    assert card.training['best_epoch'] in (1, 2) and card.training['augment'] == {'noise': 0.01, 'zero_shift': 0.1}
    json.dumps(card.as_dict())

    model = load_model(result.checkpoint, device='cpu')
    assert isinstance(model, CmmlModel) and model.embedding_dim == 16
    structures = [e.structure for e in examples[:5]]
    np.testing.assert_array_equal(model.embed_structures(structures), result.model.embed_structures(structures))
    from_xrd = model.embed_xrd(structures)
    _, profiles = model.xrd_input.simulator().profiles_many(structures, step=0.5, fwhm=0.6)
    np.testing.assert_allclose(model.embed_patterns(profiles), from_xrd, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(from_xrd, axis=1), 1.0, rtol=1e-5)
    assert model.two_theta_grid[0] == 10.0 and len(model.two_theta_grid) == 201

    # same seed, same weights (up to the order of parallel float reductions in the CPU scatter kernels)
    first = {k: v.clone() for k, v in result.model.network.state_dict().items()}
    again = train(cfg, structure_set=small_set, progress=False, log=lambda _: None)
    for key, value in again.model.network.state_dict().items():
        np.testing.assert_allclose(value.numpy(), first[key].numpy(), rtol=1e-4, atol=1e-5, err_msg=key)


def test_cmml_triplet_loss_and_bad_items_recorded(tmp_path, small_set, examples):
    cfg = config(tmp_path, 'cmml', loss='triplet')
    result = train(cfg, structure_set=small_set, progress=False, log=lambda _: None)
    assert result.model.card.training['loss'] == 'triplet'
    bad = next(b.structure for b in bad_inputs() if b.label == 'overlapping atoms')
    good = [e.structure for e in examples[:2]]
    with pytest.raises(ValueError, match='overlap|too close'):
        result.model.embed_structures([good[0], bad])
    out = result.model.embed_structures([good[0], bad, good[1]], errors='record')
    assert np.isnan(out[1]).all() and np.isfinite(out[[0, 2]]).all()
    assert [f.index for f in result.model.failures] == [1]
    out = result.model.embed_xrd([good[0], bad, good[1]], errors='record')
    assert np.isnan(out[1]).all() and np.isfinite(out[[0, 2]]).all()


def test_symmetry_classifier_trains_and_predicts(tmp_path, small_set, examples):
    cfg = config(tmp_path, 'xrd_symmetry', views=2, augment={'preferred_orientation': [0.8, 1.2], 'broadening': 0.3})
    result = train(cfg, structure_set=small_set, progress=False, log=lambda _: None)
    model = load_model(result.checkpoint, device='cpu')
    assert isinstance(model, XrdSymmetryModel)
    assert {'val_crystal_system_acc', 'val_space_group_top5', 'val_aug_space_group_acc'} <= set(
        model.card.metrics['validation']
    )
    bad = next(b.structure for b in bad_inputs() if b.label == 'overlapping atoms')
    prediction = model.predict_structures([examples[0].structure, bad], errors='record')
    assert prediction.space_group_topk.shape == (2, 5) and prediction.crystal_system[1] == ''
    assert 1 <= prediction.space_group[0] <= 230 and prediction.space_group_topk[1, 0] == -1
    np.testing.assert_allclose(prediction.crystal_system_probabilities[0].sum(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(prediction.space_group_probabilities[0].sum(), 1.0, rtol=1e-5)
    top = prediction.space_group_topk[0]
    probabilities = prediction.space_group_probabilities[0]
    assert np.all(np.diff(probabilities[top - 1]) <= 0) and probabilities[top[0] - 1] == probabilities.max()
    with pytest.raises(ValueError, match='201 points on the grid 10-110° step 0.5°'):
        model.predict(np.ones((2, 5001)))
    with pytest.raises(ValueError, match='NaN'):
        model.predict(np.full((1, 201), np.nan))
    with pytest.raises(ValueError, match='no positive intensity'):
        model.predict(np.zeros((1, 201)))
    with pytest.raises(ValueError, match='batch_size'):
        model.predict(np.ones((1, 201)), batch_size=0)


def test_resample_replaces_training_views_with_perturbed_structures(tmp_path, small_set):
    import torch

    from aiida_matembed.core.models.base import MODEL_KINDS
    from aiida_matembed.core.models.training import _TASK_CLASSES, _architecture, prepare_data

    resample = {'strain': 0.03, 'displacement': 0.05, 'fraction': 0.5}
    cfg = config(tmp_path, 'xrd_symmetry', views=2, augment={'noise': 0.01}, resample=resample)
    data = prepare_data(cfg, small_set, log=lambda _: None)
    assert data.structures is not None and len(data.structures) == data.n
    clean, augmented = data.patterns[0].copy(), data.patterns[1].copy()
    net = MODEL_KINDS['xrd_symmetry'].build_network(_architecture(cfg))
    task = _TASK_CLASSES['xrd_symmetry'](cfg, data, net, torch.device('cpu'))
    rows = np.arange(0, data.n, 2)
    line = task.resample(rows, epoch=2)
    assert line.startswith('resampled ') and '0 structures without symmetry operations' in line
    changed = np.flatnonzero(~np.isclose(data.patterns[1], augmented).all(axis=1))
    assert set(changed) <= set(rows) and len(changed) >= 0.4 * len(rows)  # half of the given rows, minus failures
    np.testing.assert_array_equal(data.patterns[0], clean)  # the clean view (validation) is never touched
    # end to end: one resampling per epoch after the first, recorded in the card
    lines: list[str] = []
    result = train(cfg, structure_set=small_set, progress=False, log=lines.append)
    assert sum(line.startswith('resampled ') for line in lines) == 1
    assert read_card(result.checkpoint.with_suffix('.json')).training['resample'] == resample


def test_log_q_classifier_round_trips(tmp_path, small_set, examples):
    cfg = config(tmp_path, 'xrd_symmetry')
    cfg.model['xrd'] = {**TINY_MODEL['xrd'], 'axis': 'log_q', 'axis_points': 256}
    result = train(cfg, structure_set=small_set, progress=False, log=lambda _: None)
    grid = result.model.card.architecture['xrd']['grid']
    assert grid == {'start': 10.0, 'step': 0.5, 'wavelength': pytest.approx(1.54184, abs=1e-5)}  # CuKa (pymatgen)
    reloaded = load_model(result.checkpoint, device='cpu')
    structures = [e.structure for e in examples[:3]]
    first = result.model.predict_structures(structures)
    again = reloaded.predict_structures(structures)
    np.testing.assert_allclose(again.space_group_probabilities, first.space_group_probabilities, rtol=1e-5, atol=1e-7)


def test_vae_trains_and_encodes(tmp_path, small_set, examples):
    result = train(config(tmp_path, 'xrd_vae', epochs=3), structure_set=small_set, progress=False, log=lambda _: None)
    # kept at the epoch of the best map (5-NN crystal-system accuracy of the latent), the earliest of equals
    accuracy = [h['val_knn5_crystal_system_acc'] for h in result.history]
    assert result.best_epoch == 1 + int(np.argmax(accuracy))
    model = load_model(result.checkpoint, device='cpu')
    assert isinstance(model, XrdVaeModel)
    latent = model.encode_structures([e.structure for e in examples[:6]])
    assert latent.shape == (6, 2) and np.isfinite(latent).all()
    assert 0.0 <= model.card.metrics['validation']['val_knn5_crystal_system_acc'] <= 1.0
    decoded = model.decode(latent)
    assert decoded.shape == (6, 50) and (decoded >= 0).all() and (decoded <= 1).all()


def test_property_head_learns_dft_bulk_moduli(tmp_path):
    """Real DFT labels: the 71 elemental crystals of ASE's dcdft collection (volume and bulk modulus)."""
    atoms = [dcdft[name] for name in dcdft.names]
    labels = {'bulk_modulus': [dcdft.data[name]['wien2k_B'] for name in dcdft.names]}  # GPa, WIEN2k
    structure_set = StructureSet.from_structures(atoms, labels=labels)
    cfg = TrainConfig(
        task='property',
        name='test.property',
        output=str(tmp_path / 'property'),
        data={'build': {}, 'val_fraction': 0.2},
        inputs={'graph': {'cutoff': 5.0}},
        model={'encoder': 'crystal', 'features': 32, 'crystal': {'hidden': 32, 'layers': 2}},
        training={'epochs': 40, 'batch_size': 16, 'lr': 3e-3, 'seed': 1, 'patience': 40, 'targets': ['bulk_modulus']},
    )
    result = train(cfg, structure_set=structure_set, progress=False, log=lambda _: None)
    losses = [h['train_loss'] for h in result.history]
    assert losses[-1] < 0.5 * losses[0]
    model = load_model(result.checkpoint, device='cpu')
    predicted = model.predict_structures(atoms[:10])[:, 0]
    assert predicted.shape == (10,) and np.isfinite(predicted).all()
    assert model.card.training['targets'] == ['bulk_modulus']


@pytest.mark.parametrize(
    ('change', 'message'),
    [
        ({'task': 'dance'}, 'unknown task'),
        ({'data': {}}, "data needs 'train'"),
        ({'data': {'build': {}, 'shuffle': 1}}, 'unknown data keys'),
        ({'training': {'epochs': 0}}, 'training.epochs must be a positive integer'),
        ({'training': {'lr': -1}}, 'training.lr must be a number >= 0'),
        ({'training': {'loss': 'hinge'}}, "training.loss must be 'infonce' or 'triplet'"),
        ({'training': {'momentum': 0.9}}, 'unknown training keys'),
        ({'data': {'build': {}, 'val_fraction': 1.5}}, 'val_fraction'),
        ({'task': 'property'}, 'needs training.targets'),
        ({'inputs': {'xrd': {'wavelength': -1.0}}}, 'wavelength'),
        ({'inputs': {'xrd': {'step': 0}}}, 'step must be > 0'),
        ({'training': {'resample': {'strain': 0.1}}}, 'resample perturbs the structures behind the patterns'),
        ({'task': 'xrd_symmetry', 'training': {'resample': {'shear': 1}}}, 'training.resample must be a mapping'),
        ({'task': 'xrd_symmetry', 'training': {'resample': {'strain': -1}}}, 'resample.strain must be a number'),
        ({'task': 'xrd_symmetry', 'training': {'resample': {'fraction': 0}}}, 'fraction must be in'),
        ({'task': 'xrd_symmetry', 'training': {'resample': {}}}, 'views >= 2'),
    ],
)
def test_bad_configurations(change, message):
    base = {'task': 'cmml', 'name': 'x', 'output': 'x', 'data': {'build': {}}}
    with pytest.raises(ValueError, match=message):
        TrainConfig(**(base | change))


def test_yaml_errors(tmp_path):
    path = tmp_path / 'c.yaml'
    path.write_text('task: [unclosed')
    with pytest.raises(ValueError, match='not valid YAML'):
        TrainConfig.from_yaml(path)
    path.write_text('task: cmml\nname: x\n')
    with pytest.raises(ValueError, match='missing keys'):
        TrainConfig.from_yaml(path)
    path.write_text('task: cmml\nname: x\noutput: o\ndata: {build: {}}\nextra: 1\n')
    with pytest.raises(ValueError, match='unknown keys'):
        TrainConfig.from_yaml(path)
    with pytest.raises(FileNotFoundError):
        TrainConfig.from_yaml(tmp_path / 'none.yaml')


def test_card_describes_the_data_the_model_was_trained_on():
    info = {
        'n_structures': 1200,
        'sources': {'aflow': 200, 'synthetic': 1000},
        'metadata': {'seed': 3, 'parameters': {'split': 'train'}},
    }
    text = describe_training_data(info)
    assert text == (
        'Training data: 1,200 structures (training + validation split): 200 decorated AFLOW prototypes from '
        'pymatgen, 1,000 synthetic pyxtal crystals (held-out structure types excluded); seed 3. No experimental data.'
    )
    joined = {
        'n_structures': 3,
        'sources': {'pyriodic': 2, 'synthetic': 1},
        'metadata': {
            'parts': [
                {'seed': 0, 'parameters': {'split': 'train'}},
                {'seed': 1, 'parameters': {'n_excluded_keys': 0}},  # synthetic, nothing rejected
            ]
        },
    }
    assert describe_training_data(joined) == (
        'Training data: 3 structures (training + validation split): 2 decorated AFLOW prototypes from '
        'pyriodic-aflow, 1 synthetic pyxtal crystals; seed 0, 1. No experimental data.'
    )
    assert 'no synthetic crystals' in describe_training_data({'n_structures': 5, 'sources': {'pyriodic': 5}})
    # user data of unknown origin: nothing is claimed about what it does not contain
    unknown = describe_training_data({'n_structures': 5, 'sources': {'my_cifs': 5}})
    assert unknown == "Training data: 5 structures (training + validation split): 5 'my_cifs'."
    assert describe_training_data({'n_structures': 5}).endswith('of unlabelled origin.')


@pytest.mark.parametrize('name', ['matembed.cmml', 'matembed.xrd_symmetry', 'matembed.xrd_vae'])
def test_shipped_cards_state_their_training_data(name):
    """A shipped card may only claim the data in its own data section (synthetic crystals included or not)."""
    from aiida_matembed.core.models import model_path

    card = read_card(model_path(name))
    assert describe_training_data(card.data) in card.description
    claims_synthetic = 'synthetic pyxtal' in card.description
    assert claims_synthetic == bool(card.data.get('sources', {}).get('synthetic'))
