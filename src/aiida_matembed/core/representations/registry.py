"""Entry-point registry of representations (group ``aiida_matembed.representations``).

A third-party package registers a representation by declaring one entry point in that group;
nothing else is needed for it to work in the CLI, the calcfunctions, the WorkChains and the queries.

The core reads entry points with :mod:`importlib.metadata`. The AiiDA layer swaps in AiiDA's own
entry-point cache (:func:`set_entry_point_source`) so that AiiDA's test fixtures can add entry points.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from .base import Representation

__all__ = (
    'ENTRY_POINT_GROUP',
    'get_representation',
    'list_representations',
    'load_representation_class',
    'set_entry_point_source',
)

ENTRY_POINT_GROUP = 'aiida_matembed.representations'

EntryPointSource = Callable[[str], Sequence[importlib.metadata.EntryPoint]]


def _importlib_source(group: str) -> Sequence[importlib.metadata.EntryPoint]:
    return tuple(importlib.metadata.entry_points(group=group))


_source: EntryPointSource = _importlib_source


def set_entry_point_source(source: EntryPointSource | None) -> None:
    """Use ``source(group)`` to enumerate entry points (``None`` restores :mod:`importlib.metadata`)."""
    global _source
    _source = source or _importlib_source


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in _source(ENTRY_POINT_GROUP)}


@cache
def _own_entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """The representations this package declares, read from its own metadata only (no scan of every package)."""
    try:
        declared = importlib.metadata.distribution('aiida-matembed').entry_points
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return {}
    return {ep.name: ep for ep in declared if ep.group == ENTRY_POINT_GROUP}


def list_representations() -> list[str]:
    """Return the sorted names of all registered representations."""
    return sorted(_entry_points())


def load_representation_class(name: str) -> type[Representation]:
    """Return the class registered under ``name``.

    :raises ValueError: for an unknown name, listing the registered ones.
    """
    if _source is _importlib_source and name in _own_entry_points():  # a built-in: no scan of every package
        entry_points = _own_entry_points()
    else:
        entry_points = _entry_points()
    if name not in entry_points:
        raise ValueError(f'unknown representation {name!r}; registered: {", ".join(sorted(entry_points))}')
    cls = entry_points[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Representation)):
        raise TypeError(f'entry point {name!r} does not point to a Representation subclass: {cls!r}')
    return cls


def get_representation(name: str, **params: Any) -> Representation:
    """Instantiate the representation registered under ``name`` with options ``params``.

    :raises ValueError: for an unknown name or unknown/invalid options.
    """
    return load_representation_class(name).from_params(params)
