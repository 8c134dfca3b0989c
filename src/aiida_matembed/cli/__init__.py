"""``verdi data matembed``: list representations, featurise, simulate XRD, show and export results."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import click
from aiida.cmdline.groups.verdi import VerdiCommandGroup
from aiida.cmdline.params import arguments, options, types
from aiida.cmdline.utils import decorators, echo

from ..core.xrd.profiles import PROFILE_SHAPES
from ..core.xrd.settings import DEFAULT_XRD, XrdSettings
from .params import check_selection, formula_of, group_structure_pks, parse_params, selected_pks, wavelength_value

__all__ = ('cmd_matembed',)


@click.group('matembed', cls=VerdiCommandGroup)
def cmd_matembed() -> None:
    """Materials representations stored with provenance (aiida-matembed)."""


@cmd_matembed.command('representations')
def cmd_representations() -> None:
    """List the registered representations: name, number of features, description."""
    from ..core.representations import list_representations, load_representation_class
    from ..plugins import use_aiida_entry_points

    use_aiida_entry_points()
    rows = []
    for name in list_representations():
        try:
            cls = load_representation_class(name)
            description = cls.description
            try:
                n_features: Any = cls().n_features
            except ValueError:  # columns depend on options taken from the batch (species)
                n_features = 'species'

        except Exception as exception:
            n_features, description = '?', f'(cannot load: {exception})'
        rows.append((name, str(n_features), description))
    width = max(len(r[0]) for r in rows) if rows else 10
    click.echo(f'{"name":<{width}}  {"features":>8}  description')
    for name, n_features, description in rows:
        click.echo(f'{name:<{width}}  {n_features:>8}  {description}')


@cmd_matembed.command('featurize')
@arguments.NODES('structures', required=False)
@options.GROUP(help='Featurise every StructureData of this Group (incremental).')
@click.option('-r', '--representation', required=True, help='Representation name, e.g. matembed.magpie.')
@click.option('-p', '--param', 'params', multiple=True, help='Option as key=value (repeatable); JSON values.')
@click.option('-b', '--batch-size', type=click.IntRange(min=1), default=1000, show_default=True)
@click.option('--force', is_flag=True, help='Also featurise structures that already have current results.')
@click.option('--submit', is_flag=True, help='Submit the FeaturizeGroupWorkChain to the daemon instead of running.')
@click.option('--store-graphs', is_flag=True, help='Graph representations: also store the graphs of each batch.')
@decorators.with_dbenv()
def cmd_featurize(
    structures: tuple[Any, ...],
    group: Any,
    representation: str,
    params: tuple[str, ...],
    batch_size: int,
    force: bool,
    submit: bool,
    store_graphs: bool,
) -> None:
    """Featurise STRUCTURES (pks / UUIDs) or a Group and store one FeaturesData per batch."""
    from ..calculations.batch import load_structures
    from ..calculations.featurize import featurize_structures
    from ..core.representations import load_representation_class
    from ..launch import featurize_group
    from ..workflows.featurize_group import pending_structure_pks, resolve_params

    parameters = parse_params(params)
    try:
        rep = load_representation_class(representation).from_params(parameters)
    except (ValueError, TypeError) as exception:
        echo.echo_critical(str(exception))
    if store_graphs and rep.output_kind != 'graph':
        echo.echo_critical(f'--store-graphs is only possible for a graph representation, not {representation}')
    check_selection(structures, group)
    if group is not None and submit:
        from .services import check_submit_services

        check_submit_services()
        overrides = {
            'parameters': parameters,
            'batch_size': batch_size,
            'skip_existing': not force,
            'store_graphs': store_graphs,
        }
        _, node = featurize_group(group, representation, overrides=overrides, submit=True)
        echo.echo_success(f'submitted FeaturizeGroupWorkChain<{node.pk}>')
        return
    if group is not None:
        parameters = resolve_params(representation, parameters, group=group)
        pks = pending_structure_pks(group, representation, parameters, skip_existing=not force)
        echo.echo_report(f'{len(pks)} structure(s) of group {group.label!r} need {representation}')
    else:
        pks = selected_pks(structures)
        parameters = resolve_params(representation, parameters, pks=pks)
    results = []
    with click.progressbar(length=len(pks), label='featurising', show_pos=True) as bar:
        for start in range(0, len(pks), batch_size):
            chunk = pks[start : start + batch_size]
            nodes = load_structures(chunk)
            features, process = featurize_structures(nodes, representation, parameters, store_graphs=store_graphs)
            results.append((features, process))
            bar.update(len(chunk))
    for features, process in results:
        n_failed = features.base.attributes.get('n_failed')
        echo.echo_success(
            f'FeaturesData<{features.pk}> ({features.base.attributes.get("n_rows")} x '
            f'{features.base.attributes.get("n_features")}, {n_failed} failed) '
            f'from {process.process_label}<{process.pk}>'
        )
        if 'graphs' in process.outputs:
            graphs = process.outputs.graphs
            echo.echo_success(f'CrystalGraphsData<{graphs.pk}> ({graphs.base.attributes.get("n_graphs")} graphs)')
        for failure in features.failures[:10]:
            echo.echo_warning(f'  StructureData<{failure["pk"]}>: {failure["message"]}')


def _two_theta_option(flag: str, end: int, which: str) -> Any:
    """``--two-theta-min`` / ``--two-theta-max``: one end of the 2θ range, defaults from ``DEFAULT_XRD``."""
    default = DEFAULT_XRD.two_theta_range[end]
    return click.option(flag, type=float, default=default, show_default=True, help=f'{which} 2θ (degrees).')


@cmd_matembed.command('xrd')
@arguments.NODES('structures', required=False)
@options.GROUP(help='Simulate every StructureData of this Group.')
@click.option(
    '-w',
    '--wavelength',
    default=DEFAULT_XRD.wavelength,
    show_default=True,
    help='Anode line (CuKa, CuKa1, MoKa, CrKa, FeKa, CoKa, AgKa, ...) or a wavelength in Å.',
)
@_two_theta_option('--two-theta-min', 0, 'Lowest')
@_two_theta_option('--two-theta-max', 1, 'Highest')
@click.option('--step', type=float, default=DEFAULT_XRD.step, show_default=True, help='2θ step (degrees).')
@click.option(
    '--shape',
    type=click.Choice(list(PROFILE_SHAPES)),
    default=DEFAULT_XRD.shape,
    show_default=True,
    help='Peak shape of the profiles.',
)
@click.option('--fwhm', type=float, default=DEFAULT_XRD.fwhm, show_default=True, help='Peak FWHM (degrees).')
@click.option(
    '--eta', type=float, default=DEFAULT_XRD.eta, show_default=True, help='Lorentzian fraction (pseudo-Voigt).'
)
@click.option(
    '--doublet/--no-doublet', default=DEFAULT_XRD.doublet, show_default=True, help='Render K-alpha1/K-alpha2 doublets.'
)
@click.option(
    '--plot',
    'plot_path',
    type=click.Path(dir_okay=False, path_type=Path),
    help='Save a figure (e.g. out.png) of the first successful structure (or of --row).',
)
@click.option('--row', type=click.IntRange(min=0), help='Row (position in the batch) to plot; default: first success.')
@click.option(
    '--export',
    'export_dir',
    type=click.Path(file_okay=False, path_type=Path),
    help='Write one <row>_<formula>.xy file (2θ, profile) per successful structure into this folder.',
)
@decorators.with_dbenv()
def cmd_xrd(
    structures: tuple[Any, ...],
    group: Any,
    wavelength: str,
    two_theta_min: float,
    two_theta_max: float,
    step: float,
    shape: str,
    fwhm: float,
    eta: float,
    doublet: bool,
    plot_path: Path | None,
    row: int | None,
    export_dir: Path | None,
) -> None:
    """Simulate the powder XRD patterns of STRUCTURES (pks / UUIDs) or a Group as one XrdPatternsData.

    Structures that fail are reported and stored as NaN rows; the others are kept.
    """
    from ..calculations.batch import load_structures
    from ..calculations.xrd import simulate_xrd_structures
    from ..core.xrd import write_xy

    check_selection(structures, group)
    parameters: dict[str, Any] = {
        'wavelength': wavelength_value(wavelength),
        'two_theta_range': [two_theta_min, two_theta_max],
        'step': step,
        'shape': shape,
        'fwhm': fwhm,
        'eta': eta,
        'doublet': doublet,
    }
    try:  # checked before anything is loaded or stored
        XrdSettings.from_dict(parameters)
    except ValueError as exception:
        echo.echo_critical(f'invalid XRD settings: {exception}')
    if group is not None:
        pks = group_structure_pks(group)
        if not pks:
            echo.echo_critical(f'group {group.label!r} has no StructureData')
    else:
        pks = selected_pks(structures)
    if row is not None and row >= len(pks):
        echo.echo_critical(f'--row {row} is out of range: {len(pks)} structure(s) selected')
    nodes = load_structures(pks)
    echo.echo_report(f'simulating the XRD patterns of {len(nodes)} structure(s)')
    try:
        patterns, process = simulate_xrd_structures(nodes, parameters)
    except ValueError as exception:
        echo.echo_critical(f'invalid XRD settings: {exception}')
    attributes = patterns.base.attributes
    n_failed = attributes.get('n_failed')
    cached = process.base.caching.get_cache_source()
    echo.echo_success(
        f'XrdPatternsData<{patterns.pk}> ({attributes.get("n_patterns")} patterns, {n_failed} failed) '
        f'from {process.process_label}<{process.pk}>' + (' (cached)' if cached else '')
    )
    failures = patterns.failures
    for failure in failures:
        echo.echo_warning(
            f'  row {failure["index"]} StructureData<{nodes[failure["index"]].pk}>: '
            f'{failure.get("error_type") or "error"}: {failure["message"]}'
        )
    failed_rows = {int(f['index']) for f in failures}
    good_rows = [i for i in range(len(nodes)) if i not in failed_rows]
    if export_dir is not None:
        try:
            export_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exception:
            echo.echo_critical(f'cannot write to {export_dir}: {exception.strerror or exception}')
        grid, profiles = patterns.grid, patterns.profiles
        settings = json.dumps(attributes.get('settings'))
        for index in good_rows:
            node = nodes[index]
            formula = formula_of(node)
            stem = ''.join(c for c in formula if c.isalnum() or c in '._-') or str(node.pk)
            header = (
                f'{formula} StructureData<{node.pk}> {node.uuid}\n'
                f'row {index} of XrdPatternsData<{patterns.pk}> {patterns.uuid}\n'
                f'settings: {settings}\n'
                '2theta(deg) intensity'
            )
            try:
                write_xy(export_dir / f'{index}_{stem}.xy', grid, profiles[index], header=header)
            except OSError as exception:
                echo.echo_critical(
                    f'cannot write {export_dir / f"{index}_{stem}.xy"}: {exception.strerror or exception}'
                )
        echo.echo_success(f'wrote {len(good_rows)} .xy file(s) to {export_dir}')
    if plot_path is not None:
        from ..core.xrd.plot import plot_pattern

        if row is None:
            if not good_rows:
                echo.echo_critical('no structure succeeded; nothing to plot')
            row = good_rows[0]
        elif row in failed_rows:
            echo.echo_critical(f'row {row} failed; nothing to plot')
        value = attributes.get('wavelength')
        angstrom = attributes.get('wavelength_angstrom')
        label = f'{value} ({angstrom:g} Å)' if isinstance(value, str) else f'λ = {angstrom:g} Å'
        title = f'{formula_of(nodes[row])}, {label}'
        plot_pattern(patterns.grid, patterns.profiles[row], patterns.peaks(row), title=title, path=plot_path)
        echo.echo_success(f'plotted row {row} (StructureData<{nodes[row].pk}>) to {plot_path}')


@cmd_matembed.command('show')
@arguments.DATUM(
    'node',
    type=types.DataParamType(sub_classes=('aiida.data:matembed.features', 'aiida.data:matembed.crystal_graphs')),
)
@click.option('-n', '--rows', 'n_rows', default=5, show_default=True, help='Rows to print.')
@decorators.with_dbenv()
def cmd_show(node: Any, n_rows: int) -> None:
    """Show a FeaturesData (representation, shape, failures, first rows) or a CrystalGraphsData."""
    import numpy as np

    from ..data import CrystalGraphsData

    attributes = node.base.attributes
    if isinstance(node, CrystalGraphsData):
        click.echo(f'CrystalGraphsData<{node.pk}> {node.uuid}')
        click.echo(f'  representation : {attributes.get("representation")} ({json.dumps(node.params)})')
        click.echo(
            f'  graphs         : {attributes.get("n_graphs")} ({attributes.get("n_nodes")} nodes, '
            f'{attributes.get("n_edges")} edges)'
        )
        if node.creator is not None:
            click.echo(f'  created by     : {node.creator.process_label}<{node.creator.pk}>')
        arrays = node.graph_arrays()
        for g, uuid in enumerate(node.rows[:n_rows]):
            n_nodes = arrays.node_ptr[g + 1] - arrays.node_ptr[g]
            n_edges = arrays.edge_ptr[g + 1] - arrays.edge_ptr[g]
            click.echo(f'  graph {g:<4} {uuid}: {n_nodes} nodes, {n_edges} edges')
        return
    click.echo(f'FeaturesData<{node.pk}> {node.uuid}')
    click.echo(
        f'  representation : {attributes.get("representation")} (version {attributes.get("representation_version")})'
    )
    click.echo(f'  params         : {json.dumps(attributes.get("params"))}')
    click.echo(
        f'  shape          : {attributes.get("n_rows")} x {attributes.get("n_features")} ({attributes.get("dtype")})'
    )
    click.echo(f'  failed rows    : {attributes.get("n_failed")}')
    creator = node.creator
    if creator is not None:
        click.echo(f'  created by     : {creator.process_label}<{creator.pk}>')
    for failure in node.failures:
        click.echo(f'    row {failure["index"]} StructureData<{failure.get("pk")}>: {failure["message"]}')
    labels = node.labels
    matrix = node.features
    with np.printoptions(precision=4, suppress=True, linewidth=120, threshold=20):
        click.echo(f'  labels         : {labels[:6]}{" ..." if len(labels) > 6 else ""}')
        for row in range(min(n_rows, matrix.shape[0])):
            click.echo(f'  row {row:<4} {node.rows[row]}: {matrix[row]}')


@cmd_matembed.command('export')
@arguments.DATUM('node', type=types.DataParamType(sub_classes=('aiida.data:matembed.features',)))
@click.option('-f', '--format', 'fmt', type=click.Choice(['csv', 'npz']), default='csv', show_default=True)
@click.option('-o', '--output', type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option('--overwrite', is_flag=True)
@decorators.with_dbenv()
def cmd_export(node: Any, fmt: str, output: Path, overwrite: bool) -> None:
    """Export a FeaturesData to CSV (one row per structure, UUID first) or NPZ."""
    import numpy as np

    if output.exists() and not overwrite:
        echo.echo_critical(f'{output} exists; use --overwrite')
    matrix, labels, rows = node.features, node.labels, node.rows
    if fmt == 'npz':
        np.savez_compressed(
            output,
            features=matrix,
            labels=np.array(labels),
            rows=np.array([r or '' for r in rows]),
            representation=np.array(node.base.attributes.get('representation')),
        )
    else:
        with output.open('w', newline='') as handle:
            writer = csv.writer(handle)
            writer.writerow(['structure_uuid', *labels])
            for uuid, values in zip(rows, matrix, strict=True):
                writer.writerow([uuid or '', *(repr(float(v)) for v in values)])
    echo.echo_success(f'wrote {matrix.shape[0]} x {matrix.shape[1]} features to {output}')


from . import dataset  # noqa: E402, F401  (registers the ``dataset`` subgroup)
from . import dft as _dft  # noqa: E402, F401  (registers `dft`, `train-property`, `predict`, `screen`)
from . import importing as _importing  # noqa: E402, F401  (registers `import`)
from . import models as _models  # noqa: E402, F401  (registers `models` and `embed`)
from . import search as _search  # noqa: E402, F401  (registers `search`, `identify` and `map`)
from . import symmetry as _symmetry  # noqa: E402, F401  (registers `symmetry`)
from . import train as _train  # noqa: E402, F401  (registers `train`)
