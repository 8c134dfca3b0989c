"""QueryBuilder helpers over the provenance graph of featurisations.

The path queried is ``StructureData --INPUT_CALC--> featurize (CalcFunctionNode) --CREATE--> FeaturesData``
with the representation name, version and parameter hash as attributes of the ``FeaturesData``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from aiida import orm
from aiida.common.exceptions import NotExistent

from .core.representations import load_representation_class
from .data.features import FeaturesData, params_hash
from .plugins import use_aiida_entry_points

use_aiida_entry_points()

__all__ = (
    'featurized_structure_pks',
    'featurized_structures',
    'get_features',
    'get_features_node',
)


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
    qb.append(orm.CalcFunctionNode, with_outgoing='features', tag='process')
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


def featurized_structure_pks(
    representation: str,
    *,
    version: int | None = None,
    params: dict[str, Any] | None = None,
    among: list[int] | None = None,
) -> set[int]:
    """Return pks of the structures that have a successful row for a representation.

    :param among: restrict the search to these structure pks (e.g. the members of a Group).
    """
    qb = _features_query(representation, version, params)
    if among is not None:
        qb.add_filter('structure', {'id': {'in': list(among)}})
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
        features = orm.load_node(features_pk)
        failed = features.failed_uuids()
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
