"""Shared fixtures: AiiDA's temporary SQLite profile (no broker) and small structure sets."""

import pytest

pytest_plugins = ['aiida.tools.pytest_fixtures']


@pytest.fixture(scope='session')
def examples():
    from aiida_matembed.core.datasets import load_example_structures

    return load_example_structures()


@pytest.fixture(scope='session')
def prototypes():
    """The 288 AFLOW prototypes shipped with pymatgen."""
    from aiida_matembed.core.datasets import load_aflow_prototypes

    return load_aflow_prototypes()
