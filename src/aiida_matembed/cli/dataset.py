"""``verdi data matembed dataset``: build, inspect and import the structure sets of the learned models."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import click
from aiida.cmdline.utils import echo

from ..core.datasets.importing import FORMATS
from . import cmd_matembed

__all__ = ('cmd_dataset',)

_SPLITS = ('train', 'heldout', 'all')


@cmd_matembed.group('dataset')
def cmd_dataset() -> None:
    """Training and held-out structure sets (StructureSet .npz files)."""


def _summary_dict(structure_set: Any) -> dict[str, Any]:
    """What :func:`_summary` prints, as JSON: counts, label names, metadata and the hash."""
    labels = structure_set.labels
    out: dict[str, Any] = {
        'n_structures': len(structure_set),
        'n_sites': len(structure_set.numbers),
        'labels': sorted(labels),
        'metadata': structure_set.metadata,
        'sha256': structure_set.sha256(),
    }
    for column in ('source', 'origin', 'crystal_system'):
        if column in labels:
            out[column] = {str(k): int(v) for k, v in structure_set.counts(column).items()}
    if 'space_group' in labels:
        out['n_space_groups'] = len(set(labels['space_group'].tolist()))
    return out


def _summary(structure_set: Any) -> None:
    """Print counts per source, origin and crystal system, the numbers of space groups and types, and the hash."""
    from ..core.datasets import heldout_prototypes

    labels = structure_set.labels
    click.echo(f'  structures     : {len(structure_set)} ({len(structure_set.numbers)} sites)')
    for column in ('source', 'origin', 'crystal_system'):
        if column in labels:
            counts = ', '.join(f'{k} {v}' for k, v in structure_set.counts(column).items())
            click.echo(f'  {column:<15}: {counts}')
    if 'space_group' in labels:
        click.echo(f'  space groups   : {len(set(labels["space_group"].tolist()))} distinct')
    if 'prototype' in labels:
        keys = set(labels['prototype'].tolist())
        held = sum(k in heldout_prototypes() for k in labels['prototype'].tolist())
        click.echo(f'  prototypes     : {len(keys)} distinct structure types; {held} structures of a held-out type')
    click.echo(f'  sha256         : {structure_set.sha256()}')


def _store_group(structure_set: Any, label: str) -> None:
    from aiida.cmdline.utils.decorators import load_backend_if_not_loaded

    from ..datasets import structure_set_to_group

    load_backend_if_not_loaded()
    try:
        group = structure_set_to_group(structure_set, label)
    except ValueError as exception:
        echo.echo_critical(str(exception))
    echo.echo_success(f'stored {len(structure_set)} StructureData in Group<{group.pk}> {group.label!r}')


def _check_output(output: Path, overwrite: bool) -> None:
    if output.suffix != '.npz':
        echo.echo_critical(f'OUTPUT must end in .npz, got {output.name}')
    if output.exists() and not overwrite:
        echo.echo_critical(f'{output} exists; use --overwrite')


@cmd_dataset.command('build')
@click.argument('output', type=click.Path(dir_okay=False, path_type=Path))
@click.option('-n', '--number', 'n', type=click.IntRange(min=1), required=True, help='Number of structures.')
@click.option('--seed', type=int, default=0, show_default=True, help='Seed (same seed, same set).')
@click.option('--split', type=click.Choice(_SPLITS), default='train', show_default=True, help='Structure types.')
@click.option(
    '--synthetic-fraction',
    type=click.FloatRange(0.0, 1.0),
    default=0.5,
    show_default=True,
    help='Share of synthetic pyxtal crystals (train / all).',
)
@click.option('--max-atoms', type=click.IntRange(min=2), default=48, show_default=True, help='Most atoms per cell.')
@click.option('-j', '--jobs', type=click.IntRange(min=1), default=1, show_default=True, help='Worker processes.')
@click.option('--group', 'group_label', help='Also store the structures as StructureData in a new Group.')
@click.option('--overwrite', is_flag=True, help='Replace OUTPUT if it exists.')
@click.option('--json', 'as_json', is_flag=True, help='Print the summary as JSON (no progress bar).')
def cmd_build(
    output: Path,
    n: int,
    seed: int,
    split: str,
    synthetic_fraction: float,
    max_atoms: int,
    jobs: int,
    group_label: str | None,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Build a reproducible structure set (synthetic crystals and decorated prototypes) into OUTPUT (.npz)."""
    from ..core.datasets import build_dataset

    _check_output(output, overwrite)
    with click.progressbar(
        length=n, label=f'building {split} set', show_pos=True, file=io.StringIO() if as_json else None
    ) as bar:
        try:
            structure_set = build_dataset(
                n,
                seed,
                split=split,
                synthetic_fraction=synthetic_fraction,
                max_atoms=max_atoms,
                n_jobs=jobs,
                progress=bar.update,
            )
        except (ValueError, RuntimeError) as exception:
            echo.echo_critical(str(exception))
    path = _save(structure_set, output)
    if as_json:
        click.echo(json.dumps({'output': str(path), **_summary_dict(structure_set)}, indent=1))
    else:
        echo.echo_success(f'wrote {len(structure_set)} structures to {path}')
        _summary(structure_set)
    if group_label:
        _store_group(structure_set, group_label)


@cmd_dataset.command('info')
@click.argument('file', type=click.Path(dir_okay=False, path_type=Path))
@click.option('--json', 'as_json', is_flag=True, help='Print the summary as JSON.')
def cmd_info(file: Path, as_json: bool) -> None:
    """Summarise a StructureSet FILE: counts per source and crystal system, space groups, structure types, hash."""
    from ..core.datasets import StructureSet

    try:
        structure_set = StructureSet.load(file)
    except (FileNotFoundError, ValueError) as exception:
        echo.echo_critical(str(exception))
    if as_json:
        click.echo(json.dumps({'file': str(file), **_summary_dict(structure_set)}, indent=1))
        return
    metadata = structure_set.metadata
    click.echo(f'StructureSet {file}')
    click.echo(f'  builder        : {metadata.get("builder", "?")} (version {metadata.get("version", "?")})')
    if 'seed' in metadata or 'parameters' in metadata:
        click.echo(f'  seed           : {metadata.get("seed")}; parameters: {json.dumps(metadata.get("parameters"))}')
    click.echo(f'  labels         : {", ".join(sorted(structure_set.labels))}')
    _summary(structure_set)


def _parse_dft_outputs(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for value in values:
        column, sep, spec = value.partition('=')
        if not sep or not column.strip() or not spec.strip():
            raise click.BadParameter(f'expected column=link_label.key, got {value!r}', param_hint='--dft-output')
        out[column.strip()] = spec.strip()
    return out


@cmd_dataset.command('import')
@click.argument('paths', nargs=-1, required=True, metavar='[SOURCE] OUTPUT', type=click.Path(path_type=Path))
@click.option('--group', 'group_label', help='Read the StructureData of this AiiDA Group instead of SOURCE.')
@click.option(
    '--dft-output',
    'dft_outputs',
    multiple=True,
    help='With --group: column=link_label.key read from the newest finished process of each structure '
    '(e.g. energy=output_parameters.energy); repeatable.',
)
@click.option('--extra', 'extras', multiple=True, help='With --group: node extras to read (default: matembed_labels).')
@click.option(
    '-r',
    '--representation',
    help='With --group of DFT processes: join the vectors of this representation (one column per feature).',
)
@click.option('--label-key', 'label_keys', multiple=True, help='With SOURCE: only these label keys (repeatable).')
@click.option(
    '-f',
    '--format',
    'fmt',
    type=click.Choice(FORMATS),
    default='auto',
    show_default=True,
    help='Format of SOURCE files.',
)
@click.option(
    '--strict', is_flag=True, help='Exit with status 1 if any file or structure was left out (after writing).'
)
@click.option('--json', 'as_json', is_flag=True, help='Print a JSON report: output, n_structures, failed.')
@click.option('--overwrite', is_flag=True, help='Replace OUTPUT if it exists.')
def cmd_import(
    paths: tuple[Path, ...],
    group_label: str | None,
    dft_outputs: tuple[str, ...],
    extras: tuple[str, ...],
    representation: str | None,
    label_keys: tuple[str, ...],
    fmt: str,
    strict: bool,
    as_json: bool,
    overwrite: bool,
) -> None:
    """Import user structures from SOURCE (file, folder or glob: CIF, POSCAR, extxyz, JSON, ASE db) or --group.

    With --group, give only OUTPUT. A Group of DFT processes (any plugin) gives the structures they output with
    their labels (energy, energy_per_atom, pressure, total_magnetization, band_gap) and, with -r, their vectors.
    Files and structures that cannot be read, and partially occupied structures
    (a set holds ordered crystals), are listed with the reason; every other structure is written to OUTPUT.
    """
    from ..core.datasets.importing import ImportFailure
    from ..core.datasets.loaders import read_structure_set
    from ..core.structures import InvalidStructureError

    if len(paths) > 2:
        echo.echo_critical(f'expected [SOURCE] OUTPUT, got {len(paths)} paths')
    source, output = (paths[0], paths[1]) if len(paths) == 2 else (None, paths[0])
    if (source is None) == (group_label is None):
        echo.echo_critical('give either SOURCE or --group, not both / neither')
    _check_output(output, overwrite)
    group_failures: list[Any] = []  # structures of --group left out
    if group_label is not None:
        from aiida import orm
        from aiida.cmdline.utils.decorators import load_backend_if_not_loaded
        from aiida.common.exceptions import NotExistent

        from ..datasets import LABELS_EXTRA, structure_set_from_group
        from ..dft.dataset import dft_structure_set, holds_processes

        load_backend_if_not_loaded()
        parsed = _parse_dft_outputs(dft_outputs)
        try:
            if holds_processes(orm.load_group(group_label)):  # DFT processes: their output structures and labels
                structure_set, skipped = dft_structure_set(group_label, representation=representation)
                for pk, reason in skipped if not as_json else []:
                    echo.echo_warning(f'{pk}: {reason}')
            else:
                if representation is not None:
                    echo.echo_critical(
                        '-r/--representation joins features with DFT outputs: give a Group of DFT processes'
                    )
                left_out: list[dict[str, Any]] = []
                structure_set = structure_set_from_group(
                    group_label, extras=extras or (LABELS_EXTRA,), dft_outputs=parsed or None, failures=left_out
                )
                group_failures = [ImportFailure(f'StructureData<{f["pk"]}>', '', f['reason']) for f in left_out]
        except NotExistent:
            echo.echo_critical(f'no Group with label {group_label!r}')
        except (ValueError, InvalidStructureError) as exception:
            echo.echo_critical(str(exception))
    failures: list[Any] = group_failures
    if group_label is not None and not as_json:
        for failure in failures:
            echo.echo_warning(f'{failure.where}: {failure.reason}')
    if group_label is None:
        if dft_outputs or extras:
            echo.echo_critical('--dft-output and --extra need --group')
        assert source is not None
        read, failures = read_structure_set([str(source)], fmt=fmt, label_keys=label_keys or None)
        if not as_json:
            for failure in failures:
                echo.echo_warning(f'{failure.where}: {failure.reason}')
        if read is None:
            echo.echo_critical(f'{source}: no structure could be read ({len(failures)} failure(s) above)')
        structure_set = read
    path = _save(structure_set, output)
    if as_json:
        failed = [{'file': f.file, 'item': f.item, 'reason': f.reason} for f in failures]
        click.echo(json.dumps({'output': str(path), 'n_structures': len(structure_set), 'failed': failed}, indent=1))
    else:
        echo.echo_success(
            f'wrote {len(structure_set)} structures to {path}' + (f'; {len(failures)} left out' if failures else '')
        )
        _summary(structure_set)
    if strict and failures:
        sys.exit(1)


def _save(structure_set: Any, output: Path) -> Path:
    """Save to OUTPUT through a temporary file in the same folder, so that a failed write leaves nothing behind."""
    temporary = output.with_name(f'.{output.name}.partial.npz')
    try:
        written = structure_set.save(temporary)
        written.replace(output)
    except OSError as exception:
        temporary.unlink(missing_ok=True)
        echo.echo_critical(f'cannot write {output}: {exception.strerror or exception}')
    return output
