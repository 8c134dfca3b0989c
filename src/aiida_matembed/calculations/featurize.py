"""``matembed.featurize``: featurise a batch of structures in ONE process with ONE output node.

Each structure is an input of the process (namespace ``structures``, row order = sorted keys), and the
output ``features`` (:class:`~aiida_matembed.data.FeaturesData`) holds one row per structure, so
"which structure gave this row" and "which rows came from this structure" are graph queries. Rows that
fail are NaN and listed in the ``failures`` output; the rest of the batch is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from ..core.representations import load_representation_class
from ..data.features import FeaturesData
from ..data.graphs import CrystalGraphsData
from .batch import (
    convert_structures,
    failure_record,
    row_key,
    run_maybe_cached,
    store_structures,
    structures_namespace,
)
from .bulk_links import link_inputs_in_bulk

__all__ = ('FEATURIZE_IDENTIFIER', 'featurize', 'featurize_structures', 'row_key')

FEATURIZE_IDENTIFIER = 'aiida.calculations:matembed.featurize'
"""Caching identifier of :func:`featurize` (for ``verdi config set caching.enabled_for``)."""


@calcfunction
def featurize(
    representation: orm.Str,
    parameters: orm.Dict | None = None,
    store_graphs: orm.Bool | None = None,
    **kwargs: Any,
) -> dict[str, orm.Data]:
    """Featurise the structures in the ``structures`` namespace with one representation.

    :param representation: entry-point name, e.g. ``matembed.magpie``.
    :param parameters: options of the representation. Options taken "from the batch" (e.g.
        ``species=None``) are resolved on this batch; the resolved values are stored on the output.
    :param store_graphs: for a graph representation (``matembed.crystal_graph``), also store the graphs
        themselves as one ``graphs`` node (:class:`~aiida_matembed.data.CrystalGraphsData`).
    :param kwargs: the namespace ``structures``: ``StructureData`` by key; rows follow sorted keys.
    :returns: ``features`` (one :class:`FeaturesData` for the batch), ``graphs`` if asked for (and any
        structure gave one), and, if any
        row failed, ``failures`` (a ``List`` of dicts with index, uuid, pk, error_type, message).
    """
    nodes = structures_namespace(kwargs)
    params = parameters.get_dict() if parameters is not None else {}
    rep = load_representation_class(representation.value).from_params(params)
    converted, converted_rows, failures = convert_structures(nodes, arrays=True)

    rep = rep.fit(converted)
    try:
        rep.feature_labels()
    except ValueError as exception:  # e.g. species=None and no structure of the batch could be read
        raise ValueError(f'{exception} (no structure of this batch could be read to resolve it)') from None
    want_graphs = store_graphs is not None and bool(store_graphs.value)
    if want_graphs and not hasattr(rep, 'featurize_with_graphs'):
        raise ValueError(f'store_graphs is only possible for a graph representation, not {rep.name}')
    matrix = np.full((len(nodes), rep.n_features), np.nan)
    if want_graphs:
        result, arrays, graph_rows = rep.featurize_with_graphs(converted, errors='record')  # type: ignore[attr-defined]
    else:
        result = rep.featurize_many(converted, errors='record')
    matrix[converted_rows] = result.features
    for failure in result.failures:
        row = converted_rows[failure.index]
        failures.append(failure_record(row, nodes[row], failure.error_type, failure.message))
    failures.sort(key=lambda f: f['index'])

    outputs: dict[str, orm.Data] = {
        'features': FeaturesData(
            matrix,
            labels=rep.feature_labels(),
            representation=rep.name,
            version=rep.version,
            params=rep.get_params(),
            rows=[node.uuid for node in nodes],
            failures=failures,
        )
    }
    if want_graphs and arrays.n_graphs:
        outputs['graphs'] = CrystalGraphsData(
            arrays,
            representation=rep.name,
            version=rep.version,
            params=rep.get_params(),
            rows=[nodes[converted_rows[g]].uuid for g in graph_rows],
        )
    if failures:
        outputs['failures'] = orm.List(failures)
    return outputs


def _record_representation_version(process: Any) -> None:
    """Put the representation's version on the process node before it is hashed (so it enters the cache key)."""
    try:
        name = process.inputs['representation'].value
        version = load_representation_class(name).version
    except Exception:
        return  # the function itself reports an unknown representation with a clear error
    process.node.base.attributes.set('representation_version', version)


link_inputs_in_bulk(featurize, after_inputs=_record_representation_version)


def featurize_structures(
    structures: Iterable[Any] | Mapping[str, Any],
    representation: str,
    parameters: dict[str, Any] | None = None,
    *,
    use_cache: bool = True,
    label: str | None = None,
    store_graphs: bool = False,
) -> tuple[FeaturesData, orm.CalcFunctionNode]:
    """Run :func:`featurize` on structures given as ``StructureData``, pymatgen or ASE objects.

    Unstored structures are stored first. Parameters are validated before anything is stored. With
    ``store_graphs=True`` (graph representations) the process also outputs ``graphs``
    (``process.outputs.graphs``).

    :returns: the output :class:`FeaturesData` and the process node.
    :raises ValueError: for an unknown representation or invalid parameters.
    """
    rep = load_representation_class(representation).from_params(parameters or {})
    if store_graphs and rep.output_kind != 'graph':
        raise ValueError(f'store_graphs is only possible for a graph representation, not {representation}')
    nodes = store_structures(structures)
    inputs: dict[str, Any] = {
        'structures': nodes,
        'representation': orm.Str(representation).store(),
        'parameters': orm.Dict(rep.get_params()).store(),
    }
    if store_graphs:
        inputs['store_graphs'] = orm.Bool(True).store()
    if label:
        inputs['metadata'] = {'label': label}
    outputs, process = run_maybe_cached(featurize, FEATURIZE_IDENTIFIER, use_cache, **inputs)
    assert outputs is not None
    return outputs['features'], process
