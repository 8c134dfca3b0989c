"""Registered models: the ``aiida_matembed.models`` entry-point group and :func:`load_model`.

An entry point names a zero-argument callable that returns the path of a checkpoint (``NAME.safetensors``
next to ``NAME.json``). The package registers its shipped models (``matembed.cmml``,
``matembed.xrd_symmetry``, ``matembed.xrd_vae``); plugins register theirs the same way::

    [project.entry-points."aiida_matembed.models"]
    "myplugin.model" = "myplugin.models:checkpoint_path"
"""

from __future__ import annotations

from importlib import resources
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import TrainedModel

__all__ = ('ENTRY_POINT_GROUP', 'available_models', 'load_model', 'model_path', 'shipped_cmml', 'shipped_xrd_symmetry',
           'shipped_xrd_vae')  # fmt: skip

ENTRY_POINT_GROUP = 'aiida_matembed.models'


def _shipped(stem: str) -> Path:
    return Path(str(resources.files('aiida_matembed').joinpath(f'resources/models/{stem}.safetensors')))


def shipped_cmml() -> Path:
    """Checkpoint of ``matembed.cmml``."""
    return _shipped('matembed_cmml')


def shipped_xrd_symmetry() -> Path:
    """Checkpoint of ``matembed.xrd_symmetry``."""
    return _shipped('matembed_xrd_symmetry')


def shipped_xrd_vae() -> Path:
    """Checkpoint of ``matembed.xrd_vae``."""
    return _shipped('matembed_xrd_vae')


def available_models() -> list[str]:
    """Names of the registered models, sorted."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def model_path(name: str) -> Path:
    """Checkpoint path of a registered model.

    :raises ValueError: for an unknown name (the message lists the registered ones).
    """
    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not matches:
        known = ', '.join(available_models()) or 'none'
        raise ValueError(f'unknown model {name!r}; registered models: {known}')
    target = matches[0].load()
    path = Path(target() if callable(target) else target)
    if not path.is_file():
        raise FileNotFoundError(f'model {name!r} is registered but its weights {path} are missing')
    return path


def load_model(name_or_path: str | Path, *, device: str | None = 'auto') -> TrainedModel:
    """Load a registered model by name (e.g. ``'matembed.cmml'``) or a checkpoint by path.

    The sha256 of the weights is checked against the model card before anything is read; the weights
    are safetensors (never unpickled).

    :param device: ``'cpu'``, ``'cuda'`` or ``'auto'`` (CUDA when available).
    """
    from .base import model_from_checkpoint

    text = str(name_or_path)
    is_path = isinstance(name_or_path, Path) or text.endswith(('.safetensors', '.json')) or '/' in text
    path = Path(text) if is_path else model_path(text)
    return model_from_checkpoint(path, device=device)
