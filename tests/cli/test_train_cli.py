"""``verdi data matembed train CONFIG.yaml``: a tiny end-to-end run from a StructureSet file, and bad configs."""

from importlib import resources
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from aiida_matembed.cli import cmd_matembed
from aiida_matembed.core.datasets.store import StructureSet
from aiida_matembed.core.models import load_model, read_card
from aiida_matembed.core.models.training import TrainConfig


@pytest.fixture
def runner():
    return CliRunner()


def test_train_command_end_to_end(runner, tmp_path, prototypes):
    structures = [p.structure for p in prototypes if len(p.structure) <= 6][:40]
    StructureSet.from_structures(structures, source='aflow').save(tmp_path / 'set.npz')
    config = {
        'task': 'xrd_symmetry',
        'name': 'test.symmetry',
        'output': 'out/model',
        'data': {'train': 'set.npz', 'val_fraction': 0.2},
        'inputs': {'xrd': {'step': 0.5, 'fwhm': 0.6}},
        'model': {'features': 16, 'xrd': {'channels': [4, 8], 'positions': 4, 'hidden': 16}},
        'training': {'epochs': 5, 'batch_size': 8, 'seed': 3},
    }
    (tmp_path / 'config.yaml').write_text(yaml.safe_dump(config))
    result = runner.invoke(
        cmd_matembed, ['train', str(tmp_path / 'config.yaml'), '--epochs', '2', '--max-steps', '2', '--no-progress']
    )
    assert result.exit_code == 0, result.output
    assert 'epoch=1' in result.output and 'epoch=2' in result.output and 'epoch=3' not in result.output
    assert 'val_space_group_acc=' in result.output and 'sha256' in result.output
    weights = tmp_path / 'out' / 'model.safetensors'
    card = read_card(weights)
    assert card.training['epochs'] == 2 and card.training['max_steps_per_epoch'] == 2
    assert card.data['sha256'] == StructureSet.load(tmp_path / 'set.npz').sha256()
    assert load_model(weights).predict_structures(structures[:2]).space_group.shape == (2,)


def test_train_command_reports_bad_configs(runner, tmp_path):
    path = tmp_path / 'bad.yaml'
    path.write_text(yaml.safe_dump({'task': 'cmml', 'name': 'x', 'output': 'o', 'data': {'train': 'missing.npz'}}))
    result = runner.invoke(cmd_matembed, ['train', str(path), '--no-progress'])
    assert result.exit_code != 0 and 'missing.npz' in result.output
    path.write_text(yaml.safe_dump({'task': 'cmml', 'name': 'x', 'output': 'o', 'data': {'build': {}}, 'x': 1}))
    result = runner.invoke(cmd_matembed, ['train', str(path)])
    assert result.exit_code != 0 and 'unknown keys' in result.output


@pytest.mark.parametrize('name', ['cmml', 'xrd_symmetry', 'xrd_vae'])
def test_shipped_configurations_parse(name):
    path = Path(str(resources.files('aiida_matembed').joinpath(f'resources/models/configs/{name}.yaml')))
    config = TrainConfig.from_yaml(path)
    assert config.name == f'matembed.{name}' and config.xrd_input is not None
    assert config.xrd_input.n_points == 2001 and config.training['augment']['zero_shift'] == 0.1
