"""Every registered representation passes every contract check."""

import pytest

from aiida_matembed.core.representations import get_representation, list_representations
from aiida_matembed.testing import CONTRACT_CHECKS

VARIANTS = {
    'matembed.element_embedding': [
        {},
        {
            'table': 'megnet16',
            'stats': ['mean', 'variance', 'sum', 'geometric_mean', 'harmonic_mean', 'range'],
        },
    ],
    'matembed.magpie': [{}, {'impute_nan': False}],
}
CASES = [(name, params) for name in list_representations() for params in VARIANTS.get(name, [{}])]
OPTIONAL_EXTRAS = {'matembed.chgnet': 'chgnet'}
"""Representations whose package is an optional extra: their checks are skipped when it is missing."""


@pytest.mark.parametrize('check', list(CONTRACT_CHECKS))
@pytest.mark.parametrize(('name', 'params'), CASES, ids=[f'{n}{p or ""}' for n, p in CASES])
def test_contract(name, params, check):
    if name in OPTIONAL_EXTRAS:
        pytest.importorskip(OPTIONAL_EXTRAS[name])
    CONTRACT_CHECKS[check](get_representation(name, **params), None)


def test_the_contract_catches_a_broken_representation():
    """A representation that depends on site order must fail the permutation check."""
    import numpy as np

    from aiida_matembed.core.representations.base import Representation
    from aiida_matembed.core.structures import to_pymatgen

    class FirstSiteZ(Representation):
        name = 'test.first_site_z'
        input_kind = 'structure'

        def feature_labels(self):
            return ['z0']

        def _prepare(self, item):
            return to_pymatgen(item)

        def _compute(self, prepared):
            return np.array([[s[0].specie.Z] for s in prepared], dtype=float)

    with pytest.raises(AssertionError, match='permutation'):
        CONTRACT_CHECKS['permutation'](FirstSiteZ(), None)
