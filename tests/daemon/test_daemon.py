"""Every WorkChain and ``--submit`` command on a PostgreSQL + RabbitMQ profile with 2 daemon workers.

Each result is compared with the same work run in-process (``use_cache=False``, on new copies of the structures).
"""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from aiida import orm
from click.testing import CliRunner

from aiida_matembed.cli import cmd_matembed

from .helpers import active_processes, assert_exactly_once

pytestmark = pytest.mark.daemon


def submitted_pk(output: str, process: str) -> int:
    match = re.search(rf'{process}<(\d+)>', output)
    assert match, output
    return int(match.group(1))


def rows_by_structure(results, group) -> dict[str, np.ndarray]:
    """Structure UUID -> row, over several FeaturesData."""
    rows = {}
    for features in results:
        matrix = features.features
        for row, uuid in enumerate(features.rows):
            rows[uuid] = matrix[row]
    assert set(rows) == {node.uuid for node in group.nodes}
    return rows


def assert_same_as_in_process(rows: dict[str, np.ndarray], group, reference, *, rtol: float = 0.0) -> None:
    """``reference`` (FeaturesData of an in-process run on copies, in the Group's pk order) equals the daemon rows."""
    nodes = sorted(group.nodes, key=lambda node: node.pk)
    daemon = np.array([rows[node.uuid] for node in nodes])
    np.testing.assert_allclose(daemon, reference.features, rtol=rtol, atol=1e-6 if rtol else 0.0)


def copies(group) -> list[orm.StructureData]:
    return [orm.StructureData(pymatgen=node.get_pymatgen()) for node in sorted(group.nodes, key=lambda n: n.pk)]


def test_featurize_submit_from_the_cli_equals_the_in_process_run(daemon, await_node, make_group, structures):
    from aiida_matembed.calculations import featurize_structures

    group = make_group(structures[:30])
    args = ['featurize', '-G', group.label, '-r', 'matembed.magpie', '-b', '7', '--submit']
    result = CliRunner().invoke(cmd_matembed, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    node = await_node(orm.load_node(submitted_pk(result.output, 'FeaturizeGroupWorkChain')))
    assert node.is_finished_ok, node.exit_message
    assert len(node.outputs.features) == 5
    assert_exactly_once(group, 'matembed.magpie')
    reference, _ = featurize_structures(copies(group), 'matembed.magpie', use_cache=False)
    assert_same_as_in_process(rows_by_structure(node.outputs.features.values(), group), group, reference)
    assert not active_processes()


def test_embed_submit_from_the_cli_equals_the_in_process_run(daemon, await_node, make_group, structures):
    from aiida_matembed.calculations import embed_structures

    group = make_group(structures[30:50])
    args = ['embed', '-G', group.label, '-m', 'matembed.cmml', '-b', '8', '-d', 'cpu', '--submit']
    result = CliRunner().invoke(cmd_matembed, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    node = await_node(orm.load_node(submitted_pk(result.output, 'EmbedGroupWorkChain')))
    assert node.is_finished_ok, node.exit_message
    assert len(node.outputs.results) == 3
    reference, _ = embed_structures(copies(group), 'matembed.cmml', device='cpu', use_cache=False)
    rows = rows_by_structure(node.outputs.results.values(), group)
    assert_same_as_in_process(rows, group, reference, rtol=1e-5)  # float32 network, other batch composition
    assert not active_processes()


@pytest.mark.parametrize('where', ['in-process', 'worker'])
def test_embed_group_featurize_and_xrd_tasks_on_the_daemon(daemon, await_node, make_group, structures, where):
    from aiida.engine import submit

    from aiida_matembed.calculations import featurize_structures, simulate_xrd_structures
    from aiida_matembed.calculations.worker import get_worker_code
    from aiida_matembed.workflows import EmbedGroupWorkChain

    group = make_group(structures[50:62])
    common = {'group': orm.Str(group.uuid), 'batch_size': orm.Int(5), 'device': orm.Str('cpu')}
    if where == 'worker':
        computer = orm.Computer(
            label=f'localhost-{group.label}',
            hostname='localhost',
            transport_type='core.local',
            scheduler_type='core.direct',
            workdir=str(daemon.profile.repository_path.parent / 'workdir'),
        ).store()
        computer.set_default_mpiprocs_per_machine(1)
        computer.configure()
        common['code'] = get_worker_code(computer)
    featurize = submit(
        EmbedGroupWorkChain, task=orm.Str('featurize'), representation=orm.Str('matembed.element_fraction'), **common
    )
    xrd = submit(EmbedGroupWorkChain, task=orm.Str('xrd'), parameters=orm.Dict({'step': 0.05}), **common)
    for node in (featurize, xrd):
        await_node(node)
        assert node.is_finished_ok, node.exit_message
        assert len(node.outputs.results) == 3
    assert_exactly_once(group, 'matembed.element_fraction')
    reference, _ = featurize_structures(copies(group), 'matembed.element_fraction', use_cache=False)
    assert_same_as_in_process(rows_by_structure(featurize.outputs.results.values(), group), group, reference)
    patterns, _ = simulate_xrd_structures(copies(group), {'step': 0.05}, use_cache=False)
    by_uuid = {}
    for result in xrd.outputs.results.values():
        by_uuid.update({uuid: result.profiles[row] for row, uuid in enumerate(result.rows)})
    nodes = sorted(group.nodes, key=lambda n: n.pk)
    np.testing.assert_allclose(np.array([by_uuid[n.uuid] for n in nodes]), patterns.profiles, rtol=1e-5, atol=1e-6)
    if where == 'worker':
        # each batch's job runs inside its matembed.worker_base restart WorkChain
        jobs = [c for n in (featurize, xrd) for c in n.called_descendants if isinstance(c, orm.CalcJobNode)]
        assert len(jobs) == 6 and all(job.is_finished_ok for job in jobs)
    assert not active_processes()


@pytest.mark.skipif(shutil.which('pw.x') is None, reason='needs pw.x (scripts/setup_env.sh installs Quantum ESPRESSO)')
def test_screen_submit_from_the_cli_runs_real_dft_on_the_daemon(daemon, await_node, tmp_path):
    """``screen --submit``: 2 candidates, k = 2, one round of pw.x relaxations (LDA, low cutoffs) on 2 workers."""
    import json

    from pymatgen.core import Lattice, Structure

    from aiida_matembed.dft.setup import setup_dft

    computer = orm.Computer(
        label=f'localhost-{tmp_path.name}',
        hostname='localhost',
        transport_type='core.local',
        scheduler_type='core.direct',
        workdir=str(tmp_path / 'scratch'),
    ).store()
    computer.set_default_mpiprocs_per_machine(1)
    computer.configure()
    code = setup_dft(computer)['code']
    candidates = orm.Group(label=f'screen-{tmp_path.name}').store()
    coords = [[0, 0, 0], [0.25, 0.25, 0.25]]
    for a, b, lattice in (('Si', 'Si', 5.5), ('Al', 'As', 5.6)):
        structure = Structure.from_spacegroup('F-43m', Lattice.cubic(lattice), [a, b], coords)
        candidates.add_nodes(orm.StructureData(pymatgen=structure.get_primitive_structure()).store())
    low = {'base_relax': {'pw': {'parameters': {'SYSTEM': {'ecutwfc': 16, 'ecutrho': 64}}}, 'kpoints_distance': 0.5}}
    args = ['screen', '-G', candidates.label, '-k', '2', '--rounds', '1', '--selection', 'diversity',
            '--pseudo-family', 'matembed/debian-qe/LDA', '--dft-overrides', json.dumps(low),
            '--code', code.full_label, '--max-concurrent', '2', '--submit', '--json']  # fmt: skip
    result = CliRunner().invoke(cmd_matembed, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    node = await_node(orm.load_node(json.loads(result.output)['process']), timeout=900)
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    labelled = orm.load_group(f'{candidates.label}/labelled')
    assert len(labelled.nodes) == 2 and all(dft.is_finished_ok for dft in labelled.nodes)
    # the daemon's predictions equal those of the same model computed in this process
    model = node.outputs.model
    result = CliRunner().invoke(cmd_matembed, ['predict', '-G', candidates.label, '-m', str(model.pk), '--json'])
    assert result.exit_code == 0, result.output
    predictions = node.outputs.predictions
    row_of = {uuid: row for row, uuid in enumerate(predictions.rows)}
    rows = json.loads(result.output)['rows']
    assert len(rows) == 2
    for row in rows:
        daemon_row = predictions.features[row_of[orm.load_node(row['pk']).uuid]]
        in_process = [row[label] for label in predictions.labels]
        np.testing.assert_allclose(in_process, daemon_row, rtol=1e-9)
    assert not active_processes()
