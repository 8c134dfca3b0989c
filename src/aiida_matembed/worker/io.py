"""The files the worker reads and writes; no AiiDA needed (the remote machine has no profile).

``structures.npz`` holds a batch of structures compactly (one array per quantity, not one object per
structure): ``cell`` (N, 3, 3) Å, ``pbc`` (N, 3), ``n_sites`` (N,), ``positions`` (S, 3) Cartesian Å of all
sites concatenated, ``site_kind`` (S,) index into ``kinds`` (a JSON list of ``{"symbols", "weights"}``, so
alloy and vacancy sites travel too) and ``uuids`` (N,) of the ``StructureData`` of each row. It is written
from ``StructureData`` attributes with no ORM objects, and read back into pymatgen structures.

``output.npz`` holds the result: ``features`` + ``labels`` (featurise / embed) or the pattern arrays (XRD),
plus ``uuids`` (echoed), ``failures`` and ``meta`` (JSON strings). ``status.json`` says how the worker
ended (``ok``, ``bad_input``, ``out_of_memory``, ``no_gpu``, ``error``) with a message and timings.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ('FORMAT', 'read_output', 'read_structures', 'structure_arrays', 'write_output', 'write_structures')

FORMAT = 1
"""Version of the file layout (checked by the worker)."""


def structure_arrays(attributes: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Pack ``StructureData`` attribute dictionaries (``cell``, ``pbc1..3``, ``kinds``, ``sites``) into arrays."""
    n = len(attributes)
    cell = np.zeros((n, 3, 3))
    pbc = np.ones((n, 3), dtype=bool)
    n_sites = np.zeros(n, dtype=np.int64)
    positions: list[Any] = []
    site_kind: list[int] = []
    kinds: list[dict[str, Any]] = []
    kind_index: dict[str, int] = {}
    for i, attrs in enumerate(attributes):
        cell[i] = attrs['cell']
        pbc[i] = [attrs.get('pbc1', True), attrs.get('pbc2', True), attrs.get('pbc3', True)]
        names = {}
        for kind in attrs.get('kinds', []):
            entry = {'symbols': list(kind['symbols']), 'weights': [float(w) for w in kind['weights']]}
            key = json.dumps(entry, sort_keys=True)
            if key not in kind_index:
                kind_index[key] = len(kinds)
                kinds.append(entry)
            names[kind['name']] = kind_index[key]
        sites = attrs.get('sites', [])
        n_sites[i] = len(sites)
        for site in sites:
            positions.append(site['position'])
            site_kind.append(names[site['kind_name']])
    return {
        'cell': cell,
        'pbc': pbc,
        'n_sites': n_sites,
        'positions': np.asarray(positions, dtype=float).reshape(-1, 3),
        'site_kind': np.asarray(site_kind, dtype=np.int64),
        'kinds': np.asarray(json.dumps(kinds)),
    }


def write_structures(path: str | Path, attributes: Sequence[dict[str, Any]], uuids: Sequence[str]) -> None:
    """Write ``structures.npz`` from ``StructureData`` attribute dictionaries and the nodes' UUIDs."""
    if len(attributes) != len(uuids):
        raise ValueError(f'{len(attributes)} structures but {len(uuids)} UUIDs')
    arrays = structure_arrays(attributes)
    np.savez(path, format=np.asarray(FORMAT), uuids=np.asarray(list(uuids), dtype=str), **arrays)  # type: ignore[arg-type]


def read_structures(path: str | Path) -> tuple[list[Any], list[str]]:
    """Structures of ``structures.npz`` (pymatgen; an ``Exception`` instead for an unreadable one) and UUIDs."""
    from pymatgen.core import Lattice, Structure

    with np.load(path, allow_pickle=False) as data:
        if int(data['format']) != FORMAT:
            raise ValueError(f'{path}: file format {int(data["format"])}, this worker reads {FORMAT}')
        arrays = {key: data[key] for key in data.files}
    kinds = json.loads(str(arrays['kinds']))
    species: list[Any] = []
    for kind in kinds:
        if len(kind['symbols']) == 1 and kind['weights'][0] == 1.0:
            species.append(kind['symbols'][0])
        else:
            species.append(dict(zip(kind['symbols'], kind['weights'], strict=True)))
    ptr = np.concatenate([[0], np.cumsum(arrays['n_sites'])])
    structures: list[Any] = []
    for i in range(len(arrays['n_sites'])):
        part = slice(int(ptr[i]), int(ptr[i + 1]))
        try:
            structures.append(
                Structure(
                    Lattice(
                        arrays['cell'][i],
                        pbc=(bool(arrays['pbc'][i][0]), bool(arrays['pbc'][i][1]), bool(arrays['pbc'][i][2])),
                    ),
                    [species[k] for k in arrays['site_kind'][part]],
                    arrays['positions'][part],
                    coords_are_cartesian=True,
                )
            )
        except Exception as exception:
            structures.append(exception)
    return structures, [str(u) for u in arrays['uuids']]


def write_output(
    path: str | Path,
    arrays: dict[str, np.ndarray],
    *,
    uuids: Sequence[str],
    failures: Sequence[dict[str, Any]],
    meta: dict[str, Any],
) -> None:
    """Write ``output.npz``: the result arrays plus UUIDs, failures and metadata (JSON)."""
    np.savez(
        path,
        format=np.asarray(FORMAT),
        uuids=np.asarray(list(uuids), dtype=str),
        failures=np.asarray(json.dumps(list(failures))),
        meta=np.asarray(json.dumps(meta)),
        **arrays,  # type: ignore[arg-type]
    )


def read_output(path: str | Path) -> tuple[dict[str, np.ndarray], list[str], list[dict[str, Any]], dict[str, Any]]:
    """Read ``output.npz``: ``(arrays, uuids, failures, meta)``; never unpickles."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    uuids = [str(u) for u in arrays.pop('uuids')]
    failures = json.loads(str(arrays.pop('failures')))
    meta = json.loads(str(arrays.pop('meta')))
    arrays.pop('format', None)
    return arrays, uuids, failures, meta
