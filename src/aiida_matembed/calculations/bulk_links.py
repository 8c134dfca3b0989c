"""Linking a whole batch of inputs to one process node in linear time.

``Process._setup_inputs`` in aiida-core validates every input link on its own: a uniqueness scan of
the link cache (comparing node UUIDs, so quadratic in the number of inputs) plus two database queries
per link (existing triple, cycle check). With thousands of structures as inputs of one calcfunction
that costs minutes (measured: 28 s for 400 inputs, 212 s for 2,000). For a *new* process node whose
inputs are all ``Data`` nodes those checks cannot fail: the node has no descendants (no cycle), link
labels are unique dictionary keys, and ``Data -> CalculationNode`` is always an allowed ``INPUT_CALC``
link. :func:`link_inputs_in_bulk` therefore checks the types once and fills the link cache directly;
the links are stored by ``store_all`` exactly as before. WorkChains get the same treatment (their ``Data``
inputs are ``INPUT_WORK`` links, as certain to be valid).

These are the only patches of aiida-core in the package. They are applied explicitly, process class by process
class (``link_inputs_in_bulk(featurize)``; nothing is patched on import of this module), and only while the
aiida-core functions they replace have the source they were written against (:data:`PATCHED_AIIDA_FUNCTIONS`,
checked by ``tests/calculations/test_batch.py``, which fails when aiida-core changes one of them); otherwise the
process keeps aiida-core's own linking and a warning says so. What they buy, measured with aiida-core 2.9.4:
one calcfunction with 2,000 structure inputs 212 s -> 8.5 s (``benchmarks/RESULTS.md``, provenance throughput).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import types
import warnings
from collections.abc import Callable
from functools import cache
from typing import Any

from aiida import orm
from aiida.common.links import LinkType, validate_link_label
from aiida.orm.nodes.caching import NodeCaching
from aiida.orm.nodes.links import NodeLinks
from aiida.orm.utils.links import LinkManager, LinkTriple

from .batch import _identity, chunks, refresh_in_bulk

__all__ = ('PATCHED_AIIDA_FUNCTIONS', 'changed_aiida_functions', 'link_inputs_in_bulk')


def _get_incoming_linear(
    self: Any,
    node_class: Any = None,
    link_type: Any = (),
    link_label_filter: str | None = None,
    only_uuid: bool = False,
) -> LinkManager:
    """``NodeLinks.get_incoming`` without the quadratic duplicate scan, for the unstored process node.

    aiida-core checks every cached triple against the list built so far (``triple in list``, comparing
    node UUIDs through the ORM), which is quadratic; the cache was filled by
    :func:`_setup_inputs_in_bulk` from a dictionary, so it holds no duplicates. Once the node is stored
    the original method is used.
    """
    if self._node.is_stored:
        # a stored process node's inputs never change: build the manager once (aiida-core asks for all the
        # incoming links at every state change of a CalcJob, e.g. ``'monitors' in node.inputs``)
        if link_label_filter is not None:
            return NodeLinks.get_incoming(self, node_class, link_type, link_label_filter, only_uuid)
        if only_uuid or node_class is not None:
            return NodeLinks.get_incoming(self, node_class, link_type, None, only_uuid)
        if '_matembed_incoming' not in self.__dict__:
            self.__dict__['_matembed_incoming'] = NodeLinks.get_incoming(self).all()
        types_ = link_type if isinstance(link_type, (tuple, list)) else (link_type,)
        cached = self.__dict__['_matembed_incoming']
        return LinkManager([t for t in cached if not types_ or t.link_type in types_])
    if only_uuid or link_label_filter is not None:
        return NodeLinks.get_incoming(self, node_class, link_type, link_label_filter, only_uuid)
    if not isinstance(link_type, (tuple, list)):
        link_type = (link_type,)
    return LinkManager([t for t in self.incoming_cache if not link_type or t.link_type in link_type])
    # (the cache may also hold the CALL link from a calling WorkChain: a different type and label)


def _add_link_without_savepoint(self: Any, source: Any, link_type: LinkType, link_label: str) -> None:
    """``SqlaNode._add_link`` for the links of a new process node: no SAVEPOINT per link.

    aiida-core wraps every link in ``session.begin_nested()`` to turn a uniqueness violation into a clear
    error; the links of a new process node to distinct stored inputs with distinct labels cannot violate it
    (checked before, see :func:`_setup_inputs_in_bulk`), and one SAVEPOINT per structure costs ~1 ms.
    """
    source_pk = _identity(source) if isinstance(source, orm.Node) else None
    if source_pk is None:
        bare = getattr(source, 'bare_model', None)
        from sqlalchemy import inspect as sa_inspect

        identity = sa_inspect(bare).identity if bare is not None else None
        source_pk = int(identity[0]) if identity is not None else source.pk
    session = self.backend.get_session()
    target = self.bare_model
    if target.id is None:  # the node row is added but not flushed yet: get its primary key once
        session.flush()
    session.add(self.LINK_CLASS(input_id=source_pk, output_id=target.id, label=link_label, type=link_type.value))


def _stored_hashes(triples: list[LinkTriple]) -> dict[str, str]:
    """Return ``{link label: stored hash}`` of the stored inputs, read with one query."""
    label_of = {t.node.pk: t.link_label for t in triples if t.node.is_stored}
    hashes: dict[str, str] = {}
    pks = list(label_of)
    for chunk in chunks(pks):  # bounded IN clauses
        query = orm.QueryBuilder().append(orm.Node, filters={'id': {'in': chunk}}, project=['id', 'extras._aiida_hash'])
        for pk, value in query.iterall():
            if value:
                hashes[label_of[pk]] = value
    return hashes


def _objects_to_hash_from_stored_input_hashes(self: Any) -> dict[str, Any]:
    """``ProcessNodeCaching.get_objects_to_hash`` that takes each input's hash as stored at its creation.

    aiida-core recomputes every input's hash from its attributes and repository (twice: for the cache
    lookup before storing and again after). A stored node's attributes and repository are immutable, so
    its stored ``_aiida_hash`` (what the cache lookup of every other process compares with) is the same
    value; inputs without a stored hash fall back to recomputing.
    """
    stored: dict[str, str] = self._matembed_input_hashes
    res = NodeCaching.get_objects_to_hash(self)
    if isinstance(self._node, orm.CalcJobNode):
        res.pop('repository_hash', None)  # as CalcJobNodeCaching: the inputs define a CalcJob, not its sandbox
    res['inputs'] = {
        entry.link_label: stored.get(entry.link_label) or entry.node.base.caching.compute_hash()
        for entry in self._node.base.links.get_incoming(link_type=(LinkType.INPUT_CALC, LinkType.INPUT_WORK))
        if entry.link_label not in self._hash_ignored_inputs
    }
    return res


def _setup_inputs_in_bulk(self: Any) -> None:
    node = self.node
    if node.is_stored:
        raise RuntimeError('bulk input linking needs a new, unstored process node')
    inputs = {label: source for label, source in self._flat_inputs().items() if source is not None}
    refresh_in_bulk([source for source in inputs.values() if isinstance(source, orm.Node)])
    triples = []
    link_type = LinkType.INPUT_CALC if isinstance(node, orm.CalculationNode) else LinkType.INPUT_WORK
    for label, source in inputs.items():
        if not isinstance(source, orm.Data):
            raise TypeError(f'input {label!r} is a {type(source).__name__}, not a Data node')
        validate_link_label(label)
        triples.append(LinkTriple(source, link_type, label))
    node.base.links.incoming_cache.extend(triples)
    sources = [t.node for t in triples]
    links = node.base.links
    original_store_all = node.store_all

    def store_all(*args: Any, **kwargs: Any) -> Any:
        # store the new small inputs first (each store commits, which expires every loaded node), then reload
        # the thousands of stored inputs with one query: store_all checks each with is_stored
        for source in sources:
            if _identity(source) is None:
                source.store()
        refresh_in_bulk(sources)
        # every link the stored node will have: what ``get_incoming`` of the stored node returns (from the hash
        # computed right after storing on), without reading 10,000 nodes back from the database
        links.__dict__['_matembed_incoming'] = list(links.incoming_cache)
        try:
            return original_store_all(*args, **kwargs)
        except BaseException:
            links.__dict__.pop('_matembed_incoming', None)
            raise
        finally:
            del node.store_all  # back to the class method; drops this closure's references to the inputs
            sources.clear()

    node.store_all = store_all  # type: ignore[method-assign]
    backend_node = node.backend_entity
    if hasattr(backend_node, '_add_link') and hasattr(backend_node, 'LINK_CLASS'):
        backend_node._add_link = types.MethodType(_add_link_without_savepoint, backend_node)
    links.get_incoming = types.MethodType(_get_incoming_linear, links)
    caching = node.base.caching
    caching._matembed_input_hashes = _stored_hashes(triples)
    caching.get_objects_to_hash = types.MethodType(_objects_to_hash_from_stored_input_hashes, caching)
    if isinstance(node, orm.CalcJobNode) and not node.computer:  # what CalcJob._setup_inputs adds
        code = self.inputs.get('code')
        node.computer = code.computer if code is not None else None
    _record_row_uuids(node, inputs)
    hook = getattr(type(self), '_matembed_after_inputs', None)
    if hook is not None:
        hook(self)


def _record_row_uuids(node: orm.ProcessNode, inputs: dict[str, Any]) -> None:
    """Put a hash of the input structures' UUIDs in row order on the process node, before it is hashed.

    The output records those UUIDs (its ``rows``), so it is a function of the input *nodes*, not only of their
    content: without this, a batch of other nodes with equal structures would be a cache hit whose copied output
    names the rows of the original's structures.
    """
    import hashlib

    labels = sorted(label for label in inputs if label.startswith('structures__'))
    if labels:
        uuids = '\n'.join(inputs[label].uuid for label in labels)
        node.base.attributes.set('matembed_rows_hash', hashlib.sha256(uuids.encode()).hexdigest())


PATCHED_AIIDA_FUNCTIONS = {
    'aiida.engine.processes.process:Process._setup_inputs': 'b9a7f31e031d555e',
    'aiida.engine.processes.calcjobs.calcjob:CalcJob._setup_inputs': '20f2de495f7a3345',
    'aiida.orm.nodes.links:NodeLinks.get_incoming': '22e3cb1cebbd4fb2',
    'aiida.orm.nodes.caching:NodeCaching.get_objects_to_hash': '797a8e34fcfb14ea',
    'aiida.orm.nodes.process.process:ProcessNodeCaching.get_objects_to_hash': '38e13bf7636ad912',
    'aiida.storage.psql_dos.orm.nodes:SqlaNode._add_link': '621390f7be289a47',
}
"""The aiida-core functions that :func:`link_inputs_in_bulk` replaces or reproduces, with the sha256 (first 16 hex
digits) of their source in aiida-core 2.9.4, the version the replacement was written and measured against."""


@cache
def changed_aiida_functions() -> tuple[str, ...]:
    """The entries of :data:`PATCHED_AIIDA_FUNCTIONS` whose source differs in the installed aiida-core."""
    changed = []
    for name, digest in PATCHED_AIIDA_FUNCTIONS.items():
        module, _, qualname = name.partition(':')
        target: Any = importlib.import_module(module)
        try:
            for part in qualname.split('.'):
                target = getattr(target, part)
            source = inspect.getsource(target)
        except (AttributeError, OSError, TypeError):
            changed.append(name)
            continue
        if hashlib.sha256(source.encode()).hexdigest()[:16] != digest:
            changed.append(name)
    return tuple(changed)


def link_inputs_in_bulk(process_function: Any, after_inputs: Callable[[Any], None] | None = None) -> Any:
    """Make a calcfunction (or a CalcJob or WorkChain class) link its inputs in bulk (see the module docstring).

    A new WorkChain node's ``Data`` inputs are ``INPUT_WORK`` links, as valid as ``INPUT_CALC`` ones for a new
    calculation node (no descendants, unique labels).

    Returns its argument unchanged, so it also works as a class decorator.

    :param after_inputs: optional hook called with the process after the links are cached and before
        the node is stored (and hashed), e.g. to record attributes that must enter the cache hash.

    Applied only while the aiida-core functions it replaces are the ones it was written against
    (:data:`PATCHED_AIIDA_FUNCTIONS`); otherwise the process keeps aiida-core's linking and a warning says so.
    """
    from aiida.engine import WorkChain

    is_workchain = isinstance(process_function, type) and issubclass(process_function, WorkChain)
    process_class = process_function if is_workchain else getattr(process_function, 'process_class', process_function)
    if not is_workchain and not issubclass(process_class._node_class, (orm.CalcFunctionNode, orm.CalcJobNode)):
        raise TypeError('link_inputs_in_bulk only supports calcfunctions, CalcJobs and WorkChains')
    changed = changed_aiida_functions()
    if changed:  # never patch code we have not read: aiida-core's own (quadratic) linking is correct
        warnings.warn(
            f'aiida-core changed {", ".join(changed)}: {process_class.__name__} links its inputs one by one '
            '(slower for large batches) until aiida-matembed is updated',
            stacklevel=2,
        )
        if after_inputs is not None:  # the hook still runs before the node is hashed
            original = process_class._setup_inputs

            def setup_inputs_then_hook(self: Any) -> None:
                original(self)
                after_inputs(self)

            process_class._setup_inputs = setup_inputs_then_hook
        return process_function
    process_class._setup_inputs = _setup_inputs_in_bulk
    process_class._matembed_after_inputs = staticmethod(after_inputs) if after_inputs else None
    return process_function
