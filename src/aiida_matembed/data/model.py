"""``matembed.model``: a trained model (safetensors weights + JSON card) as a node of the provenance graph.

Embeddings are ``matembed.features`` nodes whose creating process has a :class:`ModelData` as its
``model`` input, so "which model made this vector" and "every vector this model made" are graph queries
(:mod:`aiida_matembed.query`). :func:`import_model` verifies the weights' sha256 against the card and
returns the existing node when the same model (same name and sha256) is already in the database.
"""

from __future__ import annotations

import hashlib
import io
import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiida import orm

if TYPE_CHECKING:
    from ..core.models import ModelCard, TrainedModel

__all__ = ('ModelData', 'import_model', 'load_model_node')

WEIGHTS = 'model.safetensors'
CARD = 'model.json'


def _output_dim(model: TrainedModel) -> int:
    from ..core.models.inference import output_labels

    return len(output_labels(model))


class ModelData(orm.Data):
    """A trained model: weights (``model.safetensors``) and card (``model.json``) in the repository.

    Attributes (queryable): ``name``, ``kind``, ``version``, ``sha256`` (of the weights),
    ``embedding_dim`` (width of the output for the default modality), ``modalities``, ``inputs`` (the XRD
    and graph settings the model reads), ``metrics``, ``data_sha256`` (training set), ``package_version``,
    ``description``, ``size_bytes``.
    """

    def __init__(self, weights: bytes | None = None, card: ModelCard | None = None, **kwargs: Any) -> None:
        """Create the node from the bytes of a safetensors file and its card; both are verified first.

        :raises ChecksumError: when the bytes do not have the card's sha256.
        :raises ValueError: for a file that is not safetensors (never unpickled), an unknown kind or weights
            that do not fit the card's architecture.
        """
        super().__init__(**kwargs)
        if weights is None and card is None:
            return
        if weights is None or card is None:
            raise ValueError('give both the weights and the card')
        from ..core.models import model_from_parts, weights_from_bytes
        from ..core.models.inference import MODALITIES, check_modality

        if not card.sha256:
            raise ValueError(f'model card of {card.name!r} records no sha256 of the weights; refusing it')
        state = weights_from_bytes(weights, card.sha256, source=f'weights of {card.name!r}')
        model = model_from_parts(card, state, device='cpu', source=card.name)
        modalities = []
        for modality in MODALITIES:
            try:
                check_modality(model, modality)
                modalities.append(modality)
            except ValueError:
                pass
        self.base.repository.put_object_from_filelike(io.BytesIO(weights), WEIGHTS)  # type: ignore[arg-type]
        text = json.dumps(card.as_dict(), indent=2, sort_keys=True)
        self.base.repository.put_object_from_filelike(io.BytesIO(text.encode()), CARD)  # type: ignore[arg-type]
        self.base.attributes.set_many(
            {
                'name': card.name,
                'kind': card.kind,
                'version': str(card.version),
                'sha256': card.sha256,
                'embedding_dim': _output_dim(model),
                'modalities': modalities,
                'inputs': card.inputs,
                'metrics': card.metrics,
                'data_sha256': card.data.get('sha256', ''),
                'package_version': card.package_version,
                'description': card.description,
                'size_bytes': len(weights),
            }
        )

    @property
    def name(self) -> str:
        """Registered name, e.g. ``matembed.cmml``."""
        return self.base.attributes.get('name')

    @property
    def sha256(self) -> str:
        """sha256 (hex) of the weights."""
        return self.base.attributes.get('sha256')

    @property
    def embedding_dim(self) -> int:
        """Width of the model's output (embedding dimension, number of classes or targets)."""
        return int(self.base.attributes.get('embedding_dim'))

    @property
    def card(self) -> ModelCard:
        """The model card."""
        from ..core.models import ModelCard

        return ModelCard.from_dict(json.loads(self.base.repository.get_object_content(CARD, mode='r')), str(self))

    def weights_bytes(self) -> bytes:
        """The weights file, after checking it still has the recorded sha256."""
        from ..core.models import ChecksumError

        data = self.base.repository.get_object_content(WEIGHTS, mode='rb')
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise ChecksumError(f'{self}: the stored weights no longer have sha256 {self.sha256}')
        return data

    def load_model(self, device: str | None = 'auto') -> TrainedModel:
        """The ready model (weights verified; cached per node and device in this process)."""
        if not self.is_stored:
            return _build(self.weights_bytes(), self.card, device)
        return _cached_model(self.uuid, str(device))

    def write_checkpoint(self, directory: str | Path, stem: str = 'model') -> Path:
        """Write ``STEM.safetensors`` and ``STEM.json`` into ``directory``; return the weights' path."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        weights = directory / f'{stem}.safetensors'
        weights.write_bytes(self.weights_bytes())
        (directory / f'{stem}.json').write_text(self.base.repository.get_object_content(CARD, mode='r'))
        return weights

    def __str__(self) -> str:
        sha = str(self.base.attributes.get('sha256'))[:12]
        return f'ModelData<{self.pk}> {self.base.attributes.get("name")} ({sha})'


def _build(weights: bytes, card: ModelCard, device: str | None) -> TrainedModel:
    from ..core.models import model_from_parts, weights_from_bytes

    state = weights_from_bytes(weights, card.sha256, source=card.name)
    return model_from_parts(card, state, device=device, source=card.name)


@lru_cache(maxsize=8)
def _cached_model(uuid: str, device: str) -> TrainedModel:
    node = orm.load_node(uuid)
    assert isinstance(node, ModelData)
    return _build(node.weights_bytes(), node.card, None if device == 'None' else device)


def _find(name: str, sha256: str) -> ModelData | None:
    query = orm.QueryBuilder().append(
        ModelData, filters={'attributes.name': name, 'attributes.sha256': sha256}, project='*'
    )
    query.order_by({ModelData: {'id': 'asc'}})
    found = query.first(flat=True)
    return found if isinstance(found, ModelData) else None


def import_model(name_or_path: str | Path) -> ModelData:
    """Store a registered model (by name) or a checkpoint file as a :class:`ModelData`, once.

    The weights' sha256 is checked against the card and the file must be safetensors (a pickle is refused
    without being unpickled). Importing the same model again (same name and sha256) returns the node
    already stored.

    :raises ValueError: unknown model name, not a safetensors file, card without checksum, bad architecture.
    :raises ChecksumError: weights that differ from their card.
    """
    from ..core.models import model_path, read_card
    from ..core.models.checkpoint import checkpoint_paths

    text = str(name_or_path)
    is_path = isinstance(name_or_path, Path) or text.endswith(('.safetensors', '.json')) or '/' in text
    path = Path(text) if is_path else model_path(text)
    card = read_card(path)
    weights_path, _ = checkpoint_paths(path)
    if not weights_path.is_file():
        raise FileNotFoundError(f'no weights file {weights_path}')
    if not card.sha256:
        raise ValueError(f'{path}: the model card records no sha256 of the weights; refusing to import it')
    weights = weights_path.read_bytes()
    from ..core.models import weights_from_bytes

    weights_from_bytes(weights, card.sha256, source=str(weights_path))  # checksum and format first, never unpickled
    _check_name(card.name, card.sha256, is_path)
    existing = _find(card.name, hashlib.sha256(weights).hexdigest())
    if existing is not None and existing.sha256 == card.sha256:
        return existing
    node = ModelData(weights, card)  # verifies checksum, format and architecture
    node.label = card.name
    node.description = card.description
    return node.store()


def _check_name(name: str, sha256: str, from_path: bool) -> None:
    """Refuse a checkpoint file that borrows the name of a registered model but has other weights."""
    from ..core.models import available_models, model_path, read_card

    if not from_path or name not in available_models():
        return
    registered = read_card(model_path(name)).sha256
    if registered != sha256:
        raise ValueError(
            f'{name!r} is the name of a registered model (sha256 {registered[:12]}), but this checkpoint has other '
            f'weights (sha256 {sha256[:12]}): give it its own name in its card'
        )


def _is_uuid(text: str) -> bool:
    import uuid

    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def load_model_node(identifier: ModelData | str | int | Path) -> ModelData:
    """A :class:`ModelData` given itself, its pk / UUID, or a registered name or checkpoint path (imported)."""
    if isinstance(identifier, ModelData):
        return identifier if identifier.is_stored else identifier.store()
    if isinstance(identifier, str) and _is_uuid(identifier):
        identifier = str(orm.load_node(identifier).pk)
    if isinstance(identifier, int) or (isinstance(identifier, str) and identifier.isdigit()):
        node = orm.load_node(int(identifier))
        if not isinstance(node, ModelData):
            raise ValueError(f'node {identifier} is a {type(node).__name__}, not a matembed.model')
        return node
    return import_model(identifier)
