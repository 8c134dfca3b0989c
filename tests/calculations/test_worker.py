"""``matembed.worker`` end to end on localhost (core.local transport, core.direct scheduler)."""

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_matembed.calculations import embed_structures, featurize_structures, simulate_xrd_structures
from aiida_matembed.calculations.batch import row_key
from aiida_matembed.calculations.worker import WorkerCalculation, get_worker_code
from aiida_matembed.core.models import model_path
from aiida_matembed.data import import_model
from aiida_matembed.query import embedded_structure_pks, featurized_structure_pks, get_embedding
from aiida_matembed.testing import bad_inputs


@pytest.fixture
def setup(aiida_profile_clean, aiida_localhost, examples):
    ordered = [e.structure for e in examples if e.structure.is_ordered][:5]
    overlapping = next(b for b in bad_inputs() if b.label == 'overlapping atoms').structure
    nodes = [orm.StructureData(pymatgen=s).store() for s in [*ordered[:2], overlapping, *ordered[2:]]]
    return get_worker_code(aiida_localhost), {row_key(i): n for i, n in enumerate(nodes)}, nodes


def test_embed_through_the_worker_gives_the_calcfunction_result(setup):
    code, structures, nodes = setup
    model = import_model('matembed.cmml')
    outputs, node = run_get_node(
        WorkerCalculation, code=code, structures=structures, task=orm.Str('embed'), model=model, device=orm.Str('cpu')
    )
    assert node.is_finished_ok, node.exit_message
    # the input structures left the session during the job and are back (usable) now that it is closed
    assert all(n.get_pymatgen().composition for n in nodes)
    nodes[0].base.extras.set('seen', True)
    # the stored links the job answered from memory are those in the database
    fresh = orm.load_node(node.pk)
    assert {(t.link_label, t.link_type, t.node.pk) for t in node.base.links.get_incoming().all()} == {
        (t.link_label, t.link_type, t.node.pk) for t in fresh.base.links.get_incoming().all()
    }
    remote = outputs['features']
    local, _ = embed_structures(nodes, model, device='cpu', use_cache=False)
    np.testing.assert_allclose(remote.features, local.features, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert remote.base.attributes.get('params') == local.base.attributes.get('params')
    assert remote.failures == local.failures and remote.failures[0]['pk'] == nodes[2].pk
    assert outputs['worker_status']['timings']['compute_s'] > 0
    # the query helpers find results of either path, by the model node
    assert node.pk in {f.creator.pk for f in [remote]}
    assert embedded_structure_pks(model) == {n.pk for i, n in enumerate(nodes) if i != 2}
    np.testing.assert_array_equal(get_embedding(nodes[0], model), local.features[0])  # newest: the calcfunction


def test_featurize_and_xrd_through_the_worker(setup):
    code, structures, nodes = setup
    outputs, node = run_get_node(
        WorkerCalculation,
        code=code,
        structures=structures,
        task=orm.Str('featurize'),
        representation=orm.Str('matembed.magpie'),
    )
    assert node.is_finished_ok, node.exit_message
    local, _ = featurize_structures(nodes, 'matembed.magpie', use_cache=False)
    np.testing.assert_allclose(outputs['features'].features, local.features, rtol=1e-12, equal_nan=True)
    assert featurized_structure_pks('matembed.magpie', version=1) >= {nodes[0].pk, nodes[1].pk}
    # what the result depends on beyond the inputs is in the job's cache key, as for the calcfunction
    assert node.base.attributes.get('representation_version') == local.base.attributes.get('representation_version')

    settings = {'step': 0.05, 'fwhm': 0.2}
    outputs, node = run_get_node(
        WorkerCalculation,
        code=code,
        structures=structures,
        task=orm.Str('xrd'),
        parameters=orm.Dict(settings),
        device=orm.Str('cpu'),
    )
    assert node.is_finished_ok, node.exit_message
    patterns = outputs['patterns']
    reference, _ = simulate_xrd_structures(nodes, settings, use_cache=False)
    np.testing.assert_allclose(patterns.profiles, reference.profiles, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert patterns.base.attributes.get('settings') == reference.base.attributes.get('settings')
    np.testing.assert_allclose(patterns.peaks(1).two_theta, reference.peaks(1).two_theta)
    from aiida_matembed.calculations.xrd import XRD_LABELS_VERSION

    assert node.base.attributes.get('xrd_labels_version') == XRD_LABELS_VERSION


def test_model_referenced_by_path_on_the_computer(setup):
    code, structures, _ = setup
    model = import_model('matembed.xrd_vae')
    outputs, node = run_get_node(
        WorkerCalculation,
        code=code,
        structures=structures,
        task=orm.Str('embed'),
        model=model,
        remote_model_path=orm.Str(str(model_path('matembed.xrd_vae'))),
        device=orm.Str('cpu'),
    )
    assert node.is_finished_ok, node.exit_message
    assert outputs['features'].features.shape == (6, 2)
    assert 'model.safetensors' not in node.outputs.remote_folder.listdir()


def test_missing_worker_and_missing_gpu_give_clear_exit_codes(setup, aiida_localhost):
    code, structures, _ = setup
    missing = orm.InstalledCode(
        computer=aiida_localhost, filepath_executable='/opt/nowhere/aiida-matembed-worker', label='missing-worker'
    ).store()
    _, node = run_get_node(
        WorkerCalculation,
        code=missing,
        structures=structures,
        task=orm.Str('featurize'),
        representation=orm.Str('matembed.magpie'),
    )
    assert node.exit_status == WorkerCalculation.exit_codes.ERROR_WORKER_NOT_INSTALLED.status
    assert 'pip install aiida-matembed' in node.exit_message
    with pytest.raises(ValueError, match='pip install aiida-matembed'):
        get_worker_code(aiida_localhost, '/opt/nowhere/aiida-matembed-worker')
    import torch

    if not torch.cuda.is_available():
        _, node = run_get_node(
            WorkerCalculation,
            code=code,
            structures=structures,
            task=orm.Str('featurize'),
            representation=orm.Str('matembed.magpie'),
            device=orm.Str('cuda'),
        )
        assert node.exit_status == WorkerCalculation.exit_codes.ERROR_NO_GPU.status


@pytest.mark.parametrize(
    ('inputs', 'message'),
    [
        ({'task': 'nope'}, 'task must be one of'),
        ({'task': 'embed'}, 'needs a `model` input'),
        ({'task': 'featurize'}, 'needs a `representation` input'),
        ({'task': 'featurize', 'representation': 'matembed.magpie', 'batch_size': 0}, 'batch_size must be a positive'),
        ({'task': 'featurize', 'representation': 'matembed.magpie', 'device': 'tpu'}, 'device must be'),
        ({'task': 'featurize', 'representation': 'matembed.nope'}, "unknown representation 'matembed.nope'"),
        ({'task': 'xrd', 'parameters': {'step': -1}}, 'step'),
    ],
)
def test_bad_inputs_are_refused_before_submission(setup, inputs, message):
    code, structures, _ = setup
    wrapped = {
        key: orm.Dict(v) if isinstance(v, dict) else orm.Int(v) if isinstance(v, int) else orm.Str(v)
        for key, v in inputs.items()
    }
    with pytest.raises(ValueError, match=message):
        run_get_node(WorkerCalculation, code=code, structures=structures, **wrapped)


def test_checkpoints_keep_the_structures_compactly_and_restore_them(setup):
    from aiida.engine.utils import instantiate_process
    from aiida.manage import get_manager

    from aiida_matembed.calculations.worker import _pack, _unpack

    code, structures, nodes = setup
    assert _pack({row_key(i): 10 + i for i in range(5)}) == 'rows:10-14'
    assert _unpack(_pack({row_key(0): 7, row_key(1): 9, row_key(2): 10})) == {
        row_key(0): 7,
        row_key(1): 9,
        row_key(2): 10,
    }
    assert _unpack(_pack({'b': 3, 'a': 5})) == {'a': 5, 'b': 3}
    process = instantiate_process(
        get_manager().get_runner(),
        WorkerCalculation,
        code=code,
        structures=structures,
        task=orm.Str('featurize'),
        representation=orm.Str('matembed.magpie'),
    )
    encoded = process.encode_input_args(process.raw_inputs)
    assert 'rows:' in encoded and nodes[0].uuid not in encoded  # one short string, not one YAML entry per node
    decoded = process.decode_input_args(encoded)
    assert {key: node.pk for key, node in decoded['structures'].items()} == {k: n.pk for k, n in structures.items()}
    assert decoded['representation'].value == 'matembed.magpie'
    # as when submitted to a daemon: the process is closed in this interpreter, and the structures it took out
    # of the session are back
    import gc

    from sqlalchemy import inspect as sa_inspect

    assert all(sa_inspect(n.backend_entity.bare_model).detached for n in nodes)
    del decoded  # (objects of the same rows still alive in the session would keep ours out)
    gc.collect()
    process.close()
    assert not any(sa_inspect(n.backend_entity.bare_model).detached for n in nodes)
    assert nodes[0].get_pymatgen().composition
