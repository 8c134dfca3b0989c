"""Embedding inference: end-to-end throughput of ``matembed.cmml`` and the AiiDA overhead of the worker CalcJob.

Run:  python benchmarks/bench_embed.py [throughput] [gpu] [aiida] [--n 10000]   (default: throughput aiida)

Goals (issue #6):
- throughput: crystal graphs built from pymatgen structures + CGCNN encoder, ``CmmlModel.embed_structures``
  on the 288 pymatgen AFLOW prototypes (cells <= 50 atoms) repeated to 2,304 structures: >= 500 structures/s on
  the CPU here. Peer, for a ratio: CHGNet's 64-d crystal features (``matembed.chgnet``, the foundation-model
  features of the same package) on the first 96 of them, and the same model through torch-geometric's
  ``CGConv`` (the training path) to show what the inference path gains;
- gpu: the same on a CUDA device (>= 20,000 structures/s for cells <= 50 atoms on an H100/H200);
- aiida: a Group of N (default 10,000) structures embedded through ``EmbedGroupWorkChain`` with the worker
  CalcJob on ``localhost`` (core.local transport, core.direct scheduler) in one batch: wall time of the whole
  WorkChain vs the worker's own time (process start to output written, and model compute alone); goal: wall
  <= 2x the worker's time. Uses a throw-away SQLite profile (``verdi presto``) in a temporary AIIDA_PATH.
"""

import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings

warnings.filterwarnings('ignore')


def structures_le_50_atoms(n=None):
    from aiida_matembed.core.datasets import load_aflow_prototypes

    base = [p.structure for p in load_aflow_prototypes() if len(p.structure) <= 50]
    if n is None:
        return base
    return [base[i % len(base)] for i in range(n)]


def bench_throughput(device='cpu'):
    import torch

    from aiida_matembed.core.models import load_model

    base = structures_le_50_atoms()
    structures = base * 8
    model = load_model('matembed.cmml', device=device)
    model.embed_structures(base[:32])  # warm-up: imports, element table, kernels
    rates = {}
    for batch_size in (256, 1024):
        start = time.perf_counter()
        vectors = model.embed_structures(structures, batch_size=batch_size)
        if device != 'cpu':
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        print(
            f'matembed.cmml on {device} ({torch.get_num_threads()} threads), batch {batch_size}: '
            f'{len(structures) / elapsed:8.0f} structures/s ({len(structures)} structures, {elapsed:.2f} s; '
            f'graphs + encoder; goal >= {500 if device == "cpu" else 20000})'
        )
        rates[batch_size] = len(structures) / elapsed
    assert vectors.shape == (len(structures), 256)
    ours = max(rates.values())
    if device != 'cpu':
        return ours
    # the same network through torch-geometric's CGConv (training path, autograd on), per forward pass size
    graph_input = model.graph_input
    for size in (256, len(structures)):
        arrays, _, _ = graph_input.arrays(structures[:size], errors='record')
        batch = graph_input.batch(arrays)
        timings = {}
        for path, context in (('inference', torch.no_grad), ('PyG CGConv', torch.enable_grad)):
            with context():
                model.network.embed_graphs(batch)
                start = time.perf_counter()
                for _ in range(3):
                    model.network.embed_graphs(batch)
                timings[path] = (time.perf_counter() - start) / 3 / size * 1e3
        print(
            f'encoder alone, {size} structures per pass: inference path {timings["inference"]:.3f} ms/structure, '
            f'PyG CGConv path {timings["PyG CGConv"]:.3f} ({timings["PyG CGConv"] / timings["inference"]:.1f}x)'
        )
    try:
        from aiida_matembed.core.representations import get_representation

        chgnet = get_representation('matembed.chgnet')
        chgnet.featurize_many(base[:4])
        start = time.perf_counter()
        chgnet.featurize_many(base[:96], errors='record')
        peer = 96 / (time.perf_counter() - start)
        print(
            f'peer CHGNet crystal features (64-d) on cpu: {peer:8.1f} structures/s -> ratio {ours / peer:.0f}x '
            '(our best batch size)'
        )
    except ImportError as exception:
        print(f'peer CHGNet not measured: {exception}')
    return ours


def bench_aiida(n):
    work = tempfile.mkdtemp(prefix='matembed-bench-')
    os.environ['AIIDA_PATH'] = work
    profile = 'bench-embed'
    subprocess.run(['verdi', 'presto', '--profile-name', profile], check=True, capture_output=True)
    from aiida import load_profile, orm
    from aiida.engine import run_get_node
    from aiida.manage import get_manager

    load_profile(profile, allow_switch=True)
    from aiida_matembed.calculations.worker import get_worker_code
    from aiida_matembed.data import import_model
    from aiida_matembed.workflows import EmbedGroupWorkChain

    structures = structures_le_50_atoms(n)
    start = time.perf_counter()
    group = orm.Group(label='bench').store()
    nodes = []
    with get_manager().get_profile_storage().transaction():
        for structure in structures:
            nodes.append(orm.StructureData(pymatgen=structure).store())
    group.add_nodes(nodes)
    print(f'stored {n} structures in a Group: {time.perf_counter() - start:.1f} s (set-up, not counted)')
    del nodes, structures  # a user embedding a Group holds no node objects: neither does the benchmark
    import gc

    gc.collect()
    computer = orm.load_computer('localhost')
    computer.set_minimum_job_poll_interval(1.0)
    code = get_worker_code(computer)
    model = import_model('matembed.cmml')
    start = time.perf_counter()
    outputs, node = run_get_node(
        EmbedGroupWorkChain,
        group=orm.Str('bench'),
        model=model,
        code=code,
        batch_size=orm.Int(n),
        device=orm.Str('cpu'),
    )
    wall = time.perf_counter() - start
    assert node.is_finished_ok, node.exit_message
    (job,) = [c for c in node.called if c.process_label == 'WorkerCalculation']
    status = job.outputs.worker_status.get_dict()
    (features,) = outputs['results'].values()
    timings = status['timings']
    worker_total = timings['total_s']
    print(
        f'EmbedGroupWorkChain + worker CalcJob on localhost: {n} structures ({features.features.shape}), '
        f'wall {wall:.1f} s'
    )
    print(
        f'  worker: {worker_total:.1f} s from reading the input to writing the output (read {timings["read_s"]:.1f}, '
        f'model {timings["compute_s"]:.1f}, write {timings["write_s"]:.1f}); '
        f'process wall including imports {(job.mtime - job.ctime).total_seconds():.1f} s between job creation and '
        f'last change'
    )
    print(
        f'  ratio wall / worker time = {wall / worker_total:.2f} (goal <= 2); wall / model compute = '
        f'{wall / timings["compute_s"]:.2f}'
    )
    start = time.perf_counter()
    outputs, node = run_get_node(
        EmbedGroupWorkChain,
        group=orm.Str('bench'),
        model=model,
        code=code,
        batch_size=orm.Int(n),
        device=orm.Str('cpu'),
    )
    print(f'  second run (everything current, nothing to do): {time.perf_counter() - start:.1f} s')


def main(argv):
    parts = [a for a in argv if not a.startswith('--') and not a.isdigit()] or ['throughput', 'aiida']
    n = int(argv[argv.index('--n') + 1]) if '--n' in argv else 10000
    import torch

    print(
        f'machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, '
        f'python {sys.version.split()[0]}'
    )
    if 'throughput' in parts:
        bench_throughput('cpu')
    if 'gpu' in parts:
        if torch.cuda.is_available():
            print(f'GPU: {torch.cuda.get_device_name(0)}')
            bench_throughput('cuda')
        else:
            print('GPU throughput: not measured (torch sees no GPU here)')
    if 'aiida' in parts:
        bench_aiida(n)


if __name__ == '__main__':
    main(sys.argv[1:])
