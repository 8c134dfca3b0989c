"""``verdi data matembed xrd``: simulate, report failures, plot and export patterns."""

import re

import numpy as np
import pytest
from aiida import orm
from click.testing import CliRunner
from pymatgen.core import Lattice, Structure

from aiida_matembed.cli import cmd_matembed
from aiida_matembed.core.xrd import read_xy
from aiida_matembed.core.xrd.plot import format_hkl, plot_pattern
from aiida_matembed.data import XrdPatternsData
from aiida_matembed.testing import bad_inputs

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


@pytest.fixture
def runner():
    return CliRunner()


def nacl():
    return Structure.from_spacegroup('Fm-3m', Lattice.cubic(5.6402), ['Na', 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]])


def magnesium():
    return Structure.from_spacegroup('P6_3/mmc', Lattice.hexagonal(3.209, 5.211), ['Mg'], [[1 / 3, 2 / 3, 0.25]])


def overlapping():
    return next(b for b in bad_inputs() if b.label == 'overlapping atoms').structure


def store(*structures):
    return [orm.StructureData(pymatgen=s).store() for s in structures]


def invoke(runner, args):
    return runner.invoke(cmd_matembed, ['xrd', *args], catch_exceptions=False)


def output_node(result):
    match = re.search(r'XrdPatternsData<(\d+)>', result.output)
    assert match, result.output
    return orm.load_node(int(match.group(1)))


def test_xrd_on_pks_keeps_good_structures_and_reports_failures(aiida_profile_clean, examples, runner):
    nodes = store(nacl(), examples[0].structure, overlapping(), examples[1].structure)
    result = invoke(runner, [str(n.pk) for n in nodes])
    assert result.exit_code == 0, result.output
    patterns = output_node(result)
    assert isinstance(patterns, XrdPatternsData)
    assert orm.QueryBuilder().append(XrdPatternsData).count() == 1
    assert patterns.rows == [n.uuid for n in nodes] and patterns.profiles.shape == (4, 5001)
    assert '(4 patterns, 1 failed)' in result.output
    failure_lines = [line for line in result.output.splitlines() if 'row 2' in line]
    assert len(failure_lines) == 1 and f'StructureData<{nodes[2].pk}>' in failure_lines[0]
    assert 'overlapping atoms' in failure_lines[0]
    assert np.isnan(patterns.profiles[2]).all()
    for row in (0, 1, 3):
        assert np.isfinite(patterns.profiles[row]).all() and len(patterns.peaks(row)) > 0
    assert patterns.base.attributes.get('wavelength') == 'CuKa'
    assert patterns.base.attributes.get('two_theta_range') == [10.0, 110.0]


def test_xrd_on_a_group_with_options(aiida_profile_clean, examples, runner):
    group = orm.Group(label='xrd-cli').store()
    group.add_nodes(store(nacl(), *(e.structure for e in examples[:2])))
    args = ['-G', 'xrd-cli', '--wavelength', 'MoKa', '--two-theta-min', '5', '--two-theta-max', '65']
    result = invoke(runner, [*args, '--step', '0.05', '--shape', 'gaussian', '--fwhm', '0.2'])
    assert result.exit_code == 0, result.output
    patterns = output_node(result)
    assert patterns.profiles.shape == (3, 1201) and patterns.base.attributes.get('n_failed') == 0
    settings = patterns.base.attributes.get('settings')
    assert settings['wavelength'] == 'MoKa' and settings['shape'] == 'gaussian' and settings['doublet'] is False
    assert settings['fwhm'] == pytest.approx(0.2) and settings['two_theta_range'] == [5.0, 65.0]
    members = orm.QueryBuilder().append(orm.Group, filters={'label': 'xrd-cli'}, tag='g')
    members.append(orm.StructureData, with_group='g', project='uuid')
    assert sorted(patterns.rows) == sorted(members.all(flat=True))

    numeric = invoke(runner, [str(orm.load_node(patterns.rows[0]).pk), '-w', '1.5406'])
    assert numeric.exit_code == 0, numeric.output
    assert output_node(numeric).base.attributes.get('wavelength_angstrom') == pytest.approx(1.5406)


def test_xrd_doublet(aiida_profile_clean, runner):
    (node,) = store(nacl())
    args = [str(node.pk), '--two-theta-max', '60']  # every K-alpha2 companion of NaCl stays below 60°
    single = output_node(invoke(runner, [*args, '-w', 'CuKa1', '--no-doublet']))
    double = output_node(invoke(runner, [*args, '--doublet']))
    assert single.base.attributes.get('doublet') is False and double.base.attributes.get('doublet') is True
    np.testing.assert_allclose(single.peaks(0).two_theta, double.peaks(0).two_theta)  # peaks at K-alpha1
    assert not np.allclose(single.profiles[0], double.profiles[0])


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        (['--wavelength', 'Kryptonite'], 'unknown anode'),
        (['--wavelength', '-1.5'], 'wavelength must be > 0'),
        (['--wavelength', '1.54', '--doublet'], 'doublet'),
        (['--two-theta-min', '120', '--two-theta-max', '100'], 'invalid XRD settings'),
        (['--step', '0.03'], 'whole number of steps'),
        (['--row', '5'], 'out of range'),
    ],
)
def test_bad_settings_give_a_clear_error_and_store_nothing(aiida_profile_clean, runner, args, message):
    (node,) = store(nacl())
    result = runner.invoke(cmd_matembed, ['xrd', str(node.pk), *args])
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception
    assert message in result.output and 'Traceback' not in result.output
    assert orm.QueryBuilder().append(XrdPatternsData).count() == 0
    assert orm.QueryBuilder().append(orm.CalcFunctionNode).count() == 0
    assert orm.QueryBuilder().append(orm.Dict).count() == 0


def test_selection_errors(aiida_profile_clean, runner):
    (node,) = store(nacl())
    orm.Group(label='xrd-empty').store()
    for args, message in (
        ([], 'either structure pks or --group'),
        ([str(node.pk), '-G', 'xrd-empty'], 'either structure pks or --group'),
        (['-G', 'xrd-empty'], 'has no StructureData'),
        ([str(orm.Int(1).store().pk)], 'not StructureData'),
    ):
        result = runner.invoke(cmd_matembed, ['xrd', *args])
        assert result.exit_code != 0 and message in result.output, (args, result.output)
        assert 'Traceback' not in result.output
    assert orm.QueryBuilder().append(XrdPatternsData).count() == 0


def test_plot_writes_a_png_of_the_first_successful_structure(aiida_profile_clean, runner, tmp_path):
    nodes = store(overlapping(), nacl(), magnesium())
    path = tmp_path / 'nacl.png'
    result = invoke(runner, [*(str(n.pk) for n in nodes), '--plot', str(path)])
    assert result.exit_code == 0, result.output
    assert f'plotted row 1 (StructureData<{nodes[1].pk}>)' in result.output
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 10_000

    patterns = output_node(result)
    figure = plot_pattern(patterns.grid, patterns.profiles[1], patterns.peaks(1), title='NaCl, CuKa')
    (ax,) = figure.axes
    labels = [text.get_text() for text in ax.texts]
    assert labels[0] == '(200)' and len(labels) == 5  # strongest first
    strongest = max(ax.texts, key=lambda text: text.get_position()[1])
    assert strongest.get_text() == '(200)'
    assert strongest.get_position()[0] == pytest.approx(31.7, abs=0.1)
    assert ax.get_xlabel() == '2θ (°)' and ax.get_ylabel() == 'Intensity (a.u.)' and ax.get_title() == 'NaCl, CuKa'
    (line,) = ax.get_lines()
    assert np.nanmax(line.get_ydata()) == pytest.approx(100.0)
    (sticks,) = ax.collections
    assert len(sticks.get_segments()) == len(patterns.peaks(1))
    assert max(segment[1, 1] for segment in sticks.get_segments()) == pytest.approx(100.0)

    hexagonal = plot_pattern(patterns.grid, patterns.profiles[2], patterns.peaks(2), n_labels=3)
    hex_labels = [text.get_text() for text in hexagonal.axes[0].texts]
    assert len(hex_labels) == 3 and all(len(label.strip('()').split()) == 4 for label in hex_labels)

    other = tmp_path / 'mg.png'
    chosen = invoke(runner, [*(str(n.pk) for n in nodes), '--plot', str(other), '--row', '2'])
    assert chosen.exit_code == 0 and other.read_bytes()[:8] == PNG_MAGIC
    failed = runner.invoke(cmd_matembed, ['xrd', *(str(n.pk) for n in nodes), '--plot', str(other), '--row', '0'])
    assert failed.exit_code != 0 and 'row 0 failed' in failed.output and 'Traceback' not in failed.output


def test_format_hkl():
    assert format_hkl((2, 0, 0)) == '(200)'
    assert format_hkl((1, -1, 1)) == '(1 -1 1)'
    assert format_hkl((1, 0, -1, 0)) == '(1 0 -1 0)'
    assert format_hkl((0, 0, 0, 2)) == '(0 0 0 2)'


def test_export_writes_xy_files_that_read_back(aiida_profile_clean, examples, runner, tmp_path):
    nodes = store(nacl(), overlapping(), examples[0].structure)
    folder = tmp_path / 'patterns'
    result = invoke(runner, [*(str(n.pk) for n in nodes), '--step', '0.05', '--export', str(folder)])
    assert result.exit_code == 0, result.output
    patterns = output_node(result)
    files = sorted(folder.glob('*.xy'))
    assert len(files) == 2 and 'wrote 2 .xy file(s)' in result.output
    assert (folder / '0_NaCl.xy').exists()
    by_row = {int(f.name.split('_', 1)[0]): f for f in files}
    assert sorted(by_row) == [0, 2]
    for row, path in by_row.items():
        pattern = read_xy(path)
        assert pattern.esd is None
        np.testing.assert_allclose(pattern.two_theta, patterns.grid, rtol=0, atol=1e-6)
        np.testing.assert_allclose(pattern.intensity, patterns.profiles[row], rtol=0, atol=1e-6)
        assert nodes[row].uuid in path.read_text().splitlines()[0]
