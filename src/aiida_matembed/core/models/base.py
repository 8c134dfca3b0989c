"""Trained models as users see them: load from a checkpoint, embed or predict in batches.

Each class wraps a torch module (:mod:`.networks`) with its :class:`~.checkpoint.ModelCard` and the input
settings it was trained with (:class:`~aiida_matembed.core.xrd.settings.XrdSettings`, :class:`~.inputs.GraphInput`):

- :class:`CmmlModel` (``kind='cmml'``): ``embed_structures``, ``embed_patterns``, ``embed_xrd``;
- :class:`XrdSymmetryModel` (``'xrd_symmetry'``): ``predict(patterns)``, ``predict_structures``;
- :class:`XrdVaeModel` (``'xrd_vae'``): ``encode(patterns) -> (N, latent)``, ``encode_structures``;
- :class:`PropertyModel` (``'property'``): ``predict_structures`` (crystal encoder) or ``predict`` (XRD).

Structures that cannot be read (overlapping atoms, partial occupancy where unsupported, an element the
atom table lacks, ...) raise by default; with ``errors='record'`` their rows are NaN and
``model.failures`` lists them, so a batch never loses its good items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..device import resolve_device
from ..representations.base import ErrorMode, Failure, FeaturizationError
from ..xrd.settings import XrdSettings
from .checkpoint import ModelCard, read_card, read_weights, write_checkpoint
from .inputs import GraphInput, model_xrd_settings, simulate_model_patterns
from .networks import CRYSTAL_SYSTEMS, CmmlNet, PropertyNet, SymmetryNet, XrdVaeNet

__all__ = ('MODEL_KINDS', 'CmmlModel', 'PropertyModel', 'SymmetryPrediction', 'TrainedModel', 'XrdSymmetryModel',
           'XrdVaeModel', 'model_from_checkpoint', 'model_from_parts')  # fmt: skip


def _check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}')
    return batch_size


def _check_errors(errors: str) -> None:
    if errors not in ('raise', 'record'):
        raise ValueError(f"errors must be 'raise' or 'record', got {errors!r}")


class TrainedModel:
    """A trained network with its card; subclasses add the task's methods.

    :param card: the model card (architecture, inputs, training, data, metrics).
    :param network: the torch module (built from ``card.architecture`` when ``None``).
    :param device: ``'cpu'``, ``'cuda'`` or ``'auto'`` (CUDA when available).
    """

    kind: ClassVar[str] = ''
    network_class: ClassVar[type[nn.Module]]

    def __init__(self, card: ModelCard, network: nn.Module | None = None, device: str | None = 'auto') -> None:
        if card.kind != self.kind:
            raise ValueError(f'a {type(self).__name__} needs a card of kind {self.kind!r}, got {card.kind!r}')
        self.card = card
        self.xrd_input = model_xrd_settings(card.inputs['xrd']) if 'xrd' in card.inputs else None
        self.graph_input = GraphInput.from_dict(card.inputs['graph']) if 'graph' in card.inputs else None
        self.network = network if network is not None else self.build_network(card.architecture)
        self.device = torch.device(resolve_device(device))
        self.network.to(self.device).eval()
        self.failures: list[Failure] = []

    @classmethod
    def build_network(cls, architecture: dict[str, Any]) -> nn.Module:
        return cls.network_class(**architecture)

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def two_theta_grid(self) -> np.ndarray:
        """The 2θ grid (degrees) of the patterns the model reads."""
        if self.xrd_input is None:
            raise AttributeError(f'{self.name} does not read XRD patterns')
        return self.xrd_input.grid

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write the weights (safetensors) and the card (JSON, with the weights' sha256)."""
        return write_checkpoint(path, self.network.state_dict(), self.card)

    def __repr__(self) -> str:
        return f'<{type(self).__name__} {self.card.name} v{self.card.version} ({self.card.sha256[:12]})>'

    # ----------------------------------------------------------------------------------- helpers
    def _graph_input(self) -> GraphInput:
        if self.graph_input is None:
            raise AttributeError(f'{self.name} does not read crystal graphs')
        return self.graph_input

    def _xrd(self) -> XrdSettings:
        if self.xrd_input is None:
            raise AttributeError(f'{self.name} does not read XRD patterns')
        return self.xrd_input

    def _run_graphs(
        self, structures: Sequence[Any], fn: Any, width: int, batch_size: int, errors: ErrorMode
    ) -> np.ndarray:
        """``fn(batch) -> (B, width)`` on the crystal graphs of ``structures`` (NaN rows for failures)."""
        _check_errors(errors)
        _check_batch_size(batch_size)
        items = list(structures)
        graph_input = self._graph_input()
        out = np.full((len(items), width), np.nan, dtype=np.float32)
        self.failures = []

        def prepare(start: int) -> tuple[int, Any, list[int], list[Failure]]:
            arrays, rows, failures = graph_input.arrays(items[start : start + batch_size], errors='record')
            return start, (graph_input.batch(arrays) if rows else None), rows, failures

        # build the graphs of the next chunk in a thread while the encoder runs on this one (torch releases
        # the GIL), so neither the CPU cores nor a GPU wait for the other
        from concurrent.futures import ThreadPoolExecutor

        starts = list(range(0, len(items), batch_size))
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(prepare, starts[0]) if starts else None
            for index in range(len(starts)):
                assert pending is not None
                start, batch, rows, failures = pending.result()
                pending = pool.submit(prepare, starts[index + 1]) if index + 1 < len(starts) else None
                self.failures += [Failure(f.index + start, f.error_type, f.message) for f in failures]
                if failures and errors == 'raise':
                    if pending is not None:
                        pending.cancel()
                    raise FeaturizationError(self.failures[0])
                if batch is None:
                    continue
                with torch.no_grad():
                    out[np.asarray(rows) + start] = fn(batch.to(self.device)).float().cpu().numpy()
        return out

    def _run_patterns(self, patterns: Any, fn: Any, width: int, batch_size: int) -> np.ndarray:
        _check_batch_size(batch_size)
        array = self._xrd().check_patterns(patterns)
        out = np.empty((len(array), width), dtype=np.float32)
        for start in range(0, len(array), batch_size):
            x = torch.from_numpy(array[start : start + batch_size]).to(self.device)
            with torch.no_grad():
                out[start : start + len(x)] = fn(x).float().cpu().numpy()
        return out

    def _simulate(self, structures: Sequence[Any], errors: ErrorMode) -> tuple[np.ndarray, np.ndarray]:
        """Patterns of ``structures`` with the model's settings and the mask of good rows."""
        _check_errors(errors)
        profiles, failures = simulate_model_patterns(self._xrd(), structures, errors='record')
        self.failures = failures
        if failures and errors == 'raise':
            raise FeaturizationError(failures[0])
        good = ~np.isnan(profiles).any(axis=1) if len(profiles) else np.zeros(0, dtype=bool)
        return profiles, good


class CmmlModel(TrainedModel):
    """Cross-modal structure / XRD embeddings (CMML, Suzuki et al. 2022), L2-normalised.

    A structure and its own powder pattern map to nearby points, so embeddings of either modality can be
    compared with each other (cosine similarity = dot product).
    """

    kind = 'cmml'
    network_class = CmmlNet
    network: CmmlNet

    @property
    def embedding_dim(self) -> int:
        return int(self.card.architecture.get('embedding_dim', 256))

    def embed_structures(
        self, structures: Sequence[Any], *, batch_size: int = 256, errors: ErrorMode = 'raise'
    ) -> np.ndarray:
        """``(N, D)`` embeddings of structures from their crystal graphs."""
        return self._run_graphs(structures, self.network.embed_graphs, self.embedding_dim, batch_size, errors)

    def embed_patterns(self, patterns: Any, *, batch_size: int = 512) -> np.ndarray:
        """``(N, D)`` embeddings of ``(N, G)`` patterns on :attr:`two_theta_grid` (each divided by its maximum)."""
        return self._run_patterns(patterns, self.network.embed_patterns, self.embedding_dim, batch_size)

    def embed_xrd(self, structures: Sequence[Any], *, batch_size: int = 512, errors: ErrorMode = 'raise') -> np.ndarray:
        """Simulate the patterns of ``structures`` with the model's settings and embed them."""
        profiles, good = self._simulate(structures, errors)
        out = np.full((len(profiles), self.embedding_dim), np.nan, dtype=np.float32)
        if good.any():
            out[good] = self.embed_patterns(profiles[good], batch_size=batch_size)
        return out


@dataclass
class SymmetryPrediction:
    """Crystal system and space group predicted from powder patterns (NaN / -1 / '' for failed rows)."""

    crystal_system: list[str]
    """``N`` crystal-system names."""
    space_group: np.ndarray
    """``(N,)`` most likely space-group numbers (1-230)."""
    space_group_topk: np.ndarray
    """``(N, 5)`` the five most likely space groups, best first."""
    crystal_system_probabilities: np.ndarray
    """``(N, 7)`` probabilities, columns in the order of :data:`CRYSTAL_SYSTEMS`."""
    space_group_probabilities: np.ndarray
    """``(N, 230)`` probabilities, column ``g - 1`` for space group ``g``."""


class XrdSymmetryModel(TrainedModel):
    """Crystal system and space group from a powder pattern (FCN of Lee et al. 2022)."""

    kind = 'xrd_symmetry'
    network_class = SymmetryNet
    network: SymmetryNet
    crystal_systems = CRYSTAL_SYSTEMS

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        system, group = self.network(x)
        return torch.cat([system.softmax(dim=1), group.softmax(dim=1)], dim=1)

    def predict(self, patterns: Any, *, batch_size: int = 512) -> SymmetryPrediction:
        """Predict from ``(N, G)`` patterns on :attr:`two_theta_grid`."""
        probabilities = self._run_patterns(patterns, self._logits, 7 + 230, batch_size)
        return self._prediction(probabilities)

    def predict_structures(
        self, structures: Sequence[Any], *, errors: ErrorMode = 'raise', batch_size: int = 512
    ) -> SymmetryPrediction:
        """Simulate the patterns of ``structures`` with the model's settings and predict."""
        profiles, good = self._simulate(structures, errors)
        probabilities = np.full((len(profiles), 237), np.nan, dtype=np.float32)
        if good.any():
            probabilities[good] = self._run_patterns(profiles[good], self._logits, 237, batch_size)
        return self._prediction(probabilities)

    def _prediction(self, probabilities: np.ndarray) -> SymmetryPrediction:
        system, group = probabilities[:, :7], probabilities[:, 7:]
        good = ~np.isnan(system).any(axis=1)
        topk = np.full((len(group), 5), -1, dtype=np.int64)
        if good.any():
            topk[good] = np.argsort(-group[good], axis=1, kind='stable')[:, :5] + 1
        names = [
            CRYSTAL_SYSTEMS[int(i)] if ok else ''
            for i, ok in zip(np.nan_to_num(system).argmax(axis=1), good, strict=True)
        ]
        return SymmetryPrediction(names, topk[:, 0].copy(), topk, system, group)


class XrdVaeModel(TrainedModel):
    """Variational autoencoder of powder patterns: a low-dimensional (2D) materials map."""

    kind = 'xrd_vae'
    network_class = XrdVaeNet
    network: XrdVaeNet

    @property
    def latent_dim(self) -> int:
        return self.network.latent_dim

    def encode(self, patterns: Any, *, batch_size: int = 512) -> np.ndarray:
        """``(N, latent_dim)`` latent means of ``(N, G)`` patterns on :attr:`two_theta_grid`."""
        return self._run_patterns(patterns, lambda x: self.network.encode(x)[0], self.latent_dim, batch_size)

    def encode_structures(
        self, structures: Sequence[Any], *, errors: ErrorMode = 'raise', batch_size: int = 512
    ) -> np.ndarray:
        """Simulate with the model's settings and encode."""
        profiles, good = self._simulate(structures, errors)
        out = np.full((len(profiles), self.latent_dim), np.nan, dtype=np.float32)
        if good.any():
            out[good] = self.encode(profiles[good], batch_size=batch_size)
        return out

    def decode(self, latent: Any) -> np.ndarray:
        """Reconstructed (pooled, 0-1) patterns of latent points ``(N, latent_dim)``."""
        z = torch.as_tensor(np.asarray(latent, dtype=np.float32), device=self.device)
        with torch.no_grad():
            return torch.sigmoid(self.network.decode(z)).cpu().numpy()


class PropertyModel(TrainedModel):
    """Property regression from a crystal graph or a powder pattern; outputs in the training units."""

    kind = 'property'
    network_class = PropertyNet
    network: PropertyNet

    @property
    def targets(self) -> list[str]:
        return list(self.card.training.get('targets', ['y']))

    def _unscale(self, y: np.ndarray) -> np.ndarray:
        mean = np.asarray(self.card.training.get('target_mean', [0.0] * len(self.targets)), dtype=np.float32)
        std = np.asarray(self.card.training.get('target_std', [1.0] * len(self.targets)), dtype=np.float32)
        return y * std + mean

    def predict_structures(
        self, structures: Sequence[Any], *, errors: ErrorMode = 'raise', batch_size: int = 256
    ) -> np.ndarray:
        """``(N, n_targets)`` predictions (crystal-encoder models, or XRD models after simulating)."""
        n = len(self.targets)
        if self.network.encoder_kind == 'crystal':
            return self._unscale(self._run_graphs(structures, self.network, n, batch_size, errors))
        profiles, good = self._simulate(structures, errors)
        out = np.full((len(profiles), n), np.nan, dtype=np.float32)
        if good.any():
            out[good] = self.predict(profiles[good], batch_size=batch_size)
        return out

    def predict(self, patterns: Any, *, batch_size: int = 512) -> np.ndarray:
        """``(N, n_targets)`` predictions from patterns (XRD-encoder models)."""
        if self.network.encoder_kind != 'xrd':
            raise AttributeError(f'{self.name} reads crystal graphs: use predict_structures')
        return self._unscale(self._run_patterns(patterns, self.network, len(self.targets), batch_size))


MODEL_KINDS: dict[str, type[TrainedModel]] = {
    cls.kind: cls for cls in (CmmlModel, XrdSymmetryModel, XrdVaeModel, PropertyModel)
}
"""Model kind (as written in cards) -> class."""


def model_from_checkpoint(path: str | Path, device: str | None = 'auto') -> TrainedModel:
    """Load a checkpoint (``NAME.safetensors`` + ``NAME.json``) after verifying the weights' sha256."""
    card = read_card(path)
    if card.kind not in MODEL_KINDS:
        raise ValueError(f'{path}: unknown model kind {card.kind!r}; known: {", ".join(MODEL_KINDS)}')
    if not card.sha256:
        raise ValueError(f'{path}: the model card records no sha256 of the weights; refusing to load')
    state = read_weights(path, expected_sha256=card.sha256)  # verified and refused before anything else
    return model_from_parts(card, state, device=device, source=str(path))


def model_from_parts(
    card: ModelCard, state: dict[str, Any], device: str | None = 'auto', source: str = 'model'
) -> TrainedModel:
    """Build the model of ``card`` and load ``state`` (tensors already read and verified) into it.

    :raises ValueError: for an unknown kind or weights that do not fit the architecture.
    """
    if card.kind not in MODEL_KINDS:
        raise ValueError(f'{source}: unknown model kind {card.kind!r}; known: {", ".join(MODEL_KINDS)}')
    cls = MODEL_KINDS[card.kind]
    try:
        network = cls.build_network(card.architecture)
        network.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, KeyError) as exc:
        raise ValueError(f'{source}: the weights do not match the architecture in the card ({exc})') from None
    return cls(card, network, device=device)
