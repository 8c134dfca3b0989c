"""``verdi data matembed dft setup``, ``train-property``, ``predict`` and ``screen``: ML next to DFT."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from aiida.cmdline.params import options
from aiida.cmdline.utils import decorators, echo

from . import cmd_matembed
from .params import parse_params

__all__ = ('cmd_dft', 'cmd_predict', 'cmd_screen', 'cmd_train_property')

_JSON = click.option('--json', 'as_json', is_flag=True, help='Print a machine-readable JSON summary.')
_STRUCTURE_LINK = click.option(
    '--structure-link',
    default='output_structure',
    show_default=True,
    help='Output link of the DFT processes holding their structure (scf-only processes: the input structure).',
)


def _emit(as_json: bool, payload: dict[str, Any]) -> None:
    if as_json:
        click.echo(json.dumps(payload, indent=2, default=str))


@cmd_matembed.group('dft')
def cmd_dft() -> None:
    """Set up a local DFT code (Quantum ESPRESSO pw.x) and pseudopotential families."""


@cmd_dft.command('setup')
@click.option('--computer', default='localhost', show_default=True, help='Computer to set the pw.x code up on.')
@click.option('--code-label', default='pw', show_default=True, help='Label of the code (pw@COMPUTER).')
@click.option(
    '--pseudo-dir',
    type=click.Path(file_okay=False, path_type=Path),
    default=Path('/usr/share/espresso/pseudo'),
    show_default=True,
    help="Folder of UPF files (Debian's quantum-espresso-data).",
)
@_JSON
@decorators.with_dbenv()
def cmd_dft_setup(computer: str, code_label: str, pseudo_dir: Path, as_json: bool) -> None:
    """Create (once) the pw.x code and one pseudopotential family per functional (idempotent)."""
    from aiida.common.exceptions import NotExistent

    from ..dft.setup import family_elements, setup_dft

    try:
        result = setup_dft(computer, code_label=code_label, directory=pseudo_dir)
    except NotExistent:
        echo.echo_critical(f'no computer {computer!r}: create it (`verdi presto` makes `localhost`)')
    except (FileNotFoundError, ValueError) as exception:
        echo.echo_critical(str(exception))
    code, families = result['code'], result['families']
    elements = family_elements(families)
    if as_json:
        _emit(True, {'code': code.full_label, 'code_pk': code.pk, 'families': elements})
        return
    echo.echo_success(f'code {code.full_label} (pk {code.pk}): {code.filepath_executable}')
    for label, symbols in elements.items():
        echo.echo_success(f'pseudopotential family {label}: {len(symbols)} elements ({", ".join(symbols)})')


def _source_options(representation: str | None, model: str | None, use_xrd: bool) -> dict[str, Any]:
    given = sum(x is not None and x is not False for x in (representation, model, use_xrd or None))
    if given != 1:
        echo.echo_critical('give exactly one of -r/--representation, -m/--model and --input xrd')
    if use_xrd:
        return {'representation': 'matembed.xrd'}
    if model is not None:
        return {'model': model}
    return {'representation': representation}


@cmd_matembed.command('train-property')
@options.GROUP(required=True, help='Group of finished DFT processes (any plugin) whose labels to learn.')
@click.option(
    '--target', required=True, help='DFT label: energy, energy_per_atom, pressure, total_magnetization, band_gap.'
)
@click.option('-r', '--representation', help='Learn from this representation, e.g. matembed.magpie.')
@click.option('-p', '--param', 'params', multiple=True, help='Option of the representation, key=value (repeatable).')
@click.option('-m', '--model', help='Learn from the embeddings of this model (name, pk or UUID).')
@click.option('--input', 'input_kind', type=click.Choice(['xrd']), help='Learn from simulated powder patterns.')
@click.option('--name', help='Name of the trained model (default TARGET.SOURCE).')
@click.option('--folds', type=click.IntRange(min=2), default=5, show_default=True, help='K of the cross-validation.')
@click.option('--plot', type=click.Path(dir_okay=False, path_type=Path), help='Write a parity plot (PNG).')
@_STRUCTURE_LINK
@_JSON
@decorators.with_dbenv()
def cmd_train_property(
    group: Any,
    target: str,
    representation: str | None,
    params: tuple[str, ...],
    model: str | None,
    input_kind: str | None,
    name: str | None,
    folds: int,
    plot: Path | None,
    structure_link: str,
    as_json: bool,
) -> None:
    """Train a property model from the DFT labels of GROUP and store it as a matembed.model node."""
    from ..calculations.property import train_property_model

    source = _source_options(representation, model, input_kind == 'xrd')
    if params and 'representation' in source:
        source['params'] = parse_params(params)
    try:
        result = train_property_model(
            group, target, name=name, folds=folds, structure_link=structure_link, parity_plot=plot, **source
        )
    except (ValueError, TypeError) as exception:
        echo.echo_critical(str(exception))
    metrics = result.metrics
    summary = {
        'model': result.model.pk,
        'model_uuid': result.model.uuid,
        'name': result.model.name,
        'process': result.process.pk,
        'n_train': metrics['n_train'],
        'cv_mae': metrics['cv_mae'],
        'baseline_mae': metrics['baseline_mae'],
        'cv_folds': metrics['cv_folds'],
        'skipped': [{'pk': pk, 'reason': reason} for pk, reason in result.skipped],
        'plot': str(plot) if plot else None,
    }
    if as_json:
        _emit(True, summary)
        return
    echo.echo_success(
        f'{result.model} from {result.process.process_label}<{result.process.pk}>: {metrics["n_train"]} labels, '
        f'{metrics["cv_folds"]}-fold CV MAE {metrics["cv_mae"]:.4g} (mean predictor {metrics["baseline_mae"]:.4g})'
    )
    for pk, reason in result.skipped:
        echo.echo_warning(f'  skipped {pk}: {reason}')
    if plot:
        echo.echo_report(f'parity plot: {plot}')


@cmd_matembed.command('predict')
@options.GROUP(required=True, help='Group of candidate structures (or DFT processes).')
@click.option('-m', '--model', required=True, help='A property model (pk, UUID) made by train-property or screen.')
@_STRUCTURE_LINK
@_JSON
@decorators.with_dbenv()
def cmd_predict(group: Any, model: str, structure_link: str, as_json: bool) -> None:
    """Predict a property model's target (with its uncertainty) for GROUP and store it as FeaturesData."""
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    from ..calculations.property import predict_property

    try:
        result = predict_property(group, model, structure_link=structure_link)
    except (ValueError, TypeError, NotExistent, MultipleObjectsError) as exception:
        echo.echo_critical(str(exception))
    values = result.by_pk()
    labels = result.predictions.labels
    formula = {
        pk: node.get_formula()
        for pk, node in orm.QueryBuilder()
        .append(orm.StructureData, filters={'id': {'in': list(values)}}, project=['id', '*'])
        .all()
    }
    rows = [
        {'pk': pk, 'formula': formula.get(pk), labels[0]: mean, labels[1]: std}
        for pk, (mean, std) in sorted(values.items(), key=lambda item: item[1][0])
    ]
    if as_json:
        _emit(
            True,
            {
                'predictions': result.predictions.pk,
                'process': result.process.pk,
                'rows': rows,
                'failed': result.predictions.failures,
                'skipped': [{'pk': pk, 'reason': r} for pk, r in result.skipped],
            },
        )
        return
    echo.echo_success(f'FeaturesData<{result.predictions.pk}> from {result.process.process_label}<{result.process.pk}>')
    for row in rows:
        click.echo(f'  {row["pk"]:>8}  {row["formula"]:<14} {row[labels[0]]: .5g} ± {row[labels[1]]:.3g}')
    for failure in result.predictions.failures:
        echo.echo_warning(f'  StructureData<{failure["pk"]}>: {failure["message"]}')


@cmd_matembed.command('screen')
@options.GROUP(required=True, help='Group of candidate structures.')
@click.option('-k', type=click.IntRange(min=1), help='DFT runs per round (protocol default).')
@click.option('--rounds', type=click.IntRange(min=1), help='Rounds (protocol default).')
@click.option('--target', help='DFT label to learn (protocol default: energy_per_atom).')
@click.option('-r', '--representation', help='Representation of the model (protocol default: matembed.magpie).')
@click.option('-p', '--param', 'params', multiple=True, help='Option of the representation, key=value (repeatable).')
@click.option('-m', '--model', help='Learn from the embeddings of this model instead of a representation.')
@click.option('--selection', type=click.Choice(['lowest', 'highest', 'uncertainty', 'diversity']))
@click.option('--prerelax/--no-prerelax', default=None, help='Pre-relax the selected structures with CHGNet.')
@click.option('--code', 'code_label', default='pw@localhost', show_default=True, help='The DFT code (label@computer).')
@click.option('--protocol', type=click.Choice(['fast', 'moderate', 'precise']), help='Screening protocol.')
@click.option('--dft-workflow', help='Entry point of the DFT WorkChain (default quantumespresso.pw.relax).')
@click.option('--dft-protocol', help="The DFT WorkChain's protocol (e.g. fast, balanced, stringent).")
@click.option('--dft-overrides', help="JSON overrides of the DFT WorkChain's protocol.")
@click.option('--pseudo-family', help='Pseudopotential family (default matembed/debian-qe/PBE).')
@click.option('--mpiprocs', type=click.IntRange(min=1), default=1, show_default=True, help='MPI processes per job.')
@click.option('--max-concurrent', type=click.IntRange(min=1), help='DFT processes running at once.')
@click.option('--labelled-group', help='Group collecting the finished DFT processes (default GROUP/labelled).')
@click.option('--plot', type=click.Path(dir_okay=False, path_type=Path), help='Write the final parity plot (PNG).')
@click.option('--submit', is_flag=True, help='Submit to the daemon instead of running here.')
@_JSON
@decorators.with_dbenv()
def cmd_screen(
    group: Any,
    k: int | None,
    rounds: int | None,
    target: str | None,
    representation: str | None,
    params: tuple[str, ...],
    model: str | None,
    selection: str | None,
    prerelax: bool | None,
    code_label: str,
    protocol: str | None,
    dft_workflow: str | None,
    dft_protocol: str | None,
    dft_overrides: str | None,
    pseudo_family: str | None,
    mpiprocs: int,
    max_concurrent: int | None,
    labelled_group: str | None,
    plot: Path | None,
    submit: bool,
    as_json: bool,
) -> None:
    """Screen GROUP with DFT: represent, predict, select k, DFT, label, retrain; repeat for ROUNDS."""
    from ..workflows.screen import ScreenWorkChain, screen_launch

    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            'k': k,
            'rounds': rounds,
            'target': target,
            'selection': selection,
            'prerelax': prerelax,
            'dft_workflow': dft_workflow,
            'dft_protocol': dft_protocol,
            'pseudo_family': pseudo_family,
            'max_concurrent': max_concurrent,
            'labelled_group': labelled_group,
        }.items()
        if value is not None
    }
    if model is not None and representation is not None:
        echo.echo_critical('give either -r/--representation or -m/--model, not both')
    if representation is not None:
        overrides['representation'] = representation
    if model is not None:
        overrides['model'] = model
    if params:
        overrides['parameters'] = parse_params(params)
    if dft_overrides:
        try:
            overrides['dft_overrides'] = json.loads(dft_overrides)
        except json.JSONDecodeError as exception:
            echo.echo_critical(f'--dft-overrides is not JSON: {exception}')
    overrides['dft_options'] = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': mpiprocs}}
    from aiida import orm

    try:
        code = orm.load_code(code_label)
    except Exception:
        echo.echo_critical(f'no code {code_label!r}: run `verdi data matembed dft setup` (or give --code)')
    if submit:
        from .services import check_submit_services

        check_submit_services()
    try:
        builder = ScreenWorkChain.get_builder_from_protocol(group, code, protocol=protocol, overrides=overrides)
        summary = screen_launch(builder, submit=submit, parity_plot=plot)
    except (ValueError, TypeError) as exception:
        echo.echo_critical(str(exception))
    failed = not submit and summary['exit_status'] != 0
    if as_json:
        _emit(True, summary)
        if failed:
            raise SystemExit(1)
        return
    if submit:
        echo.echo_success(f'submitted ScreenWorkChain<{summary["process"]}>')
        return
    state = (
        'finished' if summary['exit_status'] == 0 else f'failed ({summary["exit_status"]}: {summary["exit_message"]})'
    )
    echo.echo_report(f'ScreenWorkChain<{summary["process"]}> {state}')
    echo.echo_report(f'labelled Group {summary["labelled_group"]!r}: DFT processes {summary["dft_processes"]}')
    for metrics in summary['rounds']:
        line = f'round {metrics["round"]}: selected {metrics["selected"]}'
        if 'prediction_mae' in metrics:
            line += f', prediction MAE on the new labels {metrics["prediction_mae"]:.4g}'
        if 'cv_mae' in metrics:
            line += f', model CV MAE {metrics["cv_mae"]:.4g} (mean predictor {metrics["baseline_mae"]:.4g})'
        echo.echo_report(line)
        for failure in metrics['failed']:
            echo.echo_warning(f'  DFT of {failure["candidate"]} failed: {failure["reason"]}')
    if summary['model'] is not None:
        echo.echo_success(f'model ModelData<{summary["model"]}>, predictions FeaturesData<{summary["predictions"]}>')
    if failed:
        raise SystemExit(1)
