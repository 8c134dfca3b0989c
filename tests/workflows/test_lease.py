"""The lease of a process node: one instance steps it; a second one loaded from a checkpoint writes nothing.

Real parts only: the temporary SQLite profile (no broker), real WorkChain instances saved and loaded through
AiiDA's persister, real OS processes standing for live and dead daemon workers. The broker side (a second worker
getting the task) is in ``tests/daemon/test_faults.py``.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import plumpy
import psutil
import pytest
from aiida import orm
from aiida.engine import WorkChain, run_get_node
from aiida.engine.utils import instantiate_process
from aiida.manage import get_manager
from plumpy.persistence import LoadSaveContext

from aiida_matembed.workflows import FeaturizeGroupWorkChain
from aiida_matembed.workflows import lease as lease_module
from aiida_matembed.workflows.lease import LEASE_EXTRA, LeaseState, ProcessLeaseMixin, take_lease


class TwoStepWorkChain(ProcessLeaseMixin, WorkChain):
    """Records, in each step, whether this instance held the lease of its node."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.outline(cls.first, cls.second)
        spec.output('held', valid_type=orm.Bool)

    def _check(self) -> bool:
        holder = self.node.base.extras.get(LEASE_EXTRA, {})
        return holder.get('token') == self._matembed_token and holder.get('pid') is not None

    def first(self):
        self.ctx.steps = ['first']
        self.ctx.held = self._check()

    def second(self):
        self.ctx.steps.append('second')
        self.out('held', orm.Bool(self.ctx.held and self._check()).store())


@pytest.fixture
def live_worker():
    """A live OS process standing for another daemon worker: its lease record."""
    process = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])
    yield {'token': 'other', 'host': socket.gethostname(), 'pid': process.pid,
           'started': psutil.Process(process.pid).create_time()}  # fmt: skip
    process.kill()
    process.wait()


@pytest.fixture
def dead_worker():
    """The lease record of a worker that has exited."""
    process = subprocess.Popen([sys.executable, '-c', 'pass'])
    started = psutil.Process(process.pid).create_time()
    process.wait()
    return {'token': 'dead', 'host': socket.gethostname(), 'pid': process.pid, 'started': started}


def running_node() -> orm.WorkflowNode:
    node = orm.WorkflowNode()
    node.set_process_state('running')
    return node.store()


def test_an_in_process_run_holds_the_lease_while_it_steps_and_gives_it_back(aiida_profile_clean):
    outputs, node = run_get_node(TwoStepWorkChain)
    assert node.is_finished_ok
    assert outputs['held'].value
    assert LEASE_EXTRA not in node.base.extras.all


def test_the_group_workchains_take_the_lease(aiida_profile_clean, examples):
    group = orm.Group(label='lease').store()
    group.add_nodes([orm.StructureData(pymatgen=e.structure).store() for e in examples[:3]])
    _, node = run_get_node(FeaturizeGroupWorkChain, group=orm.Str('lease'), representation=orm.Str('matembed.magpie'))
    assert node.is_finished_ok
    assert issubclass(FeaturizeGroupWorkChain, ProcessLeaseMixin)
    assert LEASE_EXTRA not in node.base.extras.all


def test_a_live_holder_keeps_the_lease_and_a_dead_one_loses_it(aiida_profile_clean, live_worker, dead_worker):
    node = running_node()
    node.base.extras.set(LEASE_EXTRA, live_worker)
    found = take_lease(node, 'me')
    assert found.state is LeaseState.LIVE_HOLDER and found.holder == live_worker
    assert node.base.extras.get(LEASE_EXTRA) == live_worker  # untouched

    node.base.extras.set(LEASE_EXTRA, dead_worker)
    taken = take_lease(node, 'me')
    assert taken.state is LeaseState.HELD and taken.holder == dead_worker
    assert node.base.extras.get(LEASE_EXTRA)['token'] == 'me'
    assert take_lease(node, 'me').state is LeaseState.HELD  # idempotent


def test_a_terminated_node_or_a_newer_checkpoint_is_never_leased(aiida_profile_clean):
    node = running_node()
    node.set_checkpoint('matembed_checkpoint_id: newer\n')
    assert take_lease(node, 'me', checkpoint_id='older').state is LeaseState.SUPERSEDED
    assert take_lease(node, 'me', checkpoint_id='newer').state is LeaseState.HELD

    done = running_node()
    done.set_process_state('finished')
    done.seal()
    assert take_lease(done, 'me').state is LeaseState.TERMINATED
    assert LEASE_EXTRA not in done.base.extras.all


def _checkpointed_instance():
    """A TwoStepWorkChain created and checkpointed as ``submit`` does (node stored, not stepped)."""
    runner = get_manager().get_runner()
    process = instantiate_process(runner, TwoStepWorkChain)
    runner.persister.save_checkpoint(process)
    process.close()
    return runner, process.node


def _load(runner, node):
    return runner.persister.load_checkpoint(node.pk).unbundle(LoadSaveContext(runner=runner))


def test_a_copy_loaded_while_another_instance_runs_writes_nothing_and_returns_the_result(
    aiida_profile_clean, live_worker, monkeypatch
):
    monkeypatch.setattr(lease_module, 'STANDBY_POLL', (0.05, 0.1))
    runner, node = _checkpointed_instance()
    node.base.extras.set(LEASE_EXTRA, live_worker)  # the live instance runs it

    copy = _load(runner, node)
    assert copy._matembed_lease.state is LeaseState.LIVE_HOLDER
    assert copy._communicator is None  # subscribed to no RPC and no broadcast
    # the live instance finishes the process while the copy stands by
    node.set_process_state('finished')
    node.set_exit_status(0)
    node.seal()
    before = (dict(node.base.attributes.all), dict(node.base.extras.all))

    runner.loop.run_until_complete(copy.step_until_terminated())
    assert copy.future().result() == {}
    assert 'steps' not in copy.ctx  # it ran no step
    assert (dict(node.base.attributes.all), dict(node.base.extras.all)) == before
    assert node.is_finished_ok
    logs = [log.message for log in orm.Log.collection.get_logs_for(node)]
    assert any('stands by' in message for message in logs), logs


def test_a_copy_from_a_superseded_checkpoint_stands_by_and_never_steps(aiida_profile_clean, monkeypatch):
    monkeypatch.setattr(lease_module, 'STANDBY_POLL', (0.05, 0.1))
    runner, node = _checkpointed_instance()
    stale = runner.persister.load_checkpoint(node.pk)
    runner.persister.save_checkpoint(_load(runner, node))  # another instance saved a newer checkpoint (and left)
    node.base.extras.delete(LEASE_EXTRA)

    copy = stale.unbundle(LoadSaveContext(runner=runner))
    assert copy._matembed_lease.state is LeaseState.SUPERSEDED
    assert LEASE_EXTRA not in node.base.extras.all
    # no broker in this profile, so it cannot hand the process back: it waits for the node to terminate
    task = runner.loop.create_task(copy.step_until_terminated())
    runner.loop.run_until_complete(asyncio_sleep(0.3))
    assert not task.done() and node.process_state.value == 'created'
    node.set_process_state('killed')
    node.seal()
    runner.loop.run_until_complete(task)
    with pytest.raises(plumpy.KilledError):
        copy.future().result()
    assert 'steps' not in copy.ctx


async def asyncio_sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)
