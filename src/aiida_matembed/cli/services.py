"""Checks before a command submits to the daemon: a broker that is down fails with the command that starts it."""

from __future__ import annotations

from aiida.cmdline.utils import echo

__all__ = ('check_submit_services',)

START_SERVICES = 'bash scripts/setup_services.sh start'
"""The command of this project that installs and starts RabbitMQ and PostgreSQL (``rabbitmq-server -detached``)."""


def check_submit_services() -> None:
    """Refuse to submit (``echo_critical``) when the profile's broker cannot be reached; warn if no daemon runs.

    Without the check, ``submit`` fails with a connection traceback (RabbitMQ down) or the process waits for ever
    (no daemon); the messages say which command starts what is missing.
    """
    from aiida.manage import get_manager

    manager = get_manager()
    profile = manager.get_profile()
    assert profile is not None
    name = profile.name
    backend = profile.process_control_backend
    if backend is None:
        echo.echo_critical(
            f'profile {name!r} has no broker, so nothing can be submitted: run without --submit, or make a profile '
            'with a broker (`verdi presto` gives the built-in one; `verdi profile setup core.psql_dos --broker-backend '
            'core.rabbitmq ...` for RabbitMQ)'
        )
    if backend == 'core.rabbitmq':
        config = profile.process_control_config
        where = f'{config.get("broker_host", "127.0.0.1")}:{config.get("broker_port", 5672)}'
        if not _reachable(config.get('broker_host', '127.0.0.1'), int(config.get('broker_port', 5672))):
            echo.echo_critical(
                f'RabbitMQ of profile {name!r} is not running ({where} refuses connections); start it with '
                f'`{START_SERVICES}` (or `rabbitmq-server -detached`), then `verdi -p {name} daemon start 2`'
            )
    from aiida.engine.daemon.client import get_daemon_client

    try:
        running = get_daemon_client(name).is_daemon_running
    except Exception:
        running = False
    if not running:
        echo.echo_warning(
            f'the daemon of profile {name!r} is not running: the process waits until you start it with '
            f'`verdi -p {name} daemon start 2`'
        )


def _reachable(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False
