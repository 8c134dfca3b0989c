"""Glue between the core registry and AiiDA's entry-point machinery.

Importing any AiiDA-layer subpackage calls :func:`use_aiida_entry_points`, so that representations are
enumerated through :func:`aiida.plugins.entry_point.eps_select`: the same entry points as
:mod:`importlib.metadata`, plus those added at run time by AiiDA's ``entry_points`` test fixture.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import EntryPoint

from .core.representations import set_entry_point_source


def _aiida_entry_points(group: str) -> Sequence[EntryPoint]:
    from aiida.plugins import entry_point

    return tuple(entry_point.eps_select(group=group))


def use_aiida_entry_points() -> None:
    """Make the core registry read entry points through AiiDA's (patchable) cache."""
    set_entry_point_source(_aiida_entry_points)
