"""Learned models: CMML structure/XRD embeddings, XRD symmetry classifier, XRD VAE, property heads.

``load_model('matembed.cmml')`` returns a ready model (see :mod:`.base` for the methods of each kind);
:mod:`.training` trains them from a YAML configuration (``verdi data matembed train CONFIG.yaml``);
:mod:`.checkpoint` reads and writes safetensors weights with JSON model cards.
"""

from .base import (
    MODEL_KINDS,
    CmmlModel,
    PropertyModel,
    SymmetryPrediction,
    TrainedModel,
    XrdSymmetryModel,
    XrdVaeModel,
    model_from_checkpoint,
    model_from_parts,
)
from .checkpoint import ChecksumError, ModelCard, read_card, sha256_file, weights_from_bytes, write_checkpoint
from .inputs import GraphInput
from .networks import CRYSTAL_SYSTEMS, crystal_system_of
from .registry import available_models, load_model, model_path
from .regressor import FeatureRegressor, train_regressor

MODEL_KINDS[FeatureRegressor.kind] = FeatureRegressor

__all__ = (
    'CRYSTAL_SYSTEMS',
    'MODEL_KINDS',
    'ChecksumError',
    'CmmlModel',
    'FeatureRegressor',
    'GraphInput',
    'ModelCard',
    'PropertyModel',
    'SymmetryPrediction',
    'TrainedModel',
    'XrdSymmetryModel',
    'XrdVaeModel',
    'available_models',
    'crystal_system_of',
    'load_model',
    'model_from_checkpoint',
    'model_from_parts',
    'model_path',
    'read_card',
    'sha256_file',
    'train_regressor',
    'weights_from_bytes',
    'write_checkpoint',
)
