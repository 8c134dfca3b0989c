"""Finished DFT processes of a Group as a structure set: the structures they output, their labels, their vectors."""

from __future__ import annotations

from typing import Any

import numpy as np
from aiida import orm

from ..core.datasets import StructureSet
from .processes import DFT_COLUMNS, read_dft_records

__all__ = ('dft_structure_set', 'holds_processes')


def holds_processes(group: orm.Group) -> bool:
    """Whether ``group`` has any process node (then its structures come from DFT outputs)."""
    query = orm.QueryBuilder().append(orm.Group, filters={'id': group.pk}, tag='group')
    query.append(orm.ProcessNode, with_group='group', project='id')
    return query.first() is not None


def dft_structure_set(
    group: orm.Group | str,
    *,
    representation: str | None = None,
    params: dict[str, Any] | None = None,
    structure_link: str = 'output_structure',
) -> tuple[StructureSet, list[tuple[int, str]]]:
    """The structures output by the finished DFT processes of ``group``, with their labels and vectors joined.

    Columns: ``pk`` (of the structure), ``uuid``, ``process`` (pk of the DFT process), the DFT labels
    (:data:`~aiida_matembed.dft.processes.DFT_COLUMNS`, NaN where the outputs do not hold one) and, with a
    ``representation``, one column per feature named ``REPRESENTATION:LABEL`` (computed where missing).

    :returns: the set and the members left out ``(pk, reason)``.
    """
    from ..calculations.property import ensure_vectors
    from ..query import vectors_by_uuid

    group = group if isinstance(group, orm.Group) else orm.load_group(group)
    records, skipped = read_dft_records(group, structure_link=structure_link)
    structures = {
        pk: node
        for pk, node in orm.QueryBuilder()
        .append(orm.StructureData, filters={'id': {'in': [r.structure_pk for r in records]}}, project=['id', '*'])
        .all()
    }
    labels: dict[str, list[Any]] = {'pk': [], 'uuid': [], 'process': [], **{c: [] for c in DFT_COLUMNS}}
    for record in records:
        node = structures[record.structure_pk]
        labels['pk'].append(node.pk)
        labels['uuid'].append(node.uuid)
        labels['process'].append(record.process_pk)
        for column in DFT_COLUMNS:
            labels[column].append(record.labels[column])
    if representation is not None:
        nodes = ensure_vectors(list(structures), representation=representation, params=params)
        vectors = vectors_by_uuid(nodes)
        names = nodes[0].labels if nodes else []
        for index, name in enumerate(names):
            labels[f'{representation}:{name}'] = [
                float(vectors[uuid][index]) if uuid in vectors else np.nan for uuid in labels['uuid']
            ]
    metadata = {
        'builder': 'aiida_matembed.dft.dataset.dft_structure_set',
        'group': group.label,
        'group_uuid': group.uuid,
        'structure_link': structure_link,
        'representation': representation,
    }
    names = [f'StructureData<{pk}>' for pk in labels['pk']]
    pymatgen = [structures[pk].get_pymatgen_structure() for pk in labels['pk']]
    columns = {k: np.asarray(v) for k, v in labels.items()}
    return StructureSet.from_structures(pymatgen, columns, metadata, source='user', names=names), skipped
