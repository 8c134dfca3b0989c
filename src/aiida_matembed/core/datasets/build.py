"""The training and held-out structure sets of the learned models: synthetic crystals plus decorated prototypes.

:func:`build_dataset` is deterministic: the same arguments give the same set (same :meth:`StructureSet.sha256`)
on any machine and for any ``n_jobs``. Its metadata records every argument, the builder version and the SHA-256
of the held-out split file, so a model card can name exactly the data a model was trained on.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from .prototypes import SPLITS, _check_count, decorate_prototypes
from .synthetic import synthetic_crystals

if TYPE_CHECKING:
    from .store import StructureSet

__all__ = ('BUILD_VERSION', 'build_dataset')

BUILD_VERSION = 1
"""Version of :func:`build_dataset`'s recipe; bumped whenever the same arguments would give other structures."""


def build_dataset(
    n: int,
    seed: int = 0,
    *,
    split: str = 'train',
    synthetic_fraction: float = 0.5,
    max_atoms: int = 48,
    n_jobs: int = 1,
    progress: Callable[[int], None] | None = None,
) -> StructureSet:
    """Return ``n`` labelled crystals for training (``split='train'``) or evaluation (``'heldout'``).

    * ``'train'``: ``round(n * synthetic_fraction)`` synthetic crystals (:func:`~.synthetic.synthetic_crystals`,
      none of a held-out structure type), then the rest: the undecorated prototypes of pymatgen's 288 whose type is
      not held out, followed by decorations of all non-held-out prototypes (:func:`~.prototypes.decorate_prototypes`).
    * ``'heldout'``: only held-out structure types: the undecorated held-out prototypes of pymatgen's 288, then
      decorations of the held-out prototypes of both sources; ``synthetic_fraction`` is not used (no synthetic
      crystals).
    * ``'all'``: as ``'train'`` but over every prototype and without excluding any synthetic type.

    :param n: total number of structures (>= 1).
    :param seed: seed of both parts (they use distinct rng streams).
    :param synthetic_fraction: share of synthetic crystals, 0..1 (``'train'`` and ``'all'``).
    :param max_atoms: most atoms of a synthetic conventional cell and of a prototype's primitive cell.
    :param n_jobs: worker processes for the synthetic crystals.
    :param progress: called with the number of structures finished since the last call.
    :raises ValueError: for ``n < 1``, an unknown split or ``synthetic_fraction`` outside 0..1.
    """
    from .heldout import heldout_prototypes
    from .store import concatenate

    n = _check_count(n)
    if split not in SPLITS:
        raise ValueError(f'unknown split {split!r}; expected one of {", ".join(SPLITS)}')
    try:
        fraction = float(synthetic_fraction)
    except (TypeError, ValueError):
        raise ValueError(f'synthetic_fraction must be a number in [0, 1], got {synthetic_fraction!r}') from None
    if not 0.0 <= fraction <= 1.0 or math.isnan(fraction):
        raise ValueError(f'synthetic_fraction must be in [0, 1], got {synthetic_fraction!r}')
    if n_jobs < 1:
        raise ValueError(f'n_jobs must be >= 1, got {n_jobs}')
    n_synthetic = 0 if split == 'heldout' else round(n * fraction)
    n_prototypes = n - n_synthetic
    parts = []
    if n_synthetic:
        exclude = heldout_prototypes() if split == 'train' else frozenset()
        parts.append(
            synthetic_crystals(
                n_synthetic, seed, max_atoms=max_atoms, n_jobs=n_jobs, exclude_keys=exclude, progress=progress
            )
        )
    if n_prototypes:
        parts.append(
            decorate_prototypes(
                n_prototypes, seed, split=split, max_atoms=max_atoms, include_originals=True, progress=progress
            )
        )
    metadata: dict[str, Any] = {
        'builder': 'aiida_matembed.core.datasets.build_dataset',
        'version': BUILD_VERSION,
        'package_version': _package_version(),
        'seed': int(seed),
        'parameters': {
            'n': n,
            'split': split,
            'synthetic_fraction': fraction,
            'max_atoms': max_atoms,
            'n_jobs': n_jobs,
        },
        'n_synthetic': n_synthetic,
        'n_prototypes': n_prototypes,
        'heldout_file_sha256': _heldout_file_hash(),
        'parts': [p.metadata for p in parts],
    }
    return concatenate(parts, metadata=metadata)


def _heldout_file_hash() -> str:
    data = resources.files('aiida_matembed').joinpath('resources/heldout_prototypes.txt').read_bytes()
    return hashlib.sha256(data).hexdigest()


def _package_version() -> str:
    from aiida_matembed import __version__

    return str(__version__)
