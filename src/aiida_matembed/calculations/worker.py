"""``matembed.worker``: ship a batch to any AiiDA computer and run ``aiida-matembed-worker`` there.

One CalcJob for every task, so featurising, XRD simulation and embedding can all run remotely (a GPU node
of a cluster through Slurm and SSH, or ``localhost``):

* ``task='featurize'``: ``representation`` + ``parameters`` (any registered representation);
* ``task='xrd'``: ``parameters`` = the settings of ``matembed.simulate_xrd``;
* ``task='embed'``: ``model`` (a ``matembed.model`` node; its weights are copied along, or referenced by
  ``remote_model_path`` on the computer and checked against the node's sha256 there) + ``parameters``
  (``modality``).

The structures travel as one compact ``structures.npz`` (see :mod:`aiida_matembed.worker.io`), results come
back as ``output.npz``, and the parser (:mod:`aiida_matembed.parsers.worker`) builds the same output nodes as
the calcfunctions (``features`` or ``patterns``, plus ``failures``), so queries find results of either path.
Device (``cpu``, ``cuda``, ``auto``) is an input; scheduler resources go in ``metadata.options`` as for any
CalcJob.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiida import orm
from aiida.common.datastructures import CalcInfo, CodeInfo
from aiida.common.folders import Folder
from aiida.engine import CalcJob

from ..core.device import check_device
from ..data.features import FeaturesData
from ..data.model import CARD, WEIGHTS, ModelData
from ..data.xrd import XrdPatternsData
from .batch import detach_from_session, load_structures, reattach_to_session, structure_rows
from .bulk_links import link_inputs_in_bulk

__all__ = ('WORKER_TASKS', 'PackedStructureInputs', 'WorkerCalculation', 'get_worker_code', 'validate_task')

WORKER_TASKS = ('embed', 'featurize', 'xrd')

INSTALL_HINT = (
    'install it on that computer with `pip install aiida-matembed` (torch first, from the build that suits its '
    'GPUs), then point the code at the path printed by `which aiida-matembed-worker`'
)


def _validate_task(value: orm.Str, _: Any) -> str | None:
    if value.value not in WORKER_TASKS:
        return f'task must be one of {WORKER_TASKS}, got {value.value!r}'
    return None


def _validate_inputs(inputs: dict[str, Any], ctx: Any) -> str | None:
    """Check the combination of task, model, representation, parameters, device and batch size."""
    from aiida.engine.processes.calcjobs.calcjob import validate_calc_job

    error = validate_calc_job(inputs, ctx)  # code / computer checks of every CalcJob
    if error:
        return error
    if 'code' not in inputs:
        return 'a `code` (aiida-matembed-worker on the computer to use) is required'
    task = inputs.get('task')
    if task is None:
        return None
    task = task.value
    if not inputs.get('structures'):
        return 'no structures given: the `structures` namespace is empty'
    if 'batch_size' in inputs and inputs['batch_size'].value <= 0:
        return f'batch_size must be a positive integer, got {inputs["batch_size"].value}'
    return validate_task(task, inputs)


def validate_task(task: str, inputs: dict[str, Any]) -> str | None:
    """Check a task and what it needs (shared by the CalcJob and ``matembed.embed_group``); ``None`` if fine.

    :param inputs: the process inputs: ``device``, ``model`` (embed), ``representation`` (featurize) and
        ``parameters`` (modality, representation options or XRD settings) are read.
    """
    if task not in WORKER_TASKS:
        return f'task must be one of {WORKER_TASKS}, got {task!r}'
    params = inputs['parameters'].get_dict() if 'parameters' in inputs else {}
    try:
        check_device(inputs['device'].value if 'device' in inputs else 'auto')
        if task == 'embed':
            if 'model' not in inputs:
                return "task 'embed' needs a `model` input (a matembed.model node)"
            from .embed import embedding_params

            unknown = sorted(set(params) - {'modality'})
            if unknown:
                return f'unknown parameter(s) {unknown} for embed; valid: modality'
            embedding_params(inputs['model'], params.get('modality'))
        elif task == 'featurize':
            if 'representation' not in inputs:
                return "task 'featurize' needs a `representation` input"
            from ..core.representations import load_representation_class

            load_representation_class(inputs['representation'].value).from_params(params)
        else:
            from ..core.xrd.settings import XrdSettings

            XrdSettings.from_dict(params)
    except (ValueError, TypeError) as exception:
        return str(exception)
    return None


class PackedStructureInputs:
    """Compact checkpoints for a process with thousands of input structures (mixed into a Process class).

    A checkpoint (saved at every state change) serialises the inputs as YAML, one entry per node, and reading
    each node's UUID reloads it from the database after every commit: minutes for 10,000 structures. The
    structures namespace (at :attr:`_structures_namespace` inside the inputs) is saved instead as one short
    string of ``{key: pk}`` and reloaded in bulk.
    """

    _PACKED = 'matembed_structure_pks'
    _structures_namespace: tuple[str, ...] = ('structures',)

    def _namespace_of_structures(self, inputs: dict[str, Any]) -> dict[str, Any] | None:
        """The (copied) dictionary holding the structures namespace, or ``None`` when there is none."""
        for name in self._structures_namespace[:-1]:
            if not isinstance(inputs.get(name), Mapping):
                return None
            inputs[name] = inputs = dict(inputs[name])
        return inputs

    def encode_input_args(self, inputs: dict[str, Any]) -> str:
        """Serialise the inputs with the structures as one ``{key: pk}`` string."""
        inputs = dict(inputs)
        holder = self._namespace_of_structures(inputs)
        structures = holder.pop(self._structures_namespace[-1], None) if holder is not None else None
        if structures:
            # a process's inputs never change: pack them once, not at each of the ~20 checkpoints of a job
            packed = self.__dict__.get('_matembed_packed')
            if packed is None or packed[0] != len(structures):
                packed = (len(structures), _pack({key: _pk(node) for key, node in structures.items()}))
                self.__dict__['_matembed_packed'] = packed
            assert holder is not None
            holder[self._PACKED] = packed[1]
        return super().encode_input_args(inputs)  # type: ignore[misc]

    def decode_input_args(self, encoded: str) -> dict[str, Any]:
        """Inverse of :meth:`encode_input_args` (the structures are loaded with one query per chunk)."""
        inputs = dict(super().decode_input_args(encoded))  # type: ignore[misc]
        holder = self._namespace_of_structures(inputs)
        packed = holder.pop(self._PACKED, None) if holder is not None else None
        if packed is not None:
            assert holder is not None
            keys = _unpack(packed)
            pks = list(keys.values())
            node_of = dict(zip(pks, load_structures(pks), strict=True))
            holder[self._structures_namespace[-1]] = {key: node_of[pk] for key, pk in keys.items()}
        return inputs


class WorkerCalculation(PackedStructureInputs, CalcJob):
    """Run one featurise / XRD / embed task for a batch of structures with ``aiida-matembed-worker``."""

    _STRUCTURES = 'structures.npz'
    _TASK = 'task.json'
    _OUTPUT = 'output.npz'
    _STATUS = 'status.json'
    _STDOUT = 'worker.out'
    _STDERR = 'worker.err'

    @classmethod
    def define(cls, spec: Any) -> None:
        """Inputs, outputs and exit codes."""
        super().define(spec)
        spec.input_namespace(
            'structures', valid_type=orm.StructureData, dynamic=True, help='The batch; rows follow the sorted keys.'
        )
        spec.input('task', valid_type=orm.Str, validator=_validate_task, help=f'One of {WORKER_TASKS}.')
        spec.input('model', valid_type=ModelData, required=False, help="The model to run (task 'embed').")
        spec.input('representation', valid_type=orm.Str, required=False, help="Representation (task 'featurize').")
        spec.input(
            'parameters',
            valid_type=orm.Dict,
            required=False,
            help='Options: of the representation, the XRD settings, or {"modality": ...} for embed.',
        )
        spec.input(
            'device',
            valid_type=orm.Str,
            default=lambda: orm.Str('auto'),
            help="'cpu', 'cuda' (fails with ERROR_NO_GPU if there is none) or 'auto'.",
        )
        spec.input('batch_size', valid_type=orm.Int, required=False, help='Structures per forward pass (embed).')
        spec.input(
            'remote_model_path',
            valid_type=orm.Str,
            required=False,
            help='Absolute path of the checkpoint (.safetensors with its .json) on the computer; '
            'the weights are then not copied (their sha256 is still checked against the model node).',
        )
        spec.inputs.validator = _validate_inputs
        options = spec.inputs['metadata']['options']
        options['resources'].default = {'num_machines': 1, 'num_mpiprocs_per_machine': 1}
        options['withmpi'].default = False
        options['parser_name'].default = 'matembed.worker'
        spec.output('features', valid_type=FeaturesData, required=False, help='featurize / embed result.')
        spec.output('patterns', valid_type=XrdPatternsData, required=False, help='xrd result.')
        spec.output('failures', valid_type=orm.List, required=False, help='Rows that failed (the rest is kept).')
        spec.output('worker_status', valid_type=orm.Dict, required=False, help='Device, host and timings.')
        spec.exit_code(
            300,
            'ERROR_NO_STATUS',
            invalidates_cache=True,
            message='the worker wrote no status file (it did not run or was killed); its stderr: {stderr}',
        )
        spec.exit_code(
            301,
            'ERROR_WORKER_NOT_INSTALLED',
            invalidates_cache=True,
            message='aiida-matembed-worker was not found on the computer: {stderr}; ' + INSTALL_HINT,
        )
        spec.exit_code(310, 'ERROR_BAD_INPUT', message='the worker refused the input: {message}')
        spec.exit_code(320, 'ERROR_NO_GPU', invalidates_cache=True, message='no GPU where one was required: {message}')
        spec.exit_code(
            330, 'ERROR_OUT_OF_MEMORY', invalidates_cache=True, message='the worker ran out of memory: {message}'
        )
        spec.exit_code(340, 'ERROR_WORKER_CRASHED', invalidates_cache=True, message='the worker crashed: {message}')
        spec.exit_code(
            350, 'ERROR_INVALID_OUTPUT', invalidates_cache=True, message='the worker output cannot be read: {message}'
        )

    # ------------------------------------------------------------------- thousands of live inputs
    # The process keeps its 10,000 input structures alive from creation to the end; once the job is stored they
    # leave the SQLAlchemy session, so that its few hundred commits do not expire them each time (see
    # ``batch.detach_from_session``), and come back when the process closes (terminated, or submitted to the daemon).
    def on_create(self) -> None:
        """Create and store the node, then take the input structures out of the session."""
        super().on_create()
        self._detach_structures()

    def load_instance_state(self, saved_state: Any, load_context: Any) -> None:
        """Reload from a checkpoint (e.g. in a daemon worker), then take the input structures out of the session."""
        super().load_instance_state(saved_state, load_context)
        self._detach_structures()

    def on_close(self) -> None:
        """Put the input structures back into the session (the caller may still use them)."""
        try:
            reattach_to_session(self.__dict__.pop('_matembed_detached', []))
        finally:
            super().on_close()

    def _detach_structures(self) -> None:
        structures: dict[str, orm.StructureData] = dict(self.inputs.get('structures') or {}) if self.inputs else {}
        if self.node.is_stored and structures:
            self.__dict__['_matembed_detached'] = detach_from_session(list(structures.values()))

    def prepare_for_submission(self, folder: Folder) -> CalcInfo:
        """Write ``structures.npz`` and ``task.json``; copy the model weights unless referenced remotely."""
        from ..worker.io import write_structures

        # attributes and UUIDs of all structures with one query per 5,000 (reading them node by node reloads
        # each from the database: aiida refreshes mutable fields on access)
        pks = [_pk(self.inputs.structures[key]) for key in sorted(self.inputs.structures)]
        rows = structure_rows(pks)
        write_structures(
            Path(folder.get_abs_path(self._STRUCTURES)), [rows[pk][1] for pk in pks], [rows[pk][0] for pk in pks]
        )
        task_name = self.inputs.task.value
        params = self.inputs.parameters.get_dict() if 'parameters' in self.inputs else {}
        task: dict[str, Any] = {
            'task': task_name,
            'structures': self._STRUCTURES,
            'output': self._OUTPUT,
            'device': self.inputs.device.value,
        }
        if 'batch_size' in self.inputs:
            task['batch_size'] = self.inputs.batch_size.value
        local_copy_list = []
        if task_name == 'embed':
            model = self.inputs.model
            task['modality'] = params.get('modality')
            # the card always comes from the node; the weights too, unless referenced on the computer
            local_copy_list = [(model.uuid, CARD, 'model.json')]
            if 'remote_model_path' in self.inputs:
                weights = self.inputs.remote_model_path.value
            else:
                weights = 'model.safetensors'
                local_copy_list.append((model.uuid, WEIGHTS, 'model.safetensors'))
            task['model'] = {'weights': weights, 'card': 'model.json', 'sha256': model.sha256}
        elif task_name == 'featurize':
            task['representation'] = self.inputs.representation.value
            task['parameters'] = params
        else:
            from ..core.xrd.settings import XrdSettings

            task['parameters'] = XrdSettings.from_dict(params).stored_attributes()
        with folder.open(self._TASK, 'w') as handle:
            json.dump(task, handle, indent=1)

        codeinfo = CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = [self._TASK]
        codeinfo.stdout_name = self._STDOUT
        codeinfo.stderr_name = self._STDERR
        calcinfo = CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.local_copy_list = local_copy_list
        calcinfo.retrieve_list = [self._OUTPUT, self._STATUS, self._STDOUT, self._STDERR]
        return calcinfo


def _pack(pk_of: dict[str, int]) -> str:
    """``{key: pk}`` as a short string: runs of consecutive pks under the standard row keys become ``a-b``.

    The checkpoint YAML emitter scans every character of every string at every state change, so the usual
    batch (keys ``s0000000``... and pks of structures stored together) packs into a few characters.
    """
    from .batch import row_key

    keys = sorted(pk_of)
    if keys != [row_key(i) for i in range(len(keys))]:
        return json.dumps(pk_of)
    runs: list[str] = []
    pks = [pk_of[key] for key in keys]
    start = 0
    for i in range(1, len(pks) + 1):
        if i == len(pks) or pks[i] != pks[i - 1] + 1:
            runs.append(str(pks[start]) if i - 1 == start else f'{pks[start]}-{pks[i - 1]}')
            start = i
    return 'rows:' + ','.join(runs)


def _unpack(text: str) -> dict[str, int]:
    """Inverse of :func:`_pack`."""
    from .batch import row_key

    if not text.startswith('rows:'):
        return {str(key): int(pk) for key, pk in json.loads(text).items()}
    pks: list[int] = []
    for run in text[5:].split(','):
        first, _, last = run.partition('-')
        pks.extend(range(int(first), int(last or first) + 1))
    return {row_key(i): pk for i, pk in enumerate(pks)}


def _pk(node: orm.Node) -> int:
    """A stored node's pk without reloading it when the session has expired it (SQLAlchemy identity key)."""
    bare = getattr(node.backend_entity, 'bare_model', None)
    if bare is not None:
        from sqlalchemy import inspect as sa_inspect

        identity = sa_inspect(bare).identity
        if identity is not None:
            return int(identity[0])
    pk = node.pk
    if pk is None:
        raise ValueError('the structures of a worker job must be stored')
    return int(pk)


def get_worker_code(
    computer: orm.Computer | str = 'localhost', filepath: str | None = None, *, check: bool = True
) -> orm.InstalledCode:
    """The ``InstalledCode`` of ``aiida-matembed-worker`` on ``computer`` (created and stored once).

    :param filepath: path of the executable on the computer; default: the one installed with this package
        (on ``localhost``), or ``aiida-matembed-worker`` found on the remote ``PATH``.
    :param check: verify through the computer's transport that the executable exists.
    :raises ValueError: when the worker is not installed there (the message says how to install it).
    """
    import shutil

    if isinstance(computer, str):
        computer = orm.load_computer(computer)
    if filepath is None:
        if computer.hostname in ('localhost', '127.0.0.1') and computer.transport_type == 'core.local':
            filepath = shutil.which('aiida-matembed-worker')
            if filepath is None:
                raise ValueError(f'aiida-matembed-worker is not on the PATH of this machine; {INSTALL_HINT}')
        else:
            filepath = _which_on(computer)
    label = 'aiida-matembed-worker'
    query = orm.QueryBuilder().append(orm.Computer, filters={'id': computer.pk}, tag='computer')
    query.append(
        orm.InstalledCode,
        with_computer='computer',
        filters={'label': label, 'attributes.filepath_executable': filepath},
    )
    existing = query.first(flat=True)
    if existing is not None:
        return existing
    code = orm.InstalledCode(
        computer=computer,
        filepath_executable=filepath,
        label=label,
        description='aiida-matembed worker (featurise / XRD / embed batches)',
        default_calc_job_plugin='matembed.worker',
    )
    if check:
        try:
            code.validate_filepath_executable()
        except Exception as exception:
            raise ValueError(f'{filepath} on {computer.label}: {exception}; {INSTALL_HINT}') from None
    return code.store()


def _which_on(computer: orm.Computer) -> str:
    """Absolute path of ``aiida-matembed-worker`` on the computer's login ``PATH``."""
    with computer.get_transport() as transport:
        status, stdout, _ = transport.exec_command_wait('command -v aiida-matembed-worker')
    path = stdout.strip()
    if status != 0 or not path:
        raise ValueError(f'aiida-matembed-worker is not on the PATH of computer {computer.label!r}; {INSTALL_HINT}')
    return path


def _record_task_versions(process: Any) -> None:
    """Put what a task's results depend on beyond the inputs on the job node before it is hashed (cache key).

    ``xrd``: the version of the peak labels (as ``matembed.simulate_xrd`` records it); ``featurize``: the
    representation's version (as ``matembed.featurize`` records it).
    """
    from .featurize import _record_representation_version
    from .xrd import _record_labels_version

    task = process.inputs['task'].value if 'task' in process.inputs else None
    if task == 'xrd':
        _record_labels_version(process)
    elif task == 'featurize':
        _record_representation_version(process)


link_inputs_in_bulk(WorkerCalculation, after_inputs=_record_task_versions)
