"""Parser of ``matembed.worker`` on stored retrieved folders (made by scripts/make_worker_fixtures.py)."""

from pathlib import Path

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType

from aiida_matembed.data import import_model
from aiida_matembed.parsers import WorkerParser

FIXTURES = Path(__file__).resolve().parent.parent / 'fixtures' / 'worker'


@pytest.fixture
def parse(aiida_profile_clean, aiida_localhost):
    def run(case, task='featurize', scheduler_status=None, **inputs):
        node = orm.CalcJobNode(computer=aiida_localhost, process_type='aiida.calculations:matembed.worker')
        if scheduler_status is not None:  # what the scheduler's output parser set before the worker parser runs
            node.set_exit_status(scheduler_status)
        node.set_option('resources', {'num_machines': 1, 'num_mpiprocs_per_machine': 1})
        node.base.links.add_incoming(orm.Str(task).store(), LinkType.INPUT_CALC, 'task')
        for label, value in inputs.items():
            node.base.links.add_incoming(value, LinkType.INPUT_CALC, label)
        node.store()
        retrieved = orm.FolderData(tree=FIXTURES / case)
        retrieved.base.links.add_incoming(node, LinkType.CREATE, 'retrieved')
        retrieved.store()
        return WorkerParser.parse_from_node(node, store_provenance=False)

    return run


def test_embedding_output_becomes_the_same_node_as_the_calcfunction_makes(parse):
    model = import_model('matembed.xrd_vae')
    results, calcfunction = parse('ok_embed', task='embed', model=model)
    assert calcfunction.is_finished_ok
    features = results['features']
    assert features.base.attributes.get('representation') == 'matembed.xrd_vae'
    assert features.base.attributes.get('params') == {
        'model': 'matembed.xrd_vae',
        'model_sha256': model.sha256,
        'modality': 'xrd',
    }
    assert features.features.shape == (3, 2) and np.isfinite(features.features[:2]).all()
    (failure,) = features.failures
    assert failure['index'] == 2 and failure['uuid'].endswith('0003') and failure['pk'] is None
    assert results['failures'].get_list() == features.failures
    assert results['worker_status']['device'] == 'cpu'


def test_embedding_from_other_weights_is_refused(parse):
    model = import_model('matembed.cmml')  # the fixture was made with xrd_vae
    _, calcfunction = parse('ok_embed', task='embed', model=model)
    assert calcfunction.exit_status == 350 and 'sha256' in calcfunction.exit_message


def test_xrd_output_rebuilds_the_patterns(parse):
    results, calcfunction = parse('ok_xrd', task='xrd')
    assert calcfunction.is_finished_ok
    patterns = results['patterns']
    assert patterns.profiles.shape == (3, 1001) and patterns.base.attributes.get('step') == 0.1
    nacl = patterns.peaks(0)
    assert len(nacl) > 5 and nacl.intensity.max() == pytest.approx(100)
    assert {(1, 1, 1), (2, 0, 0)} <= {hkl for family in nacl.hkls for hkl in family}
    assert len(patterns.peaks(2)) == 0 and patterns.failures[0]['index'] == 2


@pytest.mark.parametrize(
    ('case', 'status', 'message'),
    [
        ('out_of_memory', 330, 'ran out of memory'),
        ('bad_input', 310, "unknown representation 'matembed.nope'"),
        ('no_gpu', 320, 'sees no GPU'),
        ('crash', 340, 'ZeroDivisionError: boom'),
        ('not_installed', 301, 'pip install aiida-matembed'),
        ('killed', 300, 'wrote no status file'),
        ('corrupt_output', 350, 'cannot be read'),
    ],
)
def test_failures_map_to_exit_codes(parse, case, status, message):
    _, calcfunction = parse(case)
    assert calcfunction.exit_status == status
    assert message in calcfunction.exit_message


def test_a_job_killed_by_the_scheduler_for_memory_is_out_of_memory(parse):
    _, calcfunction = parse('killed', scheduler_status=110)
    assert calcfunction.exit_status == 330 and 'killed by the scheduler' in calcfunction.exit_message
