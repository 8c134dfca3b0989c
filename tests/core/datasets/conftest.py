"""Small structure sets shared by the dataset tests (built once per session: pyxtal and spglib are slow)."""

import pytest


@pytest.fixture(scope='session')
def synthetic_set():
    from aiida_matembed.core.datasets import synthetic_crystals

    return synthetic_crystals(12, seed=7)


@pytest.fixture(scope='session')
def train_decorations():
    from aiida_matembed.core.datasets import decorate_prototypes

    return decorate_prototypes(120, seed=3, split='train', include_originals=True)


@pytest.fixture(scope='session')
def ordered_examples(examples):
    return [e for e in examples if e.structure.is_ordered]
