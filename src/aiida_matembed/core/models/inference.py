"""One entry point for inference with any model kind: structures or patterns in, ``(N, F)`` matrix out.

The AiiDA calcfunction ``matembed.embed`` and the remote worker both call :func:`run_model` (or
:func:`run_model_on_patterns`), so a batch gives the same matrix, labels and failures in-process and on a
remote GPU. What the columns are depends on the model kind and the *modality* read:

=============== ============ ==========================================================================
kind            modality     columns
=============== ============ ==========================================================================
``cmml``        structure    ``D`` L2-normalised embedding of the crystal graph (default)
``cmml``        xrd          ``D`` embedding of the simulated (or stored) powder pattern, same space
``xrd_symmetry`` xrd         7 crystal-system then 230 space-group probabilities
``xrd_vae``     xrd          latent mean (2D map coordinates)
``property``    structure    predicted targets (crystal-encoder models) / xrd (XRD-encoder models)
``regressor``   structure    prediction and its standard deviation (featurised with the model's
                             representation first)
=============== ============ ==========================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..representations.base import Failure
from .base import CmmlModel, PropertyModel, TrainedModel, XrdSymmetryModel, XrdVaeModel
from .networks import CRYSTAL_SYSTEMS
from .regressor import FeatureRegressor

__all__ = ('MODALITIES', 'ModelOutput', 'default_modality', 'output_labels', 'run_model', 'run_model_on_patterns')

MODALITIES = ('structure', 'xrd')


@dataclass
class ModelOutput:
    """Rows aligned with the inputs; failed rows are NaN and listed in ``failures``."""

    matrix: np.ndarray
    labels: list[str]
    modality: str
    failures: list[Failure] = field(default_factory=list)


def _modalities(model: TrainedModel) -> tuple[str, ...]:
    if isinstance(model, CmmlModel):
        return ('structure', 'xrd')
    if isinstance(model, PropertyModel):
        return ('structure',) if model.network.encoder_kind == 'crystal' else ('xrd',)
    if isinstance(model, FeatureRegressor):
        return ('structure',)  # featurised with the model's representation first
    return ('xrd',)


def default_modality(model: TrainedModel) -> str:
    """The modality a model reads by default (crystal graphs where it can, else XRD)."""
    return _modalities(model)[0]


def check_modality(model: TrainedModel, modality: str | None) -> str:
    """Return the modality to use; ``None`` means the default.

    :raises ValueError: for a modality the model cannot read.
    """
    if modality is None:
        return default_modality(model)
    allowed = _modalities(model)
    if modality not in allowed:
        raise ValueError(f'{model.name} ({model.card.kind}) reads {" or ".join(allowed)}, not {modality!r}')
    return modality


def output_labels(model: TrainedModel, modality: str | None = None) -> list[str]:
    """Column labels of :func:`run_model`'s matrix for ``model``."""
    check_modality(model, modality)
    short = model.name.rsplit('.', 1)[-1]
    if isinstance(model, CmmlModel):
        return [f'{short}_{i}' for i in range(model.embedding_dim)]
    if isinstance(model, XrdSymmetryModel):
        return [f'p_{system}' for system in CRYSTAL_SYSTEMS] + [f'p_sg{g}' for g in range(1, 231)]
    if isinstance(model, XrdVaeModel):
        return [f'z_{i}' for i in range(model.latent_dim)]
    if isinstance(model, PropertyModel):
        return list(model.targets)
    if isinstance(model, FeatureRegressor):
        return [model.targets[0], f'{model.targets[0]}_std']
    raise TypeError(f'no inference defined for {type(model).__name__}')


def run_model(
    model: TrainedModel, structures: Sequence[Any], *, modality: str | None = None, batch_size: int = 256
) -> ModelOutput:
    """Run ``model`` on a batch of structures (pymatgen, ASE or core cells); bad items become failures.

    :param modality: ``'structure'`` (crystal graph) or ``'xrd'`` (simulate the pattern with the model's
        settings first); ``None`` = the model's default.
    :param batch_size: structures per forward pass (memory knob; results do not depend on it).
    """
    modality = check_modality(model, modality)
    labels = output_labels(model, modality)
    items = list(structures)
    if isinstance(model, CmmlModel):
        if modality == 'structure':
            matrix = model.embed_structures(items, batch_size=batch_size, errors='record')
        else:
            matrix = model.embed_xrd(items, batch_size=batch_size, errors='record')
    elif isinstance(model, XrdSymmetryModel):
        prediction = model.predict_structures(items, errors='record', batch_size=batch_size)
        matrix = np.concatenate([prediction.crystal_system_probabilities, prediction.space_group_probabilities], 1)
    elif isinstance(model, XrdVaeModel):
        matrix = model.encode_structures(items, errors='record', batch_size=batch_size)
    elif isinstance(model, PropertyModel):
        matrix = model.predict_structures(items, errors='record', batch_size=batch_size)
    elif isinstance(model, FeatureRegressor):
        matrix = model.predict_structures(items, errors='record')
    else:  # pragma: no cover - every kind is handled above
        raise TypeError(f'no inference defined for {type(model).__name__}')
    matrix = np.asarray(matrix, dtype=np.float32)
    failures = list(model.failures)
    failed = {f.index for f in failures}
    for row in np.flatnonzero(~np.isfinite(matrix).all(axis=1)):
        if int(row) not in failed:  # never store a NaN vector as a success
            matrix[row] = np.nan
            failures.append(Failure(int(row), 'NonFiniteOutput', f'{model.name} gave a non-finite output'))
    failures.sort(key=lambda f: f.index)
    return ModelOutput(matrix, labels, modality, failures)


def run_model_on_patterns(model: TrainedModel, patterns: Any, *, batch_size: int = 512) -> ModelOutput:
    """Run an XRD-reading model on ``(N, G)`` patterns on the model's grid; NaN rows stay NaN (failures).

    :raises ValueError: when the model reads no patterns or the grid length differs.
    """
    check_modality(model, 'xrd')
    array = np.asarray(patterns, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f'patterns must be a 2D (N, G) array, got shape {array.shape}')
    labels = output_labels(model, 'xrd')
    good = ~np.isnan(array).any(axis=1)
    failures = [Failure(int(i), 'MissingPattern', 'no pattern (its simulation failed)') for i in np.flatnonzero(~good)]
    matrix = np.full((len(array), len(labels)), np.nan, dtype=np.float32)
    if good.any():
        x = array[good]
        if isinstance(model, CmmlModel):
            matrix[good] = model.embed_patterns(x, batch_size=batch_size)
        elif isinstance(model, XrdSymmetryModel):
            prediction = model.predict(x, batch_size=batch_size)
            matrix[good] = np.concatenate(
                [prediction.crystal_system_probabilities, prediction.space_group_probabilities], 1
            )
        elif isinstance(model, XrdVaeModel):
            matrix[good] = model.encode(x, batch_size=batch_size)
        elif isinstance(model, PropertyModel):
            matrix[good] = model.predict(x, batch_size=batch_size)
    return ModelOutput(matrix, labels, 'xrd', failures)
