import pytest

from aiida_matembed.core.representations import (
    Representation,
    get_representation,
    list_representations,
    load_representation_class,
)


def test_builtins_are_registered_by_entry_point():
    names = list_representations()
    assert {'matembed.element_fraction', 'matembed.element_embedding', 'matembed.magpie'} <= set(names)
    for name in names:
        cls = load_representation_class(name)
        assert issubclass(cls, Representation)
        assert cls.name == name


def test_unknown_name_lists_the_registered_ones():
    with pytest.raises(ValueError, match=r"unknown representation 'matembed\.nope'; registered: .*matembed\.magpie"):
        get_representation('matembed.nope')


def test_unknown_option_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['tabel'\].*valid options: \['table', 'stats'\]"):
        get_representation('matembed.element_embedding', tabel='magpie')


@pytest.mark.parametrize(
    ('params', 'message'),
    [
        ({'table': 'nope'}, "unknown element table 'nope'"),
        ({'stats': ['mean', 'median']}, 'invalid stats'),
        ({'stats': []}, 'invalid stats'),
        ({'stats': ['mean', 'mean']}, 'duplicates'),
    ],
)
def test_bad_options_are_rejected(params, message):
    with pytest.raises(ValueError, match=message):
        get_representation('matembed.element_embedding', **params)


def test_bad_featurize_many_arguments():
    rep = get_representation('matembed.magpie')
    with pytest.raises(ValueError, match='errors must be'):
        rep.featurize_many(['NaCl'], errors='ignore')
    with pytest.raises(ValueError, match='n_jobs'):
        rep.featurize_many(['NaCl'], n_jobs=0)
