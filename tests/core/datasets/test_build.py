import pytest

from aiida_matembed.core.datasets import StructureSet, build_dataset, heldout_prototypes


def test_training_set_mixes_synthetic_and_prototypes_without_heldout_types(tmp_path):
    built = build_dataset(10, seed=2, split='train', synthetic_fraction=0.3, max_atoms=24)
    assert len(built) == 10
    assert built.counts('source')['synthetic'] == 3
    assert built.labels['origin'].tolist()[:4] == ['synthetic', 'synthetic', 'synthetic', 'original']
    assert not set(built.labels['prototype']) & heldout_prototypes()
    assert built.n_sites.max() <= 24
    metadata = built.metadata
    assert metadata['builder'] == 'aiida_matembed.core.datasets.build_dataset' and metadata['version'] == 1
    assert metadata['parameters'] == {'n': 10, 'split': 'train', 'synthetic_fraction': 0.3, 'max_atoms': 24,
                                      'n_jobs': 1}  # fmt: skip
    assert len(metadata['heldout_file_sha256']) == 64 and len(metadata['parts']) == 2
    loaded = StructureSet.load(built.save(tmp_path / 'train.npz'))
    assert loaded.sha256() == built.sha256() and loaded.metadata == built.metadata


def test_heldout_set_has_only_heldout_types_and_no_synthetic():
    built = build_dataset(12, seed=0, split='heldout')
    assert set(built.labels['prototype']) <= heldout_prototypes()
    assert 'synthetic' not in built.labels['source'].tolist()
    assert built.labels['origin'][0] == 'original'
    assert built.metadata['n_synthetic'] == 0


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'n': 0}, 'positive integer'),
        ({'split': 'validation'}, 'unknown split'),
        ({'synthetic_fraction': 1.5}, r'synthetic_fraction must be in \[0, 1\]'),
        ({'synthetic_fraction': float('nan')}, 'synthetic_fraction'),
        ({'synthetic_fraction': 'half'}, 'synthetic_fraction must be a number'),
        ({'n_jobs': 0}, 'n_jobs must be >= 1'),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_dataset(**{'n': 4, **kwargs})
