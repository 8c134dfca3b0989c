"""The fixed held-out split of structure types: what the learned models are never trained on.

The split is a set of canonical structure-type keys (:func:`~.prototypes.structure_type_key`) shipped in
``aiida_matembed/resources/heldout_prototypes.txt`` and read from there, so it never changes when code changes.
It was made once by :func:`write_heldout_file`: take the keys of the union of pymatgen's 288 and pyriodic-aflow's
579 prototypes, sort them by the SHA-256 hex digest of the key (UTF-8), and keep the first
``ceil(HELDOUT_FRACTION * n_keys)``. A key names a structure type in both sources, so a held-out type cannot leak
into training through the other source; :func:`~.build.build_dataset` also keeps synthetic crystals of a held-out
type out of the training split.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from pathlib import Path

__all__ = ('HELDOUT_FRACTION', 'heldout_prototypes', 'is_heldout', 'select_heldout', 'write_heldout_file')

HELDOUT_FRACTION = 0.3
"""Fraction of the structure-type keys that is held out."""

_RESOURCE = 'resources/heldout_prototypes.txt'


def select_heldout(keys: Iterable[str], fraction: float = HELDOUT_FRACTION) -> list[str]:
    """Return the held-out keys among ``keys`` (the rule of the module docstring), sorted alphabetically."""
    if not 0 < fraction < 1:
        raise ValueError(f'fraction must be in (0, 1), got {fraction}')
    unique = sorted(set(keys), key=lambda k: (hashlib.sha256(k.encode()).hexdigest(), k))
    return sorted(unique[: math.ceil(fraction * len(unique))])


def write_heldout_file(path: str | Path | None = None) -> Path:
    """Write the held-out keys (one per line, after a comment header) and return the path.

    A maintainer's tool, run once to make the shipped file; running it again only reproduces that file as long
    as the key definition and the two prototype sources are unchanged. Default path: the package's resource.
    """
    from .prototypes import SYMPREC, reference_prototypes

    prototypes = reference_prototypes()
    keys = {p.key for p in prototypes}
    n_aflow = sum(p.source == 'aflow' for p in prototypes)
    held = select_heldout(keys)
    if path is None:
        path = Path(str(resources.files('aiida_matembed').joinpath(_RESOURCE)))
    path = Path(path)
    header = [
        'Held-out structure types of aiida-matembed (issue #5): never used for training.',
        f'Keys: canonical structure-type keys (aiida_matembed.core.datasets.structure_type_key, spglib symprec '
        f'{SYMPREC} A)',
        f"of the union of pymatgen's {n_aflow} AFLOW prototypes and pyriodic-aflow's "
        f'{len(prototypes) - n_aflow}: {len(keys)} keys.',
        f'Rule: sort the keys by sha256(key.encode()).hexdigest(); keep the first ceil({HELDOUT_FRACTION} * '
        f'{len(keys)}) = {len(held)}.',
        'Made once by aiida_matembed.core.datasets.heldout.write_heldout_file(); the split is this file, not the code.',
    ]
    text = ''.join(f'# {line}\n' for line in header) + ''.join(f'{k}\n' for k in held)
    path.write_text(text, encoding='utf-8')
    heldout_prototypes.cache_clear()
    return path


@lru_cache(maxsize=1)
def heldout_prototypes() -> frozenset[str]:
    """Return the held-out structure-type keys (read from the shipped file; cached)."""
    text = resources.files('aiida_matembed').joinpath(_RESOURCE).read_text(encoding='utf-8')
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith('#'))


def is_heldout(key: str) -> bool:
    """Return whether a structure-type key is held out."""
    return key in heldout_prototypes()
