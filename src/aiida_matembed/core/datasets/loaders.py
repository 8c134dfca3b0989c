"""Read user structure data into a :class:`~.store.StructureSet` (``source='user'``).

Formats, chosen by :func:`load_structure_set` from the path:

* **a folder of CIF files** (``*.cif``, sorted by name): one ordered structure per file (pymatgen ``CifParser``,
  as written, not reduced); the file name without ``.cif`` goes into a ``name`` column;
* **extended XYZ** (``.xyz`` / ``.extxyz``; ``ase.io.read(path, index=':')``): every scalar ``atoms.info`` entry
  and every scalar result of an attached calculator (``energy``, ``free_energy``, ...) becomes a column;
* **pymatgen JSON** (``.json``, or ``.json.gz``): a list of ``Structure.as_dict()`` dicts, a dict name ->
  structure dict (names go into ``name``), a list of ``{'structure': <dict>, <label>: <value>, ...}`` records, or
  one structure dict;
* **an ASE database** (``.db``; ``ase.db.connect``): ``key_value_pairs`` become columns, the row id goes into
  ``db_id``.

:func:`read_structure_set` is the forgiving variant behind ``verdi data matembed dataset import``: it reads files,
folders (recursively, any format of :mod:`.importing`) and glob patterns, keeps every ordered crystal and returns a
one-line reason for every file or structure it could not use (a partially occupied structure is one: a set holds
ordered crystals), instead of stopping at the first.

Columns: numbers become float64 (int64 when all values are integers and none is missing), strings stay strings; a
value missing from some items is NaN (numbers) or ``''`` (strings). Keys named like a standard label
(``prototype``, ``space_group``, ``crystal_system``, ``source``, ``formula``) are stored as ``user_<key>``: the
standard labels are always computed. Non-scalar values (arrays, dicts) are skipped unless asked for by
``label_keys``, which is then an error.
"""

from __future__ import annotations

import gzip
import json
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .store import STANDARD_LABELS, StructureSet, columns_from_records

if TYPE_CHECKING:
    from pymatgen.core import Structure

__all__ = ('LOADER_VERSION', 'load_structure_set', 'read_structure_set')

LOADER_VERSION = 1
"""Version of the loaders; recorded in the metadata."""

_FORMATS = 'a folder of .cif files, .xyz / .extxyz, .json / .json.gz (pymatgen) or .db (ASE database)'


class _Item:
    """One structure read from a file, with its labels and how error messages name it."""

    __slots__ = ('labels', 'name', 'structure')

    def __init__(self, name: str, structure: Any, labels: Mapping[str, Any]) -> None:
        self.name = name
        self.structure = structure
        self.labels = dict(labels)


def load_structure_set(path: str | Path, *, label_keys: Iterable[str] | None = None) -> StructureSet:
    """Read user structures (formats in the module docstring) with their labels.

    :param path: a folder of CIF files, or an ``.xyz`` / ``.extxyz`` / ``.json`` / ``.json.gz`` / ``.db`` file.
    :param label_keys: keep only these label keys (each must occur in at least one item); default: every scalar.
    :raises FileNotFoundError: when ``path`` does not exist.
    :raises ValueError: for an unknown format, an empty source, an unreadable item or a requested key that is
        missing or not a scalar (the message names the file and the item).
    :raises PartiallyOccupiedError: for a disordered structure (message names the file and the item).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f'no such file or folder: {path}')
    name = path.name.lower()
    if path.is_dir():
        fmt, items = 'cif', _read_cif_folder(path)
    elif name.endswith(('.xyz', '.extxyz')):
        fmt, items = 'extxyz', _read_extxyz(path)
    elif name.endswith(('.json', '.json.gz')):
        fmt, items = 'pymatgen-json', _read_pymatgen_json(path)
    elif name.endswith('.db'):
        fmt, items = 'ase-db', _read_ase_db(path)
    else:
        raise ValueError(f'{path}: unknown format; expected {_FORMATS}')
    if not items:
        raise ValueError(f'{path}: no structures found')
    wanted = None if label_keys is None else list(label_keys)
    labels = _columns(items, wanted, path)
    metadata = {
        'builder': 'aiida_matembed.core.datasets.load_structure_set',
        'version': LOADER_VERSION,
        'format': fmt,
        'path': str(path),
        'label_keys': wanted,
    }
    return StructureSet.from_structures(
        [item.structure for item in items], labels, metadata, source='user', names=[item.name for item in items]
    )


def read_structure_set(
    paths: Sequence[str | Path], *, fmt: str = 'auto', label_keys: Iterable[str] | None = None
) -> tuple[StructureSet | None, list[Any]]:
    """Read every ordered crystal of ``paths`` (files, folders, glob patterns) into a set; never stops at a bad one.

    :param fmt: ``auto`` or a format of :data:`.importing.FORMATS`, for every file.
    :param label_keys: keep only these label keys (default: every scalar label the files give).
    :return: the set (``None`` when nothing could be read) and the :class:`.importing.ImportFailure` of every file
        or structure left out, each naming the file (and the CIF block, frame or row) and the reason.
    """
    from ..structures import PartiallyOccupiedError, prepare_cells
    from .importing import ImportFailure, collect_files, read_file

    files, failures = collect_files(paths)
    items: list[_Item] = []
    for path in files:
        for entry in read_file(path, fmt):
            if isinstance(entry, ImportFailure):
                failures.append(entry)
                continue
            cell = prepare_cells([entry.structure])[0]
            if isinstance(cell, PartiallyOccupiedError):
                reason = 'partially occupied: a structure set holds ordered crystals (an AiiDA Group keeps it: import)'
                failures.append(ImportFailure(entry.file, entry.item, reason))
                continue
            if isinstance(cell, Exception):
                failures.append(ImportFailure(entry.file, entry.item, str(cell)))
                continue
            labels = {k: v for k, v in entry.labels.items() if k not in ('cif_block', 'comment')}
            labels.setdefault('name', path.stem + (f' [{entry.item}]' if entry.item and fmt != 'cif' else ''))
            labels['file'] = str(path)
            labels['item'] = entry.item
            items.append(_Item(entry.where, entry.structure, labels))
    if not items:
        return None, failures
    wanted = None if label_keys is None else list(label_keys)
    try:
        labels = _columns(items, wanted, Path(str(paths[0])) if paths else Path())
    except ValueError as exception:
        return None, [*failures, ImportFailure(', '.join(map(str, paths)), '', str(exception))]
    metadata = {
        'builder': 'aiida_matembed.core.datasets.read_structure_set',
        'version': LOADER_VERSION,
        'format': fmt,
        'paths': [str(p) for p in paths],
        'label_keys': wanted,
        'n_failed': len(failures),
    }
    structure_set = StructureSet.from_structures(
        [item.structure for item in items], labels, metadata, source='user', names=[item.name for item in items]
    )
    return structure_set, failures


# ------------------------------------------------------------------------------------------------------ readers
def _read_cif_folder(folder: Path) -> list[_Item]:
    from pymatgen.io.cif import CifParser

    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == '.cif')
    if not files:
        raise ValueError(f'{folder}: folder has no .cif files')
    items = []
    for file in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                structures = CifParser(file, occupancy_tolerance=1.0).parse_structures(primitive=False)
        except Exception as exception:
            raise ValueError(f'{file}: cannot read the CIF: {exception}') from None
        if len(structures) != 1:
            raise ValueError(f'{file}: has {len(structures)} structures; expected exactly one per file')
        items.append(_Item(str(file), structures[0], {'name': file.stem}))
    return items


def _read_extxyz(path: Path) -> list[_Item]:
    import ase.io

    try:
        frames = ase.io.read(path, index=':', format='extxyz')
    except Exception as exception:
        raise ValueError(f'{path}: cannot read as extended XYZ: {exception}') from None
    if not isinstance(frames, list):
        frames = [frames]
    items = []
    for index, atoms in enumerate(frames):
        labels = dict(atoms.info)
        if atoms.calc is not None:
            for key, value in getattr(atoms.calc, 'results', {}).items():
                labels.setdefault(key, value)
        items.append(_Item(f'{path} item {index}', atoms, labels))
    return items


def _structure_from_dict(data: Any, where: str) -> Structure:
    from pymatgen.core import Structure

    if not isinstance(data, Mapping):
        raise ValueError(f'{where}: expected a pymatgen Structure dict, got {type(data).__name__}')
    try:
        return Structure.from_dict(dict(data))
    except Exception as exception:
        raise ValueError(f'{where}: not a valid pymatgen Structure dict: {exception!r}') from None


def _read_pymatgen_json(path: Path) -> list[_Item]:
    try:
        if path.name.lower().endswith('.gz'):
            with gzip.open(path, 'rt', encoding='utf-8') as handle:
                data = json.load(handle)
        else:
            data = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, ValueError) as exception:
        raise ValueError(f'{path}: cannot read as JSON: {exception}') from None
    items = []
    if isinstance(data, Mapping) and 'lattice' in data and 'sites' in data:
        items.append(_Item(f'{path}', _structure_from_dict(data, str(path)), {}))
    elif isinstance(data, Mapping):
        for key, value in data.items():
            where = f'{path} item {key!r}'
            items.append(_Item(where, _structure_from_dict(value, where), {'name': str(key)}))
    elif isinstance(data, list):
        for index, entry in enumerate(data):
            where = f'{path} item {index}'
            if isinstance(entry, Mapping) and 'structure' in entry:
                labels = {k: v for k, v in entry.items() if k != 'structure'}
                items.append(_Item(where, _structure_from_dict(entry['structure'], where), labels))
            else:
                items.append(_Item(where, _structure_from_dict(entry, where), {}))
    else:
        raise ValueError(f'{path}: expected a list or a dict of pymatgen Structure dicts, got {type(data).__name__}')
    return items


def _read_ase_db(path: Path) -> list[_Item]:
    import ase.db

    try:
        database = ase.db.connect(str(path), type='db')
        rows = list(database.select())
    except Exception as exception:
        raise ValueError(f'{path}: cannot read as an ASE database: {exception}') from None
    items = []
    for row in rows:
        where = f'{path} row {row.id}'
        try:
            atoms = row.toatoms()
        except Exception as exception:
            raise ValueError(f'{where}: cannot read the atoms: {exception}') from None
        items.append(_Item(where, atoms, {'db_id': int(row.id), **dict(row.key_value_pairs)}))
    return items


# ------------------------------------------------------------------------------------------------------ columns
def _columns(items: Sequence[_Item], wanted: list[str] | None, path: Path) -> dict[str, np.ndarray]:
    try:
        columns = columns_from_records([i.labels for i in items], keys=wanted, names=[i.name for i in items])
    except KeyError as exception:
        raise ValueError(f'{path}: {exception.args[0]}') from None
    return {f'user_{k}' if k in STANDARD_LABELS else k: v for k, v in columns.items()}
