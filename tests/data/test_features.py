import numpy as np
import pytest

from aiida_matembed.data import FeaturesData, params_hash


def test_features_round_trip_through_the_database(aiida_profile_clean):
    from aiida import orm

    matrix = np.arange(6, dtype=float).reshape(2, 3)
    node = FeaturesData(
        matrix,
        labels=['a', 'b', 'c'],
        representation='matembed.magpie',
        version=1,
        params={'impute_nan': True},
        rows=['uuid-0', 'uuid-1'],
        failures=[],
    ).store()
    loaded = orm.load_node(node.pk)
    assert isinstance(loaded, FeaturesData)
    np.testing.assert_array_equal(loaded.features, matrix)
    assert loaded.labels == ['a', 'b', 'c']
    assert loaded.rows == ['uuid-0', 'uuid-1']
    assert loaded.row_of('uuid-1') == 1
    np.testing.assert_array_equal(loaded.vector('uuid-1'), [3, 4, 5])
    attributes = loaded.base.attributes.all
    assert attributes['representation'] == 'matembed.magpie'
    assert attributes['params_hash'] == params_hash({'impute_nan': True})
    assert (attributes['n_rows'], attributes['n_features'], attributes['n_failed']) == (2, 3, 0)
    assert 'labels' not in attributes and 'rows' not in attributes  # kept in the repository
    hit = orm.QueryBuilder().append(FeaturesData, filters={'attributes.representation': 'matembed.magpie'}).all()
    assert len(hit) == 1


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'features': np.zeros(3)}, '2D'),
        ({'labels': ['a']}, '1 labels for 3 features'),
        ({'rows': ['x']}, '1 row keys for 2 rows'),
        ({'representation': None}, 'required'),
    ],
)
def test_inconsistent_features_are_rejected(kwargs, message):
    arguments = {
        'features': np.zeros((2, 3)),
        'labels': ['a', 'b', 'c'],
        'representation': 'x.y',
        'version': 1,
        'params': {},
    }
    arguments.update(kwargs)
    features = arguments.pop('features')
    with pytest.raises(ValueError, match=message):
        FeaturesData(features, **arguments)
