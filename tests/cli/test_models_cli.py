"""``verdi data matembed models list|import|show`` and ``verdi data matembed embed``."""

import numpy as np
import pytest
from aiida import orm
from click.testing import CliRunner

from aiida_matembed.cli import cmd_matembed
from aiida_matembed.core.models import load_model
from aiida_matembed.data import ModelData
from aiida_matembed.query import embedded_structure_pks, get_embedding


@pytest.fixture
def runner():
    return CliRunner()


def invoke(runner, args):
    return runner.invoke(cmd_matembed, args, catch_exceptions=False)


@pytest.fixture
def group(aiida_profile_clean, examples):
    group = orm.Group(label='cli-examples').store()
    nodes = [orm.StructureData(pymatgen=e.structure).store() for e in examples[:5]]
    group.add_nodes(nodes)
    return group, nodes


def test_models_list_import_show(aiida_profile_clean, runner, tmp_path):
    result = invoke(runner, ['models', 'list'])
    assert result.exit_code == 0, result.output
    assert 'matembed.cmml' in result.output and 'stored in the database (0)' in result.output
    result = invoke(runner, ['models', 'import', 'matembed.cmml', 'matembed.xrd_vae'])
    assert result.exit_code == 0, result.output
    result = invoke(runner, ['models', 'import', 'matembed.cmml'])
    assert orm.QueryBuilder().append(ModelData).count() == 2  # no duplicate
    node = orm.QueryBuilder().append(ModelData, filters={'attributes.name': 'matembed.cmml'}).one()[0]
    assert f'ModelData<{node.pk}>' in result.output
    result = invoke(runner, ['models', 'list'])
    assert 'stored in the database (2)' in result.output and f'pk {node.pk}' in result.output
    result = invoke(runner, ['models', 'show', str(node.pk)])
    assert result.exit_code == 0, result.output
    assert 'embedding_dim : 256' in result.output and 'metrics.heldout' in result.output
    assert 'produced      : 0 FeaturesData' in result.output
    bad = tmp_path / 'bad.safetensors'
    bad.write_bytes(b'not a model')
    result = runner.invoke(cmd_matembed, ['models', 'import', str(bad)])
    assert result.exit_code != 0 and 'no model card' in result.output
    result = runner.invoke(cmd_matembed, ['models', 'import', 'matembed.nope'])
    assert result.exit_code != 0 and "unknown model 'matembed.nope'" in result.output


def test_embed_a_group_in_process_then_incrementally(group, runner):
    group, nodes = group
    result = invoke(runner, ['embed', '-G', group.label, '-m', 'matembed.cmml', '-b', '2', '-d', 'cpu'])
    assert result.exit_code == 0, result.output
    assert '5 structure(s) to embed' in result.output and result.output.count('Success: FeaturesData<') == 3
    reference = load_model('matembed.cmml', device='cpu').embed_structures([n.get_pymatgen() for n in nodes[:2]])
    np.testing.assert_allclose(get_embedding(nodes[1], 'matembed.cmml'), reference[1], rtol=1e-5, atol=1e-6)
    result = invoke(runner, ['embed', '-G', group.label])
    assert '0 structure(s) to embed' in result.output
    result = invoke(runner, ['embed', str(nodes[0].pk), '-m', 'matembed.xrd_vae', '--modality', 'xrd'])
    assert result.exit_code == 0, result.output
    assert '(1 x 2, 0 failed)' in result.output


def test_embed_through_the_worker_on_localhost(group, runner, aiida_localhost):
    group, nodes = group
    options = '{"max_wallclock_seconds": 600, "withmpi": false}'
    args = ['embed', '-G', group.label, '-m', 'matembed.xrd_vae', '-Y', aiida_localhost.label, '-d', 'cpu']
    result = invoke(runner, [*args, '-o', options])
    assert result.exit_code == 0, result.output
    assert 'EmbedGroupWorkChain' in result.output and 'batch_0000: FeaturesData<' in result.output
    model = orm.QueryBuilder().append(ModelData).one()[0]
    assert embedded_structure_pks(model) == {n.pk for n in nodes}
    job = orm.QueryBuilder().append(orm.CalcJobNode).one()[0]
    assert job.process_label == 'WorkerCalculation' and job.is_finished_ok
    assert job.get_option('max_wallclock_seconds') == 600


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        (['-m', 'matembed.nope'], "unknown model 'matembed.nope'"),
        (['-b', '0'], '--batch-size must be a positive integer'),
        (['-d', 'gpu'], "device must be 'cpu', 'cuda', 'cuda:N' or 'auto'"),
        (['-m', 'matembed.xrd_symmetry', '--modality', 'structure'], 'reads xrd, not'),
        (['-Y', 'no-such-computer'], 'no-such-computer'),
        (['-o', '{"queue_name": "gpu"}'], 'give --computer or --code too'),
        (['-Y', 'localhost', '-o', '{"queue": "gpu"}'], "unknown CalcJob option(s) ['queue']"),
        (['-Y', 'localhost', '-o', 'not json'], 'not valid JSON'),
    ],
)
def test_bad_arguments(group, runner, aiida_localhost, args, message):
    group, _ = group
    result = runner.invoke(cmd_matembed, ['embed', '-G', group.label, *args])
    assert result.exit_code != 0
    assert message in result.output
    from aiida_matembed.data import FeaturesData

    assert orm.QueryBuilder().append(FeaturesData).count() == 0
