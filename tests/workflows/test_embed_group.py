"""``matembed.embed_group``: a Group in batches, in-process or through the worker, incremental, OOM halving."""

import numpy as np
import pytest
from aiida import orm
from aiida.cmdline.utils.common import get_workchain_report
from aiida.engine import run_get_node

from aiida_matembed.calculations.worker import get_worker_code
from aiida_matembed.data import import_model
from aiida_matembed.query import embedded_structure_pks, get_embedding, simulated_structure_pks
from aiida_matembed.worker import FAIL_OOM_ABOVE
from aiida_matembed.workflows import EmbedGroupWorkChain


@pytest.fixture
def group(aiida_profile_clean, examples):
    group = orm.Group(label='examples').store()
    nodes = [orm.StructureData(pymatgen=e.structure).store() for e in examples if e.structure.is_ordered][:6]
    group.add_nodes(nodes)
    return group, nodes


def test_in_process_batches_are_incremental(group, examples):
    group, nodes = group
    model = import_model('matembed.cmml')
    outputs, node = run_get_node(
        EmbedGroupWorkChain, group=orm.Str(group.label), model=model, batch_size=orm.Int(4), device=orm.Str('cpu')
    )
    assert node.is_finished_ok
    assert sorted(outputs['results']) == ['batch_0000', 'batch_0001']
    assert embedded_structure_pks(model, modality='structure') == {n.pk for n in nodes}
    reference = model.load_model(device='cpu').embed_structures([n.get_pymatgen() for n in nodes])
    np.testing.assert_allclose(get_embedding(nodes[5], model), reference[5], rtol=1e-5, atol=1e-6)

    extra = orm.StructureData(pymatgen=next(e.structure for e in reversed(examples) if e.structure.is_ordered)).store()
    group.add_nodes([extra])
    outputs, node = run_get_node(EmbedGroupWorkChain, group=orm.Str(group.label), model=model, batch_size=orm.Int(4))
    assert node.is_finished_ok
    (result,) = outputs['results'].values()
    assert result.rows == [extra.uuid]


def test_worker_batches_restart_with_half_the_size_on_out_of_memory(group, aiida_localhost):
    group, nodes = group
    model = import_model('matembed.xrd_vae')
    code = get_worker_code(aiida_localhost)
    # fault injection: the worker raises a CUDA out-of-memory error for batches of more than 3 structures
    options = {'environment_variables': {FAIL_OOM_ABOVE: '3'}}
    outputs, node = run_get_node(
        EmbedGroupWorkChain,
        group=orm.Str(group.label),
        model=model,
        code=code,
        batch_size=orm.Int(6),
        options=orm.Dict(options),
        device=orm.Str('cpu'),
    )
    assert node.is_finished_ok, node.exit_message
    report = get_workchain_report(node, 'REPORT')
    assert 'ran out of memory: restarting the batch of 6 as two of 3 and 3' in report
    assert sorted(len(r.rows) for r in outputs['results'].values()) == [3, 3]
    chains = [c for c in node.called if c.process_label == 'WorkerBaseWorkChain']
    assert sorted(c.exit_status for c in chains) == [0, 0, 330]  # the first one is not restarted: it is split
    jobs = [c for c in node.called_descendants if c.process_label == 'WorkerCalculation']
    assert sorted(j.exit_status for j in jobs) == [0, 0, 330]
    assert embedded_structure_pks(model) == {n.pk for n in nodes}


def test_featurize_and_xrd_tasks(group):
    group, nodes = group
    outputs, node = run_get_node(
        EmbedGroupWorkChain, group=orm.Str(group.label), task=orm.Str('xrd'), parameters=orm.Dict({'step': 0.05})
    )
    assert node.is_finished_ok
    assert simulated_structure_pks({'step': 0.05}) == {n.pk for n in nodes}
    assert simulated_structure_pks({'step': 0.02}) == set()
    outputs, node = run_get_node(
        EmbedGroupWorkChain, group=orm.Str(group.label), task=orm.Str('xrd'), parameters=orm.Dict({'step': 0.05})
    )
    assert node.is_finished_ok and not outputs.get('results')
    outputs, node = run_get_node(
        EmbedGroupWorkChain,
        group=orm.Str(group.label),
        task=orm.Str('featurize'),
        representation=orm.Str('matembed.soap'),
    )
    assert node.is_finished_ok
    (features,) = outputs['results'].values()
    assert features.base.attributes.get('representation') == 'matembed.soap'
    assert features.base.attributes.get('n_failed') == 0 and features.base.attributes.get('n_rows') == len(nodes)


@pytest.mark.parametrize(
    ('inputs', 'message'),
    [
        ({'task': 'nope'}, 'task must be one of'),
        ({'task': 'embed'}, 'needs a `model`'),
        ({'task': 'featurize'}, 'needs a `representation`'),
        ({'task': 'xrd', 'batch_size': 0}, 'batch_size must be a positive integer'),
        ({'task': 'xrd', 'parameters': {'wavelength': 'XxKa'}}, "unknown anode 'XxKa'"),
        ({'task': 'xrd', 'device': 'gpu'}, 'device must be'),
    ],
)
def test_bad_inputs(group, inputs, message):
    group, _ = group
    wrapped = {
        key: orm.Dict(v) if isinstance(v, dict) else orm.Int(v) if isinstance(v, int) else orm.Str(v)
        for key, v in inputs.items()
    }
    with pytest.raises(ValueError, match=message):
        run_get_node(EmbedGroupWorkChain, group=orm.Str(group.label), **wrapped)
    with pytest.raises(ValueError, match='does not exist'):
        run_get_node(EmbedGroupWorkChain, group=orm.Str('no such group'), task=orm.Str('xrd'))
