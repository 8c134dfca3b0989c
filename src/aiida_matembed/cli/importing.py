"""``verdi data matembed import``: put structure files (CIF, POSCAR, extxyz, ASE db, pymatgen JSON) into a Group."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from aiida.cmdline.utils import decorators, echo

from ..core.datasets.importing import FORMATS
from . import cmd_matembed

__all__ = ('cmd_import',)


@cmd_matembed.command('import')
@click.argument('paths', nargs=-1, required=True, metavar='PATH...')
@click.option('-G', '--group', 'group_label', required=True, help='Label of the Group (created if it does not exist).')
@click.option(
    '-f', '--format', 'fmt', type=click.Choice(FORMATS), default='auto', show_default=True, help='Format of every file.'
)
@click.option('--dedupe', is_flag=True, help='Skip structures already in the Group (pymatgen StructureMatcher).')
@click.option('--strict', is_flag=True, help='Exit with status 1 if any file or structure failed (after the report).')
@click.option('--json', 'as_json', is_flag=True, help='Print the report as JSON: imported, failed, duplicates.')
@decorators.with_dbenv()
def cmd_import(paths: tuple[str, ...], group_label: str, fmt: str, dedupe: bool, strict: bool, as_json: bool) -> None:
    """Import every structure of PATH... (files, folders searched recursively, glob patterns) into a Group.

    Each structure becomes a StructureData with its source file, CIF data block, formula and space group as
    extras; every file or structure that cannot be imported is listed with the reason, and the import goes on.
    Partially occupied sites are kept (as weighted kinds). Importing the same files again adds nothing.
    """
    from ..importing import import_structures

    bar: Any = None

    def start(n_files: int) -> None:
        nonlocal bar
        if not as_json:
            bar = click.progressbar(length=n_files, label='importing', show_pos=True, file=sys.stderr)
            bar.__enter__()

    done = 0

    def advance(n_done: int) -> None:
        nonlocal done
        if bar is not None:
            bar.update(n_done - done)
        done = n_done

    try:
        report = import_structures(paths, group_label, fmt=fmt, dedupe=dedupe, progress=advance, on_files=start)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=1))
    else:
        for entry in report.failed:
            where = f'{entry["file"]} [{entry["item"]}]' if entry['item'] else entry['file']
            echo.echo_warning(f'{where}: {entry["reason"]}')
        for entry in report.duplicates:
            where = f'{entry["file"]} [{entry["item"]}]' if entry['item'] else entry['file']
            echo.echo_report(f'skipped {where}: {entry["reason"]}')
        partial = sum(bool(e['partial_occupancy']) for e in report.imported)
        echo.echo_success(
            f'{len(report.imported)} structure(s) imported into Group {group_label!r} from {report.n_files} file(s)'
            + (f' ({partial} partially occupied)' if partial else '')
            + f'; {len(report.failed)} failed, {len(report.duplicates)} skipped as duplicates'
        )
    if strict and report.failed:
        sys.exit(1)
