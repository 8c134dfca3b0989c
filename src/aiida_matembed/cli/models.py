"""``verdi data matembed models list|import|show`` and ``verdi data matembed embed``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from aiida.cmdline.params import arguments, options
from aiida.cmdline.utils import decorators, echo

from . import cmd_matembed
from .params import check_selection, selected_pks

__all__ = ('cmd_embed', 'cmd_models')


@cmd_matembed.group('models')
def cmd_models() -> None:
    """Trained models: registered ones and those imported into the database (matembed.model nodes)."""


@cmd_models.command('list')
@decorators.with_dbenv()
def cmd_models_list() -> None:
    """List registered models (entry points) and the model nodes stored in the database."""
    from aiida import orm

    from ..core.models import available_models, model_path, read_card
    from ..data.model import ModelData

    click.echo('registered (entry points aiida_matembed.models):')
    for name in available_models():
        try:
            card = read_card(model_path(name))
            click.echo(
                f'  {name:<24} {card.kind:<13} v{card.version}  sha256 {card.sha256[:12]}  {card.description[:60]}'
            )
        except Exception as exception:
            click.echo(f'  {name:<24} (cannot read: {exception})')
    query = orm.QueryBuilder().append(
        ModelData,
        project=['id', 'attributes.name', 'attributes.kind', 'attributes.embedding_dim', 'attributes.sha256', 'ctime'],
    )
    query.order_by({ModelData: {'id': 'asc'}})
    rows = query.all()
    click.echo(f'stored in the database ({len(rows)}):')
    for pk, name, kind, dim, sha, ctime in rows:
        click.echo(
            f'  pk {pk:<6} {name:<24} {kind:<13} dim {dim:<4} sha256 {sha[:12]}  imported {ctime:%Y-%m-%d %H:%M}'
        )


@cmd_models.command('import')
@click.argument('models', nargs=-1, required=True)
@decorators.with_dbenv()
def cmd_models_import(models: tuple[str, ...]) -> None:
    """Import MODELS (registered names or checkpoint paths) as matembed.model nodes (checksums verified).

    Importing a model that is already stored (same name and sha256) returns the existing node.
    """
    from ..data.model import import_model

    for name in models:
        try:
            node = import_model(name)
        except Exception as exception:
            echo.echo_critical(f'{name}: {exception}')
            return
        echo.echo_success(f'{name} -> ModelData<{node.pk}> ({node.name}, sha256 {node.sha256[:12]})')


@cmd_models.command('show')
@click.argument('model')
@decorators.with_dbenv()
def cmd_models_show(model: str) -> None:
    """Show a model (pk, UUID, or registered name / checkpoint path): card, metrics, what it produced."""
    from ..query import model_embeddings, model_nodes

    try:
        nodes = model_nodes(model)
    except Exception as exception:
        echo.echo_critical(str(exception))
        return
    if not nodes:
        echo.echo_critical(
            f'no matembed.model node {model!r} in the database; import it first: '
            f'verdi data matembed models import {model}'
        )
        return
    node = nodes[0]
    if len(nodes) > 1:
        echo.echo_warning(f'{len(nodes)} nodes are named {model}; showing the newest (pass a pk for another)')
    attributes = node.base.attributes
    card = node.card
    click.echo(f'ModelData<{node.pk}> {node.uuid}')
    for key in ('name', 'kind', 'version', 'sha256', 'embedding_dim', 'modalities', 'data_sha256', 'size_bytes'):
        click.echo(f'  {key:<14}: {attributes.get(key)}')
    click.echo(f'  architecture  : {json.dumps(card.architecture)}')
    click.echo(f'  inputs        : {json.dumps(card.inputs)}')
    click.echo(f'  description   : {card.description}')
    metrics = card.metrics
    for section, values in metrics.items():
        if isinstance(values, dict):
            text = ', '.join(
                f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}'
                for k, v in values.items()
                if not isinstance(v, (dict, list))
            )
            click.echo(f'  metrics.{section:<6}: {text}')
    produced = model_embeddings(node)
    rows = sum(f.base.attributes.get('n_rows') for f in produced)
    click.echo(f'  produced      : {len(produced)} FeaturesData node(s), {rows} row(s)')


@cmd_matembed.command('embed')
@arguments.NODES('structures', required=False)
@options.GROUP(help='Embed every StructureData of this Group (incremental: skips current results).')
@click.option(
    '-m',
    '--model',
    default='matembed.cmml',
    show_default=True,
    help='Registered model name, checkpoint path, or pk of a matembed.model node.',
)
@click.option('--modality', type=click.Choice(['structure', 'xrd']), help='Input the model reads (default: its first).')
@click.option('-b', '--batch-size', type=int, default=1000, show_default=True, help='Structures per process.')
@click.option('-d', '--device', default='auto', show_default=True, help="'cpu', 'cuda' or 'auto'.")
@click.option('-Y', '--computer', help='Run each batch as a matembed.worker CalcJob on this computer.')
@click.option('-X', '--code', 'code_label', help='aiida-matembed-worker code to run the worker CalcJobs with.')
@click.option(
    '-o',
    '--options',
    'job_options',
    help='metadata.options of the worker CalcJobs as JSON, e.g. \'{"queue_name": "gpu", "max_wallclock_seconds": 3600, '
    '"resources": {"num_machines": 1}}\' (with --computer / --code).',
)
@click.option('--force', is_flag=True, help='Also embed structures that already have current embeddings.')
@click.option('--submit', is_flag=True, help='Group only: submit the EmbedGroupWorkChain to the daemon and return.')
@decorators.with_dbenv()
def cmd_embed(
    structures: tuple[Any, ...],
    group: Any,
    model: str,
    modality: str | None,
    batch_size: int,
    device: str,
    computer: str | None,
    code_label: str | None,
    job_options: str | None,
    force: bool,
    submit: bool,
) -> None:
    """Embed STRUCTURES (pks / UUIDs) or a Group with a model; one FeaturesData per batch, linked to the model."""
    from ..calculations.batch import load_structures
    from ..calculations.embed import check_options, embed_structures, embedding_params
    from ..data.model import load_model_node
    from ..query import embedded_structure_pks

    if batch_size <= 0:
        echo.echo_critical(f'--batch-size must be a positive integer, got {batch_size}')
    check_selection(structures, group)
    if computer and code_label:
        echo.echo_critical('give --computer or --code, not both')
    if submit and group is None:
        echo.echo_critical('--submit runs the EmbedGroupWorkChain on the daemon: it needs --group')
    try:
        check_options({'device': device})
        if device.startswith('cuda') and computer is None and code_label is None:
            from ..core.device import resolve_device

            resolve_device(device)  # in-process: no GPU here -> clear error now
        node = load_model_node(int(model) if model.isdigit() else (Path(model) if '/' in model else model))
        modality = embedding_params(node, modality)['modality']
        code = _worker_code(computer, code_label)
        scheduler_options = _scheduler_options(job_options, code)
    except Exception as exception:
        echo.echo_critical(str(exception))
        return
    echo.echo_report(f'model {node.name} (ModelData<{node.pk}>, sha256 {node.sha256[:12]}), modality {modality}')
    if group is not None and (code is not None or submit):
        _run_group(group, node, modality, batch_size, device, code, force, submit, scheduler_options)
        return
    if group is not None:
        from ..workflows.embed_group import group_structure_pks

        pks = group_structure_pks(group)
    else:
        pks = selected_pks(structures)
    if not force:  # structures the model already embedded, or failed on (it would fail again), are skipped
        done = embedded_structure_pks(node, modality=modality, among=pks, include_failed=True)
        pks = [pk for pk in pks if pk not in done]
    echo.echo_report(f'{len(pks)} structure(s) to embed')
    results = []
    with click.progressbar(length=len(pks), label='embedding', show_pos=True) as bar:
        for start in range(0, len(pks), batch_size):
            chunk = load_structures(pks[start : start + batch_size])
            try:
                if code is None:
                    features, process = embed_structures(chunk, node, modality=modality, device=device)
                else:
                    features, process = _run_worker(chunk, node, modality, device, code, scheduler_options)
            except Exception as exception:
                echo.echo_critical(f'batch of {len(chunk)} starting at StructureData<{chunk[0].pk}>: {exception}')
                return
            results.append((features, process))
            bar.update(len(chunk))
    for features, process in results:
        if features is None:
            echo.echo_error(
                f'{process.process_label}<{process.pk}> failed: [{process.exit_status}] {process.exit_message}'
            )
            continue
        echo.echo_success(
            f'FeaturesData<{features.pk}> ({features.base.attributes.get("n_rows")} x '
            f'{features.base.attributes.get("n_features")}, {features.base.attributes.get("n_failed")} failed) '
            f'from {process.process_label}<{process.pk}>'
        )
        for failure in features.failures[:10]:
            echo.echo_warning(f'  StructureData<{failure.get("pk")}>: {failure["message"]}')


def _worker_code(computer: str | None, code_label: str | None) -> Any:
    from aiida import orm

    from ..calculations.worker import get_worker_code

    if code_label is not None:
        return orm.load_code(code_label)
    if computer is not None:
        return get_worker_code(computer)
    return None


def _scheduler_options(text: str | None, code: Any) -> dict[str, Any]:
    """``--options`` parsed and checked against the worker CalcJob's ``metadata.options``."""
    if text is None:
        return {}
    if code is None:
        raise ValueError('--options are scheduler options of the worker CalcJob: give --computer or --code too')
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exception:
        raise ValueError(f'--options is not valid JSON: {exception}') from None
    if not isinstance(parsed, dict):
        raise ValueError('--options must be a JSON object')
    from ..calculations.worker import WorkerCalculation

    known = set(WorkerCalculation.spec().inputs['metadata']['options'].keys())  # type: ignore[index, union-attr]
    unknown = sorted(set(parsed) - known)
    if unknown:
        raise ValueError(f'unknown CalcJob option(s) {unknown}; valid: {", ".join(sorted(known))}')
    return parsed


def _run_worker(
    nodes: list[Any], model: Any, modality: str, device: str, code: Any, scheduler_options: dict[str, Any]
) -> tuple[Any, Any]:
    from aiida import orm
    from aiida.engine import run_get_node

    from ..calculations.batch import row_key
    from ..calculations.worker import WorkerCalculation

    outputs, process = run_get_node(
        WorkerCalculation,
        code=code,
        structures={row_key(i): n for i, n in enumerate(nodes)},
        task=orm.Str('embed'),
        model=model,
        parameters=orm.Dict({'modality': modality}),
        device=orm.Str(device),
        metadata={'options': scheduler_options},
    )
    return outputs.get('features'), process


def _run_group(
    group: Any,
    model: Any,
    modality: str,
    batch_size: int,
    device: str,
    code: Any,
    force: bool,
    submit: bool,
    scheduler_options: dict[str, Any],
) -> None:
    from ..launch import embed_group

    overrides: dict[str, Any] = {
        'task': 'embed',
        'parameters': {'modality': modality},
        'batch_size': batch_size,
        'device': device,
        'skip_existing': not force,
    }
    if code is not None:
        overrides['code'] = code
    if scheduler_options:
        overrides['options'] = scheduler_options
    if submit:
        from .services import check_submit_services

        check_submit_services()
        _, node = embed_group(group, model, overrides=overrides, submit=True)
        echo.echo_success(f'submitted EmbedGroupWorkChain<{node.pk}>; follow it with `verdi process report {node.pk}`')
        return
    outputs, node = embed_group(group, model, overrides=overrides)
    for label, result in sorted(outputs.get('results', {}).items()):
        echo.echo_success(
            f'{label}: FeaturesData<{result.pk}> ({result.base.attributes.get("n_rows")} rows, '
            f'{result.base.attributes.get("n_failed")} failed)'
        )
    if not node.is_finished_ok:
        echo.echo_critical(f'EmbedGroupWorkChain<{node.pk}> failed: [{node.exit_status}] {node.exit_message}')
