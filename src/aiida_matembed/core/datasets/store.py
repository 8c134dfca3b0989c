"""A compact, labelled set of ordered crystal structures that saves to one ``.npz`` file.

:class:`StructureSet` keeps the sites of all structures in flat arrays (one row per site) with a pointer array
``ptr`` (CSR layout, as torch-geometric batches do): the sites of structure ``i`` are rows ``ptr[i]:ptr[i + 1]``.
Lengths are in Å, lattices are row vectors, coordinates are fractional. Per-structure labels are numpy columns of
length ``N``: strings as numpy unicode arrays, numbers as ``int64`` / ``float64`` (``bool`` is kept as is).

Every set built by this package carries the :data:`STANDARD_LABELS` columns; :meth:`StructureSet.from_structures`
computes the ones it is not given (space group and structure-type key with spglib, see
:mod:`.prototypes`). Files are written with :func:`numpy.savez_compressed` and read with ``allow_pickle=False``:
nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Number
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pymatgen.core import Structure

__all__ = ('FORMAT', 'SOURCES', 'STANDARD_LABELS', 'StructureSet', 'columns_from_records', 'concatenate')

FORMAT = 'aiida_matembed.StructureSet/1'
"""Format tag written into every saved file (key ``format``); :meth:`StructureSet.load` refuses other tags."""

STANDARD_LABELS = ('prototype', 'space_group', 'crystal_system', 'source', 'formula')
"""Label columns present on every set: structure-type key, spglib space group (1..230), crystal system, source,
reduced formula."""

SOURCES = ('synthetic', 'aflow', 'pyriodic', 'user')
"""Values of the ``source`` column: pyxtal crystals, pymatgen's 288 AFLOW prototypes, pyriodic-aflow's 579, and
structures read from user data."""

_LABEL_PREFIX = 'label__'
_ARRAYS = ('lattices', 'numbers', 'frac_coords', 'ptr')


def _as_column(name: str, values: Any, n: int) -> np.ndarray:
    """Return ``values`` as a label column of length ``n`` (unicode, int64, float64 or bool).

    :raises ValueError: for a wrong length, more than one dimension, or values that are neither numbers nor strings.
    """
    if isinstance(values, np.ndarray) and values.dtype.kind in 'SU':
        array = values.astype(str)
    else:
        items = list(values) if not isinstance(values, np.ndarray) else values
        array = np.asarray(items)
        if array.dtype.kind == 'O':
            if all(isinstance(v, str) for v in array.ravel()):
                array = array.astype(str)
            else:
                try:
                    array = array.astype(float)
                except (TypeError, ValueError):
                    kinds = sorted({type(v).__name__ for v in array.ravel()})
                    raise ValueError(
                        f'label {name!r}: values must be all numbers or all strings, got {", ".join(kinds)}'
                    ) from None
    if array.ndim != 1 or len(array) != n:
        raise ValueError(f'label {name!r} has shape {array.shape}; expected ({n},): one value per structure')
    kind = array.dtype.kind
    if kind == 'S':
        return array.astype(str)
    if kind == 'U':
        return array
    if kind in 'iu':
        return array.astype(np.int64)
    if kind == 'f':
        return array.astype(np.float64)
    if kind == 'b':
        return array.astype(bool)
    raise ValueError(f'label {name!r} has unsupported dtype {array.dtype}: use numbers or strings')


@dataclass(eq=False)
class StructureSet:
    """Ordered crystal structures and their labels as flat arrays (see the module docstring for the layout).

    :param lattices: ``(N, 3, 3)`` float64 lattice vectors as rows (Å).
    :param numbers: ``(M,)`` int16 atomic numbers of all sites.
    :param frac_coords: ``(M, 3)`` float64 fractional coordinates.
    :param ptr: ``(N + 1,)`` int64 site offsets, ``ptr[0] == 0`` and ``ptr[-1] == M``.
    :param labels: per-structure columns, each of length ``N``.
    :param metadata: JSON-serialisable description (builder, seed, parameters, version).
    """

    lattices: np.ndarray
    numbers: np.ndarray
    frac_coords: np.ndarray
    ptr: np.ndarray
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lattices = np.ascontiguousarray(self.lattices, dtype=np.float64).reshape(-1, 3, 3)
        self.numbers = np.ascontiguousarray(self.numbers, dtype=np.int16).reshape(-1)
        self.frac_coords = np.ascontiguousarray(self.frac_coords, dtype=np.float64).reshape(-1, 3)
        self.ptr = np.ascontiguousarray(self.ptr, dtype=np.int64).reshape(-1)
        n = len(self.lattices)
        if len(self.ptr) != n + 1 or self.ptr[0] != 0 or np.any(np.diff(self.ptr) < 1):
            raise ValueError(f'ptr must have {n + 1} increasing entries starting at 0 (each structure >= 1 site)')
        if self.ptr[-1] != len(self.numbers) or len(self.numbers) != len(self.frac_coords):
            raise ValueError(
                f'ptr[-1] = {int(self.ptr[-1])} sites, but numbers has {len(self.numbers)} and frac_coords '
                f'{len(self.frac_coords)} rows'
            )
        self.labels = {str(k): _as_column(str(k), v, n) for k, v in self.labels.items()}
        try:
            json.dumps(self.metadata)
        except (TypeError, ValueError) as exception:
            raise ValueError(f'metadata must be JSON-serialisable: {exception}') from None

    # ----------------------------------------------------------------------------------------------- access
    def __len__(self) -> int:
        return len(self.lattices)

    def __repr__(self) -> str:
        return f'StructureSet({len(self)} structures, {len(self.numbers)} sites, labels={sorted(self.labels)})'

    @property
    def n_sites(self) -> np.ndarray:
        """``(N,)`` number of sites of each structure."""
        return np.diff(self.ptr)

    def arrays(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(lattice (3, 3) Å, numbers (n,), frac_coords (n, 3))`` of structure ``i`` (views, no copies)."""
        i = self._index(i)
        start, stop = self.ptr[i], self.ptr[i + 1]
        return self.lattices[i], self.numbers[start:stop], self.frac_coords[start:stop]

    def structure(self, i: int) -> Structure:
        """Return structure ``i`` as a pymatgen ``Structure`` (labels are not attached)."""
        from pymatgen.core import Lattice, Structure

        lattice, numbers, frac = self.arrays(i)
        return Structure(Lattice(lattice), numbers.tolist(), frac)

    def structures(self) -> list[Structure]:
        """Return every structure as a pymatgen ``Structure``, in order."""
        return [self.structure(i) for i in range(len(self))]

    def row(self, i: int) -> dict[str, Any]:
        """Return the labels of structure ``i`` as Python scalars."""
        i = self._index(i)
        return {k: v[i].item() for k, v in self.labels.items()}

    def _index(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f'structure index {i} out of range for a set of {n}')
        return int(i) % n

    # ----------------------------------------------------------------------------------------- construction
    def subset(self, indices: Sequence[int] | np.ndarray) -> StructureSet:
        """Return the structures at ``indices`` (integers, possibly repeated, or a boolean mask of length N)."""
        index = np.asarray(indices)
        if index.dtype == bool:
            if index.shape != (len(self),):
                raise ValueError(f'boolean mask has shape {index.shape}; expected ({len(self)},)')
            index = np.flatnonzero(index)
        index = index.astype(np.int64).reshape(-1)
        if index.size and (index.min() < -len(self) or index.max() >= len(self)):
            raise IndexError(f'subset indices out of range for a set of {len(self)}')
        index = index % max(len(self), 1)
        counts = np.diff(self.ptr)[index]
        ptr = np.zeros(len(index) + 1, dtype=np.int64)
        np.cumsum(counts, out=ptr[1:])
        sites = (
            np.concatenate([np.arange(self.ptr[i], self.ptr[i + 1]) for i in index])
            if len(index)
            else np.zeros(0, dtype=np.int64)
        )
        return StructureSet(
            self.lattices[index],
            self.numbers[sites],
            self.frac_coords[sites],
            ptr,
            {k: v[index] for k, v in self.labels.items()},
            dict(self.metadata),
        )

    @classmethod
    def empty(cls, metadata: Mapping[str, Any] | None = None) -> StructureSet:
        """Return a set with no structures (and no labels)."""
        return cls(np.zeros((0, 3, 3)), np.zeros(0), np.zeros((0, 3)), np.zeros(1), {}, dict(metadata or {}))

    @classmethod
    def concatenate(cls, sets: Iterable[StructureSet], metadata: Mapping[str, Any] | None = None) -> StructureSet:
        """Join sets in order (see :func:`concatenate`)."""
        return concatenate(sets, metadata=metadata)

    @classmethod
    def from_structures(
        cls,
        structures: Iterable[Any],
        labels: Mapping[str, Sequence[Any] | np.ndarray] | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        source: str = 'user',
        names: Sequence[str] | None = None,
    ) -> StructureSet:
        """Build a set from ordered structures; compute the :data:`STANDARD_LABELS` it is not given.

        :param structures: pymatgen ``Structure``, ASE ``Atoms`` or anything :func:`~..structures.to_pymatgen`
            takes.
        :param labels: extra or given columns, one value per structure.
        :param metadata: JSON-serialisable description stored with the set.
        :param source: value of the ``source`` column when ``labels`` has none.
        :param names: how error messages name each structure (default: ``structure <index>``).
        :raises PartiallyOccupiedError: for a disordered structure (message names it).
        :raises InvalidStructureError: for any other invalid structure (no sites, bad lattice, overlapping atoms).
        """
        from ..structures import InvalidStructureError, prepare_cells

        items = list(structures)
        cells = prepare_cells(items)
        lattices, numbers, fracs = [], [], []
        for index, cell in enumerate(cells):
            if isinstance(cell, Exception):
                kind = type(cell) if isinstance(cell, InvalidStructureError | TypeError) else InvalidStructureError
                name = names[index] if names is not None else f'structure {index}'
                raise kind(f'{name}: {cell}') from cell
            lattices.append(cell.lattice)
            numbers.append(cell.z)
            fracs.append(cell.frac)
        given = {k: _as_column(k, v, len(items)) for k, v in (labels or {}).items()}
        if 'source' not in given:
            if source not in SOURCES:
                raise ValueError(f'unknown source {source!r}; expected one of {SOURCES}')
            given['source'] = np.full(len(items), source)
        missing = [k for k in ('prototype', 'space_group', 'crystal_system', 'formula') if k not in given]
        if missing:
            from .prototypes import describe

            described = [describe(lat, z, f) for lat, z, f in zip(lattices, numbers, fracs, strict=True)]
            for key in missing:
                given[key] = _as_column(key, [getattr(d, key) for d in described], len(items))
        return cls._from_arrays(lattices, numbers, fracs, given, metadata)

    @classmethod
    def _from_arrays(
        cls,
        lattices: Sequence[np.ndarray],
        numbers: Sequence[np.ndarray],
        fracs: Sequence[np.ndarray],
        labels: Mapping[str, Any],
        metadata: Mapping[str, Any] | None,
    ) -> StructureSet:
        """Build a set from per-structure arrays (no validation of the structures themselves)."""
        counts = [len(z) for z in numbers]
        ptr = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=ptr[1:])
        return cls(
            np.asarray(lattices, dtype=float).reshape(-1, 3, 3),
            np.concatenate(numbers) if counts else np.zeros(0),
            np.concatenate(fracs) if counts else np.zeros((0, 3)),
            ptr,
            dict(labels),
            dict(metadata or {}),
        )

    # ------------------------------------------------------------------------------------------------- I/O
    def save(self, path: str | Path) -> Path:
        """Write the set to one compressed ``.npz`` file (suffix added if missing); return the path.

        Keys: ``format``, ``lattices``, ``numbers``, ``frac_coords``, ``ptr``, ``label__<name>`` per column and
        ``metadata`` (a JSON string). Strings are numpy unicode arrays, so the file loads without pickling.
        """
        path = Path(path)
        if path.suffix != '.npz':
            path = path.with_name(path.name + '.npz')
        payload: dict[str, np.ndarray] = {
            'format': np.array(FORMAT),
            'lattices': self.lattices,
            'numbers': self.numbers,
            'frac_coords': self.frac_coords,
            'ptr': self.ptr,
            'metadata': np.array(json.dumps(self.metadata, sort_keys=True)),
        }
        for key, column in self.labels.items():
            payload[_LABEL_PREFIX + key] = column
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open('wb') as handle:
            np.savez_compressed(handle, **payload)  # type: ignore[arg-type]
        return path

    @classmethod
    def load(cls, path: str | Path) -> StructureSet:
        """Read a set written by :meth:`save` (never unpickles).

        :raises FileNotFoundError: when ``path`` does not exist.
        :raises ValueError: when the file is not a StructureSet ``.npz`` (names the file and what is wrong).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f'no StructureSet file at {path}')
        with path.open('rb') as handle:
            if handle.read(4) != b'PK\x03\x04':
                raise ValueError(f'{path} is not a StructureSet .npz file (not a zip archive)')
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (zipfile.BadZipFile, OSError, EOFError) as exception:
            raise ValueError(f'{path} is not a StructureSet .npz file: {exception}') from None
        except ValueError as exception:  # object arrays: would need pickle
            raise ValueError(f'{path} cannot be read without pickling, refused: {exception}') from None
        if not isinstance(arrays, dict) or 'format' not in arrays:
            raise ValueError(f'{path} is not a StructureSet file (no "format" entry)')
        tag = str(arrays['format'])
        if tag != FORMAT:
            raise ValueError(f'{path} has format {tag!r}; this version reads {FORMAT!r}')
        missing = [key for key in (*_ARRAYS, 'metadata') if key not in arrays]
        if missing:
            raise ValueError(f'{path} is malformed: missing {", ".join(missing)}')
        try:
            metadata = json.loads(str(arrays['metadata']))
        except json.JSONDecodeError as exception:
            raise ValueError(f'{path} is malformed: metadata is not JSON ({exception})') from None
        labels = {k[len(_LABEL_PREFIX) :]: v for k, v in arrays.items() if k.startswith(_LABEL_PREFIX)}
        try:
            return cls(arrays['lattices'], arrays['numbers'], arrays['frac_coords'], arrays['ptr'], labels, metadata)
        except ValueError as exception:
            raise ValueError(f'{path} is malformed: {exception}') from None

    def sha256(self) -> str:
        """Return a hex SHA-256 of the structures and labels (not the metadata); stable across save / load.

        Arrays are hashed in a canonical form (little-endian float64 / int64, strings as UTF-8 separated by NUL),
        so the hash does not depend on the width of a unicode dtype or on the platform.
        """
        digest = hashlib.sha256(FORMAT.encode())

        def feed(name: str, array: np.ndarray) -> None:
            kind = array.dtype.kind
            if kind == 'U':
                body = '\x00'.join(array.tolist()).encode('utf-8')
                tag = 'str'
            elif kind == 'f':
                body = np.ascontiguousarray(array, dtype='<f8').tobytes()
                tag = 'f8'
            elif kind == 'b':
                body = np.ascontiguousarray(array, dtype='u1').tobytes()
                tag = 'bool'
            else:
                body = np.ascontiguousarray(array, dtype='<i8').tobytes()
                tag = 'i8'
            digest.update(f'\x01{name}\x02{tag}\x02{array.shape}\x02{len(body)}\x02'.encode())
            digest.update(body)

        for name in _ARRAYS:
            feed(name, getattr(self, name))
        for name in sorted(self.labels):
            feed(_LABEL_PREFIX + name, self.labels[name])
        return digest.hexdigest()

    # -------------------------------------------------------------------------------------------- summaries
    def counts(self, column: str) -> dict[Any, int]:
        """Return how many structures have each value of a label column, most frequent first."""
        if column not in self.labels:
            raise KeyError(f'no label column {column!r}; have {sorted(self.labels)}')
        values, counts = np.unique(self.labels[column], return_counts=True)
        order = np.lexsort((values, -counts))
        return {values[k].item(): int(counts[k]) for k in order}


def concatenate(sets: Iterable[StructureSet], metadata: Mapping[str, Any] | None = None) -> StructureSet:
    """Join sets in order into a new set.

    Label columns are the union of the columns of all sets. A column some sets lack is filled there with ``''``
    (string columns) or NaN (numeric columns, which then become float64). Columns of the same name must all be
    strings or all numbers.

    :param metadata: metadata of the result; default: the first set's, with ``parts`` listing the parts' metadata.
    :raises ValueError: for a column that is a string in one set and a number in another.
    """
    parts = list(sets)
    if not parts:
        return StructureSet.empty(metadata)
    n_total = sum(len(p) for p in parts)
    names: dict[str, None] = {}
    for part in parts:
        names.update(dict.fromkeys(part.labels))
    labels: dict[str, np.ndarray] = {}
    for name in names:
        present = [p.labels[name] for p in parts if name in p.labels]
        is_str = {c.dtype.kind == 'U' for c in present}
        if len(is_str) > 1:
            raise ValueError(f'label {name!r} is a string column in one set and numeric in another')
        complete = len(present) == len(parts)
        if is_str.pop():
            columns = [p.labels.get(name, np.full(len(p), '')) for p in parts]
            labels[name] = np.concatenate(columns).astype(str)
        elif complete:
            labels[name] = np.concatenate(present)
        else:
            columns = [p.labels[name].astype(float) if name in p.labels else np.full(len(p), np.nan) for p in parts]
            labels[name] = np.concatenate(columns)
    if metadata is None:
        metadata = {**parts[0].metadata, 'parts': [p.metadata for p in parts]} if len(parts) > 1 else parts[0].metadata
    ptr = np.zeros(n_total + 1, dtype=np.int64)
    np.cumsum(np.concatenate([np.diff(p.ptr) for p in parts]), out=ptr[1:])
    return StructureSet(
        np.concatenate([p.lattices for p in parts]),
        np.concatenate([p.numbers for p in parts]),
        np.concatenate([p.frac_coords for p in parts]),
        ptr,
        labels,
        dict(metadata),
    )


def _scalar(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.ndim == 0
    return isinstance(value, str | Number | np.generic) and not isinstance(value, complex)


def columns_from_records(
    records: Sequence[Mapping[str, Any]],
    *,
    keys: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Turn per-structure label dicts into label columns.

    Strings stay strings (missing: ``''``); numbers become int64 when all are integers and none is missing, bool
    when all are booleans, else float64 (missing: NaN). ``None`` counts as missing. Non-scalar values (lists,
    arrays, dicts) are skipped, unless their key is in ``keys``, which is an error.

    :param keys: the keys to keep (default: every key of any record).
    :param names: how error messages name each record (default: ``record <index>``).
    :raises KeyError: for a key of ``keys`` that no record has.
    :raises ValueError: for a requested non-scalar value, or a key with strings in some records and numbers in others.
    """
    names = list(names) if names is not None else [f'record {i}' for i in range(len(records))]
    found: dict[str, None] = {}
    for record in records:
        found.update(dict.fromkeys(record))
    if keys is not None:
        missing = [k for k in keys if k not in found]
        if missing:
            raise KeyError(f'label key(s) {", ".join(map(repr, missing))} not found; have {sorted(found)}')
        found = dict.fromkeys(keys)
    columns: dict[str, np.ndarray] = {}
    for key in found:
        values = [record.get(key) for record in records]
        bad = [k for k, v in enumerate(values) if v is not None and not _scalar(v)]
        if bad:
            if keys is not None:
                raise ValueError(f'{names[bad[0]]}: label {key!r} is not a scalar ({type(values[bad[0]]).__name__})')
            continue
        values = [v.item() if isinstance(v, np.ndarray | np.generic) else v for v in values]
        present = [v for v in values if v is not None]
        if not present:
            columns[key] = np.full(len(values), np.nan)
            continue
        first = isinstance(present[0], str)
        mixed = [k for k, v in enumerate(values) if v is not None and isinstance(v, str) != first]
        if mixed:
            raise ValueError(f'{names[mixed[0]]}: label {key!r} mixes strings and numbers across items')
        complete = len(present) == len(values)
        if first:
            columns[key] = np.array(['' if v is None else v for v in values], dtype=str)
        elif complete and all(isinstance(v, bool) for v in present):
            columns[key] = np.array(values, dtype=bool)
        elif complete and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            columns[key] = np.array(values, dtype=np.int64)
        else:
            columns[key] = np.array([math.nan if v is None else float(v) for v in values], dtype=float)
    return columns
