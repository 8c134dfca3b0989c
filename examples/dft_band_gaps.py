"""Band gaps of 16 small cubic crystals with pw.x, then a property model trained on them (the docs' parity plot).

    python examples/dft_band_gaps.py --profile matembed-quickstart

Runs 16 scf calculations (aiida-quantumespresso's PwBaseWorkChain, LDA, Debian's pseudopotentials, 25 Ry,
k-point spacing 0.4 1/Å, 16 bands so the gap is computed) into the Group ``examples/band-gaps`` and trains
``matembed.magpie`` -> band gap on them with 5-fold cross-validation, writing ``parity_band_gap_magpie.png``.
About 10 minutes on two cores. Needs ``verdi data matembed dft setup`` first.
"""

import argparse

from aiida import load_profile, orm
from aiida.engine import run_get_node
from aiida.plugins import WorkflowFactory
from pymatgen.core import Lattice, Structure

GROUP = 'examples/band-gaps'


def crystals():
    def zincblende(a, b, lattice):
        return Structure.from_spacegroup('F-43m', Lattice.cubic(lattice), [a, b], [[0, 0, 0], [0.25] * 3])

    def rocksalt(a, b, lattice):
        return Structure.from_spacegroup('Fm-3m', Lattice.cubic(lattice), [a, b], [[0, 0, 0], [0.5] * 3])

    def cesium_chloride(a, b, lattice):
        return Structure(Lattice.cubic(lattice), [a, b], [[0, 0, 0], [0.5] * 3])

    return [
        zincblende('Si', 'Si', 5.43), zincblende('C', 'C', 3.57), zincblende('Si', 'C', 4.36),
        zincblende('Al', 'As', 5.66), zincblende('B', 'As', 4.78), zincblende('Si', 'Si', 5.60),
        rocksalt('Mg', 'O', 4.21), rocksalt('Ti', 'C', 4.33), zincblende('C', 'Si', 4.50),
        zincblende('Al', 'As', 5.50), rocksalt('Mg', 'O', 4.40), zincblende('B', 'As', 4.90),
        cesium_chloride('Al', 'Ni', 2.88), cesium_chloride('Fe', 'Al', 2.91), zincblende('Si', 'Si', 5.30),
        zincblende('C', 'C', 3.70),
    ]  # fmt: skip


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--profile', required=True)
    args = parser.parse_args()
    load_profile(args.profile)
    from aiida_matembed.calculations.property import train_property_model

    base = WorkflowFactory('quantumespresso.pw.base')
    code = orm.load_code('pw@localhost')
    group, _ = orm.Group.collection.get_or_create(GROUP)
    overrides = {
        'pseudo_family': 'matembed/debian-qe/LDA',
        'kpoints_distance': 0.4,
        'pw': {'parameters': {'SYSTEM': {'ecutwfc': 25, 'ecutrho': 200, 'nbnd': 16}}},
    }
    options = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}}
    for crystal in crystals()[group.count() :]:
        structure = orm.StructureData(pymatgen=crystal.get_primitive_structure())
        builder = base.get_builder_from_protocol(code, structure, protocol='fast', overrides=overrides, options=options)
        _, node = run_get_node(builder)
        print(
            f'{crystal.composition.reduced_formula:<6} {node.process_label}<{node.pk}> exit status {node.exit_status}'
        )
        group.add_nodes(node)
    result = train_property_model(GROUP, 'band_gap', representation='matembed.magpie',
                                  parity_plot='parity_band_gap_magpie.png')  # fmt: skip
    metrics = result.metrics
    print(f'{result.model}: {metrics["n_train"]} labels, CV MAE {metrics["cv_mae"]:.3f} eV '
          f'(mean predictor {metrics["baseline_mae"]:.3f} eV); parity plot parity_band_gap_magpie.png')  # fmt: skip


if __name__ == '__main__':
    main()
