"""``aiida-matembed-worker``: the compact structure file, every task, every exit status."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from aiida import orm
from pymatgen.core import Lattice, Structure

from aiida_matembed.core.models import load_model, model_path
from aiida_matembed.core.representations import get_representation
from aiida_matembed.core.xrd import XrdSimulator
from aiida_matembed.testing import bad_inputs
from aiida_matembed.worker import EXIT_CODES, FAIL_OOM_ABOVE, main
from aiida_matembed.worker.io import read_output, read_structures, write_structures

ALLOY = Structure(Lattice.cubic(3.6), [{'Cu': 0.5, 'Au': 0.5}], [[0, 0, 0]])
VACANCY = Structure(Lattice.cubic(4.2), [{'Na': 0.9}, 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]])


@pytest.fixture
def batch(aiida_profile, examples, tmp_path):
    """``structures.npz`` with 4 ordered examples, one overlapping structure and one alloy (rows 4 and 5)."""
    overlapping = next(b for b in bad_inputs() if b.label == 'overlapping atoms').structure
    structures = [e.structure for e in examples if e.structure.is_ordered][:4] + [overlapping, ALLOY]
    nodes = [orm.StructureData(pymatgen=s) for s in structures]
    write_structures(tmp_path / 'structures.npz', [n.base.attributes.all for n in nodes], [n.uuid for n in nodes])
    return tmp_path, structures, [n.uuid for n in nodes]


def run(folder, **task):
    (folder / 'task.json').write_text(json.dumps(task))
    code = main([str(folder / 'task.json')])
    status = json.loads((folder / 'status.json').read_text())
    assert code == EXIT_CODES[status['status']]
    return status


def test_structure_file_round_trip_keeps_alloys_and_vacancies(aiida_profile, examples, tmp_path):
    structures = [e.structure for e in examples[:6]] + [ALLOY, VACANCY]
    nodes = [orm.StructureData(pymatgen=s) for s in structures]
    write_structures(tmp_path / 's.npz', [n.base.attributes.all for n in nodes], [n.uuid for n in nodes])
    back, uuids = read_structures(tmp_path / 's.npz')
    assert uuids == [n.uuid for n in nodes]
    for original, copy in zip(structures, back, strict=True):
        np.testing.assert_allclose(copy.lattice.matrix, original.lattice.matrix, atol=1e-10)
        np.testing.assert_allclose(copy.cart_coords, original.cart_coords, atol=1e-10)
        assert [site.species for site in copy] == [site.species for site in original]


def test_embed_matches_the_core_model_and_records_bad_rows(batch):
    folder, structures, uuids = batch
    shutil.copy(model_path('matembed.cmml'), folder / 'model.safetensors')
    shutil.copy(model_path('matembed.cmml').with_suffix('.json'), folder / 'model.json')
    model = load_model('matembed.cmml', device='cpu')
    status = run(
        folder, task='embed', device='cpu', model={'weights': 'model.safetensors', 'sha256': model.card.sha256}
    )
    assert status['status'] == 'ok' and status['n'] == 6 and status['n_failed'] == 2
    assert set(status['timings']) == {'read_s', 'compute_s', 'write_s', 'total_s'}
    arrays, out_uuids, failures, meta = read_output(folder / 'output.npz')
    assert out_uuids == uuids and meta['modality'] == 'structure' and meta['sha256'] == model.card.sha256
    assert [f['index'] for f in failures] == [4, 5]
    assert [f['error_type'] for f in failures] == ['InvalidStructureError', 'PartiallyOccupiedError']
    expected = model.embed_structures(structures[:4])
    np.testing.assert_allclose(arrays['features'][:4], expected, rtol=1e-5, atol=1e-6)
    assert np.isnan(arrays['features'][4:]).all()
    assert list(arrays['labels'][:2]) == ['cmml_0', 'cmml_1']


def test_model_referenced_by_path_on_the_machine_and_checked(batch):
    folder, _, _ = batch
    weights = model_path('matembed.xrd_vae')
    sha = load_model('matembed.xrd_vae', device='cpu').card.sha256
    status = run(folder, task='embed', device='cpu', model={'weights': str(weights), 'sha256': sha})
    assert status['status'] == 'ok'
    assert read_output(folder / 'output.npz')[0]['features'].shape == (6, 2)
    status = run(folder, task='embed', device='cpu', model={'weights': str(weights), 'sha256': '0' * 64})
    assert status['status'] == 'bad_input' and 'the model node' in status['message']
    status = run(folder, task='embed', model={'weights': '/nonexistent/m.safetensors'})
    assert status['status'] == 'bad_input' and 'not found' in status['message']


def test_featurize_and_xrd_match_the_core(batch):
    folder, structures, _ = batch
    status = run(folder, task='featurize', representation='matembed.magpie', parameters={})
    assert status['status'] == 'ok'
    arrays, _, failures, meta = read_output(folder / 'output.npz')
    expected = get_representation('matembed.magpie').featurize_many(structures[:4]).features
    np.testing.assert_allclose(arrays['features'][:4], expected, rtol=1e-12)
    assert [f['index'] for f in failures] == [4]  # magpie reads the alloy's composition
    assert meta['representation'] == 'matembed.magpie' and meta['version'] == 1

    settings = {
        'wavelength': 'CuKa',
        'two_theta_range': [10.0, 110.0],
        'step': 0.05,
        'shape': 'gaussian',
        'fwhm': 0.2,
        'eta': 0.5,
        'doublet': False,
    }
    status = run(folder, task='xrd', device='cpu', parameters=settings)
    assert status['status'] == 'ok'
    arrays, _, failures, _ = read_output(folder / 'output.npz')
    peaks, grid, profiles = XrdSimulator('CuKa').patterns_many(structures[:4], step=0.05, shape='gaussian', fwhm=0.2)
    np.testing.assert_allclose(arrays['two_theta_grid'], grid)
    np.testing.assert_allclose(arrays['profiles'][:4], profiles, rtol=1e-5, atol=1e-6)
    ptr = arrays['peak_ptr']
    np.testing.assert_allclose(arrays['peak_two_theta'][ptr[1] : ptr[2]], peaks[1].two_theta)
    assert ptr[5] == ptr[4] < ptr[6]  # the failed row has no peaks; the alloy scatters as an average atom
    assert [f['index'] for f in failures] == [4]


def test_exit_statuses(batch, monkeypatch):
    folder, _, _ = batch
    assert run(folder, task='nope')['status'] == 'bad_input'
    assert run(folder, task='featurize', representation='matembed.magpie', device='tpu')['status'] == 'bad_input'
    assert run(folder, task='featurize', representation='matembed.nope')['status'] == 'bad_input'
    import torch

    if not torch.cuda.is_available():
        status = run(folder, task='featurize', representation='matembed.magpie', device='cuda')
        assert status['status'] == 'no_gpu' and 'sees no GPU' in status['message']
    monkeypatch.setenv(FAIL_OOM_ABOVE, '3')  # fault injection: a GPU out-of-memory cannot happen on CPU CI
    status = run(folder, task='featurize', representation='matembed.magpie')
    assert status['status'] == 'out_of_memory' and 'out of memory' in status['message']
    monkeypatch.delenv(FAIL_OOM_ABOVE)

    def crash(*args, **kwargs):  # mock: a bug inside a representation, which no real one has on purpose
        raise ZeroDivisionError('boom')

    monkeypatch.setattr('aiida_matembed.worker._featurize', crash)
    status = run(folder, task='featurize', representation='matembed.magpie')
    assert status['status'] == 'error' and 'ZeroDivisionError: boom' in status['message']
    assert 'Traceback' in status['traceback']
    (folder / 'structures.npz').unlink()
    assert run(folder, task='featurize', representation='matembed.magpie')['status'] == 'bad_input'


def test_console_script_runs_without_aiida(tmp_path):
    check = subprocess.run(['aiida-matembed-worker', '--check'], capture_output=True, text=True, check=False)
    assert check.returncode == 0 and check.stdout.startswith('aiida-matembed-worker ')
    usage = subprocess.run(['aiida-matembed-worker'], capture_output=True, text=True, check=False)
    assert usage.returncode == EXIT_CODES['bad_input'] and 'usage' in usage.stderr
    script = (
        'import sys; import aiida_matembed.worker as w; import aiida_matembed.worker.io; '
        'w.main(["--check"]); '
        "leaked = [m for m in sys.modules if m == 'aiida' or m.startswith('aiida.')]; assert not leaked, leaked"
    )
    pure = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, check=False)
    assert pure.returncode == 0, pure.stderr
