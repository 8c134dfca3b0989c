"""WorkChains of aiida-matembed."""

from ..plugins import use_aiida_entry_points
from .embed_group import EmbedGroupWorkChain
from .featurize_group import FeaturizeGroupWorkChain
from .worker_base import WorkerBaseWorkChain

use_aiida_entry_points()

__all__ = ('EmbedGroupWorkChain', 'FeaturizeGroupWorkChain', 'WorkerBaseWorkChain')
