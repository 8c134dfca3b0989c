"""``matembed.features``: the ``(N, F)`` feature matrix of a batch of structures."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from aiida import orm

__all__ = ('FeaturesData', 'params_hash')


def params_hash(params: dict[str, Any] | None) -> str:
    """SHA-256 of the canonical JSON of a representation's parameters (queryable stand-in for the dict)."""
    text = json.dumps(params or {}, sort_keys=True, separators=(',', ':'))
    return hashlib.sha256(text.encode()).hexdigest()


class FeaturesData(orm.ArrayData):
    """Feature matrix of ``N`` structures for one representation, ``F`` features each.

    * array ``features``: the ``(N, F)`` matrix (NaN rows for failed inputs);
    * attributes (queryable): ``representation``, ``representation_version``, ``params``,
      ``params_hash``, ``n_rows``, ``n_features``, ``n_failed``, ``dtype``;
    * repository ``meta.json`` (compact, not attributes): feature ``labels``, ``rows`` (UUID of the
      input of each row, or ``null`` for rows that came from unstored objects) and ``failures``.
    """

    _META = 'meta.json'

    def __init__(
        self,
        features: np.ndarray | None = None,
        *,
        labels: Sequence[str] | None = None,
        representation: str | None = None,
        version: int | None = None,
        params: dict[str, Any] | None = None,
        rows: Sequence[str | None] | None = None,
        failures: Sequence[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        """Create the node; all arguments but ``kwargs`` are required when ``features`` is given."""
        super().__init__(**kwargs)
        if features is None:
            return
        matrix = np.asarray(features)
        if matrix.ndim != 2:
            raise ValueError(f'features must be a 2D (N, F) array, got shape {matrix.shape}')
        n_rows, n_features = matrix.shape
        if representation is None or version is None or labels is None:
            raise ValueError('representation, version and labels are required with features')
        labels = [str(label) for label in labels]
        if len(labels) != n_features:
            raise ValueError(f'{len(labels)} labels for {n_features} features')
        rows = list(rows) if rows is not None else [None] * n_rows
        if len(rows) != n_rows:
            raise ValueError(f'{len(rows)} row keys for {n_rows} rows')
        failures = [dict(f) for f in failures or []]
        self.set_array('features', matrix)
        meta = {'labels': labels, 'rows': rows, 'failures': failures}
        self.base.repository.put_object_from_filelike(io.BytesIO(json.dumps(meta).encode()), self._META)  # type: ignore[arg-type]
        self.base.attributes.set_many(
            {
                'representation': representation,
                'representation_version': int(version),
                'params': params or {},
                'params_hash': params_hash(params),
                'n_rows': n_rows,
                'n_features': n_features,
                'n_failed': len(failures),
                'dtype': str(matrix.dtype),
            }
        )

    # -------------------------------------------------------------------------------- accessors
    @property
    def features(self) -> np.ndarray:
        """The ``(N, F)`` feature matrix."""
        return self.get_array('features')

    def _meta(self) -> dict[str, Any]:
        cached = getattr(self, '_meta_cache', None)
        if cached is None:
            cached = json.loads(self.base.repository.get_object_content(self._META, mode='r'))
            if self.is_stored:
                self._meta_cache = cached
        return cached

    @property
    def labels(self) -> list[str]:
        """Feature labels, one per column."""
        return list(self._meta()['labels'])

    @property
    def rows(self) -> list[str | None]:
        """UUID of the input structure of each row (``None`` where unknown)."""
        return list(self._meta()['rows'])

    @property
    def failures(self) -> list[dict[str, Any]]:
        """Failed rows: ``index``, ``uuid``, ``error_type``, ``message``."""
        return [dict(f) for f in self._meta()['failures']]

    @property
    def representation(self) -> str:
        """Entry-point name of the representation."""
        return self.base.attributes.get('representation')

    @property
    def representation_version(self) -> int:
        """Version of the representation that computed the features."""
        return self.base.attributes.get('representation_version')

    @property
    def params(self) -> dict[str, Any]:
        """Options of the representation."""
        return dict(self.base.attributes.get('params'))

    def row_of(self, uuid: str) -> int:
        """Row index of the structure with ``uuid``; :class:`KeyError` if it is not in this batch."""
        try:
            return self.rows.index(uuid)
        except ValueError:
            raise KeyError(f'structure {uuid} is not a row of FeaturesData<{self.pk}>') from None

    def failed_uuids(self) -> set[str]:
        """UUIDs of the rows that failed."""
        return {f['uuid'] for f in self.failures if f.get('uuid')}

    def vector(self, uuid: str) -> np.ndarray:
        """Feature vector of the structure with ``uuid``."""
        return self.features[self.row_of(uuid)]
