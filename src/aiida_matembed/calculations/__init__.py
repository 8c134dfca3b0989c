"""Processes of aiida-matembed: batched calcfunctions."""

from ..plugins import use_aiida_entry_points
from .featurize import FEATURIZE_IDENTIFIER, featurize, featurize_structures
from .xrd import simulate_xrd, simulate_xrd_structures

use_aiida_entry_points()

__all__ = ('FEATURIZE_IDENTIFIER', 'featurize', 'featurize_structures', 'simulate_xrd', 'simulate_xrd_structures')
