"""Ask stored vectors and patterns questions: nearest neighbours, equivalent structures, phase identification, maps.

* :class:`VectorIndex` and :func:`exact_search` (:mod:`.index`): cosine / Euclidean nearest neighbours, exact or
  through a faiss HNSW graph;
* :func:`matching_structures` (:mod:`.matching`): crystallographic equivalence (pymatgen ``StructureMatcher``);
* :func:`identify_phases` (:mod:`.identify`): search-match of a measured powder pattern against candidates'
  peaks, with a multi-phase profile fit; :func:`read_pattern` (:mod:`.patterns`) reads measured files;
* :func:`project_2d`, :func:`plot_map`, :func:`write_map_html` (:mod:`.maps`): 2-D materials maps.
"""

from .index import EXACT_BELOW, METRICS, IndexMismatchError, VectorIndex, exact_search
from .matching import StructureMatch, matching_structures

__all__ = (
    'EXACT_BELOW',
    'METRICS',
    'IndexMismatchError',
    'StructureMatch',
    'VectorIndex',
    'exact_search',
    'matching_structures',
)
