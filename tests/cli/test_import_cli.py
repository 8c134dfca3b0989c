"""``verdi data matembed import`` and ``dataset import`` on real CIFs and on the bad-input corpus."""

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
from aiida import orm
from click.testing import CliRunner

from aiida_matembed.cli import cmd_matembed
from aiida_matembed.core.datasets import StructureSet
from tests.fixtures.bad_inputs import FILES, expected_items, manifest

REAL_CIFS = Path(__file__).resolve().parents[1] / 'fixtures' / 'real_cifs'


@pytest.fixture
def runner():
    return CliRunner()


def invoke(runner, *args):
    return runner.invoke(cmd_matembed, [str(a) for a in args], catch_exceptions=False)


def test_import_json_report_lists_every_file(aiida_profile_clean, runner):
    result = invoke(runner, 'import', FILES, REAL_CIFS, '-G', 'cli', '--json')
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report) == {'imported', 'failed', 'duplicates'}
    expected = expected_items(manifest())
    n_good = sum(outcome == 'imported' for *_, outcome, _ in expected) + 8
    assert len(report['imported']) == n_good
    assert {'file', 'pk', 'formula'} <= set(report['imported'][0])
    assert len(report['failed']) == sum(outcome == 'failed' for *_, outcome, _ in expected) + 2  # JSON list: 3 items
    assert all(set(f) == {'file', 'item', 'reason'} and f['reason'] for f in report['failed'])
    group = orm.load_group('cli')
    assert group.count() == n_good
    pks = {i['pk'] for i in report['imported']}
    assert pks == {n.pk for n in group.nodes}
    again = json.loads(invoke(runner, 'import', FILES, REAL_CIFS, '-G', 'cli', '--json').output)
    assert not again['imported'] and {d['pk'] for d in again['duplicates']} == pks


def test_import_text_report_strict_and_formats(aiida_profile_clean, runner):
    result = invoke(runner, 'import', FILES / 'empty.cif', REAL_CIFS / 'cod_1010995.cif', '-G', 'text')
    assert result.exit_code == 0, result.output
    assert f'{FILES / "empty.cif"}: empty file' in result.output
    assert "1 structure(s) imported into Group 'text' from 2 file(s); 1 failed" in result.output
    strict = invoke(runner, 'import', FILES / 'empty.cif', '-G', 'text', '--strict')
    assert strict.exit_code == 1 and 'empty file' in strict.output
    ok = invoke(runner, 'import', REAL_CIFS / 'cod_1010995.cif', '-G', 'text', '--strict')
    assert ok.exit_code == 0 and 'skipped' in ok.output and 'already in the group' in ok.output
    forced = invoke(runner, 'import', FILES / 'cif_with_txt_extension.txt', '-G', 'text', '--format', 'cif', '--json')
    assert len(json.loads(forced.output)['imported']) == 1
    glob = invoke(runner, 'import', str(REAL_CIFS / 'cod_90*.cif'), '-G', 'glob', '--json', '--dedupe')
    report = json.loads(glob.output)
    assert len(report['imported']) + len(report['duplicates']) == 6 and not report['failed']


def test_dataset_import_keeps_every_ordered_crystal_and_lists_the_rest(runner, tmp_path):
    output = tmp_path / 'set.npz'
    result = invoke(runner, 'dataset', 'import', FILES, output, '--json')
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    structure_set = StructureSet.load(output)
    expected = expected_items(manifest())
    n_good = sum(outcome == 'imported' for *_, outcome, _ in expected) - 1  # the alloy: a set holds ordered crystals
    assert report['n_structures'] == len(structure_set) == n_good
    reasons = {Path(f['file']).name: f['reason'] for f in report['failed']}
    assert 'partially occupied' in reasons['partial_occupancy.cif'] and reasons['empty.cif'] == 'empty file'
    assert set(structure_set.labels['formula']) >= {'NaCl', 'ZnO', 'Cu', 'Fe', 'Po'}
    strict = invoke(runner, 'dataset', 'import', REAL_CIFS, tmp_path / 'real.npz', '--strict')
    assert strict.exit_code == 0 and len(StructureSet.load(tmp_path / 'real.npz')) == 8
    failing = invoke(runner, 'dataset', 'import', FILES, tmp_path / 'strict.npz', '--strict')
    assert failing.exit_code == 1 and (tmp_path / 'strict.npz').exists()  # written, then the failures reported
    nothing = invoke(runner, 'dataset', 'import', FILES / 'empty.cif', tmp_path / 'none.npz')
    assert nothing.exit_code != 0 and 'no structure could be read' in nothing.output


def test_dataset_import_into_a_read_only_folder_says_so(runner, tmp_path, monkeypatch):
    folder = tmp_path / 'read_only'
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.geteuid() == 0:  # root ignores permissions: simulate the refused write the kernel would give a user
            real_open = Path.open

            def refuse(self, *args, **kwargs):
                if self.parent == folder:
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
                return real_open(self, *args, **kwargs)

            monkeypatch.setattr(Path, 'open', refuse)
        result = invoke(runner, 'dataset', 'import', REAL_CIFS, folder / 'set.npz')
    finally:
        folder.chmod(0o755)
    assert result.exit_code != 0
    assert f'cannot write {folder / "set.npz"}: Permission denied' in result.output
    assert not list(folder.iterdir())


def test_dataset_import_on_a_full_disk_leaves_no_partial_file(runner, tmp_path, monkeypatch):
    """A full disk cannot be made here without privileges: numpy's writer is made to fail with ENOSPC."""
    import numpy

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(numpy, 'savez_compressed', full)
    result = invoke(runner, 'dataset', 'import', REAL_CIFS, tmp_path / 'set.npz')
    assert result.exit_code != 0 and 'No space left on device' in result.output
    assert not list(tmp_path.iterdir())


def test_xrd_export_into_a_read_only_folder_says_so(aiida_profile_clean, runner, tmp_path, monkeypatch):
    """``xrd --export`` into a folder that cannot be written: a one-line error naming it; the patterns are stored."""
    from aiida_matembed.data import XrdPatternsData

    report = json.loads(invoke(runner, 'import', REAL_CIFS / 'cod_1010995.cif', '-G', 'x', '--json').output)
    folder = tmp_path / 'read_only'
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.geteuid() == 0:  # root ignores permissions: simulate the refused write the kernel would give a user
            real_savetxt = np.savetxt

            def refuse(path, *args, **kwargs):
                if Path(path).parent == folder:
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
                return real_savetxt(path, *args, **kwargs)

            monkeypatch.setattr(np, 'savetxt', refuse)
        result = runner.invoke(cmd_matembed, ['xrd', str(report['imported'][0]['pk']), '--export', str(folder)])
    finally:
        folder.chmod(0o755)
    assert result.exit_code != 0 and 'Traceback' not in result.output
    assert f'cannot write {folder / "0_SiC.xy"}: Permission denied' in result.output
    assert orm.QueryBuilder().append(XrdPatternsData).count() == 1


def test_dataset_import_of_an_imported_group_leaves_out_the_partially_occupied(aiida_profile_clean, runner, tmp_path):
    invoke(runner, 'import', FILES / 'partial_occupancy.cif', REAL_CIFS, '-G', 'imported')
    result = invoke(runner, 'dataset', 'import', '--group', 'imported', tmp_path / 'set.npz', '--json')
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report['n_structures'] == 8 and len(StructureSet.load(tmp_path / 'set.npz')) == 8
    [failure] = report['failed']
    assert failure['file'].startswith('StructureData<') and 'partially occupied' in failure['reason']


def test_dataset_build_and_info_print_json(runner, tmp_path):
    built = json.loads(invoke(runner, 'dataset', 'build', tmp_path / 'b.npz', '-n', 3, '--seed', 1, '--json').output)
    assert built['n_structures'] == 3 and built['output'] == str(tmp_path / 'b.npz')
    info = json.loads(invoke(runner, 'dataset', 'info', tmp_path / 'b.npz', '--json').output)
    assert info['sha256'] == built['sha256'] == StructureSet.load(tmp_path / 'b.npz').sha256()
    assert sum(info['crystal_system'].values()) == 3 and 'formula' in info['labels']
