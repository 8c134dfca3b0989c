"""Representations: the base class, the registry and the built-in families.

>>> from aiida_matembed.core.representations import get_representation
>>> magpie = get_representation('matembed.magpie')
>>> result = magpie.featurize_many(structures, errors='record')
>>> result.features.shape  # (N, 132)
"""

from .base import Failure, FeatureResult, FeaturizationError, Representation
from .registry import (
    ENTRY_POINT_GROUP,
    get_representation,
    list_representations,
    load_representation_class,
    set_entry_point_source,
)

__all__ = (
    'ENTRY_POINT_GROUP',
    'Failure',
    'FeatureResult',
    'FeaturizationError',
    'Representation',
    'get_representation',
    'list_representations',
    'load_representation_class',
    'set_entry_point_source',
)
