"""``verdi data matembed dataset``: build, info and import structure sets."""

import json

import pytest
from aiida import orm
from aiida.engine import calcfunction
from click.testing import CliRunner

from aiida_matembed.cli import cmd_matembed
from aiida_matembed.core.datasets import StructureSet


@pytest.fixture
def runner():
    return CliRunner()


@calcfunction
def fake_dft(structure):
    return {'output_parameters': orm.Dict({'energy': -2.0 * len(structure.sites)})}


def invoke(runner, args):
    return runner.invoke(cmd_matembed, ['dataset', *args], catch_exceptions=False)


def test_build_info_and_group(aiida_profile_clean, runner, tmp_path):
    output = tmp_path / 'train.npz'
    result = invoke(runner, ['build', '-n', '6', '--seed', '3', '--synthetic-fraction', '0.34', '--max-atoms', '16',
                             str(output), '--group', 'train-6'])  # fmt: skip
    assert result.exit_code == 0, result.output
    built = StructureSet.load(output)
    assert len(built) == 6 and built.counts('source')['synthetic'] == 2
    assert built.sha256() in result.output and 'synthetic 2' in result.output and 'crystal_system' in result.output
    assert orm.load_group('train-6').count() == 6
    info = invoke(runner, ['info', str(output)])
    assert info.exit_code == 0, info.output
    assert built.sha256() in info.output and 'space groups' in info.output and 'prototypes' in info.output
    assert '"split": "train"' in info.output
    again = runner.invoke(cmd_matembed, ['dataset', 'build', '-n', '6', str(output)])
    assert again.exit_code != 0 and 'exists' in again.output


def test_import_from_files_and_groups(aiida_profile_clean, runner, tmp_path, examples):
    structures = [e.structure for e in examples[:3]]
    source = tmp_path / 'mine.json'
    source.write_text(json.dumps({e.label: e.structure.as_dict() for e in examples[:3]}))
    output = tmp_path / 'mine.npz'
    result = invoke(runner, ['import', str(source), str(output)])
    assert result.exit_code == 0, result.output
    assert StructureSet.load(output).labels['name'].tolist() == [e.label for e in examples[:3]]

    group = orm.Group(label='dft').store()
    nodes = [orm.StructureData(pymatgen=s).store() for s in structures]
    group.add_nodes(nodes)
    fake_dft(nodes[1])
    from_group = tmp_path / 'dft.npz'
    result = invoke(runner, ['import', '--group', 'dft', str(from_group), '--dft-output',
                             'energy=output_parameters.energy'])  # fmt: skip
    assert result.exit_code == 0, result.output
    energies = StructureSet.load(from_group).labels['energy']
    assert energies[1] == -2.0 * len(structures[1]) and energies[0] != energies[0]  # NaN without a process


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        (['build', '-n', '0', 'x.npz'], '0 is not in the range'),
        (['build', '-n', '3', '--split', 'test', 'x.npz'], "'test' is not one of"),
        (['build', '-n', '3', '--synthetic-fraction', '2', 'x.npz'], '2.0 is not in the range'),
        (['build', '-n', '3', 'x.txt'], 'must end in .npz'),
        (['info', 'missing.npz'], 'no StructureSet file'),
        (['import', 'missing.json', 'x.npz'], 'no such file'),
        (['import', 'x.npz'], 'either SOURCE or --group'),
        (['import', '--group', 'nope', 'x.npz'], "no Group with label 'nope'"),
        (['import', '--group', 'nope', 'x.npz', '--dft-output', 'energy'], 'column=link_label.key'),
    ],
)
def test_bad_input_gives_clear_errors(aiida_profile, runner, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cmd_matembed, ['dataset', *args])
    assert result.exit_code != 0
    assert message in result.output
