"""``verdi data matembed symmetry``: crystal system, space group and cell of a measured powder pattern."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click
from aiida.cmdline.utils import decorators, echo

from . import cmd_matembed
from .params import KALPHA2_OPTION, MEASURED_WAVELENGTH_OPTION, wavelength_value

__all__ = ('cmd_symmetry',)


@cmd_matembed.command('symmetry')
@click.argument('pattern', type=click.Path(dir_okay=False, path_type=Path))
@MEASURED_WAVELENGTH_OPTION
@click.option('--top', type=click.IntRange(min=1), default=5, show_default=True, help='Space groups to list.')
@click.option(
    '--classifier/--no-classifier', default=True, show_default=True,
    help='Let the learned matembed.xrd_symmetry classifier decide where the indexing is ambiguous.',
)  # fmt: skip
@KALPHA2_OPTION
@click.option('--store', is_flag=True, help='Store the pattern and the result with provenance.')
@click.option('--json', 'as_json', is_flag=True, help='Print the result as JSON.')
@decorators.with_dbenv()
def cmd_symmetry(
    pattern: Path, wavelength: str, top: int, classifier: bool, kalpha2: bool | None, store: bool, as_json: bool
) -> None:
    """Crystal system, space group and unit cell of a single-phase powder PATTERN (.xy, .xye, .csv, .xrdml).

    Peak search, powder indexing (cells of every lattice system but triclinic, ranked by de Wolff M20), the
    space groups whose systematic absences fit the indexed lines, and the learned classifier where the indexing
    is ambiguous.
    """
    from ..core.search.patterns import read_pattern
    from ..symmetry import symmetry_of_pattern
    from .search import _check_file_wavelength

    try:
        measured = read_pattern(pattern)
        _check_file_wavelength(pattern, wavelength_value(wavelength))
        result, summary, stored = symmetry_of_pattern(
            measured, wavelength=wavelength_value(wavelength), store=store, top_k=top, use_classifier=classifier,
            strip_doublet=kalpha2,
        )  # fmt: skip
    except Exception as exception:
        echo.echo_critical(str(exception))
    if stored is not None:
        summary['node'] = {'pk': stored.pk, 'uuid': stored.uuid}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    echo.echo_report(f'{pattern}: {len(result.two_theta)} peaks, wavelength {result.wavelength:g} Å')
    click.echo(f'crystal system: {result.crystal_system}   (decided by: {result.route})')
    if result.cell is not None:
        cell = result.cell
        click.echo(
            f'cell ({result.lattice_system} {result.centring}): a {cell.a:.4f} b {cell.b:.4f} c {cell.c:.4f} Å, '
            f'alpha {cell.alpha:.3f} beta {cell.beta:.3f} gamma {cell.gamma:.3f}°, V {cell.volume:.2f} Å³'
        )
        click.echo(
            f'M{result.n_lines} {result.m20:.1f}, F{result.n_lines} {result.f_n:.1f}, '
            f'{result.n_indexed}/{result.n_lines} lines indexed, zero shift {result.zero_shift:+.3f}°'
        )
    click.echo(f'{"rank":>4}  {"number":>6}  {"symbol":<12} {"probability":>11}')
    for rank, (number, symbol, p) in enumerate(
        zip(result.space_group, result.space_group_symbols, result.probabilities, strict=True), start=1
    ):
        click.echo(f'{rank:>4}  {number:>6}  {symbol:<12} {p:>11.3f}' if math.isfinite(p) else f'{rank:>4} {number}')
    for warning in result.warnings:
        echo.echo_warning(warning)
    if stored is not None:
        echo.echo_success(f'stored as Dict<{stored.pk}> from {stored.creator.process_label}')
