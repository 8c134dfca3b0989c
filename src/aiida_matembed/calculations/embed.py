"""``matembed.embed``: run a stored model (``matembed.model``) on a batch in ONE process with ONE output node.

Inputs: the ``model`` node, the structures (namespace ``structures``, row order = sorted keys) *or* a stored
``patterns`` node (:class:`~aiida_matembed.data.XrdPatternsData`, for XRD-reading models) and ``parameters``
(``modality``). The device and the forward-pass batch size change how, not what, is computed, so they are not
inputs (they would split the cache): :func:`embed_structures` passes them through a context variable and the
device used is recorded as the ``device`` attribute of the output.

Output ``features`` (:class:`~aiida_matembed.data.FeaturesData`) has ``representation`` = the model name and
``params`` = ``{'model', 'model_sha256', 'modality'}``, so the vectors of one model are found by attribute
*and* by the graph (the creator's ``model`` input). Failed rows are NaN and listed in the
``failures`` output; the rest of the batch is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from typing import Any

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from ..core.models.inference import check_modality, run_model, run_model_on_patterns
from ..data.features import FeaturesData
from ..data.model import ModelData, load_model_node
from ..data.xrd import XrdPatternsData
from .batch import (
    convert_structures,
    failure_record,
    run_maybe_cached,
    store_structures,
)
from .bulk_links import link_inputs_in_bulk

__all__ = ('EMBED_IDENTIFIER', 'check_options', 'embed', 'embed_patterns', 'embed_structures', 'embedding_params',
           'patterns_match_model')  # fmt: skip

EMBED_IDENTIFIER = 'aiida.calculations:matembed.embed'
"""Caching identifier of :func:`embed` (for ``verdi config set caching.enabled_for``)."""

FORWARD_BATCH = 256
"""Structures or patterns per forward pass of a model unless told otherwise (``embed_structures(batch_size=...)``)."""
_OPTIONS = {'device': 'auto', 'batch_size': FORWARD_BATCH}
_RUNTIME: ContextVar[dict[str, Any]] = ContextVar('matembed_embed_runtime', default=_OPTIONS)


def check_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """``device`` (``'cpu'``, ``'cuda'``, ``'auto'``) and ``batch_size`` (> 0), validated, defaults filled in."""
    merged = {**_OPTIONS, **(options or {})}
    unknown = sorted(set(merged) - set(_OPTIONS))
    if unknown:
        raise ValueError(f'unknown option(s) {unknown}; valid options: {sorted(_OPTIONS)}')
    size = merged['batch_size']
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(f'batch_size must be a positive integer, got {size!r}')
    from ..core.device import check_device

    check_device(merged['device'])
    return merged


def embedding_params(model: ModelData, modality: str | None) -> dict[str, Any]:
    """The ``params`` recorded on embeddings of ``model`` (model name, weights' sha256, modality)."""
    modalities = model.base.attributes.get('modalities')
    modality = modality or modalities[0]
    if modality not in modalities:
        raise ValueError(f'{model.name} reads {" or ".join(modalities)}, not {modality!r}')
    return {'model': model.name, 'model_sha256': model.sha256, 'modality': modality}


def _version(model: ModelData) -> int:
    text = str(model.base.attributes.get('version'))
    return int(text) if text.isdigit() else 0


def patterns_match_model(patterns: XrdPatternsData, model: ModelData) -> None:
    """Refuse stored patterns simulated with other settings than the model was trained on.

    :raises ValueError: naming every setting that differs (wavelength, 2θ range, step, shape, width).
    """
    settings = model.base.attributes.get('inputs', {}).get('xrd')
    if settings is None:
        raise ValueError(f'{model.name} does not read XRD patterns')
    from ..core.models.inputs import model_xrd_settings

    differences = model_xrd_settings(settings).differences(patterns.xrd_settings)
    if differences:
        raise ValueError(
            f'the stored patterns (XrdPatternsData<{patterns.pk}>) were not simulated with the settings of '
            f'{model.name}: ' + '; '.join(differences) + '. Simulate them with the model settings, or embed the '
            'structures (modality=xrd simulates with the right settings).'
        )


@calcfunction
def embed(
    model: ModelData,
    parameters: orm.Dict | None = None,
    patterns: XrdPatternsData | None = None,
    **kwargs: Any,
) -> dict[str, orm.Data]:
    """Embed (or classify, or encode) the structures of the ``structures`` namespace, or stored patterns.

    :param model: the ``matembed.model`` node to run.
    :param parameters: ``modality`` (``'structure'`` or ``'xrd'``; default: the model's first).
    :param patterns: stored patterns to embed instead of structures (settings must match the model's).
    :returns: ``features`` (:class:`FeaturesData`) and, if any row failed, ``failures``.
    """
    structures = kwargs.pop('structures', None)
    if kwargs:
        raise ValueError(f'unexpected inputs {sorted(kwargs)}: pass the structures in the `structures` namespace')
    settings = parameters.get_dict() if parameters is not None else {}
    unknown = sorted(set(settings) - {'modality'})
    if unknown:
        raise ValueError(f'unknown parameter(s) {unknown}; valid: modality')
    run_options = check_options(_RUNTIME.get())
    loaded = model.load_model(device=run_options['device'])
    failures: list[dict[str, Any]] = []
    if patterns is not None:
        if structures:
            raise ValueError('give either structures or patterns, not both')
        patterns_match_model(patterns, model)
        params = embedding_params(model, 'xrd')
        result = run_model_on_patterns(loaded, patterns.profiles, batch_size=run_options['batch_size'])
        rows: list[str | None] = patterns.rows
        for failure in result.failures:
            failures.append({'index': failure.index, 'uuid': rows[failure.index], 'pk': None,
                             'error_type': failure.error_type, 'message': failure.message})  # fmt: skip
        matrix = result.matrix
    else:
        if not structures:
            raise ValueError('no structures given: the `structures` namespace is empty')
        nodes = [structures[key] for key in sorted(structures)]
        params = embedding_params(model, settings.get('modality'))
        check_modality(loaded, params['modality'])
        converted, converted_rows, failures = convert_structures(nodes)
        result = run_model(loaded, converted, modality=params['modality'], batch_size=run_options['batch_size'])
        matrix = np.full((len(nodes), len(result.labels)), np.nan, dtype=np.float32)
        matrix[converted_rows] = result.matrix
        for failure in result.failures:
            row = converted_rows[failure.index]
            failures.append(failure_record(row, nodes[row], failure.error_type, failure.message))
        failures.sort(key=lambda f: f['index'])
        rows = [node.uuid for node in nodes]
    features = FeaturesData(
        matrix,
        labels=result.labels,
        representation=model.name,
        version=_version(model),
        params=params,
        rows=rows,
        failures=failures,
    )
    features.base.attributes.set('device', str(loaded.device))
    outputs: dict[str, orm.Data] = {'features': features}
    if failures:
        outputs['failures'] = orm.List(failures)
    return outputs


link_inputs_in_bulk(embed)


def _prepare(
    model: ModelData | str | int, modality: str | None, device: str, batch_size: int
) -> tuple[ModelData, dict[str, Any], dict[str, Any]]:
    options = check_options({'device': device, 'batch_size': batch_size})
    node = load_model_node(model)
    embedding_params(node, modality)  # checks the modality before anything is stored
    if options['device'].startswith('cuda'):
        from ..core.device import resolve_device

        resolve_device(options['device'])  # no GPU -> clear error before anything runs
    # the modality is always explicit, so the default and the same modality named share the cache
    return node, options, {'modality': embedding_params(node, modality)['modality']}


def embed_structures(
    structures: Iterable[Any] | Mapping[str, Any],
    model: ModelData | str | int = 'matembed.cmml',
    *,
    modality: str | None = None,
    device: str = 'auto',
    batch_size: int = 256,
    use_cache: bool = True,
    label: str | None = None,
) -> tuple[FeaturesData, orm.CalcFunctionNode]:
    """Run :func:`embed` on structures (``StructureData``, pymatgen or ASE; unstored ones are stored).

    :param model: a ``ModelData``, its pk, or a registered name / checkpoint path (imported once).
    :returns: the output :class:`FeaturesData` and the process node.
    :raises ValueError: unknown model, bad modality, device or batch size (before anything is stored).
    """
    node, options, params = _prepare(model, modality, device, batch_size)
    inputs: dict[str, Any] = {
        'structures': store_structures(structures),
        'model': node,
        'parameters': orm.Dict(params).store(),
    }
    if label:
        inputs['metadata'] = {'label': label}
    return _run(inputs, options, use_cache)


def _run(inputs: dict[str, Any], options: dict[str, Any], use_cache: bool) -> tuple[FeaturesData, Any]:
    """Run :func:`embed` with the device and forward batch size of ``options`` (not inputs: see the module)."""
    token = _RUNTIME.set(options)
    try:
        outputs, process = run_maybe_cached(embed, EMBED_IDENTIFIER, use_cache, **inputs)
    finally:
        _RUNTIME.reset(token)
    assert outputs is not None
    return outputs['features'], process


def embed_patterns(
    patterns: XrdPatternsData,
    model: ModelData | str | int = 'matembed.cmml',
    *,
    device: str = 'auto',
    batch_size: int = 512,
    use_cache: bool = True,
) -> tuple[FeaturesData, orm.CalcFunctionNode]:
    """Run :func:`embed` on stored patterns (they must have been simulated with the model's settings)."""
    node, options, _ = _prepare(model, 'xrd', device, batch_size)
    patterns_match_model(patterns, node)
    inputs: dict[str, Any] = {
        'patterns': patterns,
        'model': node,
        'parameters': orm.Dict({'modality': 'xrd'}).store(),
    }
    return _run(inputs, options, use_cache)
