"""Nearest neighbours of feature vectors: exact (numpy) and approximate (HNSW graphs of faiss).

Distances (``x``, ``y`` the stored and query vectors):

* ``cosine``: ``1 - x . y / (|x| |y|)``, in ``[0, 2]``;
* ``euclidean``: ``|x - y|``.

The approximate index is a hierarchical navigable small-world graph (Malkov & Yashunin, IEEE TPAMI 42, 824
(2020)) as implemented in faiss (Douze et al., arXiv:2401.08281 (2024)): ``IndexHNSWFlat`` over the raw
float32 vectors (inner product of unit vectors for ``cosine``, squared L2 for ``euclidean``). faiss was
chosen over hnswlib and usearch after measuring all three here on 100,000 clustered 256-d unit vectors
(one core, ``M = 16``, ``efConstruction = 100``): build 12.7 s (hnswlib 10.9 s, usearch 20.7 s), 0.07 ms per
query at ``efSearch = 64`` (hnswlib 0.06 ms, usearch 0.22 ms), recall@10 1.0 for all three; faiss is the one
of the three with current releases. A smaller ``efConstruction`` builds faster (40: 2.6x on those 100,000
vectors, recall still 1.0) but loses recall on other data (recall@10 0.90 at ``efSearch`` 64 on 1,000,000 such
vectors, 0.92 on 3,000 clustered 32-d ones), so the default stays 100; pass ``ef_construction`` to trade.
Below :data:`EXACT_BELOW` vectors an exact search is as fast as the graph, so :class:`VectorIndex` searches
exactly there (``method='auto'``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = ('EXACT_BELOW', 'METRICS', 'IndexMismatchError', 'VectorIndex', 'exact_search')

Metric = Literal['cosine', 'euclidean']
METRICS: tuple[str, ...] = ('cosine', 'euclidean')
EXACT_BELOW = 20_000
"""``method='auto'`` searches exactly below this many vectors (an exact query over 20,000 256-d vectors: ~0.3 ms)."""
_BLOCK = 16_000_000
"""Largest number of query x stored distances held at once by :func:`exact_search`."""


class IndexMismatchError(ValueError):
    """A query that does not belong to an index (other representation or dimension)."""


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f'metric must be one of {METRICS}, got {metric!r}')


def _as_matrix(vectors: Any, what: str) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2:
        raise ValueError(f'{what} must be a 2D (N, F) array, got shape {matrix.shape}')
    if not np.isfinite(matrix).all():
        bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
        raise ValueError(f'{what} has NaN or infinite values in row(s) {bad[:10].tolist()} (drop failed rows first)')
    return np.ascontiguousarray(matrix)


def _unit(matrix: np.ndarray, what: str) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(
            f'{what}: cosine distance is undefined for all-zero vectors '
            f'(rows {np.flatnonzero(norms == 0)[:10].tolist()})'
        )
    return matrix / norms


def exact_search(vectors: Any, queries: Any, k: int, metric: Metric = 'cosine') -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest stored vectors of each query by brute force (the reference for the approximate index).

    :return: distances ``(Q, k)`` (increasing; see the module docstring) and row indices ``(Q, k)``; with fewer
        than ``k`` stored vectors the missing columns are ``inf`` and ``-1``.
    """
    _check_metric(metric)
    x = _as_matrix(vectors, 'vectors')
    q = _as_matrix(queries, 'queries')
    if q.shape[1] != x.shape[1]:
        raise IndexMismatchError(f'queries have {q.shape[1]} features, the vectors {x.shape[1]}')
    k = int(k)
    if k < 1:
        raise ValueError(f'k must be >= 1, got {k}')
    if metric == 'cosine':
        x, q = _unit(x, 'vectors'), _unit(q, 'queries')
    else:
        x_norm = np.einsum('ij,ij->i', x, x)
    n, kk = len(x), min(k, len(x))
    distances = np.full((len(q), k), np.inf, dtype=np.float64)
    indices = np.full((len(q), k), -1, dtype=np.int64)
    rows = max(1, _BLOCK // max(1, n))
    for start in range(0, len(q), rows):
        part = q[start : start + rows]
        similarity = part @ x.T
        score = 1.0 - similarity if metric == 'cosine' else x_norm[None, :] - 2 * similarity  # |q|^2 added below
        top = np.argpartition(score, kk - 1, axis=1)[:, :kk] if kk < n else np.tile(np.arange(n), (len(part), 1))
        chosen = np.take_along_axis(score, top, axis=1)
        order = np.argsort(chosen, axis=1, kind='stable')
        best = np.take_along_axis(top, order, axis=1)
        value = np.take_along_axis(chosen, order, axis=1).astype(np.float64)
        if metric == 'euclidean':
            value = np.sqrt(np.maximum(value + np.einsum('ij,ij->i', part, part)[:, None], 0.0))
        distances[start : start + len(part), :kk] = value
        indices[start : start + len(part), :kk] = best
    return distances, indices


@dataclass
class VectorIndex:
    """Nearest-neighbour index over ``N`` stored vectors, with a key per vector and the representation's name.

    Build with :meth:`build`; :meth:`search` returns distances and keys. ``method`` is ``'exact'``, ``'hnsw'`` or
    ``'auto'`` (exact below :data:`EXACT_BELOW` vectors). :meth:`save` / :meth:`load` keep it on disk (faiss's
    own format plus a JSON file of keys and settings, no pickles).
    """

    vectors: np.ndarray
    """``(N, F)`` float32 vectors as searched (unit vectors for ``cosine``)."""
    keys: list[Any]
    """One key per vector (e.g. structure UUIDs); results are reported by key."""
    metric: str = 'cosine'
    representation: str | None = None
    """Name of what made the vectors (a representation or model); queries naming another are refused."""
    method: str = 'exact'
    hnsw: Any = None
    """The faiss index (``None`` for exact search)."""
    ef_search: int = 64
    fingerprint: str = ''
    """What the index was built from (e.g. a hash of the FeaturesData UUIDs): a cache key."""

    @classmethod
    def build(
        cls,
        vectors: Any,
        keys: Sequence[Any] | None = None,
        *,
        metric: Metric = 'cosine',
        representation: str | None = None,
        method: Literal['auto', 'exact', 'hnsw'] = 'auto',
        m: int = 16,
        ef_construction: int = 100,
        ef_search: int = 64,
        fingerprint: str = '',
    ) -> VectorIndex:
        """Index ``vectors`` (``(N, F)``, finite; NaN rows are refused: drop failed rows first).

        :param m: HNSW graph degree (faiss ``M``); :param ef_construction: candidate list while building;
            :param ef_search: candidate list while searching (raised to ``k`` when smaller).
        """
        _check_metric(metric)
        if method not in ('auto', 'exact', 'hnsw'):
            raise ValueError(f"method must be 'auto', 'exact' or 'hnsw', got {method!r}")
        matrix = _as_matrix(vectors, 'vectors')
        if not len(matrix):
            raise ValueError('no vectors to index')
        keys = list(range(len(matrix))) if keys is None else list(keys)
        if len(keys) != len(matrix):
            raise ValueError(f'{len(keys)} keys for {len(matrix)} vectors')
        if metric == 'cosine':
            matrix = _unit(matrix, 'vectors').astype(np.float32)
        chosen = ('exact' if len(matrix) < EXACT_BELOW else 'hnsw') if method == 'auto' else method
        index = cls(matrix, keys, metric, representation, chosen, None, int(ef_search), fingerprint)
        if chosen == 'hnsw':
            index.hnsw = _hnsw(matrix, metric, int(m), int(ef_construction))
        return index

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])

    def check_query(self, queries: Any, representation: str | None = None) -> np.ndarray:
        """The queries as a float32 matrix; :class:`IndexMismatchError` for another representation or dimension."""
        if representation is not None and self.representation is not None and representation != self.representation:
            raise IndexMismatchError(
                f'the query is a {representation} vector but the index holds {self.representation} vectors; '
                f'query with the same representation (or model)'
            )
        matrix = _as_matrix(queries, 'queries')
        if matrix.shape[1] != self.dimension:
            what = f' of {self.representation}' if self.representation else ''
            raise IndexMismatchError(
                f'the query has {matrix.shape[1]} features but the index holds {self.dimension}-d vectors{what}'
            )
        return matrix

    def search(
        self, queries: Any, k: int = 10, *, representation: str | None = None
    ) -> tuple[np.ndarray, list[list[Any]]]:
        """The ``k`` nearest stored vectors of each query.

        :return: distances ``(Q, k')`` (increasing, float64) and the keys of the neighbours, ``k' = min(k, N)``.
        """
        q = self.check_query(queries, representation)
        k = int(k)
        if k < 1:
            raise ValueError(f'k must be >= 1, got {k}')
        kk = min(k, len(self))
        if self.method == 'exact' or self.hnsw is None:
            distances, rows = exact_search(self.vectors, q, kk, self.metric)  # type: ignore[arg-type]
        else:
            if self.metric == 'cosine':
                q = _unit(q, 'queries').astype(np.float32)
            self.hnsw.hnsw.efSearch = max(self.ef_search, kk)
            raw, rows = self.hnsw.search(q, kk)
            raw = raw.astype(np.float64)
            distances = 1.0 - raw if self.metric == 'cosine' else np.sqrt(np.maximum(raw, 0.0))
            distances = np.where(rows < 0, np.inf, distances)
        return distances, [[self.keys[r] for r in row if r >= 0] for row in rows]

    # ---------------------------------------------------------------------------------------- storage
    def save(self, path: str | Path) -> Path:
        """Write ``PATH.json`` (keys, settings), ``PATH.npy`` (vectors) and, for HNSW, ``PATH.faiss``."""
        import faiss

        base = Path(path)
        base.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            'keys': self.keys,
            'metric': self.metric,
            'representation': self.representation,
            'method': self.method,
            'ef_search': self.ef_search,
            'fingerprint': self.fingerprint,
        }
        np.save(base.with_suffix('.npy'), self.vectors, allow_pickle=False)
        if self.hnsw is not None:
            faiss.write_index(self.hnsw, str(base.with_suffix('.faiss')))
        base.with_suffix('.json').write_text(json.dumps(meta))
        return base

    @classmethod
    def load(cls, path: str | Path) -> VectorIndex:
        """Read an index written by :meth:`save`."""
        import faiss

        base = Path(path)
        meta = json.loads(base.with_suffix('.json').read_text())
        vectors = np.load(base.with_suffix('.npy'), allow_pickle=False)
        hnsw = faiss.read_index(str(base.with_suffix('.faiss'))) if meta['method'] == 'hnsw' else None
        return cls(
            vectors, list(meta['keys']), meta['metric'], meta['representation'], meta['method'], hnsw,
            int(meta['ef_search']), meta['fingerprint'],
        )  # fmt: skip


def _hnsw(matrix: np.ndarray, metric: str, m: int, ef_construction: int) -> Any:
    """A faiss ``IndexHNSWFlat`` over ``matrix`` (inner product for cosine on unit vectors, else L2)."""
    try:
        import faiss
    except ImportError:  # pragma: no cover - a dependency
        raise ImportError('the approximate index needs faiss: pip install faiss-cpu') from None
    if m < 2 or ef_construction < 1 or not math.isfinite(m):
        raise ValueError(f'HNSW needs m >= 2 and ef_construction >= 1, got m={m}, ef_construction={ef_construction}')
    kind = faiss.METRIC_INNER_PRODUCT if metric == 'cosine' else faiss.METRIC_L2
    index = faiss.IndexHNSWFlat(matrix.shape[1], m, kind)
    index.hnsw.efConstruction = ef_construction
    index.add(matrix)
    return index
