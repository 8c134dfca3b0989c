import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_matembed.query import get_features
from aiida_matembed.workflows import FeaturizeGroupWorkChain


@pytest.fixture
def group(aiida_profile_clean, examples):
    group = orm.Group(label='examples').store()
    group.add_nodes([orm.StructureData(pymatgen=e.structure).store() for e in examples])
    return group


def test_group_is_featurised_in_batches_and_incrementally(group, examples):
    inputs = {
        'group': orm.Str('examples'),
        'representation': orm.Str('matembed.magpie'),
        'batch_size': orm.Int(7),
    }
    outputs, node = run_get_node(FeaturizeGroupWorkChain, **inputs)
    assert node.is_finished_ok
    assert sorted(outputs['features']) == ['batch_0000', 'batch_0001', 'batch_0002']
    assert sum(f.base.attributes.get('n_rows') for f in outputs['features'].values()) == len(examples)
    for structure in group.nodes:
        assert get_features(structure, 'matembed.magpie').shape == (132,)

    new = orm.StructureData(pymatgen=examples[0].structure.make_supercell([1, 1, 2], in_place=False)).store()
    group.add_nodes(new)
    outputs, node = run_get_node(FeaturizeGroupWorkChain, **inputs)
    assert node.is_finished_ok
    (batch,) = outputs['features'].values()
    assert batch.rows == [new.uuid]

    outputs, node = run_get_node(FeaturizeGroupWorkChain, **inputs)
    assert node.is_finished_ok and not outputs.get('features')


def test_other_options_are_not_current_results(group, examples):
    base = {'group': orm.Str('examples'), 'representation': orm.Str('matembed.element_embedding')}
    run_get_node(FeaturizeGroupWorkChain, **base, parameters=orm.Dict({'table': 'magpie'}))
    outputs, _ = run_get_node(FeaturizeGroupWorkChain, **base, parameters=orm.Dict({'table': 'megnet16'}))
    assert sum(f.base.attributes.get('n_rows') for f in outputs['features'].values()) == len(examples)


@pytest.mark.parametrize(
    ('inputs', 'message'),
    [
        ({'group': 'no-such-group'}, "Group 'no-such-group' does not exist"),
        ({'representation': 'matembed.nope'}, 'unknown representation'),
        ({'parameters': {'bogus': 1}}, 'unknown option'),
        ({'batch_size': 0}, 'batch_size must be >= 1'),
    ],
)
def test_bad_inputs_are_rejected_before_running(group, inputs, message):
    full = {'group': 'examples', 'representation': 'matembed.magpie', **inputs}
    types = {'group': orm.Str, 'representation': orm.Str, 'parameters': orm.Dict, 'batch_size': orm.Int}
    full = {key: types[key](value) for key, value in full.items()}
    with pytest.raises(ValueError, match=message):
        run_get_node(FeaturizeGroupWorkChain, **full)


def test_species_from_the_batch_are_resolved_on_the_whole_group(group, examples):
    inputs = {
        'group': orm.Str('examples'),
        'representation': orm.Str('matembed.partial_rdf'),
        'parameters': orm.Dict({'cutoff': 4.0, 'bin_size': 0.5}),
        'batch_size': orm.Int(6),
    }
    outputs, node = run_get_node(FeaturizeGroupWorkChain, **inputs)
    assert node.is_finished_ok
    batches = list(outputs['features'].values())
    assert len(batches) >= 2
    assert len({tuple(b.labels) for b in batches}) == 1
    species = batches[0].params['species']
    assert set(species) == {el.symbol for e in examples for el in e.structure.composition.elements}
    failed = set().union(*(b.failed_uuids() for b in batches))
    assert failed  # the partially occupied example cannot have a partial RDF
    # running again finds every other structure current (same resolved options): only failures are retried
    outputs, node = run_get_node(FeaturizeGroupWorkChain, **inputs)
    assert node.is_finished_ok
    (retry,) = outputs['features'].values()
    assert set(retry.rows) == failed


def test_workchain_stores_graphs_per_batch(group):
    inputs = {
        'group': orm.Str('examples'),
        'representation': orm.Str('matembed.crystal_graph'),
        'batch_size': orm.Int(10),
        'store_graphs': orm.Bool(True),
    }
    outputs, node = run_get_node(FeaturizeGroupWorkChain, **inputs)
    assert node.is_finished_ok
    assert sorted(outputs['graphs']) == sorted(outputs['features'])
