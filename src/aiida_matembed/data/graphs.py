"""``matembed.crystal_graphs``: the crystal graphs of a batch of structures, compact and reloadable.

One node holds the graphs of a whole batch as concatenated arrays (atomic numbers, positions, lattices,
edges as site pairs plus integer image shifts, and offsets). Derived quantities (edge vectors, distances,
Gaussian expansions, atom features) are not stored: :meth:`CrystalGraphsData.to_pyg` rebuilds the
torch-geometric ``Data`` objects from the topology with the representation's stored options, so a model
can reuse exactly the graphs the provenance graph records.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from aiida import orm

from ..core.graphs import GraphArrays
from .features import params_hash

if TYPE_CHECKING:
    from torch_geometric.data import Batch, Data

    from ..core.representations.graph import CrystalGraph

__all__ = ('CrystalGraphsData',)

_STORED_DTYPES = {
    'atomic_numbers': np.int16,
    'positions': np.float64,
    'lattices': np.float64,
    'node_ptr': np.int64,
    'edge_index': np.int32,
    'edge_images': np.int16,
    'edge_ptr': np.int64,
}


class CrystalGraphsData(orm.ArrayData):
    """Crystal graphs of ``N`` structures (one per row of the batch that did not fail).

    * arrays: the fields of :class:`~aiida_matembed.core.graphs.GraphArrays` (compact integer types);
    * attributes: ``representation``, ``representation_version``, ``params``, ``params_hash``,
      ``n_graphs``, ``n_nodes``, ``n_edges``;
    * repository ``meta.json``: ``rows``, the UUID of the structure of each graph.
    """

    _META = 'meta.json'

    def __init__(
        self,
        arrays: GraphArrays | None = None,
        *,
        representation: str | None = None,
        version: int | None = None,
        params: dict[str, Any] | None = None,
        rows: Sequence[str | None] | None = None,
        **kwargs: Any,
    ) -> None:
        """Create the node from the arrays of a batch; ``rows`` gives the structure UUID of each graph."""
        super().__init__(**kwargs)
        if arrays is None:
            return
        if representation is None or version is None:
            raise ValueError('representation and version are required with arrays')
        rows = list(rows) if rows is not None else [None] * arrays.n_graphs
        if len(rows) != arrays.n_graphs:
            raise ValueError(f'{len(rows)} row keys for {arrays.n_graphs} graphs')
        if len(arrays.edge_images) and np.abs(arrays.edge_images).max() > np.iinfo(np.int16).max:
            raise ValueError('an image shift does not fit in int16')
        for name, dtype in _STORED_DTYPES.items():
            self.set_array(name, np.ascontiguousarray(getattr(arrays, name), dtype=dtype))
        meta = json.dumps({'rows': rows}).encode()
        self.base.repository.put_object_from_filelike(io.BytesIO(meta), self._META)  # type: ignore[arg-type]
        self.base.attributes.set_many(
            {
                'representation': representation,
                'representation_version': int(version),
                'params': params or {},
                'params_hash': params_hash(params),
                'n_graphs': arrays.n_graphs,
                'n_nodes': len(arrays.atomic_numbers),
                'n_edges': arrays.edge_index.shape[1],
            }
        )

    @property
    def rows(self) -> list[str | None]:
        """UUID of the structure of each graph."""
        return list(json.loads(self.base.repository.get_object_content(self._META, mode='r'))['rows'])

    @property
    def params(self) -> dict[str, Any]:
        """Options of the ``matembed.crystal_graph`` representation that built the graphs."""
        return dict(self.base.attributes.get('params'))

    def graph_arrays(self) -> GraphArrays:
        """The stored graphs as :class:`~aiida_matembed.core.graphs.GraphArrays` (int64 / float64)."""
        values = {name: self.get_array(name) for name in _STORED_DTYPES}
        for name in ('atomic_numbers', 'edge_index', 'edge_images'):
            values[name] = values[name].astype(np.int64)
        return GraphArrays(**values)

    def representation(self) -> CrystalGraph:
        """The representation (with its stored options) that turns the arrays into features."""
        from ..core.representations import load_representation_class

        name = self.base.attributes.get('representation')
        return load_representation_class(name).from_params(self.params)  # type: ignore[return-value]

    def to_pyg(self) -> list[Data]:
        """torch-geometric ``Data`` objects, in row order (batch them with ``torch_geometric.data.Batch``)."""
        return self.representation().to_data_list(self.graph_arrays())

    def to_batch(self) -> Batch:
        """All stored graphs as one torch-geometric ``Batch``, built directly (fast path for training)."""
        return self.representation().to_batch(self.graph_arrays())

    def graph_of(self, uuid: str) -> Data:
        """The ``Data`` of the structure with ``uuid``; :class:`KeyError` if it is not in this node."""
        try:
            g = self.rows.index(uuid)
        except ValueError:
            raise KeyError(f'structure {uuid} has no graph in CrystalGraphsData<{self.pk}>') from None
        arrays = self.graph_arrays()
        z, positions, lattice, edge_index, images = arrays.graph(g)
        one = GraphArrays(
            z,
            positions,
            lattice[None],
            np.array([0, len(z)]),
            edge_index,
            images,
            np.array([0, edge_index.shape[1]]),
        )
        return self.representation().to_data_list(one)[0]
