"""The inputs a model was trained on: XRD simulation settings and crystal-graph settings.

The XRD settings are an :class:`~aiida_matembed.core.xrd.settings.XrdSettings` (defaults
:data:`~aiida_matembed.core.xrd.settings.MODEL_XRD`), the graph settings a :class:`GraphInput`. Both are
stored in the model card (``inputs.xrd``, ``inputs.graph``), so a loaded model simulates
patterns and builds graphs exactly as in training, and patterns made elsewhere are checked against the
model's grid before use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..representations.base import ErrorMode, Failure
from ..xrd.settings import MODEL_XRD, XrdSettings

if TYPE_CHECKING:
    from torch_geometric.data import Batch

    from ..graphs import GraphArrays
    from ..representations.graph import CrystalGraph
    from ..xrd import XrdAugmentation

__all__ = ('GraphInput', 'model_xrd_settings', 'simulate_model_patterns', 'subset_graph_arrays')


def model_xrd_settings(data: dict[str, Any] | None) -> XrdSettings:
    """A model card's ``inputs.xrd`` as :class:`XrdSettings`; keys it lacks take :data:`MODEL_XRD`'s values."""
    return XrdSettings.from_dict(data, base=MODEL_XRD)


def simulate_model_patterns(
    settings: XrdSettings,
    structures: Sequence[Any],
    *,
    augment: XrdAugmentation | None = None,
    seed: int = 0,
    errors: ErrorMode = 'raise',
    device: str | None = None,
) -> tuple[np.ndarray, list[Failure]]:
    """Patterns of ``structures`` on a model's grid, each divided by its maximum, with the failed rows.

    :return: ``(N, G)`` float32 (NaN rows for recorded failures) and the failures.
    """
    structures = list(structures)
    profiles = settings.profiles(structures, augment=augment, seed=seed, errors=errors, device=device)
    bad = np.flatnonzero(np.isnan(profiles).any(axis=1)) if len(profiles) else np.zeros(0, dtype=int)
    failures: list[Failure] = []
    if bad.size:  # only the failed rows are simulated again, for their messages
        peaks = settings.simulator().peaks_many([structures[i] for i in bad], errors='record')
        for row, item in zip(bad, peaks, strict=True):
            reason = item.error or 'pattern could not be simulated'
            failures.append(Failure(int(row), reason.split(':', 1)[0], reason))
    return profiles, failures


@dataclass(frozen=True)
class GraphInput:
    """``matembed.crystal_graph`` settings of a model (CGCNN defaults)."""

    cutoff: float = 8.0
    max_neighbors: int = 12
    gaussian_step: float = 0.2
    gaussian_width: float = 0.2
    atom_features: str = 'cgnf'
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop('_cache')
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GraphInput:
        return cls(**data)

    def representation(self) -> CrystalGraph:
        if 'rep' not in self._cache:
            from ..representations.graph import CrystalGraph

            self._cache['rep'] = CrystalGraph(**self.as_dict())
        rep: CrystalGraph = self._cache['rep']
        return rep

    @property
    def atom_dim(self) -> int:
        return int(self.representation().atom_table().shape[1])

    @property
    def edge_dim(self) -> int:
        return len(self.representation().gaussian_centers)

    def arrays(
        self, structures: Sequence[Any], errors: ErrorMode = 'raise'
    ) -> tuple[GraphArrays, list[int], list[Failure]]:
        """Graph arrays of the good structures, their input rows, and the failures."""
        return self.representation().graph_arrays_many(structures, errors=errors)

    def batch(self, arrays: GraphArrays, rows: Sequence[int] | np.ndarray | None = None) -> Batch:
        """A torch-geometric ``Batch`` of ``arrays`` (or of the graphs at positions ``rows``)."""
        if rows is not None:
            arrays = subset_graph_arrays(arrays, np.asarray(rows, dtype=np.int64))
        return self.representation().to_batch(arrays)


def subset_graph_arrays(arrays: GraphArrays, rows: np.ndarray) -> GraphArrays:
    """The graphs at positions ``rows`` (in that order) of concatenated graph arrays."""
    from ..graphs import GraphArrays

    node_counts = np.diff(arrays.node_ptr)[rows]
    edge_counts = np.diff(arrays.edge_ptr)[rows]
    node_index = _ranges(arrays.node_ptr[rows], node_counts)
    edge_index = _ranges(arrays.edge_ptr[rows], edge_counts)
    return GraphArrays(
        atomic_numbers=arrays.atomic_numbers[node_index],
        positions=arrays.positions[node_index],
        lattices=arrays.lattices[rows],
        node_ptr=np.concatenate([[0], np.cumsum(node_counts)]).astype(np.int64),
        edge_index=arrays.edge_index[:, edge_index],
        edge_images=arrays.edge_images[edge_index],
        edge_ptr=np.concatenate([[0], np.cumsum(edge_counts)]).astype(np.int64),
    )


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` for each start ``s`` and count ``c``."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    return np.arange(total, dtype=np.int64) + offsets
