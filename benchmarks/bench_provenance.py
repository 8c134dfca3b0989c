"""Provenance throughput: featurise and store 10,000 structures, each an input of the process holding its row.

Run:  python benchmarks/bench_provenance.py [--n 10000] [--set prototypes|real] [--naive 100]
Structures: pymatgen's 288 AFLOW prototypes (default) or the real crystals of ``bench_identify.real_structures``,
repeated with rescaled lattices up to ``--n``. ``--naive 0`` skips the naive route.
Uses a throw-away profile (verdi presto, SQLite) in a temporary AIIDA_PATH.
Goal (issue #2): <= 60 s for 10,000 structures on two cores and >= 20x the naive route of one calcfunction
per structure. The naive route is timed on --naive structures and extrapolated linearly to --n.
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--n', type=int, default=10_000)
    parser.add_argument('--naive', type=int, default=100)
    parser.add_argument('--batch-size', type=int, default=2000)
    parser.add_argument('--set', choices=('prototypes', 'real'), default='prototypes')
    args = parser.parse_args()

    os.environ['AIIDA_PATH'] = tempfile.mkdtemp(prefix='matembed-bench-')
    subprocess.run(['verdi', 'presto', '-p', 'bench', '--non-interactive'], check=True, capture_output=True)

    import numpy as np
    from aiida import load_profile, orm
    from aiida.engine import calcfunction, run_get_node
    from aiida.manage import get_manager

    load_profile('bench')
    from aiida_matembed.core.datasets import load_aflow_prototypes
    from aiida_matembed.core.representations import get_representation
    from aiida_matembed.data import FeaturesData, structure_data_to_pymatgen, to_structure_data
    from aiida_matembed.workflows import FeaturizeGroupWorkChain

    if args.set == 'real':
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_identify import real_structures

        prototypes = [structure for _, structure in real_structures()]
    else:
        prototypes = [p.structure for p in load_aflow_prototypes()]
    start = time.perf_counter()
    storage = get_manager().get_profile_storage()
    group = orm.Group(label='bench').store()
    nodes = []
    with storage.transaction():
        for i in range(args.n):
            structure = prototypes[i % len(prototypes)].copy()
            structure.scale_lattice(structure.volume * (1 + 0.01 * (i // len(prototypes))))
            nodes.append(to_structure_data(structure).store())  # oxidation states (real CIFs) stripped
    group.add_nodes(nodes)
    t_create = time.perf_counter() - start
    atoms = np.median([len(p) for p in prototypes])
    machine = platform.processor() or platform.machine()
    print(f'machine: {machine}, {os.cpu_count()} cores, Python {sys.version.split()[0]}')
    print(
        f'created {args.n} StructureData ({args.set}, median {atoms:.0f} atoms) in {t_create:.1f} s '
        '(not part of the target)'
    )

    start = time.perf_counter()
    inputs = {
        'group': orm.Str('bench'),
        'representation': orm.Str('matembed.magpie'),
        'batch_size': orm.Int(args.batch_size),
    }
    outputs, process = run_get_node(FeaturizeGroupWorkChain, **inputs)
    t_batched = time.perf_counter() - start
    assert process.is_finished_ok, process.exit_message
    n_rows = sum(f.base.attributes.get('n_rows') for f in outputs['features'].values())
    n_links = (
        orm.QueryBuilder()
        .append(FeaturesData, tag='f')
        .append(orm.CalcFunctionNode, with_outgoing='f', tag='c')
        .append(orm.StructureData, with_outgoing='c')
        .count()
    )
    assert n_rows == args.n == n_links, (n_rows, n_links)
    print(
        f'batched (FeaturizeGroupWorkChain, {len(outputs["features"])} calcfunctions of <= {args.batch_size}): '
        f'{t_batched:.1f} s for {args.n} structures = {t_batched / args.n * 1e3:.2f} ms/structure '
        f'(goal <= 60 s); {n_links} structure->process->features paths'
    )

    if not args.naive:
        return
    rep = get_representation('matembed.magpie')

    @calcfunction
    def featurize_one(structure, representation):
        result = rep.featurize_many([structure_data_to_pymatgen(structure)], errors='record')
        return {
            'features': FeaturesData(
                result.features, labels=result.labels, representation=rep.name, version=rep.version,
                params=rep.get_params(), rows=[structure.uuid],
            )
        }  # fmt: skip

    name = orm.Str('matembed.magpie').store()
    start = time.perf_counter()
    for node in nodes[: args.naive]:
        featurize_one(node, name)
    t_naive = (time.perf_counter() - start) / args.naive
    print(
        f'naive (one calcfunction per structure): {t_naive * 1e3:.1f} ms/structure measured on {args.naive}, '
        f'extrapolated to {args.n}: {t_naive * args.n:.0f} s'
    )
    print(f'ratio: {t_naive * args.n / t_batched:.1f}x   (goal >= 20x)')


if __name__ == '__main__':
    main()
