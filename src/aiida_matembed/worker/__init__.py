"""``aiida-matembed-worker``: the executable the ``matembed.worker`` CalcJob runs on any computer.

It needs the package (and torch) but no AiiDA profile. One worker serves every task:

* ``featurize``: any registered representation (``representation`` + ``parameters``);
* ``xrd``: powder patterns (peaks + gridded profiles) with the given settings;
* ``embed``: a model (weights + card sent along, or a checkpoint path on the remote machine; the sha256
  is checked against the one recorded in the ``matembed.model`` node either way).

Usage: ``aiida-matembed-worker task.json`` in a folder holding ``structures.npz`` (see :mod:`.io`). It
writes ``output.npz`` and ``status.json``, and exits 0 (ok), 2 (bad input), 3 (no GPU where one was
required), 4 (out of memory) or 1 (any other error, traceback in ``status.json``).
``aiida-matembed-worker --check`` prints the version and the devices torch sees.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from ..core.device import NoGpuError, resolve_device
from .io import read_structures, write_output

__all__ = ('EXIT_CODES', 'BadInputError', 'NoGpuError', 'main', 'run_task')

EXIT_CODES = {'ok': 0, 'error': 1, 'bad_input': 2, 'no_gpu': 3, 'out_of_memory': 4}
"""Process exit status of the worker for each ``status``."""

FAIL_OOM_ABOVE = 'MATEMBED_WORKER_FAIL_OOM_ABOVE'
"""Fault injection for tests: raise an out-of-memory error for batches larger than this many structures
(a real GPU out-of-memory cannot be produced on the CPU machines the tests run on)."""


class BadInputError(ValueError):
    """The task file, the structures or the model cannot be used."""


def _device(requested: Any) -> str:
    try:
        return str(resolve_device(requested))
    except NoGpuError:
        raise
    except ValueError as exception:
        raise BadInputError(str(exception)) from None


def _is_out_of_memory(exception: BaseException) -> bool:
    if isinstance(exception, MemoryError):
        return True
    import torch

    out_of_memory = getattr(torch, 'OutOfMemoryError', None) or torch.cuda.OutOfMemoryError  # torch < 2.4
    if isinstance(exception, out_of_memory):
        return True
    text = str(exception).lower()
    return isinstance(exception, RuntimeError) and ('out of memory' in text or "can't allocate memory" in text)


def _embed(task: dict[str, Any], structures: list[Any], device: str, folder: Path) -> dict[str, Any]:
    from ..core.models import ChecksumError, ModelCard, model_from_parts, read_card
    from ..core.models.checkpoint import read_weights
    from ..core.models.inference import run_model

    spec = task.get('model') or {}
    weights = Path(spec.get('weights', ''))
    if not weights.is_absolute():
        weights = folder / weights
    if not weights.is_file():
        raise BadInputError(f'model weights {weights} not found on {platform.node()}')
    try:
        # the card travels with the task (from the model node), so a stale card next to remote weights is never
        # used; the weights must have the sha256 the node records
        card = ModelCard.from_dict(json.loads((folder / spec['card']).read_text())) if spec.get('card') else None
        card = card or read_card(weights)
        if not card.sha256:
            raise BadInputError(f'{weights}: the model card records no sha256')
        if spec.get('sha256') and card.sha256 != spec['sha256']:
            raise BadInputError(f'{weights}: the card records sha256 {card.sha256}, the model node {spec["sha256"]}')
        model = model_from_parts(card, read_weights(weights, card.sha256), device=device, source=str(weights))
    except (ChecksumError, ValueError, FileNotFoundError, KeyError) as exception:
        raise BadInputError(str(exception)) from None
    result = run_model(model, structures, modality=task.get('modality'), batch_size=int(task.get('batch_size') or 256))
    return {
        'arrays': {'features': result.matrix, 'labels': np.asarray(result.labels, dtype=str)},
        'failures': [f.as_dict() for f in result.failures],
        'meta': {'model': model.name, 'sha256': model.card.sha256, 'modality': result.modality},
    }


def _featurize(task: dict[str, Any], structures: list[Any]) -> dict[str, Any]:
    from ..core.representations import load_representation_class

    try:
        rep = load_representation_class(task['representation']).from_params(task.get('parameters') or {})
    except (KeyError, ValueError, TypeError) as exception:
        raise BadInputError(f'representation: {exception}') from None
    rep = rep.fit(structures)
    try:
        labels = rep.feature_labels()
    except ValueError as exception:
        raise BadInputError(f'{exception} (no structure of this batch could be read to resolve it)') from None
    result = rep.featurize_many(structures, errors='record')
    return {
        'arrays': {'features': np.asarray(result.features), 'labels': np.asarray(labels, dtype=str)},
        'failures': [f.as_dict() for f in result.failures],
        'meta': {'representation': rep.name, 'version': rep.version, 'params': rep.get_params()},
    }


def _xrd(task: dict[str, Any], structures: list[Any], device: str) -> dict[str, Any]:
    from ..core.xrd.settings import XrdSettings

    try:
        settings = XrdSettings.from_dict(task.get('parameters'))
        peaks, grid, profiles = settings.patterns(structures, device=device)
    except (TypeError, ValueError) as exception:
        raise BadInputError(f'xrd settings: {exception}') from None
    failures = []
    for row, result in enumerate(peaks):
        if result.error is not None:
            error_type, _, message = result.error.partition(': ')
            failures.append({'index': row, 'error_type': error_type, 'message': message})
    counts = [len(p) for p in peaks]

    def cat(attribute: str) -> np.ndarray:
        parts = [np.asarray(getattr(p, attribute)) for p in peaks]
        return np.concatenate(parts) if parts else np.zeros(0)

    hkls = [[[[list(hkl), mult] for hkl, mult in family.items()] for family in p.hkls] for p in peaks]
    arrays = {
        'two_theta_grid': np.asarray(grid, dtype=float),
        'profiles': np.asarray(profiles, dtype=np.float32),
        'peak_two_theta': cat('two_theta'),
        'peak_intensity': cat('intensity'),
        'peak_d_spacing': cat('d_spacing'),
        'peak_multiplicity': cat('multiplicity'),
        'peak_ptr': np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        'hkls': np.asarray(json.dumps(hkls)),
    }
    meta = {'settings': settings.stored_attributes(), 'hkl_settings': [p.hkl_setting for p in peaks]}
    return {'arrays': arrays, 'failures': failures, 'meta': meta}


def run_task(task: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Run one task in ``folder``; return the status dictionary (also written to ``status.json``)."""
    import torch

    timings: dict[str, float] = {}
    start = time.perf_counter()
    kind = task.get('task')
    if kind not in ('embed', 'featurize', 'xrd'):
        raise BadInputError(f"task must be 'embed', 'featurize' or 'xrd', got {kind!r}")
    device = _device(task.get('device', 'auto'))
    threads = task.get('threads')
    if threads:
        torch.set_num_threads(int(threads))
    structures, uuids = read_structures(folder / task.get('structures', 'structures.npz'))
    good = [i for i, s in enumerate(structures) if not isinstance(s, Exception)]
    unreadable = [
        {'index': i, 'error_type': type(s).__name__, 'message': str(s)}
        for i, s in enumerate(structures)
        if isinstance(s, Exception)
    ]
    timings['read_s'] = time.perf_counter() - start
    limit = os.environ.get(FAIL_OOM_ABOVE)
    if limit is not None and len(structures) > int(limit):
        raise MemoryError(f'CUDA out of memory (fault injected by {FAIL_OOM_ABOVE}={limit})')
    t0 = time.perf_counter()
    batch = [structures[i] for i in good]
    if kind == 'embed':
        result = _embed(task, batch, device, folder)
    elif kind == 'featurize':
        result = _featurize(task, batch)
    else:
        result = _xrd(task, batch, device)
    timings['compute_s'] = time.perf_counter() - t0
    # rows of the good structures back to rows of the whole batch
    arrays = result['arrays']
    row_arrays = ('features', 'profiles')
    for name in row_arrays:
        if name in arrays:
            full = np.full((len(structures), *arrays[name].shape[1:]), np.nan, dtype=arrays[name].dtype)
            full[good] = arrays[name]
            arrays[name] = full
    if kind == 'xrd':
        counts = np.zeros(len(structures), dtype=np.int64)
        counts[good] = np.diff(arrays['peak_ptr'])
        arrays['peak_ptr'] = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        hkls: list[Any] = [[] for _ in structures]
        for i, families in zip(good, json.loads(str(arrays['hkls'])), strict=True):
            hkls[i] = families
        arrays['hkls'] = np.asarray(json.dumps(hkls))
    failures = unreadable + [{**f, 'index': good[f['index']]} for f in result['failures']]
    failures.sort(key=lambda f: f['index'])
    t0 = time.perf_counter()
    meta = {**result['meta'], 'device': device}
    write_output(folder / task.get('output', 'output.npz'), arrays, uuids=uuids, failures=failures, meta=meta)
    timings['write_s'] = time.perf_counter() - t0
    timings['total_s'] = time.perf_counter() - start
    return {
        'status': 'ok',
        'message': '',
        'n': len(structures),
        'n_failed': len(failures),
        'device': device,
        'timings': timings,
    }


def _check() -> int:
    import torch

    from .. import __version__

    devices = ['cpu'] + [f'cuda:{i} ({torch.cuda.get_device_name(i)})' for i in range(torch.cuda.device_count())]
    print(f'aiida-matembed-worker {__version__} (torch {torch.__version__}) on {platform.node()}: {", ".join(devices)}')
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (see :data:`EXIT_CODES`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (['--check'], ['--version']):
        return _check()
    if len(args) != 1 or args[0].startswith('-'):
        print('usage: aiida-matembed-worker TASK.json | --check', file=sys.stderr)
        return EXIT_CODES['bad_input']
    task_path = Path(args[0]).resolve()
    folder = task_path.parent
    status: dict[str, Any]
    try:
        task = json.loads(task_path.read_text())
        status = run_task(task, folder)
    except BadInputError as exception:
        status = {'status': 'bad_input', 'message': str(exception)}
    except NoGpuError as exception:
        status = {'status': 'no_gpu', 'message': str(exception)}
    except (OSError, json.JSONDecodeError) as exception:
        status = {'status': 'bad_input', 'message': f'{type(exception).__name__}: {exception}'}
    except BaseException as exception:
        if _is_out_of_memory(exception):
            status = {'status': 'out_of_memory', 'message': f'{type(exception).__name__}: {exception}'}
        else:
            status = {
                'status': 'error',
                'message': f'{type(exception).__name__}: {exception}',
                'traceback': traceback.format_exc(),
            }
    status['host'] = platform.node()
    (folder / 'status.json').write_text(json.dumps(status, indent=1))
    if status['status'] != 'ok':
        print(f'aiida-matembed-worker: {status["status"]}: {status["message"]}', file=sys.stderr)
    return EXIT_CODES[status['status']]


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
