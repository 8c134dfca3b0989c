import numpy as np
import pytest
from pymatgen.core import Composition
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from aiida_matembed.core.datasets import heldout_prototypes, synthetic_crystals
from aiida_matembed.core.datasets._chemistry import min_contact_ratio
from aiida_matembed.core.datasets.prototypes import MIN_CONTACT
from aiida_matembed.core.datasets.synthetic import DENSITY_RANGE, _density, _one, mp_space_group_counts


def test_materials_project_statistics_are_read():
    counts = mp_space_group_counts()
    assert sum(counts.values()) == 88678 and len(counts) == 225
    assert max(counts, key=counts.get) == 225 and counts[225] == 7765
    assert not {1, 168, 184, 207, 222} & set(counts)


def test_crystals_are_symmetric_charge_balanced_and_physical(synthetic_set):
    assert len(synthetic_set) == 12
    labels = synthetic_set.labels
    assert set(labels['source']) == {'synthetic'} and set(labels['origin']) == {'synthetic'}
    assert synthetic_set.metadata['seed'] == 7 and synthetic_set.metadata['parameters']['n'] == 12
    for i, structure in enumerate(synthetic_set.structures()):
        assert SpacegroupAnalyzer(structure, symprec=1e-3).get_space_group_number() == labels['space_group'][i]
        composition = structure.composition
        assert 2 <= len(composition) <= 4 and len(structure) <= 48
        assert composition.oxi_state_guesses(max_sites=-1), composition  # charge balanced (pymatgen)
        assert composition.reduced_formula == labels['formula'][i]
        lattice, numbers, frac = synthetic_set.arrays(i)
        assert min_contact_ratio(lattice, numbers, frac) >= MIN_CONTACT
        assert DENSITY_RANGE[0] <= _density(lattice, numbers.astype(int)) <= DENSITY_RANGE[1]
    assert (labels['space_group'] == labels['target_space_group']).sum() >= 9  # else spglib finds a supergroup
    assert labels['target_space_group'][3] == 1  # every 4th crystal takes the next space group in turn: 1, 2, ...


def test_crystal_i_depends_only_on_seed_and_i(synthetic_set):
    allowed = tuple(range(1, 231))
    crystal = _one(5, 7, 48, allowed, frozenset())
    lattice, numbers, frac = synthetic_set.arrays(5)
    np.testing.assert_array_equal(crystal.lattice, lattice)
    np.testing.assert_array_equal(crystal.numbers, numbers)
    np.testing.assert_array_equal(crystal.frac, frac)
    assert _one(5, 8, 48, allowed, frozenset()).description != crystal.description


def test_worker_processes_give_the_same_set(synthetic_set):
    parallel = synthetic_crystals(8, seed=7, n_jobs=2)
    assert parallel.sha256() == synthetic_set.subset(range(8)).sha256()


def test_options_restrict_groups_size_and_types():
    cubic = synthetic_crystals(3, seed=1, space_groups=[221, 225], max_atoms=16, exclude_keys=heldout_prototypes())
    assert set(cubic.labels['target_space_group']) <= {221, 225}
    assert cubic.n_sites.max() <= 16
    assert not set(cubic.labels['prototype']) & heldout_prototypes()


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'n': 0}, 'positive integer'),
        ({'n': -3}, 'positive integer'),
        ({'max_atoms': 1}, 'max_atoms must be >= 2'),
        ({'space_groups': [0, 5]}, '1..230'),
        ({'space_groups': []}, '1..230'),
        ({'n_jobs': 0}, 'n_jobs must be >= 1'),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        synthetic_crystals(**{'n': 2, 'seed': 0, **kwargs})


def test_compositions_are_charge_balanced_with_common_states():
    from aiida_matembed.core.datasets._chemistry import assign_charge_balanced

    rng = np.random.default_rng(0)
    for _ in range(40):
        counts = rng.integers(1, 7, size=int(rng.integers(2, 5))).tolist()
        elements = assign_charge_balanced(counts, rng)
        if elements is None:
            continue
        assert len(set(elements)) == len(elements)
        assert Composition(dict(zip(elements, counts, strict=True))).oxi_state_guesses(max_sites=-1)
    assert assign_charge_balanced([1, 12], rng) is None  # no +12 or -12 ion
