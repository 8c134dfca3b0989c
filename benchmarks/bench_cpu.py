"""CPU speed on two structure sets next to the peers: first call (fresh process) and warm, one core.

Run:  python benchmarks/bench_cpu.py [magpie] [sine] [xrd] [graphs] [provenance] [--sets prototypes real]
      (default: every row on both sets; ``provenance`` runs ``bench_provenance.py`` once per set, ~3-5 min each)

Sets: ``prototypes``, pymatgen's 288 AFLOW prototypes; ``real``, the ordered crystals of the CIF files shipped in
installed packages (``bench_identify.real_structures``: larger, lower-symmetry cells).

Rows and goals:
- Magpie from pymatgen ``Structure`` objects (validation included) vs matminer ``ElementProperty.from_preset('magpie')``
  on the compositions (computed beforehand, untimed): >= 100x;
- sine-matrix spectra vs matminer ``SineCoulombMatrix``, first call included: >= 50x;
- XRD peaks (one ``peaks_many`` batch) vs pymatgen ``XRDCalculator``, Cu K-alpha and Mo K-alpha 10-110°: >= 100x;
- crystal graphs (8 Å, 12 neighbours, cells <= 50 atoms, list of torch-geometric ``Data``): >= 2,000/s on one core
  (the CGCNN per-structure loop of ``bench_structural.py`` is printed for a ratio);
- 10,000 structures featurised with provenance (``FeaturizeGroupWorkChain``, Magpie): <= 60 s.

Each row and set runs in a fresh process (one core: ``OMP_NUM_THREADS=1``, ``torch.set_num_threads(1)``). "first"
is the first call of the process: construction + the first ``featurize_many`` / ``peaks_many`` (or the peer's loop)
after the modules are imported, so it includes lazy imports, numba's start-up and the loading or compiling of
kernels; ours runs first, so the peer's first call never pays an import that ours already paid. "warm" is the best
of several further calls in the same process. Ratios are peer time / our time. The load average (1 min) is printed
before and after each row: the machine is shared, absolute times measured under load are upper bounds.
"""

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROWS = ('magpie', 'sine', 'xrd', 'graphs', 'provenance')
SETS = ('prototypes', 'real')
GOALS = {'magpie': 100.0, 'sine': 50.0, 'xrd CuKa': 100.0, 'xrd MoKa': 100.0}


def load_set(name):
    """The structures of a set (a list of pymatgen ``Structure``)."""
    if name == 'prototypes':
        from aiida_matembed.core.datasets import load_aflow_prototypes

        return [p.structure for p in load_aflow_prototypes()]
    if name == 'real':
        sys.path.insert(0, str(HERE))
        from bench_identify import real_structures

        return [structure for _, structure in real_structures()]
    raise SystemExit(f'unknown set {name!r}; choose from {SETS}')


def timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def best(function, repeat):
    return min(timed(function)[0] for _ in range(repeat))


# ------------------------------------------------------------------------------------------- child side
def child_magpie(structures):
    import numpy as np
    from matminer.featurizers.composition import ElementProperty

    from aiida_matembed.core.representations import get_representation

    compositions = [s.composition for s in structures]  # the peer's input, untimed
    t_ours, ours = timed(lambda: get_representation('matembed.magpie').featurize_many(structures).features)
    peer = None

    def run_peer():
        nonlocal peer
        peer = ElementProperty.from_preset('magpie', impute_nan=True)
        return np.array([peer.featurize(c) for c in compositions])

    t_peer, expected = timed(run_peer)
    rep = get_representation('matembed.magpie')
    warm_ours = best(lambda: rep.featurize_many(structures), 10)
    warm_peer = best(lambda: [peer.featurize(c) for c in compositions], 2)
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-9)
    return {'rows': {'magpie': (t_peer, t_ours, warm_peer, warm_ours)},
            'note': f'values equal matminer (max |Δ| {np.abs(ours - expected).max():.1e})'}  # fmt: skip


def child_sine(structures):
    import numpy as np
    from matminer.featurizers.structure import matrix

    from aiida_matembed.core.representations import get_representation
    from aiida_matembed.core.representations.structural import ANGSTROM_TO_BOHR, sort_spectra

    matrix.ANG_TO_BOHR = ANGSTROM_TO_BOHR  # the same unit as ours (matminer uses the "Angstrom star")
    max_sites = max(len(s) for s in structures)
    t_ours, ours = timed(
        lambda: get_representation('matembed.sine_matrix', max_sites=max_sites).featurize_many(structures).features
    )
    peer = None

    def run_peer():
        nonlocal peer
        peer = matrix.SineCoulombMatrix().fit(structures)
        return np.array([peer.featurize(s) for s in structures])

    t_peer, expected = timed(run_peer)
    rep = get_representation('matembed.sine_matrix', max_sites=max_sites)
    warm_ours = best(lambda: rep.featurize_many(structures), 10)
    warm_peer = best(lambda: [peer.featurize(s) for s in structures], 1)
    deviation = np.abs(ours - sort_spectra(np.real(expected))).max()
    assert deviation < 1e-6 * max(1.0, np.abs(expected).max()), deviation
    return {'rows': {'sine': (t_peer, t_ours, warm_peer, warm_ours)},
            'note': f'values equal matminer (max |Δ| {deviation:.1e})'}  # fmt: skip


def child_xrd(structures):
    import numpy as np
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    from aiida_matembed.core.xrd import XrdSimulator

    rows, notes = {}, []
    for anode in ('CuKa', 'MoKa'):
        t_ours, ours = timed(lambda: XrdSimulator(anode).peaks_many(structures))  # noqa: B023
        peer = XRDCalculator(anode)
        t_peer, expected = timed(lambda: [peer.get_pattern(s, two_theta_range=(10, 110)) for s in structures])  # noqa: B023
        simulator = XrdSimulator(anode)
        warm_ours = best(lambda: simulator.peaks_many(structures), 5)  # noqa: B023
        warm_peer = best(lambda: [peer.get_pattern(s, two_theta_range=(10, 110)) for s in structures], 1)  # noqa: B023
        worst = 0.0
        for mine, theirs in zip(ours, expected, strict=True):  # positions and intensities of the peaks above 0.5
            strong = np.asarray(theirs.y) > 0.5
            mine_strong = mine.intensity > 0.5
            assert mine_strong.sum() == strong.sum(), (anode, mine_strong.sum(), strong.sum())
            worst = max(worst, np.abs(mine.two_theta[mine_strong] - np.asarray(theirs.x)[strong]).max(initial=0))
            worst = max(worst, np.abs(mine.intensity[mine_strong] - np.asarray(theirs.y)[strong]).max(initial=0))
        rows[f'xrd {anode}'] = (t_peer, t_ours, warm_peer, warm_ours)
        notes.append(f'{anode}: peaks > 0.5 equal pymatgen (max |Δ2θ|, |ΔI| {worst:.1e})')
    return {'rows': rows, 'note': '; '.join(notes)}


def child_graphs(structures):
    import numpy as np
    import torch

    from aiida_matembed.core.representations import get_representation

    sys.path.insert(0, str(HERE))
    from bench_structural import cgcnn_graphs

    small = [s for s in structures if len(s) <= 50]
    t_ours, graphs = timed(lambda: get_representation('matembed.crystal_graph').graphs_many(small).graphs)
    rep = get_representation('matembed.crystal_graph')
    table = np.nan_to_num(rep.atom_table())
    t_peer, _ = timed(lambda: cgcnn_graphs(small, table, rep.gaussian_centers, rep.gaussian_width))
    warm_ours = best(lambda: rep.graphs_many(small), 5)
    warm_batch = best(lambda: rep.graphs_batch(small), 5)
    warm_peer = best(lambda: cgcnn_graphs(small, table, rep.gaussian_centers, rep.gaussian_width), 1)
    edges = sum(g.edge_index.shape[1] for g in graphs) / len(small)
    assert torch.get_num_threads() == 1
    return {'rows': {'graphs': (t_peer, t_ours, warm_peer, warm_ours)}, 'n': len(small),
            'note': f'{len(small)} cells <= 50 atoms, {edges:.0f} edges per graph; one Batch (graphs_batch) warm: '
                    f'{len(small) / warm_batch:,.0f} graphs/s'}  # fmt: skip


def child(row, set_name):
    warnings.filterwarnings('ignore')
    import torch

    torch.set_num_threads(1)
    structures = load_set(set_name)
    result = {'magpie': child_magpie, 'sine': child_sine, 'xrd': child_xrd, 'graphs': child_graphs}[row](structures)
    result.setdefault('n', len(structures))
    result['sites'] = sum(len(s) for s in structures) / len(structures)
    print('RESULT ' + json.dumps(result))


# ------------------------------------------------------------------------------------------ parent side
def load():
    return os.getloadavg()[0]


def run_child(row, set_name):
    env = dict(os.environ)
    for variable in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS', 'RAYON_NUM_THREADS'):
        env[variable] = '1'
    before = load()
    process = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), '--child', row, set_name],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    lines = [line for line in process.stdout.splitlines() if line.startswith('RESULT ')]
    if process.returncode or not lines:
        print(f'{row} on {set_name}: FAILED\n{process.stdout[-2000:]}\n{process.stderr[-4000:]}')
        return
    result = json.loads(lines[-1][len('RESULT ') :])
    n = result['n']
    for name, (t_peer, t_ours, warm_peer, warm_ours) in result['rows'].items():
        if name == 'graphs':
            print(
                f'{name:<9} {set_name:<10} n={n:<4} first: ours {n / t_ours:7,.0f}/s ({t_ours:6.3f} s), CGCNN loop '
                f'{n / t_peer:6,.0f}/s, ratio {t_peer / t_ours:5.1f}x | warm: ours {n / warm_ours:7,.0f}/s, '
                f'loop {n / warm_peer:6,.0f}/s, ratio {warm_peer / warm_ours:5.1f}x | goal >= 2,000/s'
            )
            continue
        goal = GOALS[name]
        print(
            f'{name:<9} {set_name:<10} n={n:<4} first: peer {t_peer / n * 1e3:8.3f} ours {t_ours / n * 1e3:7.3f} '
            f'ms/structure ({t_ours:6.3f} s) ratio {t_peer / t_ours:6.1f}x | warm: peer {warm_peer / n * 1e3:8.3f} '
            f'ours {warm_ours / n * 1e3:7.4f} ms/structure ratio {warm_peer / warm_ours:6.1f}x | goal >= {goal:.0f}x'
        )
    print(f'{"":<9} {set_name:<10} {result["sites"]:.1f} sites on average; {result["note"]}; '
          f'load average {before:.2f} -> {load():.2f}')  # fmt: skip


def run_provenance(set_name):
    before = load()
    command = [sys.executable, str(HERE / 'bench_provenance.py'), '--set', set_name, '--naive', '0']
    process = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in process.stdout.splitlines() if line.startswith(('batched', 'created'))]
    if process.returncode or not lines:
        print(f'provenance {set_name}: FAILED\n{process.stdout[-2000:]}\n{process.stderr[-4000:]}')
        return
    for line in lines:
        print(f'provenance {set_name:<10} {line}')
    print(f'{"":<9} {set_name:<10} load average {before:.2f} -> {load():.2f}')


def main():
    if sys.argv[1:2] == ['--child']:
        child(sys.argv[2], sys.argv[3])
        return
    args = sys.argv[1:]
    sets = list(SETS)
    if '--sets' in args:
        position = args.index('--sets')
        sets = [a for a in args[position + 1 :] if a in SETS]
        args = args[:position] + [a for a in args[position + 1 :] if a not in SETS]
    rows = [a for a in args if a in ROWS] or list(ROWS)
    import platform

    print(f'# bench_cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python '
          f'{platform.python_version()}, one core per process; {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}; '
          f'load average {load():.2f}')  # fmt: skip
    print(f'# command: python benchmarks/bench_cpu.py {" ".join(sys.argv[1:])}'.rstrip())
    for row in rows:
        for set_name in sets:
            if row == 'provenance':
                run_provenance(set_name)
            else:
                run_child(row, set_name)


if __name__ == '__main__':
    main()
