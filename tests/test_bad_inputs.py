"""Bad (and unusual but good) structures through every layer: the core, the calcfunctions, the worker, the CLI.

The structures are those of :func:`aiida_matembed.testing.bad_inputs` that a ``StructureData`` can hold (NaN
coordinates, dummy species and cells of zero volume cannot be stored: :func:`to_structure_data` refuses them with
a message, checked below) plus unusual good ones: a 1-atom cell smaller than the 5 Å neighbour cutoff, a slab
with 20 Å of vacuum, an alloy, and ZnO read with oxidation states. Every bad row is reported with its row and
reason, every good row of the same batch is kept.
"""

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from pymatgen.core import Lattice, Structure

from aiida_matembed.calculations.featurize import featurize_structures
from aiida_matembed.calculations.xrd import simulate_xrd_structures
from aiida_matembed.cli import cmd_matembed
from aiida_matembed.core.datasets.importing import read_file
from aiida_matembed.core.representations import get_representation, list_representations
from aiida_matembed.data.convert import to_structure_data
from aiida_matembed.testing import bad_inputs
from aiida_matembed.worker import main as worker_main
from aiida_matembed.worker.io import read_output, write_structures
from tests.fixtures.bad_inputs import FILES

STORABLE = (
    'no sites',
    'overlapping atoms',
    'negative volume',
    'atoms 0.035 Å apart across the periodic boundary',
    '1 km cell',
    '10,000-atom cell',
)
UNSTORABLE = {
    'zero volume': 'cell volume',
    'NaN coordinates': 'NaN or infinite coordinates at site 1',
    'infinite coordinates': 'NaN or infinite coordinates at site 0',
    'unknown species': 'not a chemical element',
    'not a structure': 'expected StructureData',
    'non-periodic ASE Atoms': 'needs a cell',
}


def _unusual_good():
    tiny = Structure(Lattice.cubic(1.9), ['Po'], [[0, 0, 0]])
    slab = Structure(Lattice.tetragonal(2.56, 30.0), ['Cu', 'Cu'], [[0, 0, 1 / 3], [0.5, 0.5, 0.393]])
    alloy = Structure(Lattice.cubic(3.6), [{'Cu': 0.5, 'Au': 0.5}], [[0, 0, 0]])
    [zno] = list(read_file(FILES / 'ZnO_oxidation_states.cif'))
    return {'1-atom cell below the cutoff': tiny, 'slab with vacuum': slab, 'alloy': alloy, 'ZnO2+/2-': zno.structure}


def _batch():
    """(structure, label, expected message or None) rows: good, bad, good, ... (bad rows interleaved)."""
    bad = {b.label: b for b in bad_inputs()}
    good = list(_unusual_good().items())
    rows = []
    for k, label in enumerate(STORABLE):
        rows.append((good[k % len(good)][1], good[k % len(good)][0], None))
        rows.append((bad[label].structure, label, bad[label].message))
    rows += [(s, label, None) for label, s in good]
    return rows


@pytest.fixture(scope='module')
def stored(aiida_profile):
    rows = _batch()
    nodes = [to_structure_data(s).store() for s, _, _ in rows]
    return rows, nodes


def test_structures_structure_data_cannot_hold_are_refused_with_a_message(aiida_profile):
    bad = {b.label: b for b in bad_inputs()}
    for label, fragment in UNSTORABLE.items():
        with pytest.raises((ValueError, TypeError)) as info:
            to_structure_data(bad[label].structure).store()
        assert fragment.lower() in str(info.value).lower(), (label, info.value)


@pytest.mark.parametrize('name', [n for n in list_representations() if n != 'matembed.chgnet'])
def test_core_every_representation_records_each_bad_row_and_keeps_the_good(name):
    """(chgnet is left out here: its contract tests cover bad inputs; it takes ~0.1 s per good structure.)"""
    rows = _batch()
    rep = get_representation(name)
    result = rep.featurize_many([s for s, _, _ in rows], errors='record')
    failed = {f.index: f.message for f in result.failures}
    for index, (_, label, message) in enumerate(rows):
        if message is not None:
            assert message.lower() in failed[index].lower(), (label, failed.get(index))
        elif index not in failed:
            assert np.isfinite(result.features[index]).all(), label
        else:  # a good but unusual structure a representation cannot use must say why (structural: the alloy)
            assert label == 'alloy' and 'partially occupied' in failed[index], (label, failed[index])


def test_calcfunctions_record_each_bad_row_and_keep_the_good(stored):
    rows, nodes = stored
    bad_rows = [i for i, (_, _, m) in enumerate(rows) if m is not None]
    features, _ = featurize_structures(nodes, 'matembed.magpie')
    assert [f['index'] for f in features.failures] == bad_rows
    for failure in features.failures:
        assert rows[failure['index']][2].lower() in failure['message'].lower()
        assert failure['pk'] == nodes[failure['index']].pk
    good = [i for i in range(len(rows)) if i not in bad_rows]
    assert np.isfinite(features.features[good]).all()
    patterns, process = simulate_xrd_structures(nodes, {'step': 0.05})
    assert process.base.attributes.get('xrd_labels_version') == 2  # enters the cache key: no stale labels reused
    assert patterns.base.attributes.get('hkl_setting') == 'conventional'
    assert [f['index'] for f in patterns.failures] == bad_rows
    for row in good:
        assert len(patterns.peaks(row)) > 0 and patterns.peaks(row).hkl_setting == 'conventional'


def test_worker_records_each_bad_row_and_keeps_the_good(stored, tmp_path):
    rows, nodes = stored
    bad_rows = [i for i, (_, _, m) in enumerate(rows) if m is not None]
    write_structures(tmp_path / 'structures.npz', [n.base.attributes.all for n in nodes], [n.uuid for n in nodes])
    settings = {'wavelength': 'CuKa', 'two_theta_range': [10.0, 110.0], 'step': 0.05, 'shape': 'gaussian',
                'fwhm': 0.1, 'eta': 0.5}  # fmt: skip
    for task in ({'task': 'featurize', 'representation': 'matembed.magpie', 'parameters': {}},
                 {'task': 'xrd', 'parameters': settings}):  # fmt: skip
        (tmp_path / 'task.json').write_text(json.dumps({**task, 'device': 'cpu'}))
        assert worker_main([str(tmp_path / 'task.json')]) == 0
        arrays, _, failures, _ = read_output(tmp_path / 'output.npz')
        assert [f['index'] for f in failures] == bad_rows, task['task']
        for failure in failures:
            assert rows[failure['index']][2].lower() in failure['message'].lower()
        values = arrays['features'] if task['task'] == 'featurize' else arrays['profiles']
        good = [i for i in range(len(rows)) if i not in bad_rows]
        assert np.isfinite(values[good]).all() and np.isnan(values[bad_rows]).all()


def test_cli_names_each_bad_row_and_keeps_the_good(stored):
    rows, nodes = stored
    runner = CliRunner()
    result = runner.invoke(cmd_matembed, ['xrd', *[str(n.pk) for n in nodes], '--step', '0.05'])
    assert result.exit_code == 0, result.output
    n_bad = sum(m is not None for _, _, m in rows)
    assert f'({len(rows)} patterns, {n_bad} failed)' in result.output
    for index, (_, label, message) in enumerate(rows):
        if message is not None:
            line = next(line for line in result.output.splitlines() if f'row {index} StructureData<' in line)
            assert f'StructureData<{nodes[index].pk}>' in line and message.lower() in line.lower(), (label, line)
    result = runner.invoke(cmd_matembed, ['featurize', *[str(n.pk) for n in nodes], '-r', 'matembed.element_fraction'])
    assert result.exit_code == 0, result.output
    assert re.search(rf'\({len(rows)} x \d+, {n_bad} failed\)', result.output)
    for index, (_, _, message) in enumerate(rows):
        if message is not None:
            assert f'StructureData<{nodes[index].pk}>: ' in result.output
