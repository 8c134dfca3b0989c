"""Compositional representations pinned against their reference implementations.

References: matminer 0.10 ``ElementProperty.from_preset('magpie')`` and ``ElementFraction``;
ElementEmbeddings ``CompositionalEmbedding.feature_vector`` (both installed by the dev extra).
"""

import numpy as np
import pytest

from aiida_matembed.core.representations import FeaturizationError, get_representation
from aiida_matembed.core.representations.composition import ELEMENT_EMBEDDING_STATS, element_embedding_tables


@pytest.fixture(scope='module')
def compositions(prototypes):
    return [p.structure.composition for p in prototypes]


@pytest.mark.parametrize('impute_nan', [True, False])
def test_magpie_reproduces_matminer_on_the_288_prototypes(compositions, impute_nan):
    from matminer.featurizers.composition import ElementProperty

    reference = ElementProperty.from_preset('magpie', impute_nan=impute_nan)
    expected = np.array([reference.featurize(c) for c in compositions], dtype=float)
    rep = get_representation('matembed.magpie', impute_nan=impute_nan)
    result = rep.featurize_many(compositions)
    assert rep.feature_labels() == reference.feature_labels()
    assert result.features.shape == (288, 132)
    np.testing.assert_allclose(result.features, expected, rtol=1e-6, atol=1e-9, equal_nan=True)


def test_magpie_from_structures_equals_from_compositions(prototypes, compositions):
    rep = get_representation('matembed.magpie')
    from_structures = rep.featurize_many([p.structure for p in prototypes[:60]]).features
    np.testing.assert_allclose(from_structures, rep.featurize_many(compositions[:60]).features, rtol=1e-12)


def test_magpie_textbook_values_for_nacl():
    rep = get_representation('matembed.magpie')
    values = dict(zip(rep.feature_labels(), rep.featurize('NaCl'), strict=True))
    assert values['MagpieData mean Number'] == 14.0  # (11 + 17) / 2
    assert values['MagpieData range Number'] == 6.0
    assert values['MagpieData avg_dev Number'] == 3.0
    assert values['MagpieData mode Number'] == 11.0  # tie: the smaller value, as matminer


def test_element_fraction_matches_matminer(compositions):
    from matminer.featurizers.composition import ElementFraction as MatminerElementFraction

    reference = MatminerElementFraction()
    expected = np.array([reference.featurize(c) for c in compositions])
    rep = get_representation('matembed.element_fraction')
    assert rep.n_features == 103
    assert rep.feature_labels() == reference.feature_labels()[:103]
    np.testing.assert_allclose(rep.featurize_many(compositions).features, expected[:, :103], rtol=1e-12)
    assert not expected[:, 103:].any()


def test_element_fraction_rejects_elements_beyond_lawrencium():
    with pytest.raises(FeaturizationError, match=r'element Rf \(Z=104\) is outside Z = 1..103'):
        get_representation('matembed.element_fraction').featurize_many(['RfO2'])


@pytest.mark.parametrize('table', element_embedding_tables())
def test_element_embedding_matches_elementembeddings(compositions, table):
    from elementembeddings.composition import CompositionalEmbedding

    stats = list(ELEMENT_EMBEDDING_STATS)
    rep = get_representation('matembed.element_embedding', table=table, stats=stats)
    result = rep.featurize_many(compositions, errors='record')
    failed = {f.index for f in result.failures}
    for failure in result.failures:
        assert f'not in the {table!r} table' in failure.message
    checked = 0
    for i, composition in enumerate(compositions):
        if i in failed or checked >= 40:
            continue
        reduced = composition.reduced_composition.formula.replace(' ', '')
        with np.errstate(all='ignore'):
            expected = CompositionalEmbedding(reduced, table).feature_vector(stats)
        np.testing.assert_allclose(result.features[i], expected, rtol=1e-9, atol=1e-12, equal_nan=True)
        checked += 1
    assert checked > 0
    assert len(rep.citations()) >= 1


def test_element_embedding_names_a_missing_element():
    rep = get_representation('matembed.element_embedding', table='megnet16')
    result = rep.featurize_many(['NaCl', 'OgF2', 'KBr'], errors='record')
    assert [f.index for f in result.failures] == [1]
    assert "element(s) Og not in the 'megnet16' table" in result.failures[0].message
    assert np.isfinite(result.features[[0, 2]]).all()


def test_disordered_structures_use_the_weighted_composition(examples):
    alloy = next(e.structure for e in examples if not e.structure.is_ordered)
    rep = get_representation('matembed.magpie')
    np.testing.assert_allclose(rep.featurize(alloy), rep.featurize('CuAu'), rtol=1e-12)
    fractions = get_representation('matembed.element_fraction').featurize(alloy)
    assert fractions[28] == 0.5 and fractions[78] == 0.5  # Cu (Z=29), Au (Z=79)


def test_sum_pooling_uses_the_reduced_formula():
    rep = get_representation('matembed.element_embedding', table='magpie', stats=['sum'])
    np.testing.assert_allclose(rep.featurize('Fe4O6'), rep.featurize('Fe2O3'))
