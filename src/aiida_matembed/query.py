"""QueryBuilder helpers over the provenance graph of featurisations, XRD patterns and embeddings.

Featurisations: ``StructureData --INPUT_CALC--> featurize / worker --CREATE--> FeaturesData`` with the
representation name, version and parameter hash as attributes of the ``FeaturesData``.

Embeddings: the same path, with a ``matembed.model`` node as the ``model`` input of the creating process
(``matembed.embed`` calcfunction or ``matembed.worker`` CalcJob), so "which model made this vector" and
"every vector of this model" are graph queries. Embeddings of stored patterns are found through
``StructureData -> simulate_xrd -> XrdPatternsData -> embed -> FeaturesData``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from aiida import orm
from aiida.common.exceptions import NotExistent

from .calculations.batch import chunks
from .core.representations import load_representation_class
from .data.features import FeaturesData, params_hash
from .data.model import ModelData
from .data.xrd import XrdPatternsData
from .plugins import use_aiida_entry_points

use_aiida_entry_points()

__all__ = (
    'dft_feature_table',
    'embedded_structure_pks',
    'feature_nodes_of',
    'featurized_structure_pks',
    'featurized_structures',
    'get_embedding',
    'get_embedding_node',
    'get_features',
    'get_features_node',
    'model_embeddings',
    'model_nodes',
    'row_structure_uuids',
    'simulated_structure_pks',
    'vectors_by_uuid',
)


_FINISHED_OK = {'attributes.exit_status': 0}
"""Results count only when their process finished ok: a calcfunction left ``Running`` (or marked killed) by a dead
daemon worker may have stored its output node before it died."""


def _filters(representation: str, version: int | None, params: dict[str, Any] | None) -> dict[str, Any]:
    filters: dict[str, Any] = {'attributes.representation': representation}
    if version is not None:
        filters['attributes.representation_version'] = version
    if params is not None:
        full = load_representation_class(representation).from_params(params).get_params()
        if any(value is None for value in full.values()):
            # options left to the batch (e.g. species=None) were stored resolved: match the others one by one
            filters.update({f'attributes.params.{key}': value for key, value in full.items() if value is not None})
        else:
            filters['attributes.params_hash'] = params_hash(full)
    return filters


def _features_query(representation: str, version: int | None, params: dict[str, Any] | None) -> orm.QueryBuilder:
    qb = orm.QueryBuilder()
    qb.append(FeaturesData, filters=_filters(representation, version, params), tag='features')
    qb.append(orm.CalculationNode, with_outgoing='features', filters=_FINISHED_OK, tag='process')
    qb.append(
        orm.StructureData,
        with_outgoing='process',
        tag='structure',
        edge_filters={'label': {'like': 'structures__%'}},
    )
    return qb


def get_features_node(
    structure: orm.StructureData | int | str,
    representation: str,
    *,
    version: int | None = None,
    params: dict[str, Any] | None = None,
    include_failed: bool = False,
) -> tuple[FeaturesData, int]:
    """Return the newest ``FeaturesData`` holding a row for ``structure``, and the row index.

    :param structure: a ``StructureData``, or its pk or UUID.
    :param version: only results of this representation version (default: any).
    :param params: only results computed with these options (defaults filled in; default: any). Options
        taken from the batch and left unset here (``species=None``) match any resolved value.
    :raises NotExistent: if the structure was never featurised (successfully) that way.
    """
    node = structure if isinstance(structure, orm.StructureData) else orm.load_node(structure)
    qb = _features_query(representation, version, params)
    qb.add_filter('structure', {'id': node.pk})
    qb.add_projection('features', '*')
    qb.order_by({'features': {'ctime': 'desc'}})
    for (features,) in qb.iterall():
        if include_failed or node.uuid not in features.failed_uuids():
            return features, features.row_of(node.uuid)
    raise NotExistent(f'StructureData<{node.pk}> has no {representation} features (version={version}, params={params})')


def get_features(
    structure: orm.StructureData | int | str,
    representation: str,
    *,
    version: int | None = None,
    params: dict[str, Any] | None = None,
) -> np.ndarray:
    """Return the newest feature vector of ``structure`` for a representation (see :func:`get_features_node`)."""
    features, row = get_features_node(structure, representation, version=version, params=params)
    return features.features[row]


def row_structure_uuids(node: FeaturesData) -> tuple[list[str | None], set[int]]:
    """The structure UUID of each row of ``node`` by provenance, and the indices of the rows that failed.

    Rows follow the sorted ``structures__*`` input links of the creating process. This is what the rows mean
    even for a cached copy (whose stored ``rows`` name the structures of the original process), so use it
    rather than ``node.rows`` when structures may be stored more than once.
    """
    qb = orm.QueryBuilder()
    qb.append(FeaturesData, filters={'id': node.pk}, tag='features')
    qb.append(orm.ProcessNode, with_outgoing='features', tag='process')
    qb.append(
        orm.StructureData,
        with_outgoing='process',
        edge_filters={'label': {'like': 'structures__%'}},
        edge_project='label',
        project='uuid',
    )
    linked = sorted(qb.all(), key=lambda row: row[1])
    failed_rows = {int(f['index']) for f in node.failures if 'index' in f}
    if len(linked) == node.base.attributes.get('n_rows'):
        return [uuid for uuid, _ in linked], failed_rows
    return list(node.rows), failed_rows


def vectors_by_uuid(nodes: list[FeaturesData]) -> dict[str, np.ndarray]:
    """Structure UUID -> vector from the newest of ``nodes`` with a successful row for it (rows by provenance)."""
    vectors: dict[str, np.ndarray] = {}
    for node in sorted(nodes, key=lambda n: n.ctime, reverse=True):
        uuids, failed = row_structure_uuids(node)
        matrix = node.features
        for row, uuid in enumerate(uuids):
            if uuid and uuid not in vectors and row not in failed:
                vectors[uuid] = matrix[row]
    return vectors


def feature_nodes_of(
    structure_pks: list[int], representation: str, version: int, params: dict[str, Any]
) -> dict[int, FeaturesData]:
    """Structure pk -> the newest ``FeaturesData`` with a successful row for it, for exactly these settings.

    ``representation`` is a representation's or an embedding model's name (the ``representation`` attribute),
    ``params`` the full options as stored (their hash is compared), so vectors made any other way never match.
    """
    found: dict[int, FeaturesData] = {}
    failed: dict[int, set[str]] = {}
    filters = {
        'attributes.representation': representation,
        'attributes.representation_version': version,
        'attributes.params_hash': params_hash(params),
    }
    pks = sorted(set(structure_pks))
    for chunk in chunks(pks):  # bounded IN clauses
        qb = orm.QueryBuilder()
        qb.append(FeaturesData, filters=filters, tag='features', project='*')
        qb.append(orm.CalculationNode, with_outgoing='features', tag='process')
        qb.append(
            orm.StructureData,
            with_outgoing='process',
            filters={'id': {'in': chunk}},
            edge_filters={'label': {'like': 'structures__%'}},
            project=['id', 'uuid'],
        )
        for node, pk, uuid in qb.all():
            if node.pk not in failed:
                uuids, rows = row_structure_uuids(node)
                failed[node.pk] = {str(uuids[row]) for row in rows if row < len(uuids) and uuids[row]}
            if uuid in failed[node.pk]:
                continue
            if pk not in found or node.ctime > found[pk].ctime:
                found[pk] = node
    return found


def featurized_structure_pks(
    representation: str,
    *,
    version: int | None = None,
    params: dict[str, Any] | None = None,
    among: list[int] | None = None,
    since: Any = None,
) -> set[int]:
    """Return pks of the structures that have a successful row for a representation.

    :param among: restrict the search to these structure pks (e.g. the members of a Group).
    :param since: only rows of processes created at or after this time (a ``datetime``).
    """
    qb = _features_query(representation, version, params)
    if since is not None:
        qb.add_filter('process', {'ctime': {'>=': since}})
    return _successful_pks(qb, among)


def _successful_pks(qb: orm.QueryBuilder, among: list[int] | None, include_failed: bool = False) -> set[int]:
    """Pks of the ``structure`` rows of ``qb`` whose row in the ``features`` node (tag) did not fail.

    :param include_failed: also count rows recorded as failed (the structure was tried).
    """
    if among is not None:
        qb.add_filter('structure', {'id': {'in': list(among)}})
    if include_failed:
        qb.add_projection('structure', 'id')
        return set(qb.all(flat=True))
    qb.add_projection('structure', 'id')
    qb.add_projection('features', ['attributes.n_failed', 'id'])
    done: set[int] = set()
    failed_in: dict[int, set[int]] = {}
    for row in qb.iterdict():
        structure_pk = row['structure']['id']
        n_failed, features_pk = row['features']['attributes.n_failed'], row['features']['id']
        if n_failed:
            failed_in.setdefault(features_pk, set()).add(structure_pk)
        else:
            done.add(structure_pk)
    for features_pk, pks in failed_in.items():
        node = orm.load_node(features_pk)
        failed = {f.get('uuid') for f in node.failures}
        uuid_of = dict(
            orm.QueryBuilder()
            .append(orm.StructureData, filters={'id': {'in': list(pks)}}, project=['id', 'uuid'])
            .all()
        )
        done.update(pk for pk in pks if uuid_of[pk] not in failed)
    return done


def featurized_structures(
    representation: str, *, version: int | None = None, params: dict[str, Any] | None = None
) -> list[orm.StructureData]:
    """Return all structures with a successful row for a representation (optionally version / options)."""
    pks = featurized_structure_pks(representation, version=version, params=params)
    if not pks:
        return []
    return orm.QueryBuilder().append(orm.StructureData, filters={'id': {'in': sorted(pks)}}).all(flat=True)


# ----------------------------------------------------------------------------------------- XRD patterns
_XRD_KEYS = ('wavelength_angstrom', 'two_theta_range', 'step', 'shape', 'fwhm', 'eta', 'doublet')


def simulated_structure_pks(
    settings: dict[str, Any], *, among: list[int] | None = None, include_failed: bool = False
) -> set[int]:
    """Pks of the structures with a successful pattern simulated with ``settings`` (as ``simulate_xrd``).

    :param settings: options of ``matembed.simulate_xrd`` (defaults filled in, wavelength resolved).
    :param include_failed: also count structures whose simulation failed (recorded failure).
    """
    from .core.xrd.settings import XrdSettings

    resolved = XrdSettings.from_dict(settings).stored_attributes()
    qb = orm.QueryBuilder()
    qb.append(XrdPatternsData, filters={f'attributes.{k}': resolved[k] for k in _XRD_KEYS}, tag='features')
    qb.append(orm.CalculationNode, with_outgoing='features', filters=_FINISHED_OK, tag='process')
    qb.append(
        orm.StructureData, with_outgoing='process', tag='structure', edge_filters={'label': {'like': 'structures__%'}}
    )
    return _successful_pks(qb, among, include_failed)


# ------------------------------------------------------------------------------------------ embeddings
def model_nodes(model: ModelData | str | int) -> list[ModelData]:
    """Stored model nodes meant by ``model``: the node itself, its pk / UUID, or every node of that name."""
    if isinstance(model, ModelData):
        return [model]
    if isinstance(model, int) or (isinstance(model, str) and (model.isdigit() or len(model) == 36)):
        node = orm.load_node(model)
        if not isinstance(node, ModelData):
            raise ValueError(f'node {model} is a {type(node).__name__}, not a matembed.model')
        return [node]
    qb = orm.QueryBuilder().append(ModelData, filters={'attributes.name': model})
    qb.order_by({ModelData: {'id': 'desc'}})
    return qb.all(flat=True)


def _model_outputs_query(model: ModelData | str | int, modality: str | None) -> orm.QueryBuilder:
    """``ModelData --model--> process --> FeaturesData`` (tags ``model``, ``process``, ``features``)."""
    pks = [node.pk for node in model_nodes(model)]
    qb = orm.QueryBuilder()
    qb.append(ModelData, filters={'id': {'in': pks or [-1]}}, tag='model')
    qb.append(
        orm.CalculationNode, with_incoming='model', edge_filters={'label': 'model'}, filters=_FINISHED_OK, tag='process'
    )
    filters = {'attributes.params.modality': modality} if modality else {}
    qb.append(FeaturesData, with_incoming='process', filters=filters, tag='features')
    return qb


def _embedding_query(
    model: ModelData | str | int, modality: str | None, via_patterns: bool = False
) -> orm.QueryBuilder:
    """:func:`_model_outputs_query` plus the input structures (tag ``structure``), directly or via patterns."""
    qb = _model_outputs_query(model, modality)
    consumer = 'process'
    if via_patterns:
        qb.append(XrdPatternsData, with_outgoing='process', edge_filters={'label': 'patterns'}, tag='patterns')
        qb.append(orm.CalculationNode, with_outgoing='patterns', tag='simulation')
        consumer = 'simulation'
    qb.append(
        orm.StructureData, with_outgoing=consumer, tag='structure', edge_filters={'label': {'like': 'structures__%'}}
    )
    return qb


def get_embedding_node(
    structure: orm.StructureData | int | str,
    model: ModelData | str | int = 'matembed.cmml',
    *,
    modality: str | None = None,
) -> tuple[FeaturesData, int]:
    """Return the newest ``FeaturesData`` made by ``model`` holding a successful row for ``structure``.

    Embeddings of the structure itself and of its stored patterns are both found.

    :param model: a ``ModelData``, its pk / UUID, or a model name (every imported version of it).
    :param modality: ``'structure'`` or ``'xrd'`` (default: either).
    :raises NotExistent: if the model never embedded the structure.
    """
    node = structure if isinstance(structure, orm.StructureData) else orm.load_node(structure)
    candidates = []
    for via_patterns in (False, True):
        qb = _embedding_query(model, modality, via_patterns)
        qb.add_filter('structure', {'id': node.pk})
        qb.add_projection('features', '*')
        candidates += qb.all(flat=True)
    for features in sorted(candidates, key=lambda f: f.ctime, reverse=True):
        if node.uuid not in features.failed_uuids():
            return features, features.row_of(node.uuid)
    raise NotExistent(f'StructureData<{node.pk}> has no embedding by {model} (modality={modality})')


def get_embedding(
    structure: orm.StructureData | int | str,
    model: ModelData | str | int = 'matembed.cmml',
    *,
    modality: str | None = None,
) -> np.ndarray:
    """The newest embedding (or prediction) of ``structure`` by ``model`` (see :func:`get_embedding_node`)."""
    features, row = get_embedding_node(structure, model, modality=modality)
    return features.features[row]


def model_embeddings(model: ModelData | str | int, *, modality: str | None = None) -> list[FeaturesData]:
    """Every ``FeaturesData`` that ``model`` produced (through the calcfunction or the worker), oldest first."""
    qb = _model_outputs_query(model, modality)
    qb.add_projection('features', '*')
    qb.order_by({'features': {'id': 'asc'}})
    return qb.all(flat=True)


def embedded_structure_pks(
    model: ModelData | str | int,
    *,
    modality: str | None = None,
    among: list[int] | None = None,
    include_failed: bool = False,
) -> set[int]:
    """Pks of the structures that ``model`` embedded successfully (from the structure itself).

    :param include_failed: also count structures recorded as failures by that model (they were tried).
    """
    return _successful_pks(_embedding_query(model, modality), among, include_failed)


def dft_feature_table(
    group: orm.Group | str,
    representation: str,
    *,
    process_class: Any = None,
    structure_link: str = 'output_structure',
    energy_link: str = 'output_parameters',
) -> list[dict[str, Any]]:
    """The vectors of ``representation`` of the structures output by the DFT processes of a Group, with energies.

    One QueryBuilder call: Group -> DFT process -> ``output_parameters`` (energy) and ``output_structure`` ->
    featurising process -> ``FeaturesData``. For aiida-quantumespresso's relaxations::

        from aiida.plugins import WorkflowFactory
        rows = dft_feature_table('my-relaxations', 'matembed.magpie',
                                 process_class=WorkflowFactory('quantumespresso.pw.relax'))

    :param process_class: only processes of this class (default: any process in the Group). Only processes (DFT and
        featurising) that finished ok count; the newest FeaturesData of the representation is used, whatever its
        options (filter the result by ``orm.load_node(row['features']).params`` to choose).
    :returns: one dict per process with ``process``, ``structure`` (pks), ``energy`` (as the output holds it: eV
        for Quantum ESPRESSO), ``features`` (pk of the newest FeaturesData with a successful row for it) and
        ``vector`` (numpy).
    """
    group = group if isinstance(group, orm.Group) else orm.load_group(group)
    qb = orm.QueryBuilder()
    qb.append(orm.Group, filters={'id': group.pk}, tag='group')
    finished_ok = {'attributes.process_state': 'finished', 'attributes.exit_status': 0}
    qb.append(process_class or orm.ProcessNode, with_group='group', tag='dft', project='id', filters=finished_ok)
    qb.append(orm.Dict, with_incoming='dft', edge_filters={'label': energy_link}, project='attributes.energy')
    qb.append(
        orm.StructureData,
        with_incoming='dft',
        edge_filters={'label': structure_link},
        tag='structure',
        project=['id', 'uuid'],
    )
    qb.append(orm.CalculationNode, with_incoming='structure', tag='featurize', filters=finished_ok)
    qb.append(
        FeaturesData, with_incoming='featurize', filters={'attributes.representation': representation}, project='*'
    )
    qb.order_by({FeaturesData: {'ctime': 'desc'}})
    rows = []
    seen: set[int] = set()
    layout: dict[int, tuple[dict[str, int], set[int]]] = {}
    for process_pk, energy, structure_pk, uuid, features in qb.all():
        if process_pk in seen:
            continue
        if features.pk not in layout:  # one provenance read per FeaturesData, not per row
            uuids, failed = row_structure_uuids(features)
            layout[features.pk] = ({u: i for i, u in enumerate(uuids) if u}, failed)
        index_of, failed = layout[features.pk]
        if uuid not in index_of or index_of[uuid] in failed:
            continue
        seen.add(process_pk)
        rows.append(
            {
                'process': process_pk,
                'structure': structure_pk,
                'energy': energy,
                'features': features.pk,
                'vector': features.features[index_of[uuid]],
            }
        )
    return rows
