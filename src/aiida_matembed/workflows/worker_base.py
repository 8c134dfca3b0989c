"""``matembed.worker_base``: one batch through the ``matembed.worker`` CalcJob, restarted on transient failures.

The ``BaseRestartWorkChain`` of the worker CalcJob, in the style of aiida-quantumespresso's
``PwBaseWorkChain``: the CalcJob's inputs are exposed in the ``worker`` namespace and its outputs as the
WorkChain's own; process handlers decide what a failed job means:

* killed on the computer or by the scheduler before it wrote its status (``ERROR_NO_STATUS``), or crashed
  (``ERROR_WORKER_CRASHED``): transient, run the job again, at most ``max_transient_restarts`` times;
* out of memory (the worker's ``ERROR_OUT_OF_MEMORY`` or the scheduler's ``ERROR_SCHEDULER_OUT_OF_MEMORY``):
  the same batch would fail the same way, so stop with ``ERROR_OUT_OF_MEMORY`` and let the caller split it
  (``matembed.embed_group`` runs it again as two halves);
* no GPU where one was required, refused input: stop at once with the matching exit code (a restart cannot help).

Any other failure stops the WorkChain with aiida-core's ``ERROR_UNHANDLED_FAILURE``.
"""

from __future__ import annotations

from typing import Any

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, ProcessHandlerReport, process_handler, while_

from ..calculations.bulk_links import link_inputs_in_bulk
from ..calculations.worker import PackedStructureInputs, WorkerCalculation
from .lease import ProcessLeaseMixin

__all__ = ('WorkerBaseWorkChain',)

_CALC = WorkerCalculation.exit_codes
SCHEDULER_OUT_OF_MEMORY = 110
"""aiida-core's ``ERROR_SCHEDULER_OUT_OF_MEMORY`` of every CalcJob: the scheduler killed the job for its memory."""


@link_inputs_in_bulk
class WorkerBaseWorkChain(ProcessLeaseMixin, PackedStructureInputs, BaseRestartWorkChain):
    """Run one ``matembed.worker`` CalcJob for a batch and restart it when a failure is transient.

    Like the CalcJob, it checkpoints its thousands of input structures as one string of pks, and keeps them out
    of its context (the inputs of the next job are taken from its own inputs when the job is submitted). Like the
    Group WorkChains it holds a lease (:mod:`.lease`): a copy loaded from a redelivered task never submits a second
    job beside the first.
    """

    _process_class = WorkerCalculation
    _structures_namespace = ('worker', 'structures')

    @classmethod
    def define(cls, spec: Any) -> None:
        """Inputs (the CalcJob's, in ``worker``), outline, outputs (the CalcJob's) and exit codes."""
        super().define(spec)
        spec.expose_inputs(WorkerCalculation, namespace='worker')
        spec.input(
            'max_transient_restarts',
            valid_type=orm.Int,
            default=lambda: orm.Int(1),
            help='How often a killed or crashed job is run again before the WorkChain gives up.',
        )
        spec.outline(
            cls.setup,
            while_(cls.should_run_process)(cls.run_process, cls.inspect_process),  # type: ignore[arg-type]
            cls.results,
        )
        spec.expose_outputs(WorkerCalculation)
        spec.exit_code(310, 'ERROR_BAD_INPUT', message='the worker refused the input: {message}')
        spec.exit_code(320, 'ERROR_NO_GPU', message='no GPU where one was required: {message}')
        spec.exit_code(330, 'ERROR_OUT_OF_MEMORY', message='the batch ran out of memory: {message}')
        spec.exit_code(340, 'ERROR_TRANSIENT_FAILURES', message='the job failed {n} time(s): {message}')

    def setup(self) -> None:
        """The inputs of the first job: those exposed in ``worker``, but the structures."""
        super().setup()
        inputs = AttributeDict(self.exposed_inputs(WorkerCalculation, 'worker'))
        inputs.pop('structures', None)
        self.ctx.inputs = inputs
        self.ctx.transient_restarts = 0

    def run_process(self) -> Any:
        """Submit the next job with the structures of this WorkChain's inputs."""
        # item access: once loaded from a checkpoint (a daemon worker), the ``worker`` namespace is a plain dict
        self.ctx.inputs['structures'] = dict(self.inputs['worker']['structures'])
        try:
            return super().run_process()
        finally:
            self.ctx.inputs.pop('structures', None)

    # ---------------------------------------------------------------------------------- handlers
    @process_handler(priority=600, exit_codes=[_CALC.ERROR_BAD_INPUT, _CALC.ERROR_NO_GPU])  # type: ignore[misc]
    def handle_permanent_failure(self, node: orm.CalcJobNode) -> ProcessHandlerReport:
        """Refused input or no GPU: the same job would fail again; stop with the job's reason."""
        name = 'ERROR_NO_GPU' if node.exit_status == _CALC.ERROR_NO_GPU.status else 'ERROR_BAD_INPUT'
        self.report(f'{node.process_label}<{node.pk}> failed with {name}: not restarted')
        return ProcessHandlerReport(True, self.exit_codes[name].format(message=node.exit_message))

    @process_handler(priority=500, exit_codes=[_CALC.ERROR_OUT_OF_MEMORY])  # type: ignore[misc]
    def handle_out_of_memory(self, node: orm.CalcJobNode) -> ProcessHandlerReport:
        """Out of memory in the worker: the batch must be split by the caller."""
        self.report(f'{node.process_label}<{node.pk}> ran out of memory: the batch must be split')
        return ProcessHandlerReport(True, self.exit_codes.ERROR_OUT_OF_MEMORY.format(message=node.exit_message))

    @process_handler(priority=500)  # type: ignore[misc]
    def handle_scheduler_out_of_memory(self, node: orm.CalcJobNode) -> ProcessHandlerReport | None:
        """The scheduler killed the job for its memory (exit status 110): as out of memory in the worker."""
        if node.exit_status != SCHEDULER_OUT_OF_MEMORY:
            return None
        self.report(f'{node.process_label}<{node.pk}> was killed by the scheduler for its memory')
        return ProcessHandlerReport(True, self.exit_codes.ERROR_OUT_OF_MEMORY.format(message=node.exit_message))

    @process_handler(priority=400, exit_codes=[_CALC.ERROR_NO_STATUS, _CALC.ERROR_WORKER_CRASHED])  # type: ignore[misc]
    def handle_transient_failure(self, node: orm.CalcJobNode) -> ProcessHandlerReport:
        """Killed before writing its status, or crashed: run the same job again, a limited number of times."""
        self.ctx.transient_restarts += 1
        limit = self.inputs.max_transient_restarts.value
        if self.ctx.transient_restarts > limit:
            self.report(f'{node.process_label}<{node.pk}> failed again [{node.exit_status}]: giving up')
            exit_code = self.exit_codes.ERROR_TRANSIENT_FAILURES.format(
                n=self.ctx.transient_restarts, message=node.exit_message
            )
            return ProcessHandlerReport(True, exit_code)
        self.report(
            f'{node.process_label}<{node.pk}> failed [{node.exit_status}] {node.exit_message}: '
            f'restart {self.ctx.transient_restarts} of {limit}'
        )
        return ProcessHandlerReport(True)
