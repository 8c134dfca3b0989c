"""The :class:`Representation` base class and the :class:`FeatureResult` it returns.

A representation maps a batch of structures (or compositions) to an ``(N, F)`` float array whose
rows are aligned with the inputs. Subclasses implement two hooks:

* :meth:`Representation._prepare` turns one input into whatever the batch computation needs
  (and raises for bad input: that row then fails alone);
* :meth:`Representation._compute` turns a list of prepared items into an ``(n, F)`` array, vectorised
  over the batch.

Everything else (error recording, parallel chunks, option handling, labels) lives here once.
"""

from __future__ import annotations

import abc
import inspect
import json
import multiprocessing
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from ..structures import iter_chunks

__all__ = ('Failure', 'FeatureResult', 'Representation')

ErrorMode = Literal['raise', 'record']
_MIN_ITEMS_PER_WORKER = 8


@dataclass(frozen=True)
class Failure:
    """One input that could not be featurised."""

    index: int
    """Row of the input in the batch."""
    error_type: str
    """Class name of the exception, e.g. ``InvalidStructureError``."""
    message: str
    """Human-readable reason."""

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dictionary."""
        return {'index': self.index, 'error_type': self.error_type, 'message': self.message}


@dataclass
class FeatureResult:
    """Features of a batch: ``features[i]`` belongs to input ``i``; failed rows are NaN."""

    features: np.ndarray
    labels: list[str]
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of the rows that were featurised."""
        mask = np.ones(len(self.features), dtype=bool)
        mask[[f.index for f in self.failures]] = False
        return mask

    def __len__(self) -> int:
        return len(self.features)


class FeaturizationError(ValueError):
    """Raised by ``featurize_many(errors='raise')``; names the row that failed and why."""

    def __init__(self, failure: Failure):
        self.failure = failure
        super().__init__(f'structure {failure.index}: {failure.message} ({failure.error_type})')


class Representation(abc.ABC):
    """Base class of every representation; see DESIGN.md, "Core interfaces".

    Options are keyword-only ``__init__`` arguments stored on the instance under the same name, so
    :meth:`get_params` / :meth:`from_params` round-trip them. Instances are immutable after
    construction and :meth:`featurize_many` never modifies its inputs.
    """

    name: ClassVar[str]
    """Entry-point name, e.g. ``matembed.magpie``."""
    version: ClassVar[int] = 1
    """Bumped whenever the output changes for the same input and options (enters the AiiDA cache hash)."""
    input_kind: ClassVar[Literal['composition', 'structure']]
    output_kind: ClassVar[Literal['vector', 'matrix', 'graph', 'pattern']] = 'vector'
    description: ClassVar[str] = ''
    intensive: ClassVar[bool] = True
    """True when a supercell of a structure has the same features as the structure."""
    supports_partial_occupancy: ClassVar[bool] = False
    threaded: ClassVar[bool] = False
    """True when the computation already runs on several threads (e.g. a Rust/C++ backend); ``n_jobs`` is
    then ignored, because forking a process that holds a thread pool can deadlock."""

    # ----------------------------------------------------------------------------------- options
    @classmethod
    def option_names(cls) -> list[str]:
        """Names of the keyword-only options of ``__init__``."""
        signature = inspect.signature(cls.__init__)
        return [p.name for p in signature.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]

    def get_params(self) -> dict[str, Any]:
        """Return the options as JSON-safe values (tuples become lists)."""
        return {name: _json_safe(getattr(self, name)) for name in self.option_names()}

    @classmethod
    def from_params(cls, params: dict[str, Any] | None = None) -> Representation:
        """Rebuild a representation from :meth:`get_params` output.

        :raises ValueError: naming unknown options and listing the valid ones.
        """
        params = dict(params or {})
        unknown = sorted(set(params) - set(cls.option_names()))
        if unknown:
            raise ValueError(f'unknown option(s) {unknown} for {cls.name}; valid options: {cls.option_names()}')
        return cls(**params)

    def __repr__(self) -> str:
        options = ', '.join(f'{k}={v!r}' for k, v in self.get_params().items())
        return f'{type(self).__name__}({options})'

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_params() == other.get_params()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, json.dumps(self.get_params(), sort_keys=True)))

    # ---------------------------------------------------------------------------------- metadata
    @abc.abstractmethod
    def feature_labels(self) -> list[str]:
        """Names of the ``F`` features, in column order."""

    @property
    def n_features(self) -> int:
        """Number of features ``F``."""
        return len(self.feature_labels())

    def citations(self) -> list[str]:
        """BibTeX entries of the method and data this representation uses."""
        return []

    # ------------------------------------------------------------------------------- computation
    def fit(self, structures: Sequence[Any]) -> Representation:
        """Resolve options that are taken "from the batch" (e.g. ``species=None``); return the result.

        Representations whose columns do not depend on the data return ``self``. Those with such options
        return a new instance with the options fixed (visible in :meth:`get_params`, hence stored in the
        provenance), so that several batches can share the same columns: fit once on all the data, then
        featurise each batch with the fitted instance. :meth:`featurize_many` fits on its own batch when
        it is given an unfitted instance. Bad structures are skipped here and reported by
        :meth:`featurize_many`.
        """
        return self

    @abc.abstractmethod
    def _prepare(self, item: Any) -> Any:
        """Convert and validate one input; raise (any exception) if it cannot be featurised."""

    def _prepare_many(self, items: Sequence[Any]) -> list[Any]:
        """Prepare a batch: one prepared item, or the exception that rejects it, per input.

        The default calls :meth:`_prepare` on each item; override it to validate a batch at once.
        """
        out: list[Any] = []
        for item in items:
            try:
                out.append(self._prepare(item))
            except Exception as exception:
                out.append(exception)
        return out

    @abc.abstractmethod
    def _compute(self, prepared: list[Any]) -> np.ndarray:
        """Featurise prepared items; return an ``(len(prepared), n_features)`` float array."""

    def featurize(self, structure: Any) -> np.ndarray:
        """Featurise one input; return a ``(n_features,)`` array. Raises on bad input."""
        return self.featurize_many([structure]).features[0]

    def featurize_many(
        self,
        structures: Iterable[Any],
        *,
        n_jobs: int = 1,
        errors: ErrorMode = 'raise',
    ) -> FeatureResult:
        """Featurise a batch; THE entry point of every representation.

        :param structures: pymatgen ``Structure`` / ASE ``Atoms`` (and ``Composition`` or formula strings
            for compositional representations).
        :param n_jobs: number of worker processes (``-1``: one per CPU); the result is identical to
            ``n_jobs=1``.
        :param errors: ``'raise'`` stops at the first bad input with :class:`FeaturizationError`;
            ``'record'`` fills its row with NaN, records a :class:`Failure` and keeps the rest.
        :return: :class:`FeatureResult` with an ``(N, F)`` array, rows aligned with the inputs. For a
            representation with options taken from the batch, the columns are those of ``self.fit(structures)``.
        """
        if errors not in ('raise', 'record'):
            raise ValueError(f"errors must be 'raise' or 'record', got {errors!r}")
        if not isinstance(n_jobs, int) or isinstance(n_jobs, bool) or n_jobs == 0 or n_jobs < -1:
            raise ValueError(f'n_jobs must be a positive integer or -1, got {n_jobs!r}')
        items = list(structures)
        rep = self.fit(items)
        if rep is not self:
            return rep.featurize_many(items, n_jobs=n_jobs, errors=errors)
        n_workers = (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
        if self.threaded:
            n_workers = 1
        n_workers = min(n_workers, max(1, len(items) // _MIN_ITEMS_PER_WORKER))
        if n_workers <= 1:
            features, failures = self._featurize_chunk(items, 0, errors)
        else:
            features, failures = self._featurize_parallel(items, n_workers, errors)
        if errors == 'raise' and failures:
            raise FeaturizationError(failures[0])
        return FeatureResult(features=features, labels=self.feature_labels(), failures=failures)

    def _featurize_parallel(
        self, items: list[Any], n_workers: int, errors: ErrorMode
    ) -> tuple[np.ndarray, list[Failure]]:
        context = multiprocessing.get_context('fork' if os.name == 'posix' else 'spawn')
        with ProcessPoolExecutor(max_workers=n_workers, mp_context=context) as pool:
            futures = [
                pool.submit(self._featurize_chunk, chunk, offset, errors)
                for offset, chunk in iter_chunks(items, n_workers)
            ]
            parts = [future.result() for future in futures]
        features = np.concatenate([p[0] for p in parts], axis=0)
        failures = [f for p in parts for f in p[1]]
        return features, failures

    def _featurize_chunk(
        self, items: Sequence[Any], offset: int, errors: ErrorMode
    ) -> tuple[np.ndarray, list[Failure]]:
        """Featurise ``items`` (rows ``offset ...``); bad rows are NaN and recorded."""
        n_features = self.n_features
        out = np.full((len(items), n_features), np.nan)
        failures: list[Failure] = []
        prepared: list[Any] = []
        rows: list[int] = []
        for i, item in enumerate(self._prepare_many(items)):
            if isinstance(item, Exception):
                failures.append(Failure(offset + i, type(item).__name__, str(item)))
                if errors == 'raise':
                    return out, failures
            else:
                prepared.append(item)
                rows.append(i)
        if prepared:
            try:
                out[rows] = self._compute_checked(prepared)
            except Exception:
                # isolate the culprit(s): featurise one by one so good rows are kept
                for row, item in zip(rows, prepared, strict=True):
                    try:
                        out[row] = self._compute_checked([item])[0]
                    except Exception as exception:
                        failures.append(Failure(offset + row, type(exception).__name__, str(exception)))
                        if errors == 'raise':
                            break
                failures.sort(key=lambda f: f.index)
        return out, failures

    def _compute_checked(self, prepared: list[Any]) -> np.ndarray:
        values = np.asarray(self._compute(prepared), dtype=float)
        expected = (len(prepared), self.n_features)
        if values.shape != expected:
            raise RuntimeError(f'{self.name} computed shape {values.shape}, expected {expected}')
        return values


def _json_safe(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value
