"""``matembed.featurize_group``: featurise every structure of a Group, in batches, incrementally."""

from __future__ import annotations

from typing import Any

from aiida import orm
from aiida.engine import ExitCode, ToContext, WorkChain, while_

from ..calculations.featurize import featurize_structures
from ..core.representations import load_representation_class
from ..dft.processes import group_members
from ..query import featurized_structure_pks
from .claims import Claim, claim_batch, claim_key, note_claim, release_claim, wait_for_claims
from .lease import ProcessLeaseMixin
from .protocols import ProtocolMixin

__all__ = ('FeaturizeGroupWorkChain', 'pending_structure_pks', 'resolve_params')


def _load_group(identifier: str) -> orm.Group:
    try:
        return orm.load_group(identifier)
    except Exception:
        raise ValueError(f'Group {identifier!r} does not exist (give its label, pk or UUID)') from None


def _validate_group(value: orm.Str, _: Any) -> str | None:
    try:
        _load_group(value.value)
    except ValueError as exception:
        return str(exception)
    return None


def _validate_representation(value: orm.Str, _: Any) -> str | None:
    try:
        load_representation_class(value.value)
    except (ValueError, TypeError) as exception:
        return str(exception)
    return None


def _validate_inputs(inputs: dict[str, Any], _: Any) -> str | None:
    if 'representation' not in inputs:
        return None
    try:
        cls = load_representation_class(inputs['representation'].value)
        params = inputs['parameters'].get_dict() if 'parameters' in inputs else {}
        cls.from_params(params)
    except (ValueError, TypeError) as exception:
        return f'invalid parameters: {exception}'
    store_graphs = inputs.get('store_graphs')
    if store_graphs is not None and store_graphs.value and cls.output_kind != 'graph':
        return f'store_graphs is only possible for a graph representation, not {cls.name}'
    batch_size = inputs.get('batch_size')
    if batch_size is not None and batch_size.value < 1:
        return f'batch_size must be >= 1, got {batch_size.value}'
    return None


def pending_structure_pks(
    group: orm.Group,
    representation: str,
    params: dict[str, Any] | None = None,
    *,
    skip_existing: bool = True,
    structure_link: str = 'output_structure',
) -> list[int]:
    """Pks of the Group's structures that have no current (same version and options) successful row.

    The Group may hold structures and finished DFT processes of any plugin, which stand for their output
    structure ``structure_link`` (:func:`aiida_matembed.dft.processes.group_members`).
    """
    pks = group_members(group, structure_link=structure_link).structure_pks
    if not skip_existing or not pks:
        return pks
    rep = load_representation_class(representation).from_params(params or {})
    done = featurized_structure_pks(representation, version=rep.version, params=rep.get_params(), among=pks)
    return [pk for pk in pks if pk not in done]


def resolve_params(
    representation: str,
    params: dict[str, Any] | None = None,
    *,
    group: orm.Group | None = None,
    pks: list[int] | None = None,
) -> dict[str, Any]:
    """Options of ``representation`` with those taken "from the batch" resolved on all given structures.

    E.g. ``species=None`` of ``matembed.soap`` becomes the elements of every structure of the Group (or of
    the pks), so that all batches share the same columns. Only the kinds of each ``StructureData`` are
    read; no structure is loaded.
    """
    from pymatgen.core import Composition

    rep = load_representation_class(representation).from_params(params or {})
    if group is not None:
        pks = group_members(group).structure_pks
    query = orm.QueryBuilder()
    query.append(orm.StructureData, filters={'id': {'in': list(pks or [])}}, project='attributes.kinds')
    symbols = {symbol for kinds in query.all(flat=True) for kind in kinds or [] for symbol in kind['symbols']}
    try:
        composition = Composition({symbol: 1 for symbol in symbols})
    except Exception:  # an odd symbol: each batch resolves its own and reports the bad structure
        return rep.get_params()
    return rep.fit([composition]).get_params() if symbols else rep.get_params()


class FeaturizeGroupWorkChain(ProcessLeaseMixin, ProtocolMixin, WorkChain):
    """Featurise the ``StructureData`` of a Group with one representation, ``batch_size`` per process.

    Structures that already have a current result (same representation, version and options, row not
    failed) are skipped, so re-running after adding structures only featurises the new ones. Each batch is
    claimed just before it runs (:mod:`~aiida_matembed.workflows.claims`): structures that got a current result
    or that another live process claimed meanwhile are left out, so concurrent or redelivered copies never
    featurise a structure twice, and calcfunctions left ``Running`` by a dead daemon worker are marked killed
    and their structures run again. Structures left to another WorkChain are awaited and re-checked at the end. A batch
    whose process raises is split in two and retried, down to single structures. Options taken "from the
    batch" (``species=None``) are resolved once on the whole Group, so all batches share their columns.
    """

    _protocol_file = 'featurize_group'

    @classmethod
    def get_builder_from_protocol(
        cls,
        group: orm.Group | str,
        representation: str,
        *,
        protocol: str | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> Any:
        """A builder for featurising ``group`` with ``representation``, inputs from a protocol.

        :param protocol: ``fast``, ``moderate`` (default) or ``precise`` (``protocols/featurize_group.yaml``):
            batch size and the resolution of the structural representations (SOAP, RDFs).
        :param overrides: input name -> value over the protocol's; ``parameters`` update the protocol's options.
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        node = group if isinstance(group, orm.Group) else _load_group(group)
        presets = inputs.pop('representation_parameters', {}).get(representation, {})
        builder = cls.get_builder()
        builder.group = orm.Str(node.uuid)
        builder.representation = orm.Str(representation)
        builder.parameters = orm.Dict({**presets, **inputs.pop('parameters', {})})
        builder.batch_size = orm.Int(inputs.pop('batch_size'))
        builder.skip_existing = orm.Bool(inputs.pop('skip_existing'))
        builder.store_graphs = orm.Bool(inputs.pop('store_graphs'))
        if 'structure_link' in inputs:
            builder.structure_link = orm.Str(inputs.pop('structure_link'))
        return builder

    @classmethod
    def define(cls, spec: Any) -> None:
        """Define inputs, outline, outputs and exit codes."""
        super().define(spec)
        spec.input('group', valid_type=orm.Str, validator=_validate_group, help='Label, pk or UUID of the Group.')
        spec.input('representation', valid_type=orm.Str, validator=_validate_representation)
        spec.input('parameters', valid_type=orm.Dict, required=False, help='Options of the representation.')
        spec.input('batch_size', valid_type=orm.Int, default=lambda: orm.Int(1000))
        spec.input('skip_existing', valid_type=orm.Bool, default=lambda: orm.Bool(True))
        spec.input(
            'store_graphs',
            valid_type=orm.Bool,
            default=lambda: orm.Bool(False),
            help="For a graph representation, also store each batch's graphs (a `graphs` output per batch).",
        )
        spec.input(
            'structure_link',
            valid_type=orm.Str,
            default=lambda: orm.Str('output_structure'),
            help='For DFT processes in the Group: the output link of the structure they stand for.',
        )
        spec.inputs.validator = _validate_inputs
        spec.outline(cls.setup, while_(cls.has_batch)(cls.run_batch), cls.finalize)  # type: ignore[arg-type]
        spec.output_namespace('features', valid_type=orm.Data, dynamic=True, help='One FeaturesData per batch.')
        spec.output_namespace('graphs', valid_type=orm.Data, dynamic=True, help='One CrystalGraphsData per batch.')
        spec.exit_code(300, 'ERROR_BATCH_FAILED', message='featurising structure {pk} failed even on its own: {error}')

    def _params(self) -> dict[str, Any]:
        return dict(self.ctx.params)

    def setup(self) -> None:
        """Resolve batch-dependent options, find the structures without current results, make batches."""
        group = _load_group(self.inputs.group.value)
        given = self.inputs.parameters.get_dict() if 'parameters' in self.inputs else {}
        self.ctx.params = resolve_params(self.inputs.representation.value, given, group=group)
        pending = pending_structure_pks(
            group,
            self.inputs.representation.value,
            self._params(),
            skip_existing=self.inputs.skip_existing.value,
            structure_link=self.inputs.structure_link.value,
        )
        size = self.inputs.batch_size.value
        self.ctx.batches = [pending[i : i + size] for i in range(0, len(pending), size)]
        self.ctx.n_batches = 0
        self.ctx.elsewhere = {}
        self.report(
            f'{len(pending)} structure(s) of group {group.label!r} to featurise in {len(self.ctx.batches)} batch(es)'
        )

    def has_batch(self) -> bool:
        """Whether batches remain, or structures claimed by other WorkChains to check again."""
        return bool(self.ctx.batches) or bool(self.ctx.get('elsewhere'))

    def _claim_key(self) -> str:
        cls = load_representation_class(self.inputs.representation.value)
        return claim_key('featurize', cls.name, cls.version, cls.from_params(self._params()).get_params())

    def _current(self, pks: list[int]) -> set[int]:
        """Pks among ``pks`` with a current result (made after this WorkChain started, with ``skip_existing=False``)."""
        rep = load_representation_class(self.inputs.representation.value).from_params(self._params())
        since = None if self.inputs.skip_existing.value else self.node.ctime
        return featurized_structure_pks(rep.name, version=rep.version, params=rep.get_params(), among=pks, since=since)

    def _claim(self, batch: list[int]) -> Claim:
        claim = claim_batch(self._claim_key(), batch, self, self._current)
        note_claim(self, claim, 'featurised')
        return claim

    def _next_label(self) -> str:
        """``batch_NNNN``, the next label not used by an output yet (another copy of this WorkChain may add some)."""
        from aiida.common.links import LinkType

        used = set(self.node.base.links.get_outgoing(link_type=LinkType.RETURN).all_link_labels())
        while f'features__batch_{self.ctx.n_batches:04d}' in used:
            self.ctx.n_batches += 1
        return f'batch_{self.ctx.n_batches:04d}'

    def run_batch(self) -> ExitCode | ToContext | None:
        """Featurise the next batch (its claimed part) in one calcfunction; split it on an unexpected exception."""
        if not self.ctx.batches:
            return wait_for_claims(self, self._claim_key(), self._current, self.inputs.batch_size.value)
        claim = self._claim(self.ctx.batches.pop(0))
        batch = claim.pks
        if not batch:
            return None
        try:
            return self._featurize(batch)
        finally:
            release_claim(claim)

    def _featurize(self, batch: list[int]) -> ExitCode | None:
        nodes = orm.QueryBuilder().append(orm.StructureData, filters={'id': {'in': batch}}).all(flat=True)
        nodes.sort(key=lambda node: node.pk)
        try:
            features, process = featurize_structures(
                nodes, self.inputs.representation.value, self._params(), store_graphs=self.inputs.store_graphs.value
            )
        except Exception as exception:
            if len(batch) == 1:
                return self.exit_codes.ERROR_BATCH_FAILED.format(pk=batch[0], error=exception)
            half = len(batch) // 2
            self.report(f'batch of {len(batch)} failed ({exception}); retrying as two batches')
            self.ctx.batches[:0] = [batch[:half], batch[half:]]
            return None
        label = self._next_label()
        self.out(f'features.{label}', features)
        if 'graphs' in process.outputs:
            self.out(f'graphs.{label}', process.outputs.graphs)
        self.ctx.n_batches += 1
        return None

    def finalize(self) -> None:
        """Report what was done."""
        self.report(f'featurised in {self.ctx.n_batches} batch(es)')
