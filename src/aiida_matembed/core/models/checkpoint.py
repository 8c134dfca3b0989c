"""Checkpoints: weights as safetensors plus a JSON model card; never pickles.

A checkpoint is two files side by side, ``NAME.safetensors`` (the tensors, loaded with
:func:`safetensors.torch.load_file`, which cannot execute code) and ``NAME.json`` (the *model card*):
the model kind and its architecture hyper-parameters, the XRD and graph settings the model expects,
the training hyper-parameters, a description and hash of the training data, the metrics, the package
version and the sha256 of the weights file. Loading verifies that sha256 before reading a single
tensor, and refuses files that are not safetensors (a pickle, a zip made by ``torch.save``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ('CARD_FORMAT', 'ChecksumError', 'ModelCard', 'checkpoint_paths', 'read_card', 'read_weights',
           'sha256_file', 'weights_from_bytes', 'write_checkpoint')  # fmt: skip

CARD_FORMAT = 1
"""Version of the model-card layout written by :func:`write_checkpoint`."""


class ChecksumError(ValueError):
    """A weights file whose sha256 differs from the one its model card records."""


@dataclass
class ModelCard:
    """Everything needed to rebuild, trust and cite a trained model (stored as ``NAME.json``).

    :param name: registered name, e.g. ``'matembed.cmml'``.
    :param kind: model kind, a key of :data:`aiida_matembed.core.models.MODEL_KINDS` (``'cmml'``, ...).
    :param architecture: keyword arguments of the model class (layer sizes, embedding dimension, ...).
    :param inputs: input settings the model was trained with: ``xrd`` (simulation and grid settings)
        and/or ``graph`` (``matembed.crystal_graph`` parameters).
    :param training: training hyper-parameters (optimiser, epochs, seed, loss, augmentations, ...).
    :param data: description of the training data (builder, parameters, size, sha256 of the set).
    :param metrics: validation / evaluation figures, name -> value.
    :param sha256: sha256 of the weights file (hex), filled in by :func:`write_checkpoint`.
    """

    name: str
    kind: str
    architecture: dict[str, Any]
    inputs: dict[str, Any]
    training: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    description: str = ''
    version: str = '1'
    package_version: str = ''
    sha256: str = ''
    format: int = CARD_FORMAT

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = 'model card') -> ModelCard:
        """Build a card from its JSON dictionary, with a clear error for missing or unknown keys."""
        if not isinstance(data, dict):
            raise ValueError(f'{source}: a model card must be a JSON object')
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f'{source}: unknown model-card keys {unknown}')
        missing = [key for key in ('name', 'kind', 'architecture', 'inputs') if key not in data]
        if missing:
            raise ValueError(f'{source}: model card lacks {missing}')
        return cls(**data)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open('rb') as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """``(weights, card)`` paths of a checkpoint given either file or the common stem."""
    path = Path(path)
    if path.suffix in ('.safetensors', '.json'):
        path = path.with_suffix('')
    return path.with_suffix('.safetensors'), path.with_suffix('.json')


def write_checkpoint(path: str | Path, state_dict: dict[str, Any], card: ModelCard) -> tuple[Path, Path]:
    """Write ``state_dict`` as safetensors and ``card`` (with the weights' sha256 filled in) as JSON.

    :return: the paths of the weights and of the card.
    """
    from safetensors.torch import save_file

    weights, card_path = checkpoint_paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    tensors = {key: value.detach().cpu().contiguous() for key, value in state_dict.items()}
    save_file(tensors, str(weights), metadata={'name': card.name, 'kind': card.kind, 'format': str(CARD_FORMAT)})
    card.sha256 = sha256_file(weights)
    card_path.write_text(json.dumps(card.as_dict(), indent=2, sort_keys=True) + '\n')
    return weights, card_path


def read_card(path: str | Path) -> ModelCard:
    """Read the model card of a checkpoint (``NAME.json``, or given the weights file or the stem)."""
    _, card_path = checkpoint_paths(path)
    if not card_path.is_file():
        raise FileNotFoundError(f'no model card {card_path} (a checkpoint is NAME.safetensors + NAME.json)')
    try:
        data = json.loads(card_path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f'{card_path}: not valid JSON ({exc})') from None
    return ModelCard.from_dict(data, str(card_path))


def read_weights(path: str | Path, expected_sha256: str | None = None) -> dict[str, Any]:
    """Load the tensors of a safetensors file after checking its sha256.

    :param expected_sha256: hex digest the file must have (from its card); ``None`` skips the check.
    :raises ChecksumError: when the digest differs.
    :raises ValueError: when the file is not a safetensors file (e.g. a pickle): it is never unpickled.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights, _ = checkpoint_paths(path)
    if not weights.is_file():
        raise FileNotFoundError(f'no weights file {weights}')
    if expected_sha256 is not None:
        actual = sha256_file(weights)
        if actual != expected_sha256:
            raise ChecksumError(
                f'{weights}: sha256 {actual} differs from the model card ({expected_sha256}); '
                'the file is corrupt or was replaced'
            )
    try:
        return load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f'{weights} is not a safetensors file ({exc}); pickled weights are refused') from None


def weights_from_bytes(data: bytes, expected_sha256: str | None, source: str = 'weights') -> dict[str, Any]:
    """Tensors of a safetensors file given as bytes, after checking their sha256 (see :func:`read_weights`)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    if expected_sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected_sha256:
            raise ChecksumError(f'{source}: sha256 {actual} differs from the recorded {expected_sha256}')
    try:
        return load(data)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f'{source} is not a safetensors file ({exc}); pickled weights are refused') from None
