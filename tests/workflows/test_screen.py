"""Real DFT in the same graph: pw.x relaxations, features of the relaxed structures, a screening round.

Everything below runs Quantum ESPRESSO's pw.x (Debian's build, installed by scripts/setup_env.sh) through
aiida-quantumespresso's PwRelaxWorkChain, with Debian's pseudopotentials at low cutoffs and coarse k-point
meshes so the class stays within about two minutes on two cores. The DFT results are shared by the tests of
the class (one clean profile for the class).
"""

import json
import shutil

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from aiida.plugins import WorkflowFactory
from click.testing import CliRunner
from pymatgen.core import Lattice, Structure

from aiida_matembed.workflows.screen import farthest_point_selection, select_candidates

needs_pw = pytest.mark.skipif(
    shutil.which('pw.x') is None, reason='needs pw.x (scripts/setup_env.sh installs Quantum ESPRESSO)'
)

LOW_CUTOFFS = {'pw': {'parameters': {'SYSTEM': {'ecutwfc': 16, 'ecutrho': 64}}}, 'kpoints_distance': 0.5}


def test_farthest_point_selection_is_greedy_k_center():
    points = np.array([[0.0], [1.0], [2.0], [11.0], [5.0]])
    assert farthest_point_selection(points, 3) == [4, 3, 0]  # nearest the centroid (3.8) first, then the extremes
    assert farthest_point_selection(points, 2, chosen=np.array([[11.0]])) == [0, 4]
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 4))
    picked = farthest_point_selection(x, 6)
    z = (x - x.mean(0)) / x.std(0)
    brute = [int(np.argmin(((z - z.mean(0)) ** 2).sum(1)))]
    while len(brute) < 6:
        d = np.min([((z - z[i]) ** 2).sum(1) for i in brute], axis=0)
        brute.append(int(np.argmax(d)))
    assert picked == brute


def test_selection_rules():
    vectors = np.eye(4)
    mean = np.array([3.0, 1.0, np.nan, 2.0])
    std = np.array([0.1, 0.5, 0.2, 0.9])
    assert select_candidates('lowest', 2, vectors=vectors, mean=mean, std=std) == [1, 3]
    assert select_candidates('highest', 1, vectors=vectors, mean=mean, std=std) == [0]
    assert select_candidates('uncertainty', 2, vectors=vectors, mean=mean, std=std) == [3, 1]
    with pytest.raises(ValueError, match='selection must be one of'):
        select_candidates('best', 1, vectors=vectors)


def _diamond(a: str, b: str, lattice: float) -> orm.StructureData:
    coords = [[0, 0, 0], [0.25, 0.25, 0.25]]
    structure = Structure.from_spacegroup('F-43m', Lattice.cubic(lattice), [a, b], coords)
    return orm.StructureData(pymatgen=structure.get_primitive_structure())


@needs_pw
class TestRealDft:
    """pw.x through AiiDA: set-up, relaxation, features of the relaxed structure, training, screening."""

    @pytest.fixture(scope='class')
    def dft(self, aiida_profile_clean_class, tmp_path_factory):
        from aiida_matembed.dft.setup import setup_dft

        computer = orm.Computer(
            label='localhost',
            hostname='localhost',
            transport_type='core.local',
            scheduler_type='core.direct',
            workdir=str(tmp_path_factory.mktemp('scratch')),
        ).store()
        computer.set_default_mpiprocs_per_machine(1)
        computer.configure()
        return setup_dft(computer)

    @pytest.fixture(scope='class')
    def relaxation(self, dft):
        """A real PwRelaxWorkChain of silicon (PBE, norm-conserving), in the Group ``relaxations``."""
        family = 'matembed/debian-qe/PBE'
        overrides = {
            'base_relax': {'pseudo_family': family, **LOW_CUTOFFS},
            'base_init_relax': {'pseudo_family': family},
        }
        builder = WorkflowFactory('quantumespresso.pw.relax').get_builder_from_protocol(
            dft['code'],
            _diamond('Si', 'Si', 5.6),
            protocol='fast',
            overrides=overrides,
            options={'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}},
        )
        _, node = run_get_node(builder)
        group = orm.Group('relaxations').store()
        group.add_nodes(node)
        return node

    def test_relaxation_and_its_labels(self, relaxation):
        from aiida_matembed.dft.processes import read_dft_records

        assert relaxation.is_finished_ok, relaxation.exit_message
        records, skipped = read_dft_records(orm.load_group('relaxations'))
        assert not skipped and len(records) == 1
        record = records[0]
        assert record.structure_pk == relaxation.outputs.output_structure.pk
        energy = relaxation.outputs.output_parameters['energy']
        assert record.labels['energy'] == energy
        assert record.labels['energy_per_atom'] == pytest.approx(energy / 2)
        assert abs(record.labels['pressure']) < 0.2  # GPa: the cell was relaxed (press_conv_thr 0.5 kbar)
        assert 0.2 < record.labels['band_gap'] < 1.2  # PBE silicon (0.6 eV converged), from the computed bands
        volume = relaxation.outputs.output_structure.get_pymatgen_structure().volume
        assert 36 < volume < 44  # Å^3 per 2-atom cell (PBE 40.9 converged; low cutoffs here)

    def test_pressure_of_a_compressed_cell_is_positive(self, dft):
        from aiida_matembed.dft.processes import read_dft_records

        builder = WorkflowFactory('quantumespresso.pw.base').get_builder_from_protocol(
            dft['code'],
            _diamond('Si', 'Si', 5.2),  # 4 % below the PBE lattice constant
            protocol='fast',
            overrides={'pseudo_family': 'matembed/debian-qe/PBE', **LOW_CUTOFFS},
            options={'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}},
        )
        _, node = run_get_node(builder)
        (record,), _ = read_dft_records(pks=[node.pk])
        assert record.structure_pk == node.inputs.pw.structure.pk  # scf only: the input structure
        assert record.labels['pressure'] > 5  # GPa; QE's sign: positive when compressed

    def test_features_hang_off_the_relaxed_structure(self, relaxation):
        from aiida_matembed.query import dft_feature_table
        from aiida_matembed.workflows.featurize_group import FeaturizeGroupWorkChain

        results = run_get_node(
            FeaturizeGroupWorkChain, group=orm.Str('relaxations'), representation=orm.Str('matembed.magpie')
        )[0]
        features = results['features']['batch_0000']
        relaxed = relaxation.outputs.output_structure
        assert features.creator.inputs.structures['s0000000'].pk == relaxed.pk
        qb = orm.QueryBuilder()
        qb.append(orm.WorkChainNode, filters={'id': relaxation.pk}, tag='dft')
        qb.append(orm.StructureData, with_incoming='dft', edge_filters={'label': 'output_structure'}, tag='s')
        qb.append(orm.CalcFunctionNode, with_incoming='s', tag='featurize')
        qb.append(orm.Data, with_incoming='featurize', filters={'id': features.pk})
        assert qb.count() == 1
        rows = dft_feature_table(
            'relaxations', 'matembed.magpie', process_class=WorkflowFactory('quantumespresso.pw.relax')
        )
        assert len(rows) == 1 and rows[0]['energy'] == relaxation.outputs.output_parameters['energy']
        np.testing.assert_array_equal(rows[0]['vector'], features.features[0])

    @pytest.fixture(scope='class')
    def screen(self, dft):
        """A real screen: 3 candidates, k = 2, one round, LDA relaxations through pw.x."""
        from aiida_matembed.workflows.screen import launch_screen

        candidates = orm.Group('candidates').store()
        fcc = Structure.from_spacegroup('Fm-3m', Lattice.cubic(4.05), ['Al'], [[0, 0, 0]]).get_primitive_structure()
        nodes = [_diamond('Si', 'Si', 5.5), _diamond('Al', 'As', 5.6), orm.StructureData(pymatgen=fcc)]
        candidates.add_nodes([n.store() for n in nodes])
        overrides = {
            'k': 2,
            'rounds': 1,
            'pseudo_family': 'matembed/debian-qe/LDA',
            'dft_overrides': {'base_relax': LOW_CUTOFFS},
            'dft_options': {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}},
            'selection': 'diversity',
        }
        summary, node = launch_screen(candidates, dft['code'], protocol='fast', overrides=overrides)
        return summary, node, nodes

    def test_screen_three_candidates_one_round(self, screen):
        from aiida_matembed.workflows.screen import ScreenWorkChain

        assert 'fast' in ScreenWorkChain.get_available_protocols()
        summary, node, nodes = screen
        assert node.is_finished_ok, (node.exit_status, node.exit_message)
        metrics = summary['rounds'][0]
        assert len(metrics['selected']) == 2 and not metrics['failed']
        assert {label['candidate'] for label in metrics['labels']} == set(metrics['selected'])
        labelled = orm.load_group(summary['labelled_group'])
        dft_nodes = list(labelled.nodes)
        assert len(dft_nodes) == 2 and all(n.is_finished_ok for n in dft_nodes)
        assert sorted(n.pk for n in dft_nodes) == sorted(p for p in summary['dft_processes'] if p)

        # labels -> training process -> model -> predict -> FeaturesData, and DFT -> relaxed structure -> vectors
        model = node.outputs.model
        train = model.creator
        assert train.process_label == 'train_property'
        incoming = train.base.links.get_incoming().all()
        dft_inputs = {link.node.pk for link in incoming if link.link_label.startswith('dft__')}
        dft_outputs = {n.pk for d in dft_nodes for n in d.base.links.get_outgoing().all_nodes()}
        assert dft_inputs and dft_inputs <= dft_outputs
        trained_on = [link.node for link in incoming if link.link_label.startswith('structures__')]
        assert {s.pk for s in trained_on} == {d.outputs.output_structure.pk for d in dft_nodes}
        predictions = node.outputs.predictions
        assert predictions.creator.inputs.model.pk == model.pk
        assert predictions.features.shape == (3, 2)
        assert set(predictions.rows) == {n.uuid for n in nodes}

    def test_cli_train_predict_and_a_screen_that_runs_no_dft(self, dft, screen):
        from aiida_matembed.cli import cmd_matembed

        runner = CliRunner()
        result = runner.invoke(cmd_matembed, ['dft', 'setup', '--json'], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)['code'] == 'pw@localhost'
        labelled = orm.load_group('candidates/labelled')
        args = ['train-property', '-G', labelled.label, '--target', 'energy_per_atom', '-r', 'matembed.magpie']
        result = runner.invoke(cmd_matembed, [*args, '--json'], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        trained = json.loads(result.output)
        assert trained['n_train'] == len(labelled.nodes) and trained['cv_folds'] >= 2
        result = runner.invoke(cmd_matembed, ['predict', '-G', 'candidates', '-m', str(trained['model']), '--json'])
        assert result.exit_code == 0, result.output
        assert len(json.loads(result.output)['rows']) == 3

        # a candidate without pseudopotentials: recorded, no DFT started; the model comes from the initial labels
        nacl = orm.Group('nacl').store()
        rocksalt = Structure.from_spacegroup('Fm-3m', Lattice.cubic(5.64), ['Na', 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]])
        nacl.add_nodes(orm.StructureData(pymatgen=rocksalt).store())
        from aiida_matembed.workflows.screen import launch_screen

        summary, node = launch_screen(
            nacl,
            dft['code'],
            protocol='fast',
            overrides={'k': 1, 'initial_labels': labelled.label, 'pseudo_family': 'matembed/debian-qe/PBE'},
        )
        assert node.is_finished_ok
        failed = summary['rounds'][0]['failed']
        assert len(failed) == 1 and 'Cl, Na' in failed[0]['reason'] and summary['dft_processes'] == []
        assert summary['model'] is not None

        result = runner.invoke(
            cmd_matembed, ['train-property', '-G', 'nacl', '--target', 'energy', '-r', 'matembed.magpie']
        )
        assert result.exit_code != 0 and 'holds no finished DFT process' in result.output

    def test_a_failed_dft_process_is_recorded_and_the_screen_goes_on(self, dft, screen):
        from aiida_matembed.workflows.screen import launch_screen

        group = orm.Group('doomed').store()
        group.add_nodes(_diamond('Si', 'Si', 5.2).store())
        unconverged = {'max_iterations': 1, 'pw': {'parameters': {'ELECTRONS': {'electron_maxstep': 1}}}}
        summary, node = launch_screen(
            group,
            dft['code'],
            protocol='fast',
            overrides={
                'k': 1,
                'initial_labels': 'candidates/labelled',
                'dft_workflow': 'quantumespresso.pw.base',
                'pseudo_family': 'matembed/debian-qe/LDA',
                'dft_overrides': unconverged,
                'dft_options': {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}},
            },
        )
        failed = summary['rounds'][0]['failed']
        assert len(failed) == 1 and failed[0]['process'] == summary['dft_processes'][0]
        assert not orm.load_node(failed[0]['process']).is_finished_ok
        assert 'exit status' in failed[0]['reason']
        assert node.is_finished_ok and summary['model'] is not None  # the model of the initial labels is kept
        assert orm.load_group(summary['labelled_group']).count() == 2  # the failed process is not a label
