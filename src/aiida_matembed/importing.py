"""Import structure files into an AiiDA Group: every readable structure kept, every other one explained.

:func:`import_structures` is what ``verdi data matembed import`` runs. For each file (folders are searched
recursively, patterns expanded; :func:`~aiida_matembed.core.datasets.importing.collect_files`), each structure
read and checked by :mod:`aiida_matembed.core.datasets.importing` becomes one stored ``StructureData`` in the
Group, with these node extras:

* ``source_file`` (file name), ``source_path`` (absolute path at import), ``source_sha256`` (of the file's
  bytes), ``source_item`` (CIF data block, ``frame 2``, ``row 5``, ... or ``''``) and, for CIFs, ``cif_block``;
* ``formula`` (reduced), ``space_group`` (spglib international symbol, symprec 0.01 Å) and
  ``space_group_number``; ``partial_occupancy`` (True for a disordered structure: its sites are kinds with
  weights, which compositional representations use and structural ones record as failures);
* ``matembed_labels``: scalar labels the file gives (extxyz info, ASE db key-value pairs, JSON fields);
* ``stripped_properties``: oxidation states, spins, magnetic moments and other site properties that
  ``StructureData`` cannot hold (see :mod:`aiida_matembed.data.convert`), when the file had any;
* ``matembed_import_key``: ``<sha256>/<item>``, so that importing the same file again adds nothing.

Each file's structures are stored and added to the Group in one transaction: an interrupted import leaves whole
files imported or not at all, and running it again completes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiida import orm

from .core.datasets.importing import (
    MAX_SITES,
    ImportFailure,
    ImportItem,
    collect_files,
    describe_structure,
    file_sha256,
    read_file,
)
from .datasets import LABELS_EXTRA

if TYPE_CHECKING:
    from pymatgen.core import Structure

__all__ = ('IMPORT_KEY_EXTRA', 'ImportReport', 'import_structures')

IMPORT_KEY_EXTRA = 'matembed_import_key'
"""Node extra ``<sha256 of the file>/<item>`` that makes a repeated import add nothing."""


@dataclass
class ImportReport:
    """What an import did: one entry per structure or per refused file / item (all JSON-serialisable)."""

    imported: list[dict[str, Any]] = field(default_factory=list)
    """``{'file', 'item', 'pk', 'formula', 'partial_occupancy'}`` of each new ``StructureData``."""
    failed: list[dict[str, Any]] = field(default_factory=list)
    """``{'file', 'item', 'reason'}`` of each file or structure that could not be imported."""
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    """``{'file', 'item', 'pk', 'reason'}``: already in the Group (same file and item, or ``dedupe`` match)."""
    n_files: int = 0
    """Number of files read."""

    def as_dict(self) -> dict[str, Any]:
        """The report as the JSON of ``verdi data matembed import --json``."""
        return {'imported': self.imported, 'failed': self.failed, 'duplicates': self.duplicates}


def _existing_keys(group: orm.Group) -> dict[str, int]:
    query = orm.QueryBuilder().append(orm.Group, filters={'id': group.pk}, tag='g')
    query.append(orm.StructureData, with_group='g', project=['id', f'extras.{IMPORT_KEY_EXTRA}'])
    return {key: pk for pk, key in query.iterall() if key}


class _Deduplicator:
    """Finds a structure already in the Group (or imported earlier in this run) that pymatgen says is the same."""

    def __init__(self, group: orm.Group) -> None:
        from pymatgen.analysis.structure_matcher import StructureMatcher

        self.group = group
        self.matcher = StructureMatcher()
        self.by_formula: dict[str, list[tuple[int, Structure]]] = {}

    def _candidates(self, formula: str) -> list[tuple[int, Structure]]:
        if formula not in self.by_formula:
            from .data.convert import structure_data_to_pymatgen

            query = orm.QueryBuilder().append(orm.Group, filters={'id': self.group.pk}, tag='g')
            query.append(orm.StructureData, with_group='g', filters={'extras.formula': formula}, project='*')
            self.by_formula[formula] = [(n.pk, structure_data_to_pymatgen(n)) for n in query.all(flat=True)]
        return self.by_formula[formula]

    def find(self, structure: Structure, formula: str) -> int | None:
        for pk, other in self._candidates(formula):
            try:
                if self.matcher.fit(structure, other):
                    return pk
            except Exception:  # the matcher refuses some disordered pairs: not a duplicate then
                continue
        return None

    def add(self, pk: int, structure: Structure, formula: str) -> None:
        self._candidates(formula).append((pk, structure))


def _node_for(item: ImportItem, path: Path, sha256: str) -> tuple[orm.StructureData, dict[str, Any]]:
    from .data.convert import pymatgen_to_structure_data, stripped_properties

    node = pymatgen_to_structure_data(item.structure, pbc=item.pbc)
    described = describe_structure(item.structure)
    extras: dict[str, Any] = {
        'source_file': path.name,
        'source_path': str(path.resolve()),
        'source_sha256': sha256,
        'source_item': item.item,
        'formula': described['formula'],
        'space_group': described['space_group'],
        'space_group_number': described['space_group_number'],
        'partial_occupancy': described['partial_occupancy'],
        IMPORT_KEY_EXTRA: f'{sha256}/{item.item}',
    }
    if 'cif_block' in item.labels:
        extras['cif_block'] = item.labels['cif_block']
    labels = {k: v for k, v in item.labels.items() if k != 'cif_block'}
    if labels:
        extras[LABELS_EXTRA] = labels
    stripped = stripped_properties(item.structure)
    if stripped:
        extras['stripped_properties'] = stripped
    node.label = described['formula']
    node.description = f'imported from {path.name}' + (f' [{item.item}]' if item.item else '')
    return node, extras


def import_structures(
    paths: Sequence[str | Path],
    group: orm.Group | str,
    *,
    fmt: str = 'auto',
    dedupe: bool = False,
    max_sites: int = MAX_SITES,
    progress: Callable[[int], Any] | None = None,
    on_files: Callable[[int], Any] | None = None,
) -> ImportReport:
    """Import every structure of ``paths`` into ``group`` (created if it does not exist); never stops at a bad file.

    :param paths: files, folders (searched recursively) and glob patterns.
    :param group: a Group or the label of one.
    :param fmt: ``auto`` (by file name, then content) or one of ``cif``, ``poscar``, ``extxyz``, ``ase-db``, ``json``.
    :param dedupe: skip structures that pymatgen's ``StructureMatcher`` (default tolerances) finds already in the
        Group or earlier in this import (compared within the same reduced formula).
    :param progress: called with the number of files done after each file.
    :param on_files: called once with the number of files found, before reading.
    :return: the report (the node extras are listed in the module docstring).
    """
    from aiida.manage import get_manager

    if isinstance(group, str):
        group, _ = orm.Group.collection.get_or_create(label=group)
    files, missing = collect_files(paths)
    report = ImportReport(n_files=len(files))
    report.failed.extend({'file': f.file, 'item': f.item, 'reason': f.reason} for f in missing)
    if on_files is not None:
        on_files(len(files))
    existing = _existing_keys(group)
    deduplicator = _Deduplicator(group) if dedupe else None
    storage = get_manager().get_profile_storage()
    for done, path in enumerate(files, start=1):
        try:
            sha256 = file_sha256(path)
        except OSError as exception:
            report.failed.append({'file': str(path), 'item': '', 'reason': f'cannot read: {exception.strerror}'})
            sha256 = ''
        pending: list[tuple[ImportItem, orm.StructureData, dict[str, Any]]] = []
        entries = read_file(path, fmt, max_sites=max_sites) if sha256 else iter(())
        for entry in entries:
            if isinstance(entry, ImportFailure):
                report.failed.append({'file': entry.file, 'item': entry.item, 'reason': entry.reason})
                continue
            key = f'{sha256}/{entry.item}'
            if key in existing:
                report.duplicates.append(
                    {'file': entry.file, 'item': entry.item, 'pk': existing[key],
                     'reason': 'already in the group (same file content and item)'}
                )  # fmt: skip
                continue
            try:
                node, extras = _node_for(entry, path, sha256)
            except Exception as exception:
                report.failed.append({'file': entry.file, 'item': entry.item, 'reason': f'cannot store: {exception}'})
                continue
            if deduplicator is not None:
                match = deduplicator.find(entry.structure, extras['formula'])
                if match is not None:
                    report.duplicates.append(
                        {'file': entry.file, 'item': entry.item, 'pk': match,
                         'reason': f'the same structure as StructureData<{match}> (pymatgen StructureMatcher)'}
                    )  # fmt: skip
                    continue
            existing[key] = -1  # the same item twice in one file (or the same file twice) is imported once
            pending.append((entry, node, extras))
        if pending:
            with storage.transaction():
                stored = []
                for _entry, node, extras in pending:
                    node.base.extras.set_many(extras)
                    stored.append(node.store())
                group.add_nodes(stored)
            for (entry, _node, extras), stored_node in zip(pending, stored, strict=True):
                pk = int(stored_node.pk)  # type: ignore[arg-type]
                existing[extras[IMPORT_KEY_EXTRA]] = pk
                if deduplicator is not None:
                    deduplicator.add(pk, entry.structure, extras['formula'])
                report.imported.append(
                    {'file': entry.file, 'item': entry.item, 'pk': pk, 'formula': extras['formula'],
                     'partial_occupancy': extras['partial_occupancy']}
                )  # fmt: skip
        if progress is not None:
            progress(done)
    return report
