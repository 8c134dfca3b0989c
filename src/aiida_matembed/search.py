"""Ask the graph: similar structures, equivalent structures and 2-D maps of a Group's stored vectors.

The numerics are in :mod:`aiida_matembed.core.search`; this module finds the ``FeaturesData`` of a Group's
structures (computing the missing rows first, incrementally, as ``verdi data matembed featurize`` / ``embed``
would), builds or reuses a :class:`~aiida_matembed.core.search.VectorIndex` and maps results back to nodes.

An index is keyed by a fingerprint of what it holds (representation or model, options, metric, and the UUIDs of
the ``FeaturesData`` nodes and of the structures): it is rebuilt only when one of them changes, and kept in memory
and on disk under the AiiDA configuration folder (``<AIIDA_PATH>/.aiida/matembed-indexes/<profile>/``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from aiida import orm

from .calculations.batch import chunks, load_structures
from .core.search.index import IndexMismatchError, Metric, VectorIndex
from .data.features import FeaturesData
from .plugins import use_aiida_entry_points

use_aiida_entry_points()

__all__ = (
    'GroupVectors',
    'IndexMismatchError',
    'Neighbour',
    'VectorSource',
    'equivalent_structures',
    'group_index',
    'group_vectors',
    'read_structure_file',
    'similar_structures',
)

_MEMORY: dict[str, VectorIndex] = {}
_MEMORY_SIZE = 8
"""Indexes kept in memory per process (each also lives on disk)."""


@dataclass(frozen=True)
class VectorSource:
    """Which stored vectors: a representation (with options) or a model (with a modality)."""

    representation: str | None = None
    params: dict[str, Any] | None = None
    model: str | int | None = None
    modality: str | None = None

    def __post_init__(self) -> None:
        if (self.representation is None) == (self.model is None):
            raise ValueError('give either a representation or a model')

    @property
    def name(self) -> str:
        return str(self.representation if self.representation is not None else self.model)


@dataclass(frozen=True)
class GroupVectors:
    """The vectors of a Group's structures, one row per structure that has a successful row."""

    pks: list[int]
    uuids: list[str]
    matrix: np.ndarray
    features_uuids: list[str]
    """UUIDs of the ``FeaturesData`` nodes the rows were read from (sorted)."""
    name: str
    """Representation or model name (what the index will hold)."""
    params: dict[str, Any]
    missing: list[int]
    """Structures of the Group without a row (failed, or not computed with ``compute=False``)."""


@dataclass(frozen=True)
class Neighbour:
    """A structure found by :func:`similar_structures`."""

    pk: int
    uuid: str
    formula: str
    distance: float

    def as_dict(self) -> dict[str, Any]:
        return {'pk': self.pk, 'uuid': self.uuid, 'formula': self.formula, 'distance': self.distance}


def _load_group(group: orm.Group | str | int) -> orm.Group:
    if isinstance(group, orm.Group):
        return group
    return orm.load_group(group)


def _group_pks(group: orm.Group) -> list[int]:
    query = orm.QueryBuilder().append(orm.Group, filters={'id': group.pk}, tag='group')
    query.append(orm.StructureData, with_group='group', project='id')
    return sorted(query.all(flat=True))


def formula_of(node: orm.StructureData) -> str:
    """Reduced formula (``LiCoO2``) of a ``StructureData``, its Hill formula where that cannot be reduced."""
    from pymatgen.core import Composition

    formula = node.get_formula(mode='hill')
    try:
        return Composition(formula).reduced_formula
    except Exception:
        return formula


def _formulas(pks: list[int]) -> dict[int, str]:
    """Reduced formulas of many structures from their ``kinds`` and ``sites`` attributes (no node loading)."""
    from collections import Counter

    from pymatgen.core import Composition

    out: dict[int, str] = {}
    for chunk in chunks(pks):
        query = orm.QueryBuilder().append(
            orm.StructureData,
            filters={'id': {'in': chunk}},
            project=['id', 'attributes.kinds', 'attributes.sites'],
        )
        for pk, kinds, sites in query.iterall():
            weights = {k['name']: dict(zip(k['symbols'], k['weights'], strict=True)) for k in kinds or []}
            amounts: Counter[str] = Counter()
            for site in sites or []:
                for symbol, weight in weights.get(site['kind_name'], {}).items():
                    amounts[symbol] += weight
            try:
                out[pk] = Composition(dict(amounts)).reduced_formula
            except Exception:
                out[pk] = ''.join(f'{s}{n:g}' for s, n in sorted(amounts.items()))
    return out


# ------------------------------------------------------------------------------------------- vectors
def _compute_missing(group: orm.Group, source: VectorSource, batch_size: int) -> dict[str, Any]:
    """Compute the rows the Group lacks (incremental) and return the resolved options."""
    from .calculations.embed import embed_structures
    from .workflows.featurize_group import pending_structure_pks, resolve_params

    if source.representation is not None:
        from .calculations.featurize import featurize_structures
        from .core.representations import load_representation_class

        params = resolve_params(source.representation, source.params or {}, group=group)
        pending = pending_structure_pks(group, source.representation, params)
        for start in range(0, len(pending), batch_size):
            featurize_structures(load_structures(pending[start : start + batch_size]), source.representation, params)
        return load_representation_class(source.representation).from_params(params).get_params()
    from .calculations.embed import embedding_params
    from .data.model import load_model_node
    from .query import embedded_structure_pks

    node = load_model_node(source.model)  # type: ignore[arg-type]
    params = embedding_params(node, source.modality)
    pks = _group_pks(group)
    done = embedded_structure_pks(node, modality=params['modality'], among=pks, include_failed=True)
    pending = [pk for pk in pks if pk not in done]
    for start in range(0, len(pending), batch_size):
        embed_structures(load_structures(pending[start : start + batch_size]), node, modality=params['modality'])
    return params


def _resolved_params(group: orm.Group, source: VectorSource) -> dict[str, Any]:
    if source.representation is not None:
        from .core.representations import load_representation_class
        from .workflows.featurize_group import resolve_params

        params = resolve_params(source.representation, source.params or {}, group=group)
        return load_representation_class(source.representation).from_params(params).get_params()
    from .calculations.embed import embedding_params
    from .data.model import load_model_node

    return embedding_params(load_model_node(source.model), source.modality)  # type: ignore[arg-type]


def _rows_query(source: VectorSource, params: dict[str, Any], pks: list[int]) -> list[tuple[int, str, int, str]]:
    """``(structure pk, structure uuid, features pk, features uuid)`` of every stored row of ``pks``."""
    from .query import _embedding_query, _features_query

    out = []
    for chunk in chunks(pks):
        if source.representation is not None:
            from .core.representations import load_representation_class

            version = load_representation_class(source.representation).version
            qb = _features_query(source.representation, version, params)
        else:
            qb = _embedding_query(source.model, params['modality'])  # type: ignore[arg-type]
            qb.add_filter('features', {'attributes.params.model_sha256': params['model_sha256']})
        qb.add_filter('structure', {'id': {'in': chunk}})
        qb.add_projection('structure', ['id', 'uuid'])
        qb.add_projection('features', ['id', 'uuid'])
        for row in qb.iterdict():
            s, f = row['structure'], row['features']
            out.append((s['id'], s['uuid'], f['id'], f['uuid']))
    return out


def group_vectors(
    group: orm.Group | str | int,
    source: VectorSource,
    *,
    compute: bool = True,
    batch_size: int = 1000,
) -> GroupVectors:
    """Vectors of the Group's structures from their stored ``FeaturesData`` (newest row of each structure).

    :param compute: first compute the rows the Group lacks (``matembed.featurize`` / ``matembed.embed``
        calcfunctions, stored with provenance; structures that already have a current row, or a recorded failure
        for a model, are skipped).
    :raises ValueError: for a Group without ``StructureData``, or without any vector (with how to compute them).
    """
    group = _load_group(group)
    pks = _group_pks(group)
    if not pks:
        raise ValueError(f'group {group.label!r} has no StructureData')
    params = _compute_missing(group, source, batch_size) if compute else _resolved_params(group, source)
    rows = _rows_query(source, params, pks)
    newest: dict[int, tuple[str, int, str]] = {}
    for structure_pk, structure_uuid, features_pk, features_uuid in rows:
        if structure_pk not in newest or features_pk > newest[structure_pk][1]:
            newest[structure_pk] = (structure_uuid, features_pk, features_uuid)
    by_features: dict[int, list[int]] = {}
    for structure_pk, (_, features_pk, _) in newest.items():
        by_features.setdefault(features_pk, []).append(structure_pk)
    vectors: dict[int, np.ndarray] = {}
    for features_pk, members in by_features.items():
        node = orm.load_node(features_pk)
        assert isinstance(node, FeaturesData), node
        matrix = node.features
        position = {uuid: i for i, uuid in enumerate(node.rows) if uuid}
        for structure_pk in members:
            vector = matrix[position[newest[structure_pk][0]]]
            if np.isfinite(vector).all():
                vectors[structure_pk] = vector
    kept = sorted(vectors)
    if not kept:
        how = (
            f'verdi data matembed featurize -G {group.label} -r {source.representation}'
            if source.representation is not None
            else f'verdi data matembed embed -G {group.label} -m {source.model}'
        )
        raise ValueError(f'group {group.label!r} has no {source.name} vectors; compute them with `{how}`')
    return GroupVectors(
        pks=kept,
        uuids=[newest[pk][0] for pk in kept],
        matrix=np.stack([vectors[pk] for pk in kept]).astype(np.float32),
        features_uuids=sorted({newest[pk][2] for pk in kept}),
        name=source.name if source.representation is not None else str(params['model']),
        params=params,
        missing=[pk for pk in pks if pk not in vectors],
    )


# --------------------------------------------------------------------------------------------- index
def _cache_folder() -> Path:
    from aiida.manage import get_manager
    from aiida.manage.configuration import get_config

    profile = get_manager().get_profile()
    name = profile.name if profile is not None else 'default'
    return Path(get_config().dirpath) / 'matembed-indexes' / name


def _fingerprint(vectors: GroupVectors, metric: str) -> str:
    text = json.dumps(
        {'name': vectors.name, 'params': vectors.params, 'metric': metric, 'features': vectors.features_uuids,
         'structures': vectors.uuids},
        sort_keys=True,
    )  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()


def group_index(
    group: orm.Group | str | int,
    source: VectorSource,
    *,
    metric: Metric = 'cosine',
    compute: bool = True,
    method: Literal['auto', 'exact', 'hnsw'] = 'auto',
) -> tuple[VectorIndex, GroupVectors, bool]:
    """The nearest-neighbour index of a Group's vectors, reused while its ``FeaturesData`` do not change.

    :return: the index (keys: structure pks), the vectors it was built from, and whether it was reused.
    """
    vectors = group_vectors(group, source, compute=compute)
    fingerprint = _fingerprint(vectors, metric)
    key = f'{fingerprint}-{method}'
    if key in _MEMORY:
        return _MEMORY[key], vectors, True
    path = _cache_folder() / key
    if path.with_suffix('.json').exists():
        try:
            index = VectorIndex.load(path)
            if index.fingerprint == fingerprint:
                _MEMORY[key] = index
                return index, vectors, True
        except Exception:  # a damaged cache file: rebuild it
            pass
    index = VectorIndex.build(
        vectors.matrix,
        vectors.pks,
        metric=metric,
        representation=vectors.name,
        method=method,
        fingerprint=fingerprint,  # type: ignore[arg-type]
    )
    with contextlib.suppress(OSError):  # a read-only configuration folder: keep it in memory only
        index.save(path)
    if len(_MEMORY) >= _MEMORY_SIZE:  # keep the most recent few in memory; the rest stay on disk
        _MEMORY.pop(next(iter(_MEMORY)))
    _MEMORY[key] = index
    return index, vectors, False


# -------------------------------------------------------------------------------------------- queries
def read_structure_file(path: str | Path) -> Any:
    """A pymatgen ``Structure`` from a CIF, POSCAR, pymatgen JSON or any file ASE reads.

    :raises ValueError: naming the file when it cannot be read as a crystal structure.
    """
    from pymatgen.core import Structure

    path = Path(path)
    if not path.is_file():
        raise ValueError(f'{path}: no such file')
    try:
        return Structure.from_file(path)
    except Exception as first:
        try:
            from ase.io import read

            from .core.structures import to_pymatgen

            return to_pymatgen(read(path))
        except Exception:
            raise ValueError(f'{path}: not a structure file pymatgen or ASE can read ({first})') from None


def _query_structure(query: Any) -> tuple[Any, orm.StructureData | None]:
    """``(pymatgen Structure, StructureData or None)`` of a node, pk / UUID, file, or structure object."""
    from .data.convert import structure_data_to_pymatgen

    if isinstance(query, orm.StructureData):
        return structure_data_to_pymatgen(query), query
    if isinstance(query, (str, Path)) and Path(query).is_file():
        return read_structure_file(query), None
    if isinstance(query, (int, str)) and not isinstance(query, Path):
        node = orm.load_node(query)
        if not isinstance(node, orm.StructureData):
            raise ValueError(f'node {query} is a {type(node).__name__}, not a StructureData')
        return structure_data_to_pymatgen(node), node
    from .core.structures import to_pymatgen

    return to_pymatgen(query), None


def _query_vector(
    structure: Any, node: orm.StructureData | None, vectors: GroupVectors, source: VectorSource
) -> np.ndarray:
    """The query's vector: stored (when the node is in the index) or computed in memory (nothing stored)."""
    if node is not None and node.pk in vectors.pks:
        return vectors.matrix[vectors.pks.index(node.pk)]
    if source.representation is not None:
        from .core.representations import load_representation_class

        rep = load_representation_class(source.representation).from_params(vectors.params)
        result = rep.featurize_many([structure], errors='record')
        if result.failures:
            raise ValueError(
                f'the query cannot be featurised with {source.representation}: {result.failures[0].message}'
            )
        return np.asarray(result.features[0], dtype=np.float32)
    from .core.models.inference import run_model
    from .data.model import load_model_node

    loaded = load_model_node(source.model).load_model(device='cpu')  # type: ignore[arg-type]
    output = run_model(loaded, [structure], modality=vectors.params['modality'])
    if output.failures:
        raise ValueError(f'the query cannot be embedded by {source.model}: {output.failures[0].message}')
    return np.asarray(output.matrix[0], dtype=np.float32)


def similar_structures(
    query: Any,
    group: orm.Group | str | int,
    source: VectorSource,
    *,
    k: int = 10,
    metric: Metric = 'cosine',
    compute: bool = True,
    include_query: bool = False,
    query_vector: np.ndarray | None = None,
    query_representation: str | None = None,
) -> list[Neighbour]:
    """The ``k`` structures of the Group nearest to ``query`` in the stored vectors, nearest first.

    :param query: a ``StructureData`` (or its pk / UUID), a structure file, or a pymatgen / ASE structure. A
        stored structure of the Group uses its stored vector; anything else is featurised (or embedded) in memory
        with the options of the stored vectors (nothing is stored).
    :param include_query: keep the query itself in the results (it is dropped by default).
    :param query_vector: search with this vector instead (``query`` is then ignored); with
        ``query_representation`` naming what made it, a vector of another representation is refused.
    :raises IndexMismatchError: for a query vector of another representation or dimension than the index.
    """
    index, vectors, _ = group_index(group, source, metric=metric, compute=compute)
    node: orm.StructureData | None = None
    if query_vector is None:
        structure, node = _query_structure(query)
        query_vector = _query_vector(structure, node, vectors, source)
        query_representation = index.representation
    extra = 1 if node is not None and not include_query else 0
    distances, keys = index.search(query_vector, k + extra, representation=query_representation)
    pairs = [(int(pk), float(d)) for pk, d in zip(keys[0], distances[0], strict=False)]
    if extra:
        pairs = [p for p in pairs if p[0] != node.pk]  # type: ignore[union-attr]
    pairs = pairs[:k]
    uuids = dict(zip(vectors.pks, vectors.uuids, strict=True))
    formulas = _formulas([pk for pk, _ in pairs])
    return [Neighbour(pk, uuids[pk], formulas.get(pk, ''), distance) for pk, distance in pairs]


def equivalent_structures(query: Any, group: orm.Group | str | int, **matcher: Any) -> list[tuple[Neighbour, float]]:
    """Structures of the Group crystallographically equivalent to ``query`` (pymatgen ``StructureMatcher``).

    The answer to "is this structure already in my database?" before a DFT run; the distance of each
    :class:`Neighbour` is the matcher's rms displacement. Only structures of the same reduced formula are loaded.

    :param matcher: ``ltol``, ``stol``, ``angle_tol``, ``scale`` of
        :func:`~aiida_matembed.core.search.matching_structures`.
    :return: ``(neighbour, max displacement)`` pairs, best first.
    """
    from .core.search.matching import matching_structures
    from .data.convert import structure_data_to_pymatgen

    group = _load_group(group)
    pks = _group_pks(group)
    if not pks:
        raise ValueError(f'group {group.label!r} has no StructureData')
    structure, node = _query_structure(query)
    formulas = _formulas(pks)
    uuid_of = dict(
        orm.QueryBuilder().append(orm.StructureData, filters={'id': {'in': pks}}, project=['id', 'uuid']).all()
    )

    def loader(pk: int) -> Callable[[], Any]:
        return lambda: structure_data_to_pymatgen(orm.load_node(pk))  # type: ignore[arg-type]

    candidates = [pk for pk in pks if node is None or pk != node.pk]
    found = matching_structures(
        structure, [loader(pk) for pk in candidates], formulas=[formulas[pk] for pk in candidates], **matcher
    )
    return [
        (Neighbour(candidates[m.position], uuid_of[candidates[m.position]], formulas[candidates[m.position]], m.rms),
         m.max_displacement)
        for m in found
    ]  # fmt: skip
