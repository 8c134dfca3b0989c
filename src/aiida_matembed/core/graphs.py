"""Periodic crystal graphs for CGCNN-style networks (Xie & Grossman 2018), as torch-geometric ``Data``.

A crystal graph has one node per site and a directed edge ``j -> i`` for each of the (at most
``max_neighbors``) nearest neighbours ``j`` (any periodic image) of site ``i`` within ``cutoff``. Ties
at equal distance are broken by neighbour index and image, so graphs are deterministic.

The topology (:class:`GraphArrays`: atomic numbers, positions, lattices, edges as site pairs plus
integer image shifts) is what gets stored; the geometric edge quantities (edge vectors, distances,
Gaussian distance expansion) and the atom features are derived from it on demand by
:func:`to_data_list`, so a stored graph reloads into exactly the ``Data`` objects it came from.

Conventions (torch-geometric's ``source_to_target`` flow): ``edge_index[0]`` is the neighbour ``j``
(source), ``edge_index[1]`` the central site ``i`` (target); ``edge_vec = r_j + n L - r_i`` (Å).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .neighbors import neighbor_list
from .structures import Cell, check_no_overlap

if TYPE_CHECKING:
    from torch_geometric.data import Batch, Data

__all__ = ('GraphArrays', 'LocalGraph', 'gaussian_expansion', 'nearest_neighbor_edges', 'to_batch', 'to_data_list')


class LocalGraph(NamedTuple):
    """The graph of one structure: its cell and edges (site indices local to the structure)."""

    cell: Cell
    sources: np.ndarray
    """``(E,)`` neighbour site ``j`` of each edge."""
    targets: np.ndarray
    """``(E,)`` central site ``i`` of each edge."""
    images: np.ndarray
    """``(E, 3)`` integer lattice shift of the neighbour."""
    distances: np.ndarray
    """``(E,)`` edge lengths (Å)."""


def nearest_neighbor_edges(cell: Cell, cutoff: float, max_neighbors: int) -> LocalGraph:
    """Edges from every site to its ``max_neighbors`` nearest neighbours within ``cutoff`` (Å).

    The neighbour search first uses the radius that holds about twice ``max_neighbors`` neighbours at
    the cell's mean density (plus 1 Å); only if some site has fewer than ``max_neighbors`` neighbours in
    it is the search repeated with the full cutoff, so the result is always that of the full cutoff.
    Neighbours are ranked by distance (rounded to 1e-6 Å, so symmetry-equivalent neighbours tie
    exactly), then by neighbour index and image: deterministic under rotation and round-off.

    :raises InvalidStructureError: for overlapping atoms (closer than 0.5 Å, images included).
    """
    n = len(cell.z)
    density = n / cell.volume
    radius = min(cutoff, (3.0 * 2 * max_neighbors / (4.0 * np.pi * density)) ** (1.0 / 3.0) + 1.0)
    pairs = neighbor_list(cell.cart, cell.lattice, radius)
    check_no_overlap(pairs.centers, pairs.neighbors, pairs.distances)
    if radius < cutoff and np.bincount(pairs.centers, minlength=n).min() < max_neighbors:
        pairs = neighbor_list(cell.cart, cell.lattice, cutoff)
    # secondary key (neighbour, image), then a stable sort on the primary key (centre, distance)
    images = pairs.images + 512
    secondary = (pairs.neighbors << 30) | (images[:, 0] << 20) | (images[:, 1] << 10) | images[:, 2]
    order = np.argsort(secondary, kind='stable')
    primary = (pairs.centers[order] << 36) | np.rint(pairs.distances[order] * 1e6).astype(np.int64)
    order = order[np.argsort(primary, kind='stable')]
    centers = pairs.centers[order]
    starts = np.searchsorted(centers, centers, side='left')
    keep = order[(np.arange(len(order)) - starts) < max_neighbors]
    return LocalGraph(cell, pairs.neighbors[keep], pairs.centers[keep], pairs.images[keep], pairs.distances[keep])


def gaussian_expansion(distances: np.ndarray, centers: np.ndarray, width: float) -> np.ndarray:
    """``exp(-(d - mu_k)^2 / width^2)`` for each distance and Gaussian centre ``mu_k`` (CGCNN's filter)."""
    return np.exp(-(((distances[:, None] - centers[None, :]) / width) ** 2))


class GraphArrays(NamedTuple):
    """The graphs of a batch, concatenated: what a ``matembed.crystal_graphs`` node stores.

    Graph ``g`` owns nodes ``node_ptr[g]:node_ptr[g+1]`` and edges ``edge_ptr[g]:edge_ptr[g+1]``; edge site
    indices are local to their graph.
    """

    atomic_numbers: np.ndarray
    """``(n_nodes,)`` int64."""
    positions: np.ndarray
    """``(n_nodes, 3)`` Cartesian coordinates (Å)."""
    lattices: np.ndarray
    """``(n_graphs, 3, 3)`` lattice vectors as rows (Å)."""
    node_ptr: np.ndarray
    """``(n_graphs + 1,)`` int64 offsets into the node arrays."""
    edge_index: np.ndarray
    """``(2, n_edges)`` int64 local (source ``j``, target ``i``) pairs."""
    edge_images: np.ndarray
    """``(n_edges, 3)`` int64 lattice shift of each edge's source."""
    edge_ptr: np.ndarray
    """``(n_graphs + 1,)`` int64 offsets into the edge arrays."""

    @property
    def n_graphs(self) -> int:
        """Number of graphs."""
        return len(self.node_ptr) - 1

    @classmethod
    def from_graphs(cls, graphs: Sequence[LocalGraph]) -> GraphArrays:
        """Concatenate per-structure graphs."""
        node_counts = [len(g.cell.z) for g in graphs]
        edge_counts = [len(g.sources) for g in graphs]

        def cat(parts: list[np.ndarray], shape: tuple[int, ...], dtype: Any) -> np.ndarray:
            return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(shape, dtype=dtype)

        return cls(
            atomic_numbers=cat([g.cell.z for g in graphs], (0,), np.int64),
            positions=cat([g.cell.cart for g in graphs], (0, 3), float),
            lattices=np.stack([g.cell.lattice for g in graphs]) if graphs else np.zeros((0, 3, 3)),
            node_ptr=np.concatenate([[0], np.cumsum(node_counts)]).astype(np.int64),
            edge_index=np.stack(
                [cat([g.sources for g in graphs], (0,), np.int64), cat([g.targets for g in graphs], (0,), np.int64)]
            ),
            edge_images=cat([g.images for g in graphs], (0, 3), np.int64),
            edge_ptr=np.concatenate([[0], np.cumsum(edge_counts)]).astype(np.int64),
        )

    def graph(self, g: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(atomic_numbers, positions, lattice, edge_index, edge_images)`` of graph ``g``."""
        n0, n1 = self.node_ptr[g], self.node_ptr[g + 1]
        e0, e1 = self.edge_ptr[g], self.edge_ptr[g + 1]
        return (
            self.atomic_numbers[n0:n1],
            self.positions[n0:n1],
            self.lattices[g],
            self.edge_index[:, e0:e1],
            self.edge_images[e0:e1],
        )


def to_data_list(
    arrays: GraphArrays, atom_table: np.ndarray, gaussian_centers: np.ndarray, gaussian_width: float
) -> list[Data]:
    """Build torch-geometric ``Data`` objects (float32 features) from stored graph arrays.

    Each ``Data`` has ``x`` (atom features from ``atom_table[Z]``), ``z``, ``pos`` (Å), ``cell``
    ``(1, 3, 3)`` (Å), ``edge_index``, ``edge_vec`` (Å), ``edge_weight`` (distances, Å), ``edge_attr``
    (Gaussian expansion), ``edge_image`` and ``num_nodes``; ``torch_geometric.data.Batch`` batches them.
    The tensors of one call are views of shared batch tensors (clone a graph before changing it in place).
    """
    from torch_geometric.data import Data

    n_graphs = arrays.n_graphs
    if n_graphs == 0:
        return []
    t = _batch_tensors(arrays, atom_table, gaussian_centers, gaussian_width)
    node_counts = np.diff(arrays.node_ptr)
    x, z, pos, cell = t['x'], t['z'], t['pos'], t['cell']
    edge_index, edge_vec, edge_weight = t['edge_index'], t['edge_vec'], t['edge_weight']
    edge_attr, edge_image = t['edge_attr'], t['edge_image']
    out: list[Data] = []
    for g in range(n_graphs):
        n0, n1 = int(arrays.node_ptr[g]), int(arrays.node_ptr[g + 1])
        e0, e1 = int(arrays.edge_ptr[g]), int(arrays.edge_ptr[g + 1])
        out.append(
            Data(
                x=x[n0:n1],
                z=z[n0:n1],
                pos=pos[n0:n1],
                cell=cell[g : g + 1],
                edge_index=edge_index[:, e0:e1],
                edge_vec=edge_vec[e0:e1],
                edge_weight=edge_weight[e0:e1],
                edge_attr=edge_attr[e0:e1],
                edge_image=edge_image[e0:e1],
                num_nodes=int(node_counts[g]),
            )
        )
    return out


_NODE_KEYS = ('x', 'z', 'pos')
_EDGE_KEYS = ('edge_index', 'edge_vec', 'edge_weight', 'edge_attr', 'edge_image')


def _batch_tensors(
    arrays: GraphArrays, atom_table: np.ndarray, gaussian_centers: np.ndarray, gaussian_width: float
) -> dict[str, Any]:
    """Every tensor of the batch, computed once (edge indices local to their graph)."""
    import torch

    edge_graph = np.repeat(np.arange(arrays.n_graphs), np.diff(arrays.edge_ptr))
    offsets = arrays.node_ptr[:-1][edge_graph]
    source = arrays.edge_index[0] + offsets
    target = arrays.edge_index[1] + offsets
    shifts = np.einsum('ek,ekl->el', arrays.edge_images.astype(float), arrays.lattices[edge_graph])
    vectors = arrays.positions[source] + shifts - arrays.positions[target]
    distances = np.sqrt((vectors * vectors).sum(axis=1))
    expansion = gaussian_expansion(distances, gaussian_centers, gaussian_width)
    return {
        'x': torch.from_numpy(atom_table[arrays.atomic_numbers].astype(np.float32)),
        'z': torch.from_numpy(arrays.atomic_numbers.astype(np.int64)),
        'pos': torch.from_numpy(arrays.positions.astype(np.float32)),
        'cell': torch.from_numpy(arrays.lattices.astype(np.float32)),
        'edge_index': torch.from_numpy(np.ascontiguousarray(arrays.edge_index, dtype=np.int64)),
        'edge_vec': torch.from_numpy(vectors.astype(np.float32)),
        'edge_weight': torch.from_numpy(distances.astype(np.float32)),
        'edge_attr': torch.from_numpy(expansion.astype(np.float32)),
        'edge_image': torch.from_numpy(np.ascontiguousarray(arrays.edge_images, dtype=np.int64)),
        'edge_graph': edge_graph,
    }


def to_batch(arrays: GraphArrays, atom_table: np.ndarray, gaussian_centers: np.ndarray, gaussian_width: float) -> Batch:
    """The graphs as ONE torch-geometric ``Batch``, built directly from the arrays (no per-graph ``Data``).

    Equal to ``Batch.from_data_list(to_data_list(...))``: same tensors (edge indices offset per graph),
    ``batch`` and ``ptr`` vectors, and the slice/increment bookkeeping, so ``batch.get_example(i)`` and
    ``batch.to_data_list()`` give back the single graphs. This is the fast path for training loops.
    """
    import torch
    from torch_geometric.data import Batch, Data

    t = _batch_tensors(arrays, atom_table, gaussian_centers, gaussian_width)
    node_ptr = torch.from_numpy(arrays.node_ptr.astype(np.int64))
    edge_ptr = torch.from_numpy(arrays.edge_ptr.astype(np.int64))
    edge_graph = torch.from_numpy(t.pop('edge_graph'))
    t['edge_index'] = t['edge_index'] + node_ptr[:-1][edge_graph]
    n_graphs = arrays.n_graphs
    node_batch = torch.repeat_interleave(torch.arange(n_graphs), node_ptr.diff())
    batch = Batch(_base_cls=Data, **t, batch=node_batch, ptr=node_ptr)
    batch._num_graphs = n_graphs
    zeros = torch.zeros(n_graphs, dtype=torch.int64)
    slices = {key: node_ptr for key in _NODE_KEYS} | {key: edge_ptr for key in _EDGE_KEYS}
    slices['cell'] = torch.arange(n_graphs + 1)
    batch._slice_dict = slices
    batch._inc_dict = {key: zeros for key in slices} | {'edge_index': node_ptr[:-1]}
    return batch
