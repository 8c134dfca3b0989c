"""Protocols of the WorkChains: named sets of default inputs in YAML, as in aiida-quantumespresso.

A protocol file ``NAME.yaml`` next to this module has ``default_inputs`` (every protocol starts from them),
``default_protocol`` and ``protocols`` (name -> ``description`` and the inputs that differ). A WorkChain that
mixes in :class:`ProtocolMixin` and names its file in ``_protocol_file`` gets ``get_available_protocols``,
``get_default_protocol`` and ``get_protocol_inputs(protocol, overrides)``; its ``get_builder_from_protocol``
turns those inputs into a builder.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import yaml

__all__ = ('ProtocolMixin', 'recursive_merge')

_HERE = Path(__file__).parent


def recursive_merge(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``left`` updated with ``right``, merging nested dictionaries key by key."""
    merged = copy.deepcopy(left)
    for key, value in right.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = recursive_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@cache
def _load(name: str) -> dict[str, Any]:
    with (_HERE / f'{name}.yaml').open() as handle:
        return yaml.safe_load(handle)


class ProtocolMixin:
    """Protocol look-up for a WorkChain whose protocol file is ``protocols/<_protocol_file>.yaml``."""

    _protocol_file: ClassVar[str]

    @classmethod
    def _protocols(cls) -> dict[str, Any]:
        return _load(cls._protocol_file)

    @classmethod
    def get_default_protocol(cls) -> str:
        """The name of the protocol used when none is given."""
        return str(cls._protocols()['default_protocol'])

    @classmethod
    def get_available_protocols(cls) -> dict[str, dict[str, str]]:
        """Protocol name -> ``{'description': ...}``."""
        return {name: {'description': v['description']} for name, v in cls._protocols()['protocols'].items()}

    @classmethod
    def get_protocol_inputs(
        cls, protocol: str | None = None, overrides: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The inputs of ``protocol`` (default inputs merged with the protocol's, then with ``overrides``).

        :raises ValueError: for an unknown protocol or override keys that are not inputs of the protocol.
        """
        data = cls._protocols()
        name = protocol or data['default_protocol']
        if name not in data['protocols']:
            raise ValueError(f'unknown protocol {name!r}; available: {", ".join(data["protocols"])}')
        specific = {k: v for k, v in data['protocols'][name].items() if k != 'description'}
        inputs = recursive_merge(data['default_inputs'], specific)
        unknown = sorted(set(overrides or {}) - set(inputs) - set(data.get('optional_inputs', [])))
        if unknown:
            raise ValueError(f'unknown override(s) {unknown}; protocol inputs: {", ".join(sorted(inputs))}')
        return recursive_merge(inputs, overrides or {})
