import numpy as np
import pytest
from aiida import orm
from click.testing import CliRunner

from aiida_matembed.cli import cmd_matembed


@pytest.fixture
def runner():
    return CliRunner()


def invoke(runner, args):
    result = runner.invoke(cmd_matembed, args, catch_exceptions=False)
    return result


def test_representations_lists_builtins_with_feature_counts(aiida_profile, runner):
    result = invoke(runner, ['representations'])
    assert result.exit_code == 0, result.output
    assert 'matembed.magpie' in result.output and '132' in result.output
    assert 'matembed.element_fraction' in result.output and '103' in result.output
    soap = next(line for line in result.output.splitlines() if line.startswith('matembed.soap'))
    assert 'species' in soap  # its number of columns depends on the species of the batch


def test_structural_representations_and_stored_graphs_from_the_cli(aiida_profile_clean, examples, runner):
    nodes = [orm.StructureData(pymatgen=e.structure).store() for e in examples[:5]]
    pks = [str(n.pk) for n in nodes]
    result = invoke(runner, ['featurize', *pks, '-r', 'matembed.soap', '-p', 'n_max=2', '-p', 'l_max=1', '-b', '2'])
    assert result.exit_code == 0, result.output
    from aiida_matembed.data import CrystalGraphsData, FeaturesData

    batches = orm.QueryBuilder().append(FeaturesData).all(flat=True)
    assert len(batches) == 3 and len({tuple(b.labels) for b in batches}) == 1  # species resolved on all pks
    result = invoke(runner, ['featurize', *pks, '-r', 'matembed.crystal_graph', '--store-graphs'])
    assert result.exit_code == 0, result.output
    graphs = orm.QueryBuilder().append(CrystalGraphsData).one()[0]
    assert f'CrystalGraphsData<{graphs.pk}> (5 graphs)' in result.output
    assert len(graphs.to_pyg()) == 5
    shown = invoke(runner, ['show', str(graphs.pk)])
    assert '5 (' in shown.output and 'graph 0' in shown.output and 'nodes' in shown.output
    refused = runner.invoke(cmd_matembed, ['featurize', *pks, '-r', 'matembed.rdf', '--store-graphs'])
    assert refused.exit_code != 0 and 'only possible for a graph representation' in refused.output


def test_featurize_show_export(aiida_profile_clean, examples, runner, tmp_path):
    group = orm.Group(label='cli-examples').store()
    group.add_nodes([orm.StructureData(pymatgen=e.structure).store() for e in examples[:4]])
    result = invoke(runner, ['featurize', '-G', 'cli-examples', '-r', 'matembed.element_embedding',
                             '-p', 'table=megnet16', '-p', 'stats=["mean","range"]'])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert '(4 x 32, 0 failed)' in result.output
    from aiida_matembed.data import FeaturesData

    features = orm.QueryBuilder().append(FeaturesData).one()[0]
    assert features.params == {'table': 'megnet16', 'stats': ['mean', 'range']}

    again = invoke(runner, ['featurize', '-G', 'cli-examples', '-r', 'matembed.element_embedding',
                            '-p', 'table=megnet16', '-p', 'stats=["mean","range"]'])  # fmt: skip
    assert '0 structure(s)' in again.output

    shown = invoke(runner, ['show', str(features.pk)])
    assert 'matembed.element_embedding' in shown.output and '4 x 32' in shown.output

    csv_path, npz_path = tmp_path / 'f.csv', tmp_path / 'f.npz'
    assert invoke(runner, ['export', str(features.pk), '-o', str(csv_path)]).exit_code == 0
    lines = csv_path.read_text().splitlines()
    assert lines[0].split(',')[0] == 'structure_uuid' and len(lines) == 5
    np.testing.assert_allclose([float(x) for x in lines[1].split(',')[1:]], features.features[0])
    assert invoke(runner, ['export', str(features.pk), '-f', 'npz', '-o', str(npz_path)]).exit_code == 0
    with np.load(npz_path) as data:
        np.testing.assert_array_equal(data['features'], features.features)
    refused = runner.invoke(cmd_matembed, ['export', str(features.pk), '-o', str(csv_path)])
    assert refused.exit_code != 0 and 'exists' in refused.output


def test_featurize_bad_input_gives_clear_errors(aiida_profile_clean, examples, runner):
    node = orm.StructureData(pymatgen=examples[0].structure).store()
    result = runner.invoke(cmd_matembed, ['featurize', str(node.pk), '-r', 'matembed.nope'])
    assert result.exit_code != 0 and 'unknown representation' in result.output
    result = runner.invoke(cmd_matembed, ['featurize', str(node.pk), '-r', 'matembed.magpie', '-p', 'oops'])
    assert result.exit_code != 0 and 'key=value' in result.output
    result = runner.invoke(cmd_matembed, ['featurize', '-G', 'missing', '-r', 'matembed.magpie'])
    assert result.exit_code != 0 and 'missing' in result.output
    result = runner.invoke(cmd_matembed, ['featurize', str(node.pk), '-r', 'matembed.magpie', '-p', 'bogus=1'])
    assert result.exit_code != 0 and 'unknown option' in result.output
