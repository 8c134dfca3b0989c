"""Batch claims: each structure is computed by one live process at a time, and a crash is cleaned up on resume.

The Group WorkChains run on daemon workers, and a worker may die (``kill -9``, out of memory, a node reboot) or
lose its broker connection; RabbitMQ then hands the WorkChain to another worker, which continues from the last
checkpoint, and after a broker outage both workers may even run the same WorkChain side by side. The same
WorkChain may also be submitted twice. What a batch claim guarantees, for one key (task, representation or
model, version, options):

* **no duplicates** -- before a batch runs, its structures are *claimed* in the database, under a mutex (a
  PostgreSQL advisory lock; a file lock on other storage backends), after leaving out those that already have a
  current result (a row of a process that finished ok) or that a live process has claimed. Two processes never
  hold a claim on the same structure, so no structure gets two successful rows from the WorkChains.
* **no losses** -- a claim names its holder: the process, the daemon worker (host, OS pid and its start time)
  and the process instance. A claim whose holder is gone (worker dead, process terminated) is *stale*: the next
  process that wants those structures deletes it, marks the calcfunctions that the dead worker left in state
  ``Running`` (calcfunctions are not checkpointed, so AiiDA can never resume them) as killed, and runs the
  structures itself. A WorkChain that left structures to a live claim of another WorkChain waits for that
  process to terminate and then runs whatever it did not finish.

Liveness is read from the process table of this machine, so it holds for daemon workers (AiiDA runs every worker
of a profile's daemon on one machine); a claim held from another machine counts as live until its process
terminates.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiida import orm
from aiida.engine import ProcessState

from ..calculations.batch import chunks

__all__ = (
    'Claim',
    'ClaimGroup',
    'claim_batch',
    'claim_key',
    'instance_holder',
    'live_claims',
    'mark_orphans',
    'note_claim',
    'release_claim',
    'wait_for_claims',
)

_ACTIVE = (ProcessState.CREATED.value, ProcessState.WAITING.value, ProcessState.RUNNING.value)


class ClaimGroup(orm.Group):
    """Structures claimed by a running process for one key (label ``<key>/<uuid>``; extras: the holder)."""


@dataclass
class Claim:
    """What :func:`claim_batch` found and took for a batch."""

    key: str
    pks: list[int] = field(default_factory=list)
    """Structures claimed: the caller runs these, then calls :func:`release_claim`."""
    done: list[int] = field(default_factory=list)
    """Structures that already had a current result."""
    elsewhere: dict[int, list[int]] = field(default_factory=dict)
    """Structures claimed by other live processes, by process pk (may be the caller's own pk: another copy)."""
    orphans: list[int] = field(default_factory=list)
    """Pks of calcfunctions left running by a dead holder, now marked killed."""
    group_pk: int | None = None


def claim_key(task: str, name: str, version: Any, params: dict[str, Any]) -> str:
    """Key of a claim: a hash of the task, the representation or model, its version and its options."""
    text = json.dumps([task, name, version, params], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _started(pid: int) -> float | None:
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):  # killed, not reaped yet
            return None
        return float(process.create_time())
    except (psutil.Error, OSError):
        return None


def instance_holder(process: Any) -> dict[str, Any]:
    """The holder record of a running process instance (its pk, this worker, and a token of the instance)."""
    token = process.__dict__.setdefault('_matembed_claim_token', uuid.uuid4().hex)
    pid = os.getpid()
    return {'process': process.node.pk, 'token': token, 'host': socket.gethostname(), 'pid': pid,
            'started': _started(pid)}  # fmt: skip


def _holder_alive(holder: dict[str, Any], me: dict[str, Any]) -> bool:
    """Whether the instance that made a claim may still be running (see the module docstring)."""
    if holder.get('token') == me['token']:
        return True
    try:
        node = orm.load_node(holder['process'])
    except Exception:
        return False
    if not isinstance(node, orm.ProcessNode) or node.is_terminated:
        return False
    if holder.get('host') != me['host']:
        return True  # cannot look at another machine's processes
    if holder.get('pid') == me['pid']:
        # this worker: another process interleaved in it is alive; an earlier instance of the caller itself is not
        # (a worker never runs two instances of one process)
        return holder['process'] != me['process']
    started = _started(int(holder['pid']))
    return started is not None and (holder.get('started') is None or abs(started - holder['started']) < 1e-3)


@contextlib.contextmanager
def _mutex(key: str) -> Iterator[None]:
    """Serialise claims of one key across processes: a PostgreSQL advisory lock, or a file lock (other backends).

    The advisory lock is taken on a connection of its own and ends with it, so a worker that dies while holding it
    releases it.
    """
    from aiida.manage import get_manager

    storage = get_manager().get_profile_storage()
    get_session = getattr(storage, 'get_session', None)
    bind = get_session().get_bind() if get_session is not None else None
    if bind is not None and bind.dialect.name == 'postgresql':
        from sqlalchemy import text

        number = int(key[:15], 16)  # fits a signed bigint
        with bind.connect() as connection:
            connection.execute(text('SELECT pg_advisory_lock(:k)'), {'k': number})
            try:
                yield
            finally:
                connection.execute(text('SELECT pg_advisory_unlock(:k)'), {'k': number})
                connection.commit()
        return
    from aiida.manage.configuration.settings import AiiDAConfigDir

    path = AiiDAConfigDir.get() / f'matembed-claims-{key[:16]}.lock'
    with path.open('a') as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _overlapping(key: str, pks: list[int]) -> dict[int, tuple[dict[str, Any], list[int]]]:
    """Claims of ``key`` holding any of ``pks``: ``{claim pk: (holder, those of pks it holds)}`` (one query)."""
    found: dict[int, tuple[dict[str, Any], list[int]]] = {}
    for chunk in chunks(pks):
        query = orm.QueryBuilder().append(
            ClaimGroup, filters={'label': {'like': f'{key}/%'}}, project=['id', 'extras'], tag='claim'
        )
        query.append(orm.StructureData, with_group='claim', filters={'id': {'in': chunk}}, project='id')
        for group_pk, extras, pk in query.all():
            found.setdefault(group_pk, ((extras or {}).get('holder', {}), []))[1].append(pk)
    return found


def _members(group_pk: int, among: list[int] | None) -> list[int]:
    query = orm.QueryBuilder().append(ClaimGroup, filters={'id': group_pk}, tag='claim')
    filters = {'id': {'in': list(among)}} if among is not None else {}
    query.append(orm.StructureData, with_group='claim', filters=filters, project='id')
    return sorted(query.all(flat=True))


def mark_orphans(process_pk: int, pks: list[int] | None, reason: str) -> list[int]:
    """Mark the calcfunctions called by ``process_pk`` that are still ``Created``/``Running``/``Waiting`` as killed.

    Only for calcfunctions whose worker is known to be dead: a calcfunction runs inside the worker that called it,
    is never checkpointed and can never resume, and ``verdi process kill`` cannot reach it.

    :param pks: only those with one of these structures as an input (``None``: all).
    :returns: the pks of the nodes marked.
    """
    if pks is not None and not pks:
        return []
    query = orm.QueryBuilder().append(orm.ProcessNode, filters={'id': process_pk}, tag='caller')
    query.append(
        orm.CalcFunctionNode,
        with_incoming='caller',
        filters={'attributes.process_state': {'in': list(_ACTIVE)}},
        tag='orphan',
        project='*',
    )
    if pks is not None:
        query.append(orm.StructureData, with_outgoing='orphan', filters={'id': {'in': list(pks)}})
    marked = []
    for node in {n.pk: n for n in query.all(flat=True)}.values():
        if node.is_sealed:
            continue
        node.set_process_state(ProcessState.KILLED)
        node.set_process_status(reason)
        node.seal()
        marked.append(node.pk)
    return sorted(marked)


def claim_batch(key: str, batch: list[int], process: Any, current: Callable[[list[int]], set[int]]) -> Claim:
    """Claim the structures of ``batch`` that have no current result and no live claim, for ``process``.

    Stale claims met on the way are removed and the calcfunctions their holder left running are marked killed.

    :param current: returns the pks (among those given) that already have a current result.
    """
    me = instance_holder(process)
    claim = Claim(key)
    with _mutex(key):
        remaining = sorted(batch)
        for group_pk, (holder, members) in _overlapping(key, remaining).items():
            if _holder_alive(holder, me):
                claim.elsewhere.setdefault(int(holder['process']), []).extend(sorted(members))
                taken = set(members)
                remaining = [pk for pk in remaining if pk not in taken]
                continue
            # stale: its calcfunctions with these structures as inputs can only be the dead instance's
            stale_members = _members(group_pk, None)
            reason = (
                f'killed by aiida-matembed: the daemon worker running it (pid {holder.get("pid")} on '
                f'{holder.get("host")}) died; its structures were claimed again by process <{me["process"]}>'
            )
            if holder.get('process') is not None and stale_members:
                claim.orphans += mark_orphans(int(holder['process']), stale_members, reason)
            with contextlib.suppress(Exception):  # released meanwhile
                orm.Group.collection.delete(group_pk)
        claim.done = sorted(current(remaining)) if remaining else []
        done = set(claim.done)
        claim.pks = [pk for pk in remaining if pk not in done]
        if claim.pks:
            from ..calculations.batch import load_nodes

            group = ClaimGroup(label=f'{key}/{uuid.uuid4().hex}', description=f'claimed by process <{me["process"]}>')
            group.base.extras.set('holder', me)
            group.store()
            group.add_nodes(load_nodes(claim.pks))
            claim.group_pk = group.pk
    return claim


def release_claim(claim: Claim) -> None:
    """Delete the claim (after the result is stored, or after the batch failed)."""
    if claim.group_pk is not None:
        with contextlib.suppress(Exception):
            orm.Group.collection.delete(claim.group_pk)
        claim.group_pk = None


def live_claims(key: str, pks: list[int], process: Any) -> dict[int, list[int]]:
    """Structures of ``pks`` under live claims of other processes than ``process``, by holder pk."""
    me = instance_holder(process)
    found: dict[int, list[int]] = {}
    for holder, members in _overlapping(key, pks).values():
        if holder.get('process') == me['process'] or not _holder_alive(holder, me):
            continue
        found.setdefault(int(holder['process']), []).extend(members)
    return found


# ------------------------------------------------------------------------------ used by the Group WorkChains
def note_claim(process: Any, claim: Claim, what: str) -> None:
    """Report a claim's orphans and structures left to other processes; queue the latter in ``ctx.elsewhere``.

    Structures claimed by another live copy of the same process are not queued: that copy finishes them.
    """
    if claim.orphans:
        process.report(f'marked calcfunction(s) {claim.orphans} of a dead daemon worker as killed; running again')
    for holder, pks in claim.elsewhere.items():
        process.report(f'{len(pks)} structure(s) are being {what} by process <{holder}>: left to it')
        if holder != process.node.pk:
            process.ctx.elsewhere.setdefault(str(holder), []).extend(pks)


def wait_for_claims(process: Any, key: str, current: Callable[[list[int]], set[int]], batch_size: int) -> Any:
    """Await the processes holding structures in ``ctx.elsewhere``; once they are gone, queue what they left undone.

    :returns: a ``ToContext`` to return from the step while others still hold claims, else ``None`` (the
        structures without a current result are then in ``ctx.batches``).
    """
    from aiida.engine import ToContext

    pks = sorted({pk for members in process.ctx.elsewhere.values() for pk in members})
    process.ctx.elsewhere = {}
    left = sorted(set(pks) - current(pks)) if pks else []
    live = live_claims(key, left, process) if left else {}
    if live:
        process.ctx.elsewhere = {str(holder): members for holder, members in live.items()}
        process.report(f'waiting for process(es) {sorted(live)} working on {len(left)} structure(s) of this group')
        return ToContext(**{f'claim_holder_{holder}': orm.load_node(holder) for holder in live})
    process.ctx.batches = [left[i : i + batch_size] for i in range(0, len(left), batch_size)]
    return None
