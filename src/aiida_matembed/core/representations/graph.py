"""``matembed.crystal_graph``: CGCNN-style periodic crystal graphs, with a pooled vector view.

The graph itself (:meth:`CrystalGraph.graphs_many`, torch-geometric ``Data`` objects, batchable with
``torch_geometric.data.Batch``) is what graph networks consume. So that the same representation works
everywhere a vector is expected (the CLI, the ``matembed.featurize`` calcfunction, the Group
WorkChain), :meth:`~CrystalGraph.featurize_many` returns graph-level pooled descriptors: the mean and
the maximum of the node features, and the mean Gaussian-expanded edge length (a smooth, truncated
radial distribution). All three are intensive.

Reference: T. Xie and J. C. Grossman, Phys. Rev. Lett. 120, 145301 (2018) (CGCNN: 8 Å, 12 neighbours,
Gaussian centres 0 to 8 Å every 0.2 Å with width 0.2 Å).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..elements import SYMBOLS
from ..graphs import GraphArrays, LocalGraph, gaussian_expansion, nearest_neighbor_edges, to_batch, to_data_list
from ..neighbors import check_cutoff
from ..structures import Cell, InvalidStructureError
from .base import ErrorMode, Failure, FeatureResult, FeaturizationError
from .composition import element_embedding_tables, load_element_table
from .structural import StructuralRepresentation, _check_int, _check_positive

if TYPE_CHECKING:
    from torch_geometric.data import Batch, Data

__all__ = ('CrystalGraph', 'GraphResult')

XIE_2018 = (
    '@article{xie2018crystal, title={Crystal graph convolutional neural networks for an accurate and '
    'interpretable prediction of material properties}, author={Xie, Tian and Grossman, Jeffrey C.}, '
    'journal={Physical Review Letters}, volume={120}, pages={145301}, year={2018}, '
    'doi={10.1103/PhysRevLett.120.145301}}'
)


class GraphResult(NamedTuple):
    """Graphs of a batch: ``graphs[i]`` belongs to input ``i`` (``None`` where it failed)."""

    graphs: list[Data | None]
    failures: list[Failure]


class CrystalGraph(StructuralRepresentation):
    """Periodic crystal graph (CGCNN): nearest neighbours within a cutoff, Gaussian edge features.

    :param cutoff: neighbour radius (Å).
    :param max_neighbors: at most this many nearest neighbours per site (ties broken deterministically).
    :param gaussian_step: spacing of the Gaussian centres from 0 to ``cutoff`` (Å).
    :param gaussian_width: width of each Gaussian (Å).
    :param atom_features: element table giving the node features (any ``elementembeddings`` table;
        ``cgnf`` holds the CGCNN atom features); an element missing from it fails with a clear message.
    """

    name = 'matembed.crystal_graph'
    version = 1
    output_kind = 'graph'
    checks_overlap_itself = True
    description = 'CGCNN crystal graph (8 Å, 12 neighbours); vector view: pooled node and edge features'

    def __init__(
        self,
        *,
        cutoff: float = 8.0,
        max_neighbors: int = 12,
        gaussian_step: float = 0.2,
        gaussian_width: float = 0.2,
        atom_features: str = 'cgnf',
    ) -> None:
        self.cutoff = check_cutoff(cutoff)
        if self.cutoff < 1.0:
            raise ValueError(f'cutoff must be at least 1 Å for a crystal graph, got {cutoff!r}')
        self.max_neighbors = _check_int(max_neighbors, 'max_neighbors', 1, 1000)
        self.gaussian_step = _check_positive(gaussian_step, 'gaussian_step', self.cutoff)
        self.gaussian_width = _check_positive(gaussian_width, 'gaussian_width', self.cutoff)
        if atom_features not in element_embedding_tables():
            raise ValueError(
                f'unknown atom_features table {atom_features!r}; available: {", ".join(element_embedding_tables())}'
            )
        self.atom_features = atom_features

    @property
    def gaussian_centers(self) -> np.ndarray:
        """Centres of the Gaussian distance expansion (Å): 0, step, ..., up to ``cutoff``."""
        return np.arange(0.0, self.cutoff + 1e-9, self.gaussian_step)

    def atom_table(self) -> np.ndarray:
        """``(Z_MAX + 1, D)`` node-feature table (rows of missing elements are NaN)."""
        return load_element_table(self.atom_features).values

    def citations(self) -> list[str]:
        return [XIE_2018, *load_element_table(self.atom_features).citations]

    def feature_labels(self) -> list[str]:
        table = load_element_table(self.atom_features).labels
        return [
            *(f'node mean {label}' for label in table),
            *(f'node max {label}' for label in table),
            *(f'edge mean gaussian {mu:.2f}A' for mu in self.gaussian_centers),
        ]

    # ------------------------------------------------------------------------------ computation
    def _check_cell(self, cell: Cell) -> LocalGraph:
        present = load_element_table(self.atom_features).present
        missing = np.flatnonzero(~present[cell.z])
        if missing.size:
            z = int(cell.z[missing[0]])
            raise InvalidStructureError(
                f'element {SYMBOLS[z - 1]} is not in the atom feature table {self.atom_features!r}; '
                'choose another atom_features table'
            )
        return nearest_neighbor_edges(cell, self.cutoff, self.max_neighbors)

    def _compute(self, prepared: list[LocalGraph]) -> np.ndarray:
        table = self.atom_table()
        centers = self.gaussian_centers
        out = np.empty((len(prepared), self.n_features))
        width = table.shape[1]
        for row, graph in enumerate(prepared):
            nodes = table[graph.cell.z]
            out[row, :width] = nodes.mean(axis=0)
            out[row, width : 2 * width] = nodes.max(axis=0)
            if len(graph.distances):
                out[row, 2 * width :] = gaussian_expansion(graph.distances, centers, self.gaussian_width).mean(axis=0)
            else:
                out[row, 2 * width :] = 0.0
        return out

    # ----------------------------------------------------------------------------------- graphs
    def graph_arrays_many(
        self, structures: Iterable[Any], *, errors: ErrorMode = 'raise'
    ) -> tuple[GraphArrays, list[int], list[Failure]]:
        """Build the graphs of a batch as concatenated arrays (what ``matembed.crystal_graphs`` stores).

        :return: the arrays of the good structures, the input index of each stored graph, and the failures
            (with ``errors='record'``; ``'raise'`` raises :class:`FeaturizationError` at the first bad input).
        """
        graphs, rows, failures = self._local_graphs(structures, errors)
        return GraphArrays.from_graphs(graphs), rows, failures

    def featurize_with_graphs(
        self, structures: Iterable[Any], *, errors: ErrorMode = 'raise'
    ) -> tuple[FeatureResult, GraphArrays, list[int]]:
        """Pooled features and graph arrays of a batch from one neighbour search per structure.

        :return: the :class:`FeatureResult` (rows aligned with the inputs, NaN for failures), the graph
            arrays of the good structures and the input index of each graph.
        """
        items = list(structures)
        graphs, rows, failures = self._local_graphs(items, errors)
        features = np.full((len(items), self.n_features), np.nan)
        if graphs:
            features[rows] = self._compute_checked(graphs)
        result = FeatureResult(features=features, labels=self.feature_labels(), failures=failures)
        return result, GraphArrays.from_graphs(graphs), rows

    def _local_graphs(
        self, structures: Iterable[Any], errors: ErrorMode
    ) -> tuple[list[LocalGraph], list[int], list[Failure]]:
        if errors not in ('raise', 'record'):
            raise ValueError(f"errors must be 'raise' or 'record', got {errors!r}")
        failures: list[Failure] = []
        graphs: list[LocalGraph] = []
        rows: list[int] = []
        for i, item in enumerate(self._prepare_many(list(structures))):
            if isinstance(item, Exception):
                failures.append(Failure(i, type(item).__name__, str(item)))
                if errors == 'raise':
                    raise FeaturizationError(failures[0])
            else:
                graphs.append(item)
                rows.append(i)
        return graphs, rows, failures

    def to_data_list(self, arrays: GraphArrays) -> list[Data]:
        """torch-geometric ``Data`` objects of stored graph arrays, with this representation's features."""
        return to_data_list(arrays, self.atom_table(), self.gaussian_centers, self.gaussian_width)

    def graphs_many(self, structures: Iterable[Any], *, errors: ErrorMode = 'raise') -> GraphResult:
        """Crystal graphs of a batch as torch-geometric ``Data`` (``None`` for recorded failures)."""
        items = list(structures)
        arrays, rows, failures = self.graph_arrays_many(items, errors=errors)
        graphs: list[Data | None] = [None] * len(items)
        for row, data in zip(rows, self.to_data_list(arrays), strict=True):
            graphs[row] = data
        return GraphResult(graphs, failures)

    def to_batch(self, arrays: GraphArrays) -> Batch:
        """One torch-geometric ``Batch`` of stored graph arrays (the fast path; see :func:`core.graphs.to_batch`)."""
        return to_batch(arrays, self.atom_table(), self.gaussian_centers, self.gaussian_width)

    def graphs_batch(
        self, structures: Iterable[Any], *, errors: ErrorMode = 'raise'
    ) -> tuple[Batch, list[int], list[Failure]]:
        """The graphs of a batch as ONE ``Batch`` (equal to ``Batch.from_data_list(graphs_many(...))``).

        :return: the ``Batch`` of the good structures, the input index of each graph, and the failures.
        """
        arrays, rows, failures = self.graph_arrays_many(structures, errors=errors)
        return self.to_batch(arrays), rows, failures

    def graph(self, structure: Any) -> Data:
        """The crystal graph of one structure; raises on bad input."""
        data = self.graphs_many([structure]).graphs[0]
        assert data is not None
        return data
