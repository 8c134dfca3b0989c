"""``matembed.worker_base``: the restart WorkChain of the worker CalcJob and its process handlers.

The failures are real: a job script that exits before the worker runs (as when a job is killed on the computer),
the worker's own out-of-memory fault injection and a checkpoint path that does not exist on the computer.
"""

import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_matembed.calculations.batch import row_key
from aiida_matembed.calculations.worker import WorkerCalculation, get_worker_code
from aiida_matembed.data import import_model
from aiida_matembed.worker import FAIL_OOM_ABOVE
from aiida_matembed.workflows import WorkerBaseWorkChain

CALC = WorkerCalculation.exit_codes
BASE = WorkerBaseWorkChain.exit_codes


@pytest.fixture
def worker_inputs(aiida_profile_clean, aiida_localhost, examples):
    nodes = [orm.StructureData(pymatgen=e.structure).store() for e in examples if e.structure.is_ordered][:4]
    return {
        'code': get_worker_code(aiida_localhost),
        'structures': {row_key(i): node for i, node in enumerate(nodes)},
        'task': orm.Str('featurize'),
        'representation': orm.Str('matembed.magpie'),
        'device': orm.Str('cpu'),
    }


def _jobs(node):
    return sorted((c for c in node.called if c.process_label == 'WorkerCalculation'), key=lambda c: c.pk)


def test_a_job_killed_once_is_run_again(worker_inputs, tmp_path):
    marker = tmp_path / 'killed-once'
    # the first job script exits before the worker writes its status, as a job killed on the computer does
    kill_once = f'if [ ! -e {marker} ]; then touch {marker}; exit 137; fi'
    worker_inputs['metadata'] = {'options': {'prepend_text': kill_once}}
    outputs, node = run_get_node(WorkerBaseWorkChain, worker=worker_inputs)
    assert node.is_finished_ok, node.exit_message
    assert [j.exit_status for j in _jobs(node)] == [CALC.ERROR_NO_STATUS.status, 0]
    assert outputs['features'].base.attributes.get('n_rows') == 4
    assert outputs['features'].pk == _jobs(node)[1].outputs.features.pk  # the CalcJob's outputs, exposed


def test_a_job_that_keeps_failing_stops_after_the_allowed_restarts(worker_inputs):
    worker_inputs['metadata'] = {'options': {'prepend_text': 'exit 137'}}
    _, node = run_get_node(WorkerBaseWorkChain, worker=worker_inputs, max_transient_restarts=orm.Int(2))
    assert node.exit_status == BASE.ERROR_TRANSIENT_FAILURES.status
    assert [j.exit_status for j in _jobs(node)] == [CALC.ERROR_NO_STATUS.status] * 3
    assert 'the job failed 3 time(s)' in node.exit_message


def test_out_of_memory_is_handed_to_the_caller_without_a_restart(worker_inputs):
    worker_inputs['metadata'] = {'options': {'environment_variables': {FAIL_OOM_ABOVE: '2'}}}
    _, node = run_get_node(WorkerBaseWorkChain, worker=worker_inputs)
    assert node.exit_status == BASE.ERROR_OUT_OF_MEMORY.status
    assert [j.exit_status for j in _jobs(node)] == [CALC.ERROR_OUT_OF_MEMORY.status]


def test_refused_input_is_not_restarted(worker_inputs):
    worker_inputs.update(
        task=orm.Str('embed'),
        model=import_model('matembed.xrd_vae'),
        remote_model_path=orm.Str('/nonexistent/model.safetensors'),
    )
    del worker_inputs['representation']
    _, node = run_get_node(WorkerBaseWorkChain, worker=worker_inputs)
    assert node.exit_status == BASE.ERROR_BAD_INPUT.status
    assert [j.exit_status for j in _jobs(node)] == [CALC.ERROR_BAD_INPUT.status]
    assert 'not found' in node.exit_message


def test_checkpoints_keep_the_structures_compactly_and_out_of_the_context(worker_inputs):
    from aiida.engine.utils import instantiate_process
    from aiida.manage import get_manager

    process = instantiate_process(get_manager().get_runner(), WorkerBaseWorkChain, worker=worker_inputs)
    structures = worker_inputs['structures']
    encoded = process.encode_input_args(process.raw_inputs)
    first = next(iter(structures.values()))
    assert 'rows:' in encoded and first.uuid not in encoded  # one short string, not one YAML entry per node
    decoded = process.decode_input_args(encoded)
    assert {k: n.pk for k, n in decoded['worker']['structures'].items()} == {k: n.pk for k, n in structures.items()}
    assert decoded['worker']['representation'].value == 'matembed.magpie'
    process.setup()
    assert 'structures' not in process.ctx.inputs and process.ctx.inputs.task.value == 'featurize'
    process.close()
