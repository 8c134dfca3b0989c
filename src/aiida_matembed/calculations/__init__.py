"""Processes of aiida-matembed: batched calcfunctions and the worker CalcJob."""

from ..plugins import use_aiida_entry_points
from .embed import EMBED_IDENTIFIER, embed, embed_patterns, embed_structures
from .featurize import FEATURIZE_IDENTIFIER, featurize, featurize_structures
from .xrd import simulate_xrd, simulate_xrd_structures

use_aiida_entry_points()

__all__ = (
    'EMBED_IDENTIFIER',
    'FEATURIZE_IDENTIFIER',
    'embed',
    'embed_patterns',
    'embed_structures',
    'featurize',
    'featurize_structures',
    'simulate_xrd',
    'simulate_xrd_structures',
)
