"""Stopping a daemon for certain, shared by the daemon tests and ``benchmarks/bench_daemon.py``."""

from __future__ import annotations

import contextlib
import pathlib
from typing import Any

__all__ = ('stop_daemon',)


def stop_daemon(daemon_client: Any, circus_pid: int | None = None, timeout: float = 15.0) -> None:
    """Stop the daemon of ``daemon_client``; kill what is left of its process tree after ``timeout`` seconds.

    :param circus_pid: pid of the daemon's circus process (default: the one its pid file names).
    """
    import psutil

    if circus_pid is None:
        circus_pid = daemon_client.get_daemon_pid()
    if circus_pid is None or not psutil.pid_exists(circus_pid):
        return
    try:
        tree = [psutil.Process(circus_pid), *psutil.Process(circus_pid).children(recursive=True)]
    except psutil.Error:
        return
    with contextlib.suppress(Exception):
        daemon_client.stop_daemon(wait=False)
    _, alive = psutil.wait_procs(tree, timeout=timeout)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=30)
    if alive:  # circus was killed: its pid file would make the daemon look alive
        with contextlib.suppress(OSError):
            pathlib.Path(daemon_client.circus_pid_file).unlink()
