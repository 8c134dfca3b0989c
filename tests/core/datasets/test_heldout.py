from importlib import resources

from aiida_matembed.core.datasets import HELDOUT_FRACTION, heldout_prototypes, is_heldout, reference_prototypes
from aiida_matembed.core.datasets.heldout import select_heldout, write_heldout_file
from aiida_matembed.core.datasets.prototypes import split_prototypes


def test_the_shipped_split_is_the_documented_rule():
    keys = {p.key for p in reference_prototypes()}
    held = heldout_prototypes()
    assert len(keys) == 546 and len(held) == 164
    assert held <= keys and len(held) / len(keys) >= HELDOUT_FRACTION == 0.3
    # the file is what the rule gives for today's keys: a change of the key definition shows up here
    assert sorted(held) == select_heldout(keys)
    text = resources.files('aiida_matembed').joinpath('resources/heldout_prototypes.txt').read_text()
    assert text.startswith('# Held-out structure types') and 'sha256(key.encode())' in text
    assert is_heldout('AB2_tP6_136_a_f') and not is_heldout('AB_cF8_225_a_b')  # rutile out, rock salt in


def test_write_reproduces_the_file(tmp_path):
    shipped = resources.files('aiida_matembed').joinpath('resources/heldout_prototypes.txt').read_text()
    assert write_heldout_file(tmp_path / 'heldout.txt').read_text() == shipped


def test_splits_partition_the_prototypes():
    train, _ = split_prototypes('train')
    held, _ = split_prototypes('heldout')
    assert len(train) + len(held) == len(reference_prototypes())
    assert not {p.key for p in train} & {p.key for p in held}
    assert {p.source for p in held} == {'aflow', 'pyriodic'}


def test_training_decorations_never_carry_a_heldout_key(train_decorations):
    held = heldout_prototypes()
    assert not set(train_decorations.labels['prototype']) & held
    assert len(set(train_decorations.labels['prototype'])) > 100 - 1


def test_heldout_decorations_only_carry_heldout_keys():
    from aiida_matembed.core.datasets import decorate_prototypes

    decorations = decorate_prototypes(40, seed=1, split='heldout', include_originals=True)
    assert set(decorations.labels['prototype']) <= heldout_prototypes()
