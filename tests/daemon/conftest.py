"""Daemon tests: a PostgreSQL + RabbitMQ profile with 2 daemon workers, real services, no mocks.

Run with ``pytest -m daemon tests/daemon`` after ``bash scripts/setup_services.sh start`` (``scripts/test.sh``
does both). The profile lives in the session's temporary AiiDA config folder and its database is created for the
session and dropped at the end; the daemon is stopped at the end. A service that is down fails the tests with
the command that starts it.
"""

from __future__ import annotations

import os
import pathlib
import secrets
import socket
import subprocess

import pytest

from aiida_matembed.testing.daemon import stop_daemon

from .helpers import TIMEOUT, daemon_log_tail, start_daemon, wait_until

START = 'bash scripts/setup_services.sh start'
ROOT = pathlib.Path(__file__).resolve().parents[2]
PG = {
    'host': os.environ.get('MATEMBED_PG_HOST', '127.0.0.1'),
    'port': int(os.environ.get('MATEMBED_PG_PORT', '5432')),
    'user': os.environ.get('MATEMBED_PG_USER', 'aiida_matembed'),
    'password': os.environ.get('MATEMBED_PG_PASSWORD', 'aiida_matembed'),
}
RABBITMQ_PORT = 5672
N_WORKERS = 2


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=2):
            return True
    except OSError:
        return False


def require_services() -> None:
    """Fail (not skip) with the command that starts a service that is down."""
    if not _reachable(RABBITMQ_PORT):
        pytest.fail(f'RabbitMQ is not running on 127.0.0.1:{RABBITMQ_PORT}; start it with `{START}`', pytrace=False)
    if not _reachable(PG['port']):
        pytest.fail(f'PostgreSQL is not running on {PG["host"]}:{PG["port"]}; start it with `{START}`', pytrace=False)


def _psql(sql: str, dbname: str = 'postgres') -> None:
    import psycopg

    with psycopg.connect(
        host=PG['host'], port=PG['port'], user=PG['user'], password=PG['password'], dbname=dbname, autocommit=True
    ) as connection:
        connection.execute(sql)


@pytest.fixture(scope='session')
def services():
    """RabbitMQ and PostgreSQL must be up (started by ``scripts/setup_services.sh``)."""
    require_services()
    # RabbitMQ closes a channel whose task stays unacknowledged for more than 30 minutes unless this is off
    subprocess.run(
        ['rabbitmqctl', '-q', 'eval', 'application:set_env(rabbit, consumer_timeout, undefined).'],
        check=False,
        capture_output=True,
    )


@pytest.fixture(scope='session')
def aiida_profile(aiida_config, aiida_profile_factory, services, tmp_path_factory):
    """A session profile on ``core.psql_dos`` (a database of its own) + ``core.rabbitmq`` (overrides aiida's)."""
    name = f'matembed_test_{secrets.token_hex(6)}'
    _psql(
        f"CREATE DATABASE {name} OWNER {PG['user']} TEMPLATE template0 ENCODING 'UTF8' "
        "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"
    )
    repository = tmp_path_factory.mktemp('repository')
    storage_config = {
        'database_engine': 'postgresql_psycopg',
        'database_hostname': PG['host'],
        'database_port': PG['port'],
        'database_username': PG['user'],
        'database_password': PG['password'],
        'database_name': name,
        'repository_uri': f'file://{repository}',
    }
    try:
        with aiida_profile_factory(
            aiida_config, storage_backend='core.psql_dos', storage_config=storage_config, broker_backend='core.rabbitmq'
        ) as profile:
            profile.set_option('warnings.rabbitmq_version', False)
            profile.set_option('daemon.timeout', 30)  # seconds for circus calls: the CI machine is slow and shared
            aiida_config.update_profile(profile)
            aiida_config.store()
            yield profile
    finally:
        from aiida.manage import get_manager

        get_manager().reset_profile()
        _psql(f'DROP DATABASE IF EXISTS {name} WITH (FORCE)')


@pytest.fixture(scope='session')
def daemon(aiida_profile, daemon_client):
    """The profile's daemon with 2 workers; stopped at the end (its processes killed if it does not stop)."""
    start_daemon(daemon_client, N_WORKERS)
    yield daemon_client
    stop_daemon(daemon_client, daemon_client.get_daemon_pid())  # a test may have restarted it


@pytest.fixture
def await_node(daemon):
    """``await_node(node, timeout)``: poll until the process terminates; the daemon log is shown on a timeout."""

    def wait(node, timeout: float = TIMEOUT):
        try:
            wait_until(lambda: node.is_terminated, f'process <{node.pk}> to terminate', timeout)
        except AssertionError as error:
            raise AssertionError(f'{error}; state {node.process_state}\n{daemon_log_tail(daemon)}') from None
        return node

    return wait


@pytest.fixture(scope='session')
def structures():
    """120 distinct ordered structures: the AFLOW prototypes shipped with pymatgen."""
    from aiida_matembed.core.datasets import load_aflow_prototypes

    return [p.structure for p in load_aflow_prototypes()[:120]]


@pytest.fixture
def make_group(aiida_profile):
    """``make_group(structures)``: a new Group (unique label) holding new StructureData of these structures."""
    from aiida import orm

    def make(items):
        group = orm.Group(label=f'daemon-test-{secrets.token_hex(4)}').store()
        group.add_nodes([orm.StructureData(pymatgen=s).store() for s in items])
        return group

    return make
