"""Structure sets as AiiDA Groups of ``StructureData``, and back, with labels and DFT results from provenance.

Storage convention of :func:`structure_set_to_group`:

* one stored ``StructureData`` per structure, added to the Group in the order of the set;
* each node's labels (one row of the set) as the node extra ``matembed_labels`` (:data:`LABELS_EXTRA`), a dict
  of JSON scalars (NaN is stored as ``None``);
* the Group's extra ``matembed_dataset`` (:data:`DATASET_EXTRA`): ``{'sha256': ..., 'n_structures': ...,
  'metadata': ...}`` of the set it was made from.

:func:`structure_set_from_group` reads a Group back (in the order structures were added, i.e. by pk) and can add
columns from other extras, from node attributes, and from the outputs of DFT (or any) processes that took each
structure as input.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from aiida import orm

from .calculations.batch import chunks
from .core.datasets import StructureSet
from .core.datasets.store import STANDARD_LABELS, columns_from_records

__all__ = ('DATASET_EXTRA', 'LABELS_EXTRA', 'structure_set_from_group', 'structure_set_to_group')

LABELS_EXTRA = 'matembed_labels'
"""Node extra holding the labels of a structure (a dict)."""

DATASET_EXTRA = 'matembed_dataset'
"""Group extra describing the set the Group was made from."""


def _json_scalar(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def structure_set_to_group(
    structure_set: StructureSet, group_label: str, *, description: str | None = None
) -> orm.Group:
    """Store every structure of a set as a ``StructureData`` in a new Group (convention in the module docstring).

    :param group_label: label of the Group, which must not exist yet or be empty.
    :raises ValueError: when a Group of that label already has nodes.
    """
    from aiida.manage import get_manager

    group, created = orm.Group.collection.get_or_create(label=group_label)
    if not created and group.count():
        raise ValueError(f'group {group_label!r} already has {group.count()} nodes; choose a new label')
    if description is not None:
        group.description = description
    nodes = []
    storage = get_manager().get_profile_storage()
    with storage.transaction():
        for index in range(len(structure_set)):
            node = orm.StructureData(pymatgen=structure_set.structure(index))
            node.label = str(structure_set.labels['formula'][index]) if 'formula' in structure_set.labels else ''
            node.base.extras.set(LABELS_EXTRA, {k: _json_scalar(v) for k, v in structure_set.row(index).items()})
            nodes.append(node.store())
    group.add_nodes(nodes)
    group.base.extras.set(
        DATASET_EXTRA,
        {'sha256': structure_set.sha256(), 'n_structures': len(structure_set), 'metadata': structure_set.metadata},
    )
    return group


def _newest_finished_processes(pks: Sequence[int]) -> dict[int, int]:
    """Return structure pk -> pk of the newest process that finished OK with that structure as an input."""
    newest: dict[int, tuple[Any, int]] = {}
    for chunk in chunks(pks):  # bounded IN clauses
        query = orm.QueryBuilder()
        query.append(orm.StructureData, filters={'id': {'in': list(chunk)}}, project='id', tag='s')
        query.append(
            orm.ProcessNode,
            with_incoming='s',
            filters={'attributes.process_state': 'finished', 'attributes.exit_status': 0},
            project=['id', 'ctime'],
        )
        for structure_pk, process_pk, ctime in query.iterall():
            if structure_pk not in newest or (ctime, process_pk) > newest[structure_pk]:
                newest[structure_pk] = (ctime, process_pk)
    return {s: p for s, (_, p) in newest.items()}


def _dig(value: Any, path: Sequence[str], where: str) -> Any:
    """Follow ``path`` (keys) into a node's value; ``None`` when a key is missing."""
    if isinstance(value, orm.Dict):
        value = value.get_dict()
    elif isinstance(value, orm.BaseType):
        value = value.value
    elif isinstance(value, orm.Node):
        if not path:
            raise ValueError(f'{where}: output is a {type(value).__name__}; name a key (link.key)')
        value = value.base.attributes.all
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _dft_columns(pks: Sequence[int], dft_outputs: Mapping[str, str]) -> list[dict[str, Any]]:
    specs = {}
    for column, spec in dft_outputs.items():
        link, *path = spec.split('.')
        if not link:
            raise ValueError(f'dft output {column!r}: expected "link_label" or "link_label.key", got {spec!r}')
        specs[column] = (link, path)
    processes = _newest_finished_processes(pks)
    outputs: dict[tuple[int, str], Any] = {}
    links = sorted({link for link, _ in specs.values()})
    process_pks = sorted(set(processes.values()))
    for chunk in chunks(process_pks):
        query = orm.QueryBuilder()
        query.append(orm.ProcessNode, filters={'id': {'in': chunk}}, project='id', tag='p')
        query.append(
            orm.Node,
            with_incoming='p',
            edge_filters={'label': {'in': links}},
            edge_project='label',
            edge_tag='link',
            project='*',
            tag='output',
        )
        for row in query.iterdict():
            outputs[(row['p']['id'], row['link']['label'])] = row['output']['*']
    records = []
    for pk in pks:
        record: dict[str, Any] = {}
        process = processes.get(pk)
        for column, (link, path) in specs.items():
            node = outputs.get((process, link)) if process is not None else None
            value = None if node is None else _dig(node, path, f'{column}={dft_outputs[column]}')
            record[column] = value
        records.append(record)
    return records


def structure_set_from_group(
    group: orm.Group | str,
    *,
    extras: Sequence[str] = (LABELS_EXTRA,),
    attributes: Sequence[str] = (),
    dft_outputs: Mapping[str, str] | None = None,
    failures: list[dict[str, Any]] | None = None,
) -> StructureSet:
    """Read the ``StructureData`` of a Group (by pk) into a set with ``pk`` and ``uuid`` columns.

    :param group: a Group or its label.
    :param extras: node extras to read; a dict extra (such as ``matembed_labels``) gives one column per key, any
        other extra one column named after it. Missing values are NaN / ``''``.
    :param attributes: node attributes to read as columns (scalars only).
    :param dft_outputs: column -> ``'link_label.key'`` (e.g. ``{'energy': 'output_parameters.energy'}``; nested
        keys with more dots, or just ``'link_label'`` for a ``Float`` / ``Int`` / ``Str`` output): read from the
        outputs of the newest process that finished OK (exit status 0) with the structure as an input. Structures
        without such a process or output get NaN (``''`` for strings).
    :param failures: if a list, structures that are not ordered valid crystals (partially occupied ones imported
        with ``verdi data matembed import``, overlapping atoms, ...) are left out and ``{'pk', 'reason'}`` of each
        is appended to it, instead of raising.
    :raises ValueError: for a Group without ``StructureData``, or (without ``failures``) a structure that is not an
        ordered crystal.

    The standard labels are recomputed from the structures when a stored value is missing on any node; otherwise the
    stored ones are kept.
    """
    if isinstance(group, str):
        group = orm.load_group(label=group)
    query = orm.QueryBuilder().append(orm.Group, filters={'id': group.pk}, tag='g')
    query.append(orm.StructureData, with_group='g', project='*')
    nodes = sorted(query.all(flat=True), key=lambda n: n.pk)
    if not nodes:
        raise ValueError(f'group {group.label!r} has no StructureData')
    records: list[dict[str, Any]] = []
    for node in nodes:
        record: dict[str, Any] = {}
        for key in extras:
            value = node.base.extras.get(key, None)
            if isinstance(value, Mapping):
                record.update(value)
            else:
                record[key] = value
        for key in attributes:
            record[key] = node.base.attributes.get(key, None)
        record['pk'] = node.pk
        record['uuid'] = node.uuid
        records.append(record)
    if dft_outputs:
        for record, dft in zip(records, _dft_columns([n.pk for n in nodes], dft_outputs), strict=True):
            record.update(dft)
    if failures is not None:
        from .core.structures import prepare_cells
        from .data.convert import structure_data_to_pymatgen

        keep = []
        for index, cell in enumerate(prepare_cells([structure_data_to_pymatgen(n) for n in nodes])):
            if isinstance(cell, Exception):
                failures.append({'pk': nodes[index].pk, 'reason': str(cell)})
            else:
                keep.append(index)
        if not keep:
            raise ValueError(f'group {group.label!r} has no ordered crystal ({len(failures)} structure(s) left out)')
        nodes, records = [nodes[i] for i in keep], [records[i] for i in keep]
    names = [f'StructureData<{n.pk}>' for n in nodes]
    labels = columns_from_records(records, names=names)
    labels = {k: v for k, v in labels.items() if not (k in STANDARD_LABELS and _any_missing(v))}
    metadata = {
        'builder': 'aiida_matembed.datasets.structure_set_from_group',
        'group': group.label,
        'group_uuid': group.uuid,
        'extras': list(extras),
        'attributes': list(attributes),
        'dft_outputs': dict(dft_outputs or {}),
        'source_dataset': group.base.extras.get(DATASET_EXTRA, None),
    }
    structures = [n.get_pymatgen_structure() for n in nodes]
    return StructureSet.from_structures(structures, labels, metadata, source='user', names=names)


def _any_missing(column: np.ndarray) -> bool:
    if column.dtype.kind == 'U':
        return not all(column)
    return column.dtype.kind == 'f' and bool(np.isnan(column).any())
