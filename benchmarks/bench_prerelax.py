"""DFT ionic steps saved by a CHGNet pre-relaxation (``matembed.prerelax``) on distorted cells.

For each structure, a distorted copy (strain and rattled positions, seeded) is relaxed by pw.x through
aiida-quantumespresso's PwRelaxWorkChain (variable cell, LDA, Debian's pseudopotentials, low cutoffs) twice:
from the distorted cell, and from the distorted cell after CHGNet's relaxation. Prints the pw.x ionic steps
(BFGS steps summed over the PwCalculations of the WorkChain), the wall time of each route and the ratio.

    python benchmarks/bench_prerelax.py [--strain 0.05] [--rattle 0.15]

Uses a throw-away profile (verdi presto, SQLite) in a temporary AIIDA_PATH; needs pw.x and the chgnet extra.
"""

import argparse
import os
import subprocess
import tempfile
import time

import numpy as np


def _structures():
    from pymatgen.core import Lattice, Structure

    diamond = [[0, 0, 0], [0.25, 0.25, 0.25]]
    return {
        'Si': Structure.from_spacegroup('F-43m', Lattice.cubic(5.40), ['Si', 'Si'], diamond),
        'AlAs': Structure.from_spacegroup('F-43m', Lattice.cubic(5.62), ['Al', 'As'], diamond),
        'MgO': Structure.from_spacegroup('Fm-3m', Lattice.cubic(4.17), ['Mg', 'O'], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        'Al': Structure.from_spacegroup('Fm-3m', Lattice.cubic(4.00), ['Al'], [[0, 0, 0]]),
    }


def _distort(structure, strain, rattle, seed):
    rng = np.random.default_rng(seed)
    distorted = structure.get_primitive_structure().copy()
    distorted.make_supercell([1, 1, 1])
    distorted.apply_strain(rng.uniform(-strain, strain, size=3))
    for index in range(len(distorted)):
        distorted.translate_sites([index], rng.normal(scale=rattle, size=3), frac_coords=False)
    return distorted


def _ionic_steps(workchain):
    from aiida import orm

    steps = 0
    for node in workchain.called_descendants:
        if isinstance(node, orm.CalcJobNode) and 'output_trajectory' in node.outputs:
            steps += len(node.outputs.output_trajectory.get_array('positions'))
    return steps


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--strain', type=float, default=0.05, help='largest normal strain')
    parser.add_argument('--rattle', type=float, default=0.15, help='displacement standard deviation (Å)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    os.environ['AIIDA_PATH'] = tempfile.mkdtemp()
    subprocess.run(['verdi', 'presto', '-p', 'bench', '--non-interactive'], check=True, capture_output=True)

    from aiida import load_profile, orm
    from aiida.engine import run_get_node
    from aiida.plugins import WorkflowFactory

    load_profile('bench')
    from aiida_matembed.calculations.prerelax import prerelax_structures
    from aiida_matembed.dft.setup import setup_dft

    code = setup_dft('localhost')['code']
    relax = WorkflowFactory('quantumespresso.pw.relax')
    family = 'matembed/debian-qe/LDA'
    cutoffs = {'pw': {'parameters': {'SYSTEM': {'ecutwfc': 20, 'ecutrho': 160}}}, 'kpoints_distance': 0.4}
    overrides = {
        'base_relax': {'pseudo_family': family, **cutoffs},
        'base_init_relax': {'pseudo_family': family},
        'meta_convergence': False,  # one vc-relax: low cutoffs leave Pulay stress that restarts would chase
    }
    options = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}}

    def dft(structure):
        builder = relax.get_builder_from_protocol(
            code, structure, protocol='fast', overrides=overrides, options=options
        )
        start = time.perf_counter()
        _, node = run_get_node(builder)
        return node, time.perf_counter() - start

    print(f'distortion: strain up to {args.strain}, rattle {args.rattle} Å, seed {args.seed}')
    print(f'{"structure":<8} {"steps direct":>12} {"steps after CHGNet":>18} {"s direct":>9} {"s CHGNet+DFT":>12}')
    totals = np.zeros(4)
    for index, (name, structure) in enumerate(_structures().items()):
        distorted = orm.StructureData(pymatgen=_distort(structure, args.strain, args.rattle, args.seed + index))
        direct, t_direct = dft(distorted)
        start = time.perf_counter()
        (relaxed,), _ = prerelax_structures([distorted], {'fmax': 0.05})
        t_chgnet = time.perf_counter() - start
        assert relaxed is not None, f'CHGNet failed on {name}'
        after, t_after = dft(relaxed)
        row = np.array([_ionic_steps(direct), _ionic_steps(after), t_direct, t_chgnet + t_after])
        status = '' if direct.is_finished_ok and after.is_finished_ok else (
            f'  (exit status {direct.exit_status} / {after.exit_status}: not counted)')  # fmt: skip
        if not status:
            totals += row
        print(f'{name:<8} {row[0]:>12.0f} {row[1]:>18.0f} {row[2]:>9.1f} {row[3]:>12.1f}{status}')
    print(f'{"total":<8} {totals[0]:>12.0f} {totals[1]:>18.0f} {totals[2]:>9.1f} {totals[3]:>12.1f}')
    print(f'ionic steps saved: {totals[0] - totals[1]:.0f} of {totals[0]:.0f} ({1 - totals[1] / totals[0]:.0%}); '
          f'time ratio direct / (CHGNet + DFT): {totals[2] / totals[3]:.2f}x')  # fmt: skip


if __name__ == '__main__':
    main()
