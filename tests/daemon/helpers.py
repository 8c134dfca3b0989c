"""Helpers of the daemon tests: polling with a deadline, daemon workers, rows per structure, live processes."""

from __future__ import annotations

import collections
import contextlib
import pathlib
import time
from typing import Any

TIMEOUT = 180.0
"""Seconds any wait in these tests may take before it fails (generous: CI machines are slow and shared)."""


def wait_until(condition, what: str, timeout: float = TIMEOUT, interval: float = 0.2):
    """Poll ``condition()`` until it returns a true value (returned); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out after {timeout:.0f} s waiting for {what}')
        time.sleep(interval)


def worker_pids(daemon_client) -> list[int]:
    """OS pids of the daemon's workers (children of the circus daemon running ``verdi ... daemon worker``)."""
    import psutil

    try:
        pid = daemon_client.get_daemon_pid()
        if pid is None:
            return []
        children = psutil.Process(pid).children(recursive=True)
    except (psutil.Error, OSError):
        return []
    pids = []
    for child in children:
        try:
            cmdline = ' '.join(child.cmdline())
        except psutil.Error:
            continue
        if 'daemon worker' in cmdline:
            pids.append(child.pid)
    return sorted(pids)


def daemon_log_tail(daemon_client, n: int = 60) -> str:
    try:
        lines = pathlib.Path(daemon_client.daemon_log_file).read_text(encoding='utf-8').splitlines()
    except OSError:
        return '(no daemon log)'
    return '\n'.join(lines[-n:])


def successful_rows(group, representation: str) -> collections.Counter:
    """Structure pk -> number of successful rows (row not failed, creating process finished ok) for a representation.

    Every structure of the Group is a key (0 if it has none).
    """
    from aiida import orm

    from aiida_matembed.data import FeaturesData

    pks = [node.pk for node in group.nodes]
    counts: collections.Counter = collections.Counter({pk: 0 for pk in pks})
    qb = orm.QueryBuilder()
    qb.append(FeaturesData, filters={'attributes.representation': representation}, tag='features', project='*')
    qb.append(orm.CalculationNode, with_outgoing='features', filters={'attributes.exit_status': 0}, tag='process')
    qb.append(
        orm.StructureData,
        with_outgoing='process',
        filters={'id': {'in': pks}},
        edge_filters={'label': {'like': 'structures__%'}},
        project=['id', 'uuid'],
    )
    for features, pk, uuid in qb.all():
        if uuid not in features.failed_uuids():
            counts[pk] += 1
    return counts


def active_processes(since: Any = None) -> list[tuple[int, str, str]]:
    """(pk, process label, state) of every process node that is created, running or waiting.

    :param since: only processes created after this time (a test's own, not those an earlier test left).
    """
    from aiida import orm

    filters: dict[str, Any] = {'attributes.process_state': {'in': ['created', 'running', 'waiting']}}
    if since is not None:
        filters['ctime'] = {'>': since}
    qb = orm.QueryBuilder().append(
        orm.ProcessNode, filters=filters, project=['id', 'attributes.process_label', 'attributes.process_state']
    )
    return sorted(qb.all())


def assert_exactly_once(group, representation: str) -> None:
    """0 structures lost, 0 duplicated: every structure of the Group has exactly one successful row."""
    counts = successful_rows(group, representation)
    lost = sorted(pk for pk, n in counts.items() if n == 0)
    duplicated = sorted(pk for pk, n in counts.items() if n > 1)
    assert not lost and not duplicated, f'{len(lost)} lost {lost[:10]}, {len(duplicated)} duplicated {duplicated[:10]}'


def reconnect() -> None:
    """Drop this process's database connections (after a PostgreSQL restart); the next query opens new ones."""
    from aiida.manage import get_manager

    session = get_manager().get_profile_storage().get_session()
    with contextlib.suppress(Exception):
        session.rollback()
    session.get_bind().dispose()


def start_daemon(daemon_client, n_workers: int = 2) -> None:
    """Start the daemon with ``n_workers`` workers and wait for them (a slow circus answer is not a failure)."""
    from aiida.engine.daemon.client import DaemonException

    if not daemon_client.is_daemon_running:
        with contextlib.suppress(DaemonException):  # e.g. a timeout while circus starts on a loaded machine
            daemon_client.start_daemon(number_workers=n_workers)
    wait_until(lambda: len(worker_pids(daemon_client)) == n_workers, f'{n_workers} daemon workers')
