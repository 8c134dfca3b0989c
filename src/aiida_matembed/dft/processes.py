"""Finished DFT processes of any plugin as sources of structures and labels.

A Group (or a list of pks) may hold DFT processes instead of structures: a ``PwRelaxWorkChain`` of
aiida-quantumespresso, a VASP or CP2K workflow, a plain ``PwCalculation``. The structure a process stands
for is its output structure (link ``output_structure`` unless told otherwise), or, for processes that
output none (scf-only runs), its input structure. Labels are read from the outputs that plugins use:

============================ ================================================================================
column                       where it is read (first found)
============================ ================================================================================
``energy`` (eV)              ``output_parameters.energy`` (Quantum ESPRESSO, CP2K: converted from Hartree when
                             ``energy_units`` says so), ``misc.total_energies.energy_extrapolated`` (VASP)
``energy_per_atom`` (eV)     ``energy`` divided by the number of sites of the structure
``pressure`` (GPa)           trace / 3 of the last stress of ``output_trajectory`` (QE's sign: positive =
                             compressed), or ``output_parameters.pressure``
``total_magnetization`` (μB) ``output_parameters.total_magnetization`` / ``misc.total_magnetization``
``band_gap`` (eV)            ``output_parameters.band_gap``, else LUMO - HOMO of the output parameters, else
                             from the bands of ``output_band`` and the number of electrons (non spin-polarised,
                             0 for metals), NaN when there are no empty bands
============================ ================================================================================
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiida import orm

from ..calculations.batch import chunks

__all__ = (
    'DFT_COLUMNS',
    'DFT_UNITS',
    'LABEL_SOURCES',
    'DftRecord',
    'GroupMembers',
    'dft_labels',
    'group_members',
    'label_values',
    'process_structure',
    'read_dft_records',
)

DFT_COLUMNS = ('energy', 'energy_per_atom', 'pressure', 'total_magnetization', 'band_gap')
"""Label columns read from finished DFT processes (units in the module docstring)."""

DFT_UNITS = {
    'energy': 'eV',
    'energy_per_atom': 'eV/atom',
    'pressure': 'GPa',
    'total_magnetization': 'μB',
    'band_gap': 'eV',
}
"""Units of :data:`DFT_COLUMNS`."""

HARTREE_TO_EV = 27.211386245988
"""CODATA 2018."""


@dataclass
class GroupMembers:
    """What a Group (or a list of pks) holds, resolved to structures.

    :param structure_pks: the structures, in increasing pk order, without repeats.
    :param process_of: structure pk -> pk of the DFT process it came from (only for process members).
    :param skipped: ``(pk, reason)`` for members that give no structure (unfinished or failed processes, a
        missing output link, nodes of other types).
    """

    structure_pks: list[int]
    process_of: dict[int, int] = field(default_factory=dict)
    skipped: list[tuple[int, str]] = field(default_factory=list)


def process_structure(process: orm.ProcessNode, structure_link: str = 'output_structure') -> orm.StructureData:
    """The structure a finished process stands for: its output ``structure_link``, else its input structure.

    :raises ValueError: when the process has neither (naming the process, the link and the outputs it has).
    """
    outputs = {link.link_label: link.node for link in process.base.links.get_outgoing().all()}
    node = outputs.get(structure_link)
    if isinstance(node, orm.StructureData):
        return node
    structure_outputs = sorted(label for label, n in outputs.items() if isinstance(n, orm.StructureData))
    if structure_outputs:
        raise ValueError(
            f'{process.process_label}<{process.pk}> has no output {structure_link!r}; its structure outputs are '
            f'{structure_outputs} (choose one with the structure-link option)'
        )
    inputs = {
        link.link_label: link.node
        for link in process.base.links.get_incoming().all()
        if isinstance(link.node, orm.StructureData)
    }
    for label in ('structure', *sorted(inputs)):
        if label in inputs and (label == 'structure' or label.endswith('__structure') or len(inputs) == 1):
            return inputs[label]
    raise ValueError(
        f'{process.process_label}<{process.pk}> has no output {structure_link!r} and no single input structure '
        f'(outputs: {sorted(outputs)})'
    )


def _finished_ok(process: orm.ProcessNode) -> str | None:
    """``None`` for a process that finished with exit status 0, else the reason it is not usable."""
    state = process.process_state.value if process.process_state is not None else 'unknown'
    if not process.is_terminated:
        return f'{process.process_label}<{process.pk}> has not finished (state {state})'
    if not process.is_finished_ok:
        status = process.exit_status
        message = process.exit_message or ''
        reason = f'exit status {status}' if status is not None else state
        return f'{process.process_label}<{process.pk}> did not finish ok ({reason}{": " + message if message else ""})'
    return None


def group_members(
    group: orm.Group | None = None,
    *,
    pks: Sequence[int] | None = None,
    structure_link: str = 'output_structure',
) -> GroupMembers:
    """Resolve the members of ``group`` (or the nodes ``pks``) to structures.

    ``StructureData`` members are taken as they are; finished DFT processes give their output structure
    (:func:`process_structure`); unfinished or failed processes and other nodes are listed in ``skipped``.
    """
    if (group is None) == (pks is None):
        raise ValueError('give either a group or pks')
    if group is not None:
        query = orm.QueryBuilder().append(orm.Group, filters={'id': group.pk}, tag='group')
        query.append(orm.StructureData, with_group='group', project='id')
        structures = set(query.all(flat=True))
        query = orm.QueryBuilder().append(orm.Group, filters={'id': group.pk}, tag='group')
        query.append(orm.ProcessNode, with_group='group', project='*')
        processes = query.all(flat=True)
        others: list[int] = []
    else:
        structures, processes, others = set(), [], []
        ids = sorted(set(pks or []))
        for chunk in chunks(ids):
            for node in orm.QueryBuilder().append(orm.Node, filters={'id': {'in': chunk}}).all(flat=True):
                if isinstance(node, orm.StructureData):
                    structures.add(node.pk)
                elif isinstance(node, orm.ProcessNode):
                    processes.append(node)
                else:
                    others.append(node.pk)
        missing = sorted(set(ids) - structures - {p.pk for p in processes} - set(others))
        if missing:
            raise ValueError(f'no node with pk {missing}')
    members = GroupMembers([])
    members.skipped += [(pk, f'node {pk} is neither a StructureData nor a process') for pk in others]
    for process in sorted(processes, key=lambda p: p.pk):
        reason = _finished_ok(process)
        if reason is None:
            try:
                structure = process_structure(process, structure_link)
            except ValueError as exception:
                reason = str(exception)
        if reason is not None:
            members.skipped.append((process.pk, reason))
            continue
        if structure.pk in members.process_of:  # e.g. two scf runs of one input structure
            other = members.process_of[structure.pk]  # type: ignore[index]
            members.skipped.append((process.pk, f'stands for the same structure as process {other}: left out'))  # type: ignore[arg-type]
            continue
        members.process_of[structure.pk] = process.pk  # type: ignore[index]
        structures.add(structure.pk)  # type: ignore[arg-type]
    members.structure_pks = sorted(structures)
    return members


def _dict_outputs(process: orm.ProcessNode) -> dict[str, Any]:
    return {link.link_label: link.node for link in process.base.links.get_outgoing().all()}


def _energy(outputs: Mapping[str, Any]) -> float | None:
    parameters = outputs.get('output_parameters')
    if isinstance(parameters, orm.Dict):
        values = parameters.get_dict()
        if isinstance(values.get('energy'), int | float):
            units = str(values.get('energy_units', 'eV')).lower()
            factor = HARTREE_TO_EV if units in ('a.u.', 'au', 'hartree', 'ha') else 1.0
            return float(values['energy']) * factor
    misc = outputs.get('misc')
    if isinstance(misc, orm.Dict):
        totals = misc.get_dict().get('total_energies', {})
        for key in ('energy_extrapolated', 'energy_no_entropy', 'energy_free'):
            if isinstance(totals.get(key), int | float):
                return float(totals[key])
    return None


def _pressure(outputs: Mapping[str, Any]) -> float | None:
    trajectory = outputs.get('output_trajectory')
    if isinstance(trajectory, orm.ArrayData) and 'stress' in trajectory.get_arraynames():
        stress = np.asarray(trajectory.get_array('stress'))
        if stress.size:
            return float(np.trace(stress.reshape(-1, 3, 3)[-1]) / 3.0)
    parameters = outputs.get('output_parameters')
    if isinstance(parameters, orm.Dict) and isinstance(parameters.get_dict().get('pressure'), int | float):
        return float(parameters['pressure'])
    return None


def _magnetization(outputs: Mapping[str, Any]) -> float | None:
    for link in ('output_parameters', 'misc'):
        node = outputs.get(link)
        if isinstance(node, orm.Dict):
            value = node.get_dict().get('total_magnetization')
            if isinstance(value, int | float):
                return float(value)
    return None


def _band_gap(outputs: Mapping[str, Any]) -> float | None:
    parameters = outputs.get('output_parameters')
    values = parameters.get_dict() if isinstance(parameters, orm.Dict) else {}
    if isinstance(values.get('band_gap'), int | float):
        return float(values['band_gap'])
    homo, lumo = values.get('highest_occupied_level'), values.get('lowest_unoccupied_level')
    if isinstance(homo, int | float) and isinstance(lumo, int | float):
        return max(0.0, float(lumo) - float(homo))
    bands_node = outputs.get('output_band')
    electrons = values.get('number_of_electrons')
    if not isinstance(bands_node, orm.BandsData) or not isinstance(electrons, int | float):
        return None
    if values.get('lsda') or values.get('non_colinear_calculation'):
        return None  # spin-resolved bands: not read here
    bands = np.asarray(bands_node.get_bands())
    if bands.ndim != 2:
        return None
    n_occupied = electrons / 2.0
    if not float(n_occupied).is_integer():
        return 0.0  # an odd number of electrons per cell without spin polarisation: a metal
    if int(n_occupied) >= bands.shape[1]:
        return None  # no empty band computed
    occupied = int(n_occupied)
    return max(0.0, float(bands[:, occupied].min() - bands[:, occupied - 1].max()))


LABEL_SOURCES = ('output_parameters', 'misc', 'output_trajectory', 'output_band')
"""Output link labels the label columns are read from (the nodes a model trained on the labels links to)."""


def dft_labels(outputs: Mapping[str, orm.Data], structure: orm.StructureData) -> dict[str, float]:
    """The label columns (:data:`DFT_COLUMNS`) from a process's outputs (link label -> node); missing = NaN."""
    energy = _energy(outputs)
    n_sites = len(structure.base.attributes.get('sites', []))
    values = {
        'energy': energy,
        'energy_per_atom': energy / n_sites if energy is not None and n_sites else None,
        'pressure': _pressure(outputs),
        'total_magnetization': _magnetization(outputs),
        'band_gap': _band_gap(outputs),
    }
    return {k: (math.nan if v is None else float(v)) for k, v in values.items()}


@dataclass
class DftRecord:
    """One usable DFT result: the process, the structure it stands for, its labels and the output nodes read."""

    process_pk: int
    structure_pk: int
    labels: dict[str, float]
    sources: dict[str, orm.Data]


def read_dft_records(
    group: orm.Group | None = None,
    *,
    pks: Sequence[int] | None = None,
    structure_link: str = 'output_structure',
) -> tuple[list[DftRecord], list[tuple[int, str]]]:
    """Labels of every finished DFT process of ``group`` (or ``pks``), with the structure each stands for.

    :returns: the records (by process pk) and the skipped members ``(pk, reason)``. Members that are plain
        structures give no record.
    :raises ValueError: when the Group holds no finished DFT process at all (with the reasons of the others).
    """
    members = group_members(group, pks=pks, structure_link=structure_link)
    records = []
    for structure_pk, process_pk in sorted(members.process_of.items(), key=lambda item: item[1]):
        process = orm.load_node(process_pk)
        structure = orm.load_node(structure_pk)
        assert isinstance(process, orm.ProcessNode) and isinstance(structure, orm.StructureData)
        sources = {k: v for k, v in _dict_outputs(process).items() if k in LABEL_SOURCES}
        records.append(DftRecord(process_pk, structure_pk, dft_labels(sources, structure), sources))
    if not records:
        where = f'group {group.label!r}' if group is not None else f'nodes {list(pks or [])[:10]}'
        reasons = '; '.join(reason for _, reason in members.skipped[:5])
        raise ValueError(f'{where} holds no finished DFT process{": " + reasons if reasons else ""}')
    return records, members.skipped


def label_values(records: Iterable[DftRecord], column: str) -> np.ndarray:
    """The values of one label column, NaN where a record lacks it."""
    if column not in DFT_COLUMNS:
        raise ValueError(f'unknown DFT label {column!r}; known: {", ".join(DFT_COLUMNS)}')
    return np.array([record.labels[column] for record in records], dtype=float)
