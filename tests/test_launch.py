"""Typed launchers and the protocol builders of the Group WorkChains (real profile, real representations)."""

import pytest
from aiida import orm

from aiida_matembed.launch import embed_group, featurize_group
from aiida_matembed.workflows import EmbedGroupWorkChain, FeaturizeGroupWorkChain


@pytest.fixture
def group(aiida_profile_clean, examples):
    group = orm.Group('examples').store()
    group.add_nodes([orm.StructureData(pymatgen=e.structure).store() for e in examples[:4]])
    return group


def test_protocols_are_listed_with_descriptions():
    for cls in (FeaturizeGroupWorkChain, EmbedGroupWorkChain):
        protocols = cls.get_available_protocols()
        assert set(protocols) == {'fast', 'moderate', 'precise'}
        assert all(p['description'] for p in protocols.values())
        assert cls.get_default_protocol() == 'moderate'


def test_featurize_protocol_sets_the_resolution_and_overrides_win(group):
    results, node = featurize_group(group, 'matembed.soap', protocol='fast', overrides={'parameters': {'l_max': 2}})
    assert node.is_finished_ok
    features = results['features']['batch_0000']
    params = features.params
    assert (params['cutoff'], params['n_max'], params['l_max']) == (4.0, 4, 2)
    assert node.inputs.batch_size.value == 5000
    builder = FeaturizeGroupWorkChain.get_builder_from_protocol(group, 'matembed.magpie', protocol='precise')
    assert builder.batch_size.value == 500 and builder.parameters.get_dict() == {}


def test_embed_protocol_and_launcher(group):
    results, node = embed_group(group, 'matembed.cmml', protocol='precise')
    assert node.is_finished_ok
    assert node.inputs.batch_size.value == 500 and node.inputs.max_concurrent.value == 2
    assert node.inputs.model.name == 'matembed.cmml'
    (features,) = results['results'].values()
    assert features.features.shape[0] == 4


def test_bad_protocol_or_override(group):
    with pytest.raises(ValueError, match="unknown protocol 'slow'"):
        FeaturizeGroupWorkChain.get_builder_from_protocol(group, 'matembed.magpie', protocol='slow')
    with pytest.raises(ValueError, match=r"unknown override\(s\) \['batchsize'\]"):
        FeaturizeGroupWorkChain.get_builder_from_protocol(group, 'matembed.magpie', overrides={'batchsize': 3})
