"""One running instance per process node: a lease, so that a redelivered copy of a WorkChain never runs beside it.

RabbitMQ hands a process task to another daemon worker whenever the connection of the worker that holds it closes
(a missed heartbeat, a broker restart, a network cut), but that worker keeps running the process. The second
worker then loads the process from its checkpoint and both instances step the same node: both write its
attributes (each write replaces the whole attribute column, so the stale copy can set a finished node back to
``running`` and unseal it), both attach outputs and both run batches (aiida-core issues #1748 and #4595 describe
the mechanism). A :class:`ProcessLeaseMixin` WorkChain guarantees that only one instance ever steps its node:

* an instance takes the **lease** (the ``_matembed_lease`` extra of the node: host, OS pid and start time of the
  worker, a token of the instance) before its first step, under a mutex (a PostgreSQL advisory lock, a file lock
  on other storage backends), and gives it back when it terminates;
* an instance loaded from a checkpoint does not take the lease, and never steps, when the node is already
  terminated, when another *live* instance holds the lease, or when the checkpoint it was loaded from is no longer
  the node's (another instance saved a newer one: it is *superseded*). It writes nothing to the node, takes no
  RPC or broadcast (so ``verdi process kill`` reaches the live instance), ignores the children it was waiting for,
  and stands by, keeping its task unacknowledged: when the node terminates it returns the node's result; when the
  holder dies (its worker is killed) before the node terminates, it hands the process back to the broker with a
  new continue task, which a worker loads from the newest checkpoint.

Whether a holder is alive is read from the process table of this machine (AiiDA runs all daemon workers of a
profile on one machine); a lease taken on another machine counts as alive until its process terminates.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import os
import socket
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiida import orm

from .claims import _mutex, _started

if TYPE_CHECKING:
    from aiida.engine import WorkChain as _Base
else:
    _Base = object

__all__ = ('LEASE_EXTRA', 'Lease', 'LeaseState', 'ProcessLeaseMixin', 'inspect_lease', 'release_lease', 'take_lease')

LEASE_EXTRA = '_matembed_lease'
"""Extra of the process node that names the instance holding its lease (absent when none does)."""

CHECKPOINT_ID = 'matembed_checkpoint_id'
"""Key of the saved instance state: a new random id in every checkpoint, to tell whether a loaded one is current."""

STANDBY_POLL = (1.0, 10.0)
"""First and longest interval (s) between two looks of a standing-by instance at its node."""

_LOCAL_TOKENS: set[str] = set()
"""Tokens of the instances of this OS process that hold a lease (until they terminate or close)."""


class LeaseState(enum.Enum):
    """What an instance found when it looked at its node's lease."""

    HELD = 'held'
    """The instance holds the lease (it runs the process)."""
    FREE = 'free'
    """Nobody alive holds it and the instance's checkpoint is current (only from :func:`inspect_lease`)."""
    TERMINATED = 'terminated'
    """The node is terminated (or sealed): nothing to run."""
    LIVE_HOLDER = 'live_holder'
    """Another live instance holds it."""
    SUPERSEDED = 'superseded'
    """Nobody alive holds it, but the node's checkpoint is newer than the one the instance was loaded from."""


@dataclass(frozen=True)
class Lease:
    """The outcome of a look at a node's lease."""

    state: LeaseState
    holder: dict[str, Any] | None = None
    """The record of the holder found (for ``LIVE_HOLDER``, and the dead one replaced for ``HELD``)."""


def _record(token: str) -> dict[str, Any]:
    pid = os.getpid()
    return {'token': token, 'host': socket.gethostname(), 'pid': pid, 'started': _started(pid)}


def _alive(holder: dict[str, Any]) -> bool:
    """Whether the instance named by a lease record may still be running (see the module docstring)."""
    if holder.get('host') != socket.gethostname():
        return True  # cannot look at another machine's processes
    try:
        pid = int(holder['pid'])
    except (KeyError, TypeError, ValueError):
        return False
    if pid == os.getpid():
        return holder.get('token') in _LOCAL_TOKENS
    started = _started(pid)
    return started is not None and (holder.get('started') is None or abs(started - holder['started']) < 1e-3)


_MUTEX_KEY = hashlib.sha256(b'matembed-lease').hexdigest()
"""One mutex for all leases: taking or giving one back is two queries and one write, once per instance."""


def inspect_lease(node: orm.ProcessNode, token: str, checkpoint_id: str | None = None) -> Lease:
    """Look at the lease of ``node`` for the instance ``token`` (read only).

    :param checkpoint_id: the :data:`CHECKPOINT_ID` of the checkpoint the instance was loaded from (``None``: a new
        instance, or one that already holds the lease).
    """
    if node.is_terminated or node.is_sealed:
        return Lease(LeaseState.TERMINATED)
    holder = node.base.extras.get(LEASE_EXTRA, None)
    if isinstance(holder, dict) and holder.get('token') == token:
        return Lease(LeaseState.HELD, holder)
    if isinstance(holder, dict) and _alive(holder):
        return Lease(LeaseState.LIVE_HOLDER, holder)
    if checkpoint_id is not None and checkpoint_id not in (node.checkpoint or ''):
        return Lease(LeaseState.SUPERSEDED, holder if isinstance(holder, dict) else None)
    return Lease(LeaseState.FREE, holder if isinstance(holder, dict) else None)


def take_lease(node: orm.ProcessNode, token: str, checkpoint_id: str | None = None) -> Lease:
    """Take the lease of ``node`` for the instance ``token`` if it is free (see :func:`inspect_lease`).

    :returns: ``HELD`` (taken; ``holder`` is the dead holder replaced, if any), or why not.
    """
    with _mutex(_MUTEX_KEY):
        found = inspect_lease(node, token, checkpoint_id)
        if found.state is LeaseState.FREE:
            node.base.extras.set(LEASE_EXTRA, _record(token))
            _LOCAL_TOKENS.add(token)
            return Lease(LeaseState.HELD, found.holder)
        if found.state is LeaseState.HELD:
            _LOCAL_TOKENS.add(token)
        return found


def release_lease(node: orm.ProcessNode, token: str) -> None:
    """Give the lease of ``node`` back, if the instance ``token`` holds it."""
    _LOCAL_TOKENS.discard(token)
    with _mutex(_MUTEX_KEY):
        holder = node.base.extras.get(LEASE_EXTRA, None)
        if isinstance(holder, dict) and holder.get('token') == token:
            node.base.extras.delete(LEASE_EXTRA)


class ProcessLeaseMixin(_Base):
    """Mix into a WorkChain (before ``WorkChain`` in the bases) so that only one instance ever steps its node.

    See the module docstring for the protocol; nothing else changes for the WorkChain.
    """

    _matembed_lease: Lease | None = None
    _matembed_token: str | None = None
    _matembed_checkpoint: str | None = None

    def _lease_token(self) -> str:
        if self._matembed_token is None:
            self._matembed_token = uuid.uuid4().hex
        return self._matembed_token

    def _holds_lease(self) -> bool:
        return self._matembed_lease is None or self._matembed_lease.state is LeaseState.HELD

    # ------------------------------------------------------------------------------------------- checkpoints
    def save_instance_state(self, out_state: Any, save_context: Any) -> None:
        """Save the state, with a new :data:`CHECKPOINT_ID`."""
        super().save_instance_state(out_state, save_context)
        out_state[CHECKPOINT_ID] = uuid.uuid4().hex

    def load_instance_state(self, saved_state: Any, load_context: Any) -> None:
        """Load the state, then take the lease, or stand by (no RPC, no broadcasts) if the lease is not free."""
        super().load_instance_state(saved_state, load_context)
        self._matembed_checkpoint = saved_state.get(CHECKPOINT_ID)
        if not self.node.is_stored:
            return
        lease = take_lease(self.node, self._lease_token(), self._matembed_checkpoint)
        self._matembed_lease = lease
        if lease.state is not LeaseState.HELD:
            self._communicator = None  # ``init`` then subscribes nothing: RPCs and broadcasts go to the holder
            holder = lease.holder or {}
            where = f' (daemon worker pid {holder.get("pid")} on {holder.get("host")})' if holder else ''
            self.node.logger.warning(
                f'a second instance of process <{self.node.pk}> was loaded in pid {os.getpid()} and stands by '
                f'without running: {lease.state.value}{where}'
            )

    # --------------------------------------------------------------------------------------------- running
    async def step_until_terminated(self) -> None:
        """Step the process if this instance holds the lease (a new instance takes it here), else stand by."""
        if self._matembed_lease is None and self.node.is_stored:
            self._matembed_lease = take_lease(self.node, self._lease_token())
        if self._holds_lease():
            await super().step_until_terminated()
            return
        await self._stand_by()

    async def _stand_by(self) -> None:
        """Wait, without writing anything, until the node terminates (its result is returned) or the holder dies."""
        interval, longest = STANDBY_POLL
        lease = self._matembed_lease
        while lease is not None and lease.state is LeaseState.LIVE_HOLDER:
            await asyncio.sleep(interval)
            interval = min(longest, interval * 1.5)
            lease = inspect_lease(self.node, self._lease_token(), self._matembed_checkpoint)
        if lease is not None and lease.state is LeaseState.TERMINATED:
            self._resolve_from_node()
            return
        # the holder died (or the checkpoint was superseded): the newest checkpoint is the node's, not this one's
        while not self._hand_over():
            await asyncio.sleep(longest)
            if inspect_lease(self.node, self._lease_token()).state is LeaseState.TERMINATED:
                self._resolve_from_node()
                return
        self.future().set_result(None)

    def _hand_over(self) -> bool:
        """Send a new continue task for this process (a worker loads it from the newest checkpoint)."""
        controller = self.runner.controller
        if controller is None:
            if not self.__dict__.get('_matembed_no_broker_told'):
                self.node.logger.warning('no broker to hand this process back to: waiting for it to terminate')
                self._matembed_no_broker_told = True
            return False
        try:
            controller.continue_process(self.node.pk, nowait=True, no_reply=True)
        except Exception as exception:  # the broker may be down: try again later
            self.node.logger.warning(f'could not hand process <{self.node.pk}> back to the broker: {exception}')
            return False
        self.node.logger.warning(
            f'the instance running process <{self.node.pk}> is gone; handed it back to the broker, to continue '
            'from its newest checkpoint'
        )
        return True

    def _resolve_from_node(self) -> None:
        """Give this instance's future the terminated node's result (as AiiDA's launcher does for a terminated node)."""
        import plumpy
        from aiida.engine.exceptions import PastException

        node = self.node
        if node.is_excepted:
            self.future().set_exception(PastException(node.exception))
        elif node.is_killed:
            self.future().set_exception(plumpy.KilledError())
        else:
            outgoing = node.base.links.get_outgoing(node_class=orm.Data).all()
            self.future().set_result({entry.link_label: entry.node for entry in outgoing})

    # ------------------------------------------------------------------------------- no writes when standing by
    def _on_awaitable_finished(self, awaitable: Any) -> None:
        """A child finished: ignored by an instance standing by (its holder handles it)."""
        if self._holds_lease():
            super()._on_awaitable_finished(awaitable)

    def set_status(self, status: str | None) -> None:
        """Set the process status (on the node only if this instance holds the lease)."""
        if self._holds_lease():
            super().set_status(status)

    def on_terminated(self) -> None:
        """Terminate as usual, then give the lease back."""
        super().on_terminated()
        if self._matembed_token is not None and self._holds_lease() and self.node.is_stored:
            release_lease(self.node, self._matembed_token)

    def on_close(self) -> None:
        """Close as usual; a closed instance no longer counts as a live holder in this OS process."""
        super().on_close()
        if self._matembed_token is not None:
            _LOCAL_TOKENS.discard(self._matembed_token)
