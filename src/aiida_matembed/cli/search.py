"""``verdi data matembed search | identify | map``: ask the graph for similar structures, phases and maps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from aiida.cmdline.params import options
from aiida.cmdline.utils import decorators, echo

from . import cmd_matembed
from .params import KALPHA2_OPTION, MEASURED_WAVELENGTH_OPTION, parse_params, wavelength_value

__all__ = ('cmd_identify', 'cmd_map', 'cmd_search')


def _source(representation: str | None, model: str | None, params: tuple[str, ...], modality: str | None) -> Any:
    from ..search import VectorSource

    if (representation is None) == (model is None):
        echo.echo_critical('give either -r/--representation or -m/--model')
    try:
        if representation is not None:
            from ..core.representations import load_representation_class

            load_representation_class(representation).from_params(parse_params(params))
            return VectorSource(representation=representation, params=parse_params(params))
        return VectorSource(model=int(model) if model.isdigit() else model, modality=modality)  # type: ignore[union-attr, arg-type]
    except Exception as exception:
        echo.echo_critical(str(exception))


def _vector_options(function: Any) -> Any:
    for decorator in reversed(
        [
            options.GROUP(required=True, help='Group whose StructureData are searched.'),
            click.option('-r', '--representation', help='Representation of the vectors, e.g. matembed.magpie.'),
            click.option('-p', '--param', 'params', multiple=True, help='Representation option key=value (JSON).'),
            click.option('-m', '--model', help='Model of the vectors (name or ModelData pk), e.g. matembed.cmml.'),
            click.option(
                '--modality', type=click.Choice(['structure', 'xrd']), help='Model input (default: its first).'
            ),
            click.option(
                '--no-compute', is_flag=True, help='Use only stored vectors; do not compute the missing rows first.'
            ),
        ]
    ):
        function = decorator(function)
    return function


@cmd_matembed.command('search')
@click.argument('query')
@_vector_options
@click.option('-k', type=click.IntRange(min=1), default=10, show_default=True, help='Number of neighbours.')
@click.option('--metric', type=click.Choice(['cosine', 'euclidean']), default='cosine', show_default=True)
@click.option(
    '--match', 'structure_match', is_flag=True,
    help='Find crystallographically equivalent structures instead (pymatgen StructureMatcher; no vectors needed).',
)  # fmt: skip
@click.option('--json', 'as_json', is_flag=True, help='Print {"matches": [{pk, uuid, formula, distance}]} as JSON.')
@decorators.with_dbenv()
def cmd_search(
    query: str,
    group: Any,
    representation: str | None,
    params: tuple[str, ...],
    model: str | None,
    modality: str | None,
    no_compute: bool,
    k: int,
    metric: str,
    structure_match: bool,
    as_json: bool,
) -> None:
    """Structures of a Group most similar to QUERY (a StructureData pk / UUID, or a structure file).

    Searches the stored vectors (FeaturesData) of the Group's structures, computing missing rows first, through a
    nearest-neighbour index that is reused while those vectors do not change. With --match, lists the structures
    that are crystallographically the same as QUERY ("is it already in my database?").
    """
    from ..search import equivalent_structures, similar_structures

    target: Any = query if Path(query).is_file() else (int(query) if query.isdigit() else query)
    if structure_match:
        try:
            found = equivalent_structures(target, group)
        except Exception as exception:
            echo.echo_critical(str(exception))
        rows = [{**n.as_dict(), 'max_displacement': d} for n, d in found]
        if as_json:
            click.echo(json.dumps({'matches': rows}, indent=2))
            return
        if not rows:
            echo.echo_report(f'no structure of group {group.label!r} matches {query} (StructureMatcher)')
        for row in rows:
            click.echo(f'  StructureData<{row["pk"]}> {row["formula"]:<16} rms {row["distance"]:.4f}  {row["uuid"]}')
        return
    source = _source(representation, model, params, modality)
    try:
        neighbours = similar_structures(
            target,
            group,
            source,
            k=k,
            metric=metric,  # type: ignore[arg-type]
            compute=not no_compute,
        )
    except Exception as exception:
        echo.echo_critical(str(exception))
    if as_json:
        click.echo(json.dumps({'matches': [n.as_dict() for n in neighbours]}, indent=2))
        return
    click.echo(f'{"rank":>4}  {"pk":>7}  {"formula":<16} {metric + " distance":>18}  uuid')
    for rank, n in enumerate(neighbours, start=1):
        click.echo(f'{rank:>4}  {n.pk:>7}  {n.formula:<16} {n.distance:>18.5f}  {n.uuid}')


# ------------------------------------------------------------------------------------------ identify
def _check_file_wavelength(path: Path, wavelength: str | float) -> None:
    """Refuse a ``--wavelength`` that contradicts the K-alpha1 wavelength an XRDML file records."""
    from ..core.search.patterns import xrdml_wavelength
    from ..core.xrd.wavelengths import WAVELENGTHS, resolve_wavelength

    if path.suffix.lower() != '.xrdml':
        return
    recorded = xrdml_wavelength(path)
    if recorded is None:
        return
    given = resolve_wavelength(wavelength)
    if isinstance(wavelength, str) and f'{wavelength}1' in WAVELENGTHS:
        given = WAVELENGTHS[f'{wavelength}1']
    if abs(given - recorded[0]) > 0.002 * recorded[0]:
        raise ValueError(
            f'{path} was measured at K-alpha1 = {recorded[0]:g} Å, but --wavelength {wavelength} is {given:g} Å: '
            'give the wavelength of the measurement'
        )


@cmd_matembed.command('identify')
@click.argument('pattern', type=click.Path(dir_okay=False, path_type=Path))
@options.GROUP(required=True, help='Group of candidate StructureData.')
@MEASURED_WAVELENGTH_OPTION
@click.option('--top', type=click.IntRange(min=1), default=5, show_default=True, help='Matches to list.')
@click.option('--max-phases', type=click.IntRange(min=1), default=3, show_default=True, help='Most phases to fit.')
@click.option(
    '--max-strain', type=click.FloatRange(0, 0.2), default=0.04, show_default=True,
    help='Largest relative change of the d-spacings of a candidate (lattice strain, thermal expansion).',
)  # fmt: skip
@KALPHA2_OPTION
@click.option('--store', is_flag=True, help='Store the pattern and the identification with provenance.')
@click.option(
    '--symmetry', 'unknown_symmetry', is_flag=True,
    help='Index the peaks no candidate explains (at least 6) and rank their space groups (see `symmetry`).',
)  # fmt: skip
@click.option('--plot', 'plot_path', type=click.Path(dir_okay=False, path_type=Path), help='Write a figure (PNG).')
@click.option('--json', 'as_json', is_flag=True, help='Print {"matches": [...], "phases": [...]} as JSON.')
@decorators.with_dbenv()
def cmd_identify(
    pattern: Path,
    group: Any,
    wavelength: str,
    top: int,
    max_phases: int,
    max_strain: float,
    kalpha2: bool | None,
    store: bool,
    unknown_symmetry: bool,
    plot_path: Path | None,
    as_json: bool,
) -> None:
    """Phases in a measured powder PATTERN (.xy, .xye, .csv, .xrdml) among the structures of a Group.

    Background removal, peak search and a search-match against the candidates' simulated peaks (a d-spacing scale
    and a zero shift refined per candidate), then a non-negative least-squares fit of up to --max-phases profiles
    with weight fractions. The candidates' peaks are simulated once and stored (incremental).
    """
    from ..core.search.patterns import read_pattern
    from ..identify import identify_in_group

    try:
        measured = read_pattern(pattern)
        _check_file_wavelength(pattern, wavelength_value(wavelength))
        result, summary, stored = identify_in_group(
            measured,
            group,
            wavelength=wavelength_value(wavelength),
            top=top,
            max_phases=max_phases,
            max_strain=max_strain,
            strip_kalpha2=kalpha2,
            store=store,
        )
    except Exception as exception:
        echo.echo_critical(str(exception))
    if plot_path is not None:
        from ..core.search.identify import plot_identification

        plot_identification(result, path=plot_path, title=pattern.name)
    if stored is not None:
        summary['node'] = {'pk': stored.pk, 'uuid': stored.uuid}
    if unknown_symmetry:
        from ..core.symmetry import symmetry_of_unexplained

        unknown = symmetry_of_unexplained(result)
        summary['unknown_phase'] = unknown.as_dict() if unknown is not None else None
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    echo.echo_report(
        f'{pattern}: {len(result.peaks)} peaks found, {result.n_candidates} candidates, '
        f'wavelength {result.wavelength:g} Å'
    )
    click.echo(f'{"rank":>4}  {"pk":>7}  {"formula":<16} {"score":>6}  {"d scale":>8}  {"zero (°)":>8}')
    for rank, match in enumerate(summary['matches'], start=1):
        click.echo(
            f'{rank:>4}  {match["pk"]:>7}  {match["formula"]:<16} {match["score"]:>6.3f}  {match["d_scale"]:>8.4f}  '
            f'{match["zero_shift"]:>8.3f}'
        )
    click.echo('phases (profile fit):')
    for phase in summary['phases']:
        click.echo(f'  {phase["formula"]:<16} pk {phase["pk"]:<7} weight fraction {phase["weight_fraction"]:.3f}')
    click.echo(f'residual Rwp {summary["rwp"]:.3f}; {len(summary["unexplained_peaks"])} unexplained peak(s)')
    for peak in summary['unexplained_peaks'][:10]:
        click.echo(f'  unexplained peak at 2θ = {peak["two_theta"]:.3f}° (relative intensity {peak["intensity"]:.1f})')
    if summary.get('unknown_phase'):
        u = summary['unknown_phase']
        click.echo(f'unexplained peaks: {u["crystal_system"]}, space groups {u["space_group"]} ({u["route"]})')
    if stored is not None:
        echo.echo_success(f'stored as PhaseIdentificationData<{stored.pk}> from {stored.creator.process_label}')
    if plot_path is not None:
        echo.echo_success(f'plotted to {plot_path}')


# ------------------------------------------------------------------------------------------------ map
@cmd_matembed.command('map')
@_vector_options
@click.option('-o', '--output', type=click.Path(dir_okay=False, path_type=Path), required=True, help='PNG file.')
@click.option('--html', 'html_path', type=click.Path(dir_okay=False, path_type=Path), help='Interactive HTML map.')
@click.option(
    '--method', type=click.Choice(['umap', 'tsne', 'pca']), default='umap', show_default=True,
    help='2-D projection.',
)  # fmt: skip
@click.option(
    '--color-by', default='crystal_system', show_default=True,
    help='crystal_system, space_group, element, extras.KEY, LINK.KEY (an output of a DFT process of the '
    'structure, e.g. output_parameters.energy) or MODEL[:COLUMN] (a stored prediction, e.g. matembed.xrd_symmetry:0).',
)  # fmt: skip
@click.option('--seed', type=int, default=0, show_default=True, help='Random seed of the projection.')
@click.option('--json', 'as_json', is_flag=True, help='Print the map coordinates as JSON.')
@decorators.with_dbenv()
def cmd_map(
    group: Any,
    representation: str | None,
    params: tuple[str, ...],
    model: str | None,
    modality: str | None,
    no_compute: bool,
    output: Path,
    html_path: Path | None,
    method: str,
    color_by: str,
    seed: int,
    as_json: bool,
) -> None:
    """Draw a 2-D map (UMAP, t-SNE or PCA) of a Group's stored vectors as PNG and, with --html, interactively."""
    from ..maps import group_map

    source = _source(representation, model, params, modality)
    try:
        result = group_map(
            group, source, output=output, html=html_path, method=method, color_by=color_by, seed=seed,
            compute=not no_compute,
        )  # fmt: skip
    except Exception as exception:
        echo.echo_critical(str(exception))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    echo.echo_success(f'map of {len(result["points"])} structures ({method}) written to {output}')
    if html_path is not None:
        echo.echo_success(f'interactive map written to {html_path}')
