"""Symmetry of an unknown phase from its powder pattern, without a GPU: indexing, extinctions, classifier.

* :func:`index_peaks` (:mod:`.indexing`): unit cells that index a peak list, for the cubic, tetragonal,
  hexagonal (trigonal included), orthorhombic and monoclinic lattices, ranked by de Wolff ``M20`` and
  Smith-Snyder ``F_N``, with the zero shift and cell refined by least squares;
* :func:`rank_space_groups` (:mod:`.extinction`): space groups whose systematic absences agree with the indexed
  lines, with a Materials Project frequency prior;
* :func:`predict_symmetry` (:mod:`.predict`): both, from a profile or a peak list, with the learned
  ``matembed.xrd_symmetry`` classifier where the indexing is ambiguous; returns a :class:`SymmetryResult`;
  :func:`symmetry_of_unexplained` for the peaks a phase identification left unexplained.
"""

from .extinction import GroupScore, rank_space_groups, space_group_prior, systematically_absent
from .indexing import IndexingResult, IndexingSolution, index_peaks
from .lattice import CRYSTAL_SYSTEMS, SYSTEMS, Cell, cell_from_g6
from .predict import SymmetryResult, peaks_of_profile, predict_symmetry, symmetry_of_unexplained

__all__ = (
    'CRYSTAL_SYSTEMS',
    'SYSTEMS',
    'Cell',
    'GroupScore',
    'IndexingResult',
    'IndexingSolution',
    'SymmetryResult',
    'cell_from_g6',
    'index_peaks',
    'peaks_of_profile',
    'predict_symmetry',
    'rank_space_groups',
    'space_group_prior',
    'symmetry_of_unexplained',
    'systematically_absent',
)
