"""``verdi data matembed symmetry`` on a measured-like profile, and the ``matembed.predict_symmetry`` calcfunction."""

import json

import numpy as np
import pytest
from aiida import orm
from click.testing import CliRunner

from aiida_matembed.cli import cmd_matembed
from aiida_matembed.core.xrd import write_xy
from aiida_matembed.data.xrd import XrdPatternsData

from ..core.symmetry.test_indexing import conventional_cell, rutile
from ..core.symmetry.test_predict import GRID, measured_profile


@pytest.fixture
def rutile_file(tmp_path):
    path = tmp_path / 'rutile.xy'
    write_xy(path, GRID, measured_profile(rutile()))
    return path


def test_symmetry_json_and_stored_with_provenance(aiida_profile_clean, rutile_file):
    result = CliRunner().invoke(cmd_matembed, ['symmetry', str(rutile_file), '--store', '--json'],
                                catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary['crystal_system'] == 'tetragonal'
    assert summary['space_group'][0] == 136
    expected = conventional_cell(rutile())
    assert summary['cell']['a'] == pytest.approx(expected[0], rel=5e-3)
    assert summary['cell']['c'] == pytest.approx(expected[2], rel=5e-3)
    node = orm.load_node(summary['node']['pk'])
    assert isinstance(node, orm.Dict) and node['space_group'] == summary['space_group']
    process = node.creator
    assert process.process_label == 'predict_symmetry'
    pattern = process.inputs.pattern
    assert isinstance(pattern, XrdPatternsData)
    np.testing.assert_allclose(pattern.grid, GRID)
    assert process.inputs.parameters['wavelength'] == 'CuKa'


def test_symmetry_text_output(aiida_profile_clean, rutile_file):
    result = CliRunner().invoke(cmd_matembed, ['symmetry', str(rutile_file), '--top', '3'], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert 'crystal system: tetragonal' in result.output
    assert 'P4_2/mnm' in result.output


def test_symmetry_errors(aiida_profile_clean, tmp_path):
    empty = tmp_path / 'empty.xy'
    empty.write_text('')
    result = CliRunner().invoke(cmd_matembed, ['symmetry', str(empty)])
    assert result.exit_code != 0
    flat = tmp_path / 'flat.xy'
    write_xy(flat, GRID, np.ones(len(GRID)))
    result = CliRunner().invoke(cmd_matembed, ['symmetry', str(flat)])
    assert result.exit_code != 0 and 'flat' in result.output
    result = CliRunner().invoke(cmd_matembed, ['symmetry', str(flat), '--wavelength', 'XxKa'])
    assert result.exit_code != 0 and 'unknown anode' in result.output


def test_identify_reports_the_symmetry_of_what_no_candidate_explains(aiida_profile_clean, rutile_file):
    """Candidates that are not rutile: the peaks they leave are indexed as tetragonal P4_2/mnm."""
    from ..core.symmetry.test_indexing import nacl, si

    group = orm.Group(label='not-rutile').store()
    group.add_nodes([orm.StructureData(pymatgen=s()).store() for s in (si, nacl)])
    args = ['identify', str(rutile_file), '-G', 'not-rutile', '--symmetry', '--json']
    result = CliRunner().invoke(cmd_matembed, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    unknown = json.loads(result.output)['unknown_phase']
    assert unknown['crystal_system'] == 'tetragonal'
    assert 136 in unknown['space_group'][:3]
