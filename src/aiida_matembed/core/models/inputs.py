"""The inputs a model was trained on: XRD simulation settings and crystal-graph settings.

Both are stored in the model card (``inputs.xrd``, ``inputs.graph``), so a loaded model simulates
patterns and builds graphs exactly as in training, and patterns made elsewhere are checked against the
model's grid before use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..representations.base import ErrorMode, Failure

if TYPE_CHECKING:
    from torch_geometric.data import Batch

    from ..graphs import GraphArrays
    from ..representations.graph import CrystalGraph
    from ..xrd import XrdAugmentation, XrdSimulator
    from ..xrd.profiles import ProfileShape

__all__ = ('GraphInput', 'XrdInput', 'subset_graph_arrays')


@dataclass(frozen=True)
class XrdInput:
    """Powder-pattern settings of a model (defaults: Cu K-alpha, 10-110° as Suzuki et al. 2022).

    :param wavelength: anode name or wavelength (Å).
    :param two_theta_range: grid limits (degrees).
    :param step: grid step (degrees); 0.05° gives 2001 points.
    :param shape: peak shape (``'gaussian'``, ``'lorentzian'``, ``'pseudo-voigt'``).
    :param fwhm: peak full width at half maximum (degrees).
    :param eta: Lorentzian fraction of the pseudo-Voigt.
    """

    wavelength: str | float = 'CuKa'
    two_theta_range: tuple[float, float] = (10.0, 110.0)
    step: float = 0.05
    shape: ProfileShape = 'pseudo-voigt'
    fwhm: float = 0.2
    eta: float = 0.5

    def __post_init__(self) -> None:
        low, high = (float(v) for v in self.two_theta_range)
        object.__setattr__(self, 'two_theta_range', (low, high))
        self.simulator()  # validates wavelength and range
        if not (isinstance(self.step, (int, float)) and math.isfinite(self.step) and self.step > 0):
            raise ValueError(f'xrd step must be > 0, got {self.step!r}')
        if not (isinstance(self.fwhm, (int, float)) and math.isfinite(self.fwhm) and self.fwhm > 0):
            raise ValueError(f'xrd fwhm must be > 0, got {self.fwhm!r}')

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out['two_theta_range'] = list(self.two_theta_range)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> XrdInput:
        data = dict(data)
        if 'two_theta_range' in data:
            data['two_theta_range'] = tuple(data['two_theta_range'])
        return cls(**data)

    def simulator(self) -> XrdSimulator:
        from ..xrd import XrdSimulator

        return XrdSimulator(self.wavelength, two_theta_range=self.two_theta_range)

    @property
    def grid(self) -> np.ndarray:
        """The 2θ grid (degrees) of the model's patterns."""
        from ..xrd.profiles import two_theta_grid

        return two_theta_grid(self.two_theta_range, self.step)

    @property
    def n_points(self) -> int:
        return len(self.grid)

    def profiles(
        self,
        structures: Sequence[Any],
        *,
        augment: XrdAugmentation | None = None,
        seed: int = 0,
        errors: ErrorMode = 'raise',
        device: str | None = None,
    ) -> tuple[np.ndarray, list[Failure]]:
        """Patterns of ``structures`` on the model's grid, each divided by its maximum.

        :return: ``(N, G)`` float32 (NaN rows for recorded failures) and the failures.
        """
        simulator = self.simulator()
        structures = list(structures)
        _, profiles = simulator.profiles_many(
            structures, step=self.step, shape=self.shape, fwhm=self.fwhm, eta=self.eta, augment=augment, seed=seed,
            errors=errors, device=device,
        )  # fmt: skip
        bad = np.flatnonzero(np.isnan(profiles).any(axis=1)) if len(profiles) else np.zeros(0, dtype=int)
        failures: list[Failure] = []
        if bad.size:  # only the failed rows are simulated again, for their messages
            peaks = simulator.peaks_many([structures[i] for i in bad], errors='record')
            for row, item in zip(bad, peaks, strict=True):
                reason = item.error or 'pattern could not be simulated'
                failures.append(Failure(int(row), reason.split(':', 1)[0], reason))
        return profiles, failures

    def check_patterns(self, patterns: Any) -> np.ndarray:
        """``patterns`` as a float32 ``(N, G)`` array on this grid, each divided by its maximum.

        :raises ValueError: for a wrong shape (a pattern made on another grid), NaN / infinite values or an
            all-zero pattern.
        """
        array = np.asarray(patterns, dtype=np.float32)
        if array.ndim == 1:
            array = array[None]
        if array.ndim != 2 or array.shape[1] != self.n_points:
            low, high = self.two_theta_range
            raise ValueError(
                f'the model expects patterns of {self.n_points} points on its grid {low:g}-{high:g}° step '
                f'{self.step:g}° ({self.wavelength}); got shape {array.shape}. Simulate with the model '
                '(embed_xrd / predict_structures) or re-grid the patterns.'
            )
        if not np.isfinite(array).all():
            raise ValueError('patterns contain NaN or infinite values')
        peak = array.max(axis=1, keepdims=True)
        if (peak <= 0).any():
            raise ValueError(f'pattern {int(np.flatnonzero(peak[:, 0] <= 0)[0])} has no positive intensity')
        return array / peak


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
