"""Regenerate the retrieved folders of ``matembed.worker`` used by tests/parsers (real worker runs).

Run:  python scripts/make_worker_fixtures.py   (writes tests/fixtures/worker/<case>/)
"""

import json
import os
import shutil
from pathlib import Path

from aiida_matembed.core.models import model_path, read_card
from aiida_matembed.worker import FAIL_OOM_ABOVE, main
from aiida_matembed.worker.io import write_structures

ROOT = Path(__file__).resolve().parent.parent / 'tests' / 'fixtures' / 'worker'
UUIDS = [
    '00000000-0000-4000-8000-000000000001',
    '00000000-0000-4000-8000-000000000002',
    '00000000-0000-4000-8000-000000000003',
]


def kind(name, symbol):
    return {'name': name, 'symbols': [symbol], 'weights': [1.0], 'mass': 1.0}


NACL = {
    'cell': [[0, 2.82, 2.82], [2.82, 0, 2.82], [2.82, 2.82, 0]],
    'pbc1': True,
    'pbc2': True,
    'pbc3': True,
    'kinds': [kind('Na', 'Na'), kind('Cl', 'Cl')],
    'sites': [{'kind_name': 'Na', 'position': [0, 0, 0]}, {'kind_name': 'Cl', 'position': [2.82, 2.82, 2.82]}],
}
SI = {
    'cell': [[0, 2.715, 2.715], [2.715, 0, 2.715], [2.715, 2.715, 0]],
    'pbc1': True,
    'pbc2': True,
    'pbc3': True,
    'kinds': [kind('Si', 'Si')],
    'sites': [{'kind_name': 'Si', 'position': [0, 0, 0]}, {'kind_name': 'Si', 'position': [1.3575, 1.3575, 1.3575]}],
}
OVERLAP = {
    'cell': [[3, 0, 0], [0, 3, 0], [0, 0, 3]],
    'pbc1': True,
    'pbc2': True,
    'pbc3': True,
    'kinds': [kind('Na', 'Na')],
    'sites': [{'kind_name': 'Na', 'position': [0, 0, 0]}, {'kind_name': 'Na', 'position': [0, 0, 0.05]}],
}
KEEP = ('status.json', 'output.npz', 'worker.err', 'worker.out')


def case(name, task, env=None):
    folder = ROOT / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    write_structures(folder / 'structures.npz', [NACL, SI, OVERLAP], UUIDS)
    (folder / 'task.json').write_text(json.dumps(task))
    for key, value in (env or {}).items():
        os.environ[key] = value
    try:
        main([str(folder / 'task.json')])
    finally:
        for key in env or {}:
            del os.environ[key]
    for path in folder.iterdir():
        if path.name not in KEEP:
            path.unlink()
    (folder / 'worker.err').touch()


if __name__ == '__main__':
    weights = str(model_path('matembed.xrd_vae'))
    sha = read_card(weights).sha256
    case('ok_embed', {'task': 'embed', 'device': 'cpu', 'model': {'weights': weights, 'sha256': sha}})
    xrd = {
        'wavelength': 'CuKa',
        'two_theta_range': [10.0, 110.0],
        'step': 0.1,
        'shape': 'gaussian',
        'fwhm': 0.2,
        'eta': 0.5,
        'doublet': False,
        'wavelength_angstrom': 1.5418,
    }
    case('ok_xrd', {'task': 'xrd', 'device': 'cpu', 'parameters': xrd})
    case('out_of_memory', {'task': 'featurize', 'representation': 'matembed.magpie'}, {FAIL_OOM_ABOVE: '1'})
    case('bad_input', {'task': 'featurize', 'representation': 'matembed.nope'})
    case('no_gpu', {'task': 'featurize', 'representation': 'matembed.magpie', 'device': 'cuda'})
    crash = ROOT / 'crash'
    shutil.rmtree(crash, ignore_errors=True)
    crash.mkdir()
    (crash / 'status.json').write_text(
        json.dumps({'status': 'error', 'message': 'ZeroDivisionError: boom', 'traceback': 'Traceback ...'})
    )
    (crash / 'worker.err').write_text('aiida-matembed-worker: error: ZeroDivisionError: boom\n')
    missing = ROOT / 'not_installed'
    shutil.rmtree(missing, ignore_errors=True)
    missing.mkdir()
    (missing / 'worker.err').write_text(
        '/bin/bash: line 7: /opt/nowhere/aiida-matembed-worker: No such file or directory\n'
    )
    killed = ROOT / 'killed'
    shutil.rmtree(killed, ignore_errors=True)
    killed.mkdir()
    (killed / 'worker.err').write_text('')
    corrupt = ROOT / 'corrupt_output'
    shutil.rmtree(corrupt, ignore_errors=True)
    shutil.copytree(ROOT / 'ok_embed', corrupt)
    (corrupt / 'output.npz').write_bytes((corrupt / 'output.npz').read_bytes()[:100])
