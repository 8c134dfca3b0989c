"""One home for the compute device: the names users may give and how they resolve.

Names: ``'cpu'``; ``'cuda'`` or ``'cuda:N'`` (a GPU is required: no silent fallback); ``'auto'`` (the first
GPU when torch sees one, else the CPU). :func:`check_device` checks a name without importing torch (CLI
options, the ports of processes that will run on another computer); :func:`resolve_device` turns a name
into a ``torch.device`` where the work runs. Every layer (XRD kernels, models, training, the foundation
representation, the worker) resolves through these two functions and raises their errors.
"""

from __future__ import annotations

import platform
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ('DEVICE_NAMES', 'NoGpuError', 'check_device', 'resolve_device')

DEVICE_NAMES = ('cpu', 'cuda', 'cuda:N', 'auto')
"""The device names accepted everywhere (``N`` a GPU index)."""
_NAME = re.compile(r'^(cpu|auto|cuda(:\d+)?)$')


class NoGpuError(ValueError):
    """A GPU (``'cuda'`` / ``'cuda:N'``) was required but torch sees none (or fewer) on this computer."""


def check_device(device: Any) -> str:
    """``device`` as a valid name (``None`` means ``'cpu'``), without importing torch.

    :raises ValueError: naming the valid choices.
    """
    if device is None:
        return 'cpu'
    name = str(device) if type(device).__name__ == 'device' else device  # a torch.device
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}")
    return name


def resolve_device(device: Any = None) -> torch.device:
    """The ``torch.device`` meant by ``device`` on this computer (``None``: the CPU).

    :raises ValueError: for a name that is not one of :data:`DEVICE_NAMES`.
    :raises NoGpuError: for ``'cuda'`` / ``'cuda:N'`` when torch sees no such GPU here.
    """
    import torch

    name = check_device(device)
    if name == 'cpu':
        return torch.device('cpu')
    available = torch.cuda.is_available()
    if name == 'auto':
        return torch.device('cuda' if available else 'cpu')
    if not available:
        raise NoGpuError(
            f'device {name!r} requested but torch {torch.__version__} sees no GPU on {platform.node()} '
            "(use device='auto' to fall back to the CPU)"
        )
    index = name.partition(':')[2]
    if index and int(index) >= torch.cuda.device_count():
        raise NoGpuError(f'device {name!r}: {platform.node()} has {torch.cuda.device_count()} GPU(s)')
    return torch.device(name)
