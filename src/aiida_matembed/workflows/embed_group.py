"""``matembed.embed_group``: embed, featurise or simulate XRD for a whole Group, in batches, incrementally.

Each batch runs either in-process (the ``matembed.embed`` / ``matembed.featurize`` / ``matembed.simulate_xrd``
calcfunction) or, when a ``code`` of ``aiida-matembed-worker`` is given, as a ``matembed.worker`` CalcJob on
that code's computer (a GPU node through its scheduler), up to ``max_concurrent`` at a time, each through the
``matembed.worker_base`` restart WorkChain (a killed or crashed job runs again). Structures that
already have a current result (same model / representation and options, made by either path) are skipped;
for ``embed`` and ``xrd`` a recorded failure (e.g. partial occupancy for a crystal-graph model) counts as a
result, since the same model fails the same way again (``skip_existing=False`` retries everything).
A batch that runs out of memory is run again as two halves (down to one structure). Batches are claimed before
they run, as in ``matembed.featurize_group`` (see :mod:`~aiida_matembed.workflows.claims`).
"""

from __future__ import annotations

from typing import Any

from aiida import orm
from aiida.engine import ExitCode, ToContext, WorkChain, append_, while_

from ..calculations.batch import load_nodes, load_structures, row_key
from ..data.model import ModelData
from .claims import Claim, claim_batch, claim_key, note_claim, release_claim, wait_for_claims
from .featurize_group import _load_group, _validate_group, pending_structure_pks, resolve_params
from .lease import ProcessLeaseMixin
from .protocols import ProtocolMixin

__all__ = ('EmbedGroupWorkChain', 'group_structure_pks')

TASKS = ('embed', 'featurize', 'xrd')


def group_structure_pks(group: orm.Group) -> list[int]:
    """Pks of the structures of ``group`` (finished DFT processes give their output structure), sorted."""
    from ..dft.processes import group_members

    return group_members(group).structure_pks


def _validate_inputs(inputs: dict[str, Any], _: Any) -> str | None:
    from ..calculations.worker import validate_task

    if 'batch_size' in inputs and inputs['batch_size'].value < 1:
        return f'batch_size must be a positive integer, got {inputs["batch_size"].value}'
    if 'max_concurrent' in inputs and inputs['max_concurrent'].value < 1:
        return f'max_concurrent must be >= 1, got {inputs["max_concurrent"].value}'
    return validate_task(inputs['task'].value if 'task' in inputs else 'embed', inputs)


def _forward_batch(batch: list[int]) -> int:
    """Structures per forward pass: ``FORWARD_BATCH`` of :mod:`~aiida_matembed.calculations.embed`, or fewer."""
    from ..calculations.embed import FORWARD_BATCH

    return max(1, min(FORWARD_BATCH, len(batch)))


def _identity_key(node: orm.Node) -> int:
    from ..calculations.batch import _identity

    return _identity(node) or 0


def _is_out_of_memory(exception: BaseException) -> bool:
    from ..worker import _is_out_of_memory as check

    return check(exception)


class EmbedGroupWorkChain(ProcessLeaseMixin, ProtocolMixin, WorkChain):
    """Run one task (``embed``, ``featurize`` or ``xrd``) over the structures of a Group in batches."""

    _protocol_file = 'embed_group'

    @classmethod
    def get_builder_from_protocol(
        cls,
        group: orm.Group | str,
        model: ModelData | str | int | None = None,
        *,
        protocol: str | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> Any:
        """A builder for embedding ``group`` with ``model`` (or another task), inputs from a protocol.

        :param model: a ``matembed.model`` node, its pk, or a registered name (imported once).
        :param protocol: ``fast``, ``moderate`` (default) or ``precise`` (``protocols/embed_group.yaml``): batch size
            and worker jobs in flight.
        :param overrides: input name -> value over the protocol's (``task``, ``representation``, ``parameters``,
            ``code``, ``device``, ...).
        """
        from ..data.model import load_model_node

        inputs = cls.get_protocol_inputs(protocol, overrides)
        node = group if isinstance(group, orm.Group) else _load_group(group)
        builder = cls.get_builder()
        builder.group = orm.Str(node.uuid)
        model = inputs.pop('model', model)
        if model is not None:
            builder.model = load_model_node(model)
        if 'code' in inputs:
            code = inputs.pop('code')
            builder.code = code if isinstance(code, orm.AbstractCode) else orm.load_code(code)
        wrap = {
            'batch_size': orm.Int,
            'max_concurrent': orm.Int,
            'skip_existing': orm.Bool,
            'parameters': orm.Dict,
            'options': orm.Dict,
        }
        for key, value in inputs.items():
            builder[key] = wrap.get(key, orm.Str)(value)
        return builder

    @classmethod
    def define(cls, spec: Any) -> None:
        """Inputs, outline, outputs and exit codes."""
        super().define(spec)
        spec.input('group', valid_type=orm.Str, validator=_validate_group, help='Label, pk or UUID of the Group.')
        spec.input('task', valid_type=orm.Str, default=lambda: orm.Str('embed'), help=f'One of {TASKS}.')
        spec.input('model', valid_type=ModelData, required=False, help='Model to run (task embed).')
        spec.input('representation', valid_type=orm.Str, required=False, help='Representation (task featurize).')
        spec.input(
            'parameters',
            valid_type=orm.Dict,
            required=False,
            help='{"modality": ...} (embed), options of the representation, or the XRD settings.',
        )
        spec.input('batch_size', valid_type=orm.Int, default=lambda: orm.Int(1000))
        spec.input('skip_existing', valid_type=orm.Bool, default=lambda: orm.Bool(True))
        spec.input('device', valid_type=orm.Str, default=lambda: orm.Str('auto'), help="'cpu', 'cuda' or 'auto'.")
        spec.input(
            'code',
            valid_type=orm.AbstractCode,
            required=False,
            help='aiida-matembed-worker code: run each batch as a matembed.worker CalcJob on its computer.',
        )
        spec.input(
            'options',
            valid_type=orm.Dict,
            required=False,
            help='metadata.options of the worker CalcJobs (resources, queue, walltime, ...).',
        )
        spec.input(
            'remote_model_path',
            valid_type=orm.Str,
            required=False,
            help='Checkpoint path on the computer (the weights are then not copied).',
        )
        spec.input('max_concurrent', valid_type=orm.Int, default=lambda: orm.Int(4), help='Worker jobs in flight.')
        spec.inputs.validator = _validate_inputs
        spec.outline(
            cls.setup,
            while_(cls.has_work)(cls.submit_batches, cls.inspect_batches),  # type: ignore[arg-type]
            cls.finalize,
        )
        spec.output_namespace(
            'results',
            valid_type=orm.Data,
            dynamic=True,
            help='One FeaturesData (embed, featurize) or XrdPatternsData (xrd) per batch.',
        )
        spec.exit_code(300, 'ERROR_BATCHES_FAILED', message='{n} batch(es) failed ({pks} structure(s)): {errors}')

    # --------------------------------------------------------------------------------------- helpers
    def _task_name(self) -> str:
        return self.inputs.task.value

    def _params(self) -> dict[str, Any]:
        return dict(self.ctx.params)

    def _pending(self, group: orm.Group) -> list[int]:
        pks = group_structure_pks(group)
        if not self.inputs.skip_existing.value or not pks:
            return pks
        task = self._task_name()
        if task == 'featurize':
            return pending_structure_pks(group, self.inputs.representation.value, self._params())
        if task == 'xrd':
            from ..query import simulated_structure_pks

            done = simulated_structure_pks(self._params(), among=pks, include_failed=True)
        else:
            from ..calculations.embed import embedding_params
            from ..query import embedded_structure_pks

            modality = embedding_params(self.inputs.model, self._params().get('modality'))['modality']
            done = embedded_structure_pks(self.inputs.model, modality=modality, among=pks, include_failed=True)
        return [pk for pk in pks if pk not in done]

    # ----------------------------------------------------------------------------------------- steps
    def setup(self) -> None:
        """Resolve options on the whole Group, find the structures without current results, make batches."""
        group = _load_group(self.inputs.group.value)
        given = self.inputs.parameters.get_dict() if 'parameters' in self.inputs else {}
        if self._task_name() == 'featurize':
            given = resolve_params(self.inputs.representation.value, given, group=group)
        self.ctx.params = given
        pending = self._pending(group)
        size = self.inputs.batch_size.value
        self.ctx.batches = [pending[i : i + size] for i in range(0, len(pending), size)]
        self.ctx.running = {}
        self.ctx.n_done = 0
        self.ctx.failed = []
        self.ctx.elsewhere = {}
        self.ctx.claims = {}
        where = f'with worker code {self.inputs.code.full_label}' if 'code' in self.inputs else 'in-process'
        self.report(
            f'{len(pending)} structure(s) of group {group.label!r}: {self._task_name()} in '
            f'{len(self.ctx.batches)} batch(es) {where}'
        )

    def has_work(self) -> bool:
        """Whether batches remain to run or to inspect, or structures claimed by other WorkChains to check again."""
        return bool(self.ctx.batches) or bool(self.ctx.running) or bool(self.ctx.get('elsewhere'))

    def submit_batches(self) -> ToContext | None:
        """Run the next batch in-process, or submit up to ``max_concurrent`` worker CalcJobs (claimed parts only)."""
        if not self.ctx.batches and not self.ctx.running:
            return wait_for_claims(self, self._claim_key(), self._current, self.inputs.batch_size.value)
        if 'code' not in self.inputs:
            if self.ctx.batches:
                claim = self._claim(self.ctx.batches.pop(0))
                try:
                    if claim.pks:
                        self._run_inline(claim.pks)
                finally:
                    release_claim(claim)
            return None
        while self.ctx.batches and len(self.ctx.running) < self.inputs.max_concurrent.value:
            claim = self._claim(self.ctx.batches.pop(0))
            if not claim.pks:
                continue
            inputs = self._worker_inputs(claim.pks)
            if not inputs['worker']['structures']:
                release_claim(claim)
                continue
            node = self.submit(self._worker_class(), **inputs)
            self.ctx.running[str(node.pk)] = claim.pks
            self.ctx.claims[str(node.pk)] = claim.group_pk
            self.to_context(jobs=append_(node))
        return None

    def inspect_batches(self) -> None:
        """Collect finished worker jobs: keep results, halve out-of-memory batches, record failures."""
        from .worker_base import WorkerBaseWorkChain

        for node in self.ctx.get('jobs', []):
            batch = self.ctx.running.pop(str(node.pk), None)
            if batch is None:
                continue
            release_claim(Claim(self._claim_key(), group_pk=self.ctx.claims.pop(str(node.pk), None)))
            if node.is_finished_ok:
                self._record(node.outputs.patterns if self._task_name() == 'xrd' else node.outputs.features)
            elif node.exit_status == WorkerBaseWorkChain.exit_codes.ERROR_OUT_OF_MEMORY.status and len(batch) > 1:
                self._halve(batch, f'worker job {node.pk} ran out of memory')
            else:
                self._fail(batch, f'worker job {node.pk}: [{node.exit_status}] {node.exit_message}')
        self.ctx.jobs = []

    def finalize(self) -> ExitCode | None:
        """Report; exit non-zero if a batch failed (results of the other batches are outputs)."""
        self.report(f'{self.ctx.n_done} batch(es) done')
        if self.ctx.failed:
            errors = '; '.join(error for _, error in self.ctx.failed[:3])
            n_pks = sum(len(batch) for batch, _ in self.ctx.failed)
            return self.exit_codes.ERROR_BATCHES_FAILED.format(n=len(self.ctx.failed), pks=n_pks, errors=errors)
        return None

    # ------------------------------------------------------------------------------------ internals
    def _claim_key(self) -> str:
        task, params = self._task_name(), self._params()
        if task == 'featurize':
            from ..core.representations import load_representation_class

            cls = load_representation_class(self.inputs.representation.value)
            return claim_key(task, cls.name, cls.version, cls.from_params(params).get_params())
        if task == 'xrd':
            from ..core.xrd.settings import XrdSettings

            return claim_key(task, 'matembed.simulate_xrd', None, XrdSettings.from_dict(params).stored_attributes())
        from ..calculations.embed import embedding_params

        settings = embedding_params(self.inputs.model, params.get('modality'))
        return claim_key(task, self.inputs.model.name, None, settings)

    def _current(self, pks: list[int]) -> set[int]:
        """Pks among ``pks`` that have a current result (``skip_existing=False``: made after this WorkChain started)."""
        task = self._task_name()
        if task == 'featurize':
            from ..core.representations import load_representation_class
            from ..query import featurized_structure_pks

            rep = load_representation_class(self.inputs.representation.value).from_params(self._params())
            since = None if self.inputs.skip_existing.value else self.node.ctime
            params = rep.get_params()
            return featurized_structure_pks(rep.name, version=rep.version, params=params, among=pks, since=since)
        if not self.inputs.skip_existing.value:
            return set()  # recomputing on purpose: only claims keep concurrent copies apart
        if task == 'xrd':
            from ..query import simulated_structure_pks

            return simulated_structure_pks(self._params(), among=pks, include_failed=True)
        from ..calculations.embed import embedding_params
        from ..query import embedded_structure_pks

        modality = embedding_params(self.inputs.model, self._params().get('modality'))['modality']
        return embedded_structure_pks(self.inputs.model, modality=modality, among=pks, include_failed=True)

    def _claim(self, batch: list[int]) -> Claim:
        claim = claim_batch(self._claim_key(), batch, self, self._current)
        note_claim(self, claim, f'processed ({self._task_name()})')
        return claim

    def _record(self, output: orm.Data) -> None:
        self.out(f'results.batch_{self.ctx.n_done:04d}', output)
        self.ctx.n_done += 1

    def _halve(self, batch: list[int], why: str) -> None:
        half = len(batch) // 2
        self.report(f'{why}: restarting the batch of {len(batch)} as two of {half} and {len(batch) - half}')
        self.ctx.batches[:0] = [batch[:half], batch[half:]]

    def _fail(self, batch: list[int], error: str) -> None:
        self.report(f'batch of {len(batch)} failed: {error}')
        self.ctx.failed.append((batch, error))

    def _nodes(self, batch: list[int]) -> list[orm.StructureData]:
        """The batch's structures with their attributes (the in-process path converts every one of them)."""
        return sorted(load_structures(batch, missing='skip'), key=_identity_key)

    def _existing_nodes(self, batch: list[int]) -> list[orm.Node]:
        """The batch's structures for a worker job, without those deleted since the set-up (reported).

        Their attributes are not loaded: the job reads them in one query when it writes its input file.
        """
        nodes = load_nodes(sorted(batch), missing='skip')
        if len(nodes) < len(batch):
            gone = sorted(set(batch) - {node.pk for node in nodes})
            self.report(f'{len(gone)} structure(s) of the batch no longer exist and are skipped: pks {gone[:10]}')
        return nodes

    def _run_inline(self, batch: list[int]) -> None:
        from ..calculations import embed_structures, featurize_structures, simulate_xrd_structures

        nodes = self._nodes(batch)
        task, params, device = self._task_name(), self._params(), self.inputs.device.value
        output: orm.Data
        try:
            if task == 'embed':
                output, _ = embed_structures(
                    nodes,
                    self.inputs.model,
                    modality=params.get('modality'),
                    device=device,
                    batch_size=_forward_batch(batch),
                )
            elif task == 'featurize':
                output, _ = featurize_structures(nodes, self.inputs.representation.value, params)
            else:
                output, _ = simulate_xrd_structures(nodes, params)
        except Exception as exception:
            if _is_out_of_memory(exception) and len(batch) > 1:
                self._halve(batch, f'out of memory ({exception})')
            else:
                self._fail(batch, f'{type(exception).__name__}: {exception}')
            return
        self._record(output)

    @staticmethod
    def _worker_class() -> Any:
        from .worker_base import WorkerBaseWorkChain

        return WorkerBaseWorkChain

    def _worker_inputs(self, batch: list[int]) -> dict[str, Any]:
        """Inputs of one ``matembed.worker_base`` WorkChain: the CalcJob's in its ``worker`` namespace."""
        task = self._task_name()
        inputs: dict[str, Any] = {
            'code': self.inputs.code,
            'structures': {row_key(i): node for i, node in enumerate(self._existing_nodes(batch))},
            'task': orm.Str(task),
            'device': self.inputs.device,
            'parameters': orm.Dict(self._params()),
        }
        if 'options' in self.inputs:
            inputs['metadata'] = {'options': self.inputs.options.get_dict()}
        if task == 'embed':
            inputs['model'] = self.inputs.model
            inputs['batch_size'] = orm.Int(_forward_batch(batch))
            if 'remote_model_path' in self.inputs:
                inputs['remote_model_path'] = self.inputs.remote_model_path
        elif task == 'featurize':
            inputs['representation'] = self.inputs.representation
        label = f'worker_{self.ctx.n_done + len(self.ctx.running):04d}'
        return {'worker': inputs, 'metadata': {'call_link_label': label}}
