"""Batches of thousands of nodes: bounded queries, bulk loading, rows of the batch calcfunctions.

The aiida-core patches that link a batch's inputs to one process in linear time are in
:mod:`~aiida_matembed.calculations.bulk_links`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from aiida import orm

T = TypeVar('T')

__all__ = (
    'QUERY_CHUNK',
    'chunks',
    'convert_structures',
    'detach_from_session',
    'failure_record',
    'load_nodes',
    'load_structures',
    'reattach_to_session',
    'row_key',
    'store_structures',
    'structure_rows',
    'structures_namespace',
)


QUERY_CHUNK = 5000
"""Largest number of pks in one ``IN`` clause: queries over many nodes are split into chunks of this size
(SQLite allows at most 32,766 bound parameters per statement; PostgreSQL plans long lists slowly)."""


def chunks(items: Sequence[T], size: int = QUERY_CHUNK) -> Iterator[list[T]]:
    """Consecutive slices of ``items`` of at most ``size`` (as lists), for bounded ``IN`` clauses."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _identity(node: orm.Node) -> int | None:
    """Primary key of a node from SQLAlchemy's identity key (``None`` if unstored), never reloading the row."""
    bare = getattr(node.backend_entity, 'bare_model', None)
    if bare is None:
        return node.pk
    from sqlalchemy import inspect as sa_inspect

    identity = sa_inspect(bare).identity
    return None if identity is None else int(identity[0])


def refresh_in_bulk(nodes: list[orm.Node]) -> None:
    """Reload expired ORM state of many stored nodes with one query per 5,000 (instead of one each).

    SQLAlchemy expires every loaded object on commit; the next attribute access (even ``is_stored``)
    then costs one ``SELECT`` per node. The rows are read again with ``populate_existing`` so the objects
    already in the session are refreshed. Nodes that are not expired, or storage backends that are not
    SQLAlchemy-based, are left alone.
    """
    from sqlalchemy import inspect as sa_inspect

    pks: list[int] = []
    model = None
    for node in nodes:
        bare = getattr(node.backend_entity, 'bare_model', None)
        if bare is None:
            return
        state = sa_inspect(bare)
        if state.identity is not None and state.expired_attributes:
            pks.append(state.identity[0])
            model = type(bare)
    if not pks or model is None:
        return
    session = _session()
    for chunk in chunks(pks):
        statement = _select_without_json(model, chunk)
        session.execute(statement.execution_options(populate_existing=True)).scalars().all()


def _select_without_json(model: Any, pks: list[int]) -> Any:
    """``SELECT`` of node rows with the JSON columns deferred.

    Decoding every structure's sites is the expensive part of loading a node; what the engine reads of an input
    node is its pk, UUID and type, and the attributes load on access as usual.
    """
    from sqlalchemy import select
    from sqlalchemy.orm import defer

    return (
        select(model)
        .where(model.id.in_(pks))
        .options(defer(model.attributes), defer(model.extras), defer(model.repository_metadata))
    )


# ------------------------------------------------------------------- many stored nodes without ORM overhead
def detach_from_session(nodes: list[orm.Node]) -> list[Any]:
    """Take stored, unmodified node objects out of the SQLAlchemy session; return them for :func:`reattach_to_session`.

    SQLAlchemy expires every object of the session at each commit, and a worker job keeps its 10,000 input
    structures alive from creation to the end while the engine commits a few hundred times (every state change
    and attribute update): ~2.4 million expirations, a quarter of the job's wall time. The job needs only the
    pks, UUIDs and types of its inputs after it is stored, so their objects leave the session until the job
    closes (their pk, UUID and type are loaded first and stay readable). Objects with pending changes, unstored
    ones and those of storage backends without a SQLAlchemy session are left alone.
    """
    session = _session()
    if session is None:
        return []
    from sqlalchemy import inspect as sa_inspect

    refresh_in_bulk(nodes)  # pk, UUID and type loaded (JSON columns stay deferred)
    detached = []
    for node in nodes:
        bare = getattr(node.backend_entity, 'bare_model', None)
        if bare is None:
            continue
        state = sa_inspect(bare)
        if state.persistent and not state.modified and state.session is session:
            session.expunge(bare)
            detached.append(bare)
    return detached


def reattach_to_session(models: list[Any]) -> int:
    """Put objects taken out by :func:`detach_from_session` back into the session (fields reload on access).

    An object whose row was loaded again meanwhile (another object with the same identity in the session) stays
    detached. Returns how many were put back.
    """
    session = _session()
    if session is None or not models:
        return 0
    from sqlalchemy import inspect as sa_inspect

    back = 0
    for bare in models:
        state = sa_inspect(bare)
        if state.detached and state.key not in session.identity_map:
            session.add(bare)
            back += 1
    return back


def _session() -> Any:
    from aiida.manage import get_manager

    storage = get_manager().get_profile_storage()
    get_session = getattr(storage, 'get_session', None)
    return get_session() if get_session is not None else None


def _node_model() -> Any:
    """The SQLAlchemy model of the node table of the current storage, or ``None`` if it has none."""
    from aiida.manage import get_manager

    storage = get_manager().get_profile_storage()
    if getattr(storage, 'get_session', None) is None:
        return None
    return getattr(storage.query(), 'Node', None)


def load_nodes(
    pks: list[int], node_class: type[orm.Node] = orm.StructureData, *, missing: str = 'raise'
) -> list[orm.Node]:
    """The stored nodes ``pks`` (in that order), one query per chunk, without decoding their JSON columns.

    ``QueryBuilder`` decodes the attributes, extras and repository metadata of every node it loads; the engine
    only needs pks, UUIDs and types of process inputs, and the JSON columns load on access as usual.

    :param missing: ``'raise'`` (``ValueError`` for unknown pks and nodes of other classes) or ``'skip'`` (leave
        them out).
    """
    if missing not in ('raise', 'skip'):
        raise ValueError(f"missing must be 'raise' or 'skip', got {missing!r}")
    model = _node_model()
    if model is None:  # not an SQLAlchemy storage: the generic (slower) path
        found: dict[int, orm.Node] = {}
        for chunk in chunks(pks):
            query = orm.QueryBuilder().append(node_class, filters={'id': {'in': chunk}})
            found.update({node.pk: node for node in query.all(flat=True)})
    else:
        from aiida.manage import get_manager
        from aiida.orm.convert import get_orm_entity

        storage = get_manager().get_profile_storage()
        session = _session()
        found = {}
        for chunk in chunks(pks):
            for row in session.execute(_select_without_json(model, chunk)).scalars():
                found[row.id] = get_orm_entity(storage.get_backend_entity(row))  # type: ignore[attr-defined]
    if missing == 'skip':
        return [found[pk] for pk in pks if isinstance(found.get(pk), node_class)]
    unknown = [pk for pk in pks if pk not in found]
    if unknown:
        raise ValueError(f'no stored node with pk {unknown[:5]}' + (' ...' if len(unknown) > 5 else ''))
    wrong = [pk for pk in pks if not isinstance(found[pk], node_class)]
    if wrong:
        raise ValueError(f'nodes {wrong[:5]} are not {node_class.__name__}')
    return [found[pk] for pk in pks]


def load_structures(pks: Sequence[int], *, missing: str = 'raise') -> list[orm.StructureData]:
    """The ``StructureData`` of ``pks`` with their attributes, in the order of ``pks`` (one query per chunk).

    :param missing: ``'raise'`` (``ValueError`` naming pks that are not stored ``StructureData``) or ``'skip'``
        (leave them out, e.g. structures deleted since a WorkChain started).
    """
    if missing not in ('raise', 'skip'):
        raise ValueError(f"missing must be 'raise' or 'skip', got {missing!r}")
    found: dict[int, orm.StructureData] = {}
    for chunk in chunks(pks):
        query = orm.QueryBuilder().append(orm.StructureData, filters={'id': {'in': chunk}})
        found.update({node.pk: node for node in query.all(flat=True)})
    unknown = [pk for pk in pks if pk not in found]
    if missing == 'skip':
        return [found[pk] for pk in pks if pk in found]
    if unknown:
        raise ValueError(f'no stored StructureData with pk {unknown[:5]}' + (' ...' if len(unknown) > 5 else ''))
    return [found[pk] for pk in pks]


def structure_rows(pks: list[int]) -> dict[int, tuple[str, dict[str, Any]]]:
    """``{pk: (uuid, attributes)}`` of stored nodes, one query per chunk (no ORM objects, no conversion)."""
    rows: dict[int, tuple[str, dict[str, Any]]] = {}
    model = _node_model()
    for chunk in chunks(pks):
        if model is None:
            query = orm.QueryBuilder().append(
                orm.Node, filters={'id': {'in': chunk}}, project=['id', 'uuid', 'attributes']
            )
            rows.update({pk: (uuid, attributes) for pk, uuid, attributes in query.iterall()})
            continue
        from sqlalchemy import select

        statement = select(model.id, model.uuid, model.attributes).where(model.id.in_(chunk))
        rows.update({pk: (str(uuid), attributes) for pk, uuid, attributes in _session().execute(statement)})
    return rows


# ------------------------------------------------------------------------- shared by the batch calcfunctions
def row_key(index: int) -> str:
    """Key of row ``index`` in the ``structures`` namespace; zero-padded so sorting keeps the order."""
    return f's{index:07d}'


def structures_namespace(kwargs: dict[str, Any]) -> list[Any]:
    """The nodes of a calcfunction's ``structures`` namespace in row order (sorted keys).

    :raises ValueError: for inputs outside the namespace or an empty namespace.
    """
    structures = kwargs.pop('structures', None)
    if kwargs:
        raise ValueError(f'unexpected inputs {sorted(kwargs)}: pass the structures in the `structures` namespace')
    if not structures:
        raise ValueError('no structures given: the `structures` namespace is empty')
    return [structures[key] for key in sorted(structures)]


def failure_record(row: int, node: orm.Data, error_type: str, message: str) -> dict[str, Any]:
    """The JSON record of a failed row, as stored on output nodes and in the ``failures`` output."""
    return {'index': row, 'uuid': node.uuid, 'pk': node.pk, 'error_type': error_type, 'message': message}


def convert_structures(nodes: list[Any], *, arrays: bool = False) -> tuple[list[Any], list[int], list[dict[str, Any]]]:
    """Convert ``StructureData`` inputs for the core; return the structures, their rows and failure records.

    :param arrays: read ordered structures straight from their attributes into
        :class:`~aiida_matembed.core.structures.Crystal` arrays (no pymatgen objects; what the representations
        read fastest); disordered ones still become pymatgen structures. ``False``: pymatgen for all.
    """
    from ..data.convert import structure_data_to_crystal, structure_data_to_pymatgen

    converted: list[Any] = []
    rows: list[int] = []
    failures: list[dict[str, Any]] = []
    for row, node in enumerate(nodes):
        try:
            if not isinstance(node, orm.StructureData):
                raise TypeError(f'expected StructureData, got {type(node).__name__}')
            crystal = structure_data_to_crystal(node) if arrays else None
            converted.append(crystal if crystal is not None else structure_data_to_pymatgen(node))
            rows.append(row)
        except Exception as exception:
            failures.append(failure_record(row, node, type(exception).__name__, str(exception)))
    return converted, rows, failures


def store_structures(structures: Any) -> dict[str, orm.StructureData]:
    """``StructureData`` (stored) keyed for a ``structures`` namespace, from nodes, pymatgen or ASE objects.

    A mapping keeps its keys; a sequence gets zero-padded row keys so that sorting keeps the order.
    """
    from collections.abc import Mapping

    from ..data.convert import to_structure_data

    if isinstance(structures, Mapping):
        nodes = {str(key): to_structure_data(value) for key, value in structures.items()}
    else:
        nodes = {row_key(i): to_structure_data(value) for i, value in enumerate(structures)}
    if not nodes:
        raise ValueError('no structures given')
    refresh_in_bulk(list(nodes.values()))
    for node in nodes.values():
        if not node.is_stored:
            node.store()
    return nodes


def run_maybe_cached(function: Any, identifier: str, use_cache: bool, **inputs: Any) -> tuple[Any, Any]:
    """``function.run_get_node(**inputs)``, with AiiDA caching enabled for ``identifier`` when ``use_cache``."""
    if not use_cache:
        return function.run_get_node(**inputs)
    from aiida.manage.caching import enable_caching

    with enable_caching(identifier=identifier):
        return function.run_get_node(**inputs)
