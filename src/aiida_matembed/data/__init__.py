"""AiiDA data node classes of aiida-matembed."""

from ..plugins import use_aiida_entry_points
from .convert import structure_data_to_pymatgen, to_structure_data
from .features import FeaturesData, params_hash
from .graphs import CrystalGraphsData
from .model import ModelData, import_model, load_model_node
from .xrd import XrdPatternsData

use_aiida_entry_points()

__all__ = (
    'CrystalGraphsData',
    'FeaturesData',
    'ModelData',
    'XrdPatternsData',
    'import_model',
    'load_model_node',
    'params_hash',
    'structure_data_to_pymatgen',
    'to_structure_data',
)
