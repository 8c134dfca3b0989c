import numpy as np
import pytest
from pymatgen.core import Composition, Lattice, Structure
from pymatgen.core.operations import SymmOp
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from aiida_matembed.core.datasets import (
    decorate_prototypes,
    load_aflow_prototypes,
    reference_prototypes,
    structure_type_key,
)
from aiida_matembed.core.datasets._chemistry import min_contact_ratio
from aiida_matembed.core.datasets.prototypes import _ENANTIOMORPHS, MIN_CONTACT, crystal_system, shared_keys


def anonymous(label):
    """'AB3C_cP5_221_a_c_b' -> ('cP5', '221', sorted (count, wyckoff) pairs): an AFLOW label up to species order."""
    stoichiometry, pearson, number, *wyckoffs = label.split('_')
    counts = [int(c or 1) for c in __import__('re').findall(r'[A-Z](\d*)', stoichiometry)]
    return pearson, number, sorted(zip(counts, wyckoffs, strict=True))


def test_keys_of_the_examples_are_their_aflow_labels(ordered_examples):
    keys = {e.label: structure_type_key(e.structure) for e in ordered_examples}
    assert keys['NaCl'] == 'AB_cF8_225_a_b'
    assert keys['TiO2 (rutile)'] == 'AB2_tP6_136_a_f'
    assert keys['Al2O3 (corundum)'] == 'A2B3_hR10_167_c_e'
    assert keys['CaTiO3 (cubic perovskite)'] == 'ABC3_cP5_221_a_b_c'
    assert keys['C (graphite)'] == 'A_hP4_194_bc'
    for example in ordered_examples:  # the same label as AFLOW's up to the order of the species
        assert anonymous(keys[example.label]) == anonymous(example.aflow), example.label


def test_key_is_invariant_under_setting_changes():
    rocksalt = Structure.from_spacegroup('Fm-3m', Lattice.cubic(5.64), ['Na', 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]])
    swapped = Structure.from_spacegroup('Fm-3m', Lattice.cubic(4.2), ['Mg', 'O'], [[0.5, 0.5, 0.5], [0, 0, 0]])
    assert structure_type_key(rocksalt) == structure_type_key(swapped) == 'AB_cF8_225_a_b'  # 4a <-> 4b
    moved = rocksalt.copy()
    moved.make_supercell([[1, 1, 0], [0, 1, 0], [0, 0, 2]])
    moved.apply_operation(SymmOp.from_axis_angle_and_translation([1, 2, 3], 37.0))
    moved.translate_sites(list(range(len(moved))), [0.13, 0.29, 0.41])
    assert structure_type_key(moved) == 'AB_cF8_225_a_b'
    assert structure_type_key(rocksalt.get_primitive_structure()) == 'AB_cF8_225_a_b'


def test_a_structure_and_its_mirror_image_share_a_key():
    quartz = next(p for p in load_aflow_prototypes() if p.label == 'quartz (alpha)').structure
    mirrored = Structure(quartz.lattice, quartz.species, -quartz.frac_coords)
    groups = {SpacegroupAnalyzer(s, symprec=1e-3).get_space_group_number() for s in (quartz, mirrored)}
    assert groups == {152, 154}
    assert structure_type_key(quartz) == structure_type_key(mirrored) == 'AB2_hP9_152_a_c'


def test_reference_prototypes_agree_with_aflow_and_pymatgen():
    prototypes = reference_prototypes()
    assert len(prototypes) == 288 + 579
    aflow = [p for p in prototypes if p.source == 'aflow']
    labels = [p.aflow for p in load_aflow_prototypes()]
    pearson = sum(p.key.split('_')[1] == label.split('_')[1] for p, label in zip(aflow, labels, strict=True))
    number = sum(p.space_group == int(label.split('_')[2]) for p, label in zip(aflow, labels, strict=True))
    assert pearson == 287 and number == 286  # uranium silicide (tP4) and A2B_oC12_38 are more symmetric than labelled
    sga = [SpacegroupAnalyzer(p.structure, symprec=1e-3).get_space_group_number() for p in load_aflow_prototypes()]
    assert sga == [p.space_group for p in aflow]
    for p in prototypes:  # the key names the smaller group of an enantiomorphic pair
        assert p.key.split('_')[2] == str(min(p.space_group, _ENANTIOMORPHS.get(p.space_group, 231)))
    assert shared_keys() == (271, 544, 269)  # keys of pymatgen's 288, of pyriodic's 579, in both


def test_crystal_system():
    assert [crystal_system(g) for g in (1, 3, 16, 75, 143, 168, 195)] == [
        'triclinic', 'monoclinic', 'orthorhombic', 'tetragonal', 'trigonal', 'hexagonal', 'cubic',
    ]  # fmt: skip
    with pytest.raises(ValueError, match='1..230'):
        crystal_system(231)


def test_decorations_keep_the_structure_type(train_decorations):
    parents = {p.identifier: p for p in reference_prototypes()}
    labels = train_decorations.labels
    assert train_decorations.metadata['n_originals'] == labels['origin'].tolist().count('original') > 100 - 1
    for i in range(len(train_decorations)):
        parent = parents[labels['parent'][i]]
        assert labels['prototype'][i] == parent.key
        assert labels['target_space_group'][i] == parent.space_group
        assert labels['source'][i] == parent.source
        lattice, numbers, frac = train_decorations.arrays(i)
        assert len(set(numbers.tolist())) == len(set(parent.numbers.tolist()))
        if labels['origin'][i] == 'decorated':  # real originals may have shorter contacts (beta uranium: 0.66)
            assert min_contact_ratio(lattice, numbers, frac) >= MIN_CONTACT - 1e-9
        else:
            assert parent.source == 'aflow'
            np.testing.assert_array_equal(numbers, parent.numbers)


def test_ionic_decorations_stay_charge_balanced():
    decorations = decorate_prototypes(40, seed=11, split='all')
    parents = {p.identifier: p for p in reference_prototypes()}
    checked = 0
    for i in range(len(decorations)):
        parent = parents[decorations.labels['parent'][i]]
        if parent.source != 'aflow':
            continue
        old = Composition({int(z): int((parent.numbers == z).sum()) for z in set(parent.numbers.tolist())})
        guesses = old.oxi_state_guesses(max_sites=-1)
        if not guesses or any(q != round(q) or q == 0 for q in guesses[0].values()):
            continue  # mixed valence (Ni3S2) or a metal: the neighbour rule, which may not keep the charge balance
        new = Composition(decorations.labels['formula'][i])
        assert new.oxi_state_guesses(max_sites=-1), (old, new)
        checked += 1
    assert checked >= 5


def test_decorations_are_reproducible_and_round_robin():
    n_types = decorate_prototypes(1, seed=5, split='heldout', max_atoms=6).metadata['n_types']
    assert 10 < n_types < 80
    first = decorate_prototypes(n_types + 7, seed=5, split='heldout', max_atoms=6)
    again = decorate_prototypes(n_types + 7, seed=5, split='heldout', max_atoms=6)
    other = decorate_prototypes(n_types + 7, seed=6, split='heldout', max_atoms=6)
    assert first.sha256() == again.sha256() != other.sha256()
    assert first.metadata['n_skipped_max_atoms'] > 0
    counts = np.unique(first.labels['prototype'], return_counts=True)[1]
    assert len(counts) == n_types and sorted(set(counts.tolist())) == [1, 2]  # every type, evenly
    shorter = decorate_prototypes(10, seed=5, split='heldout', max_atoms=6)
    assert shorter.sha256() == first.subset(range(10)).sha256()


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'n': 0}, 'positive integer'),
        ({'n': 2.5}, 'positive integer'),
        ({'split': 'test'}, 'unknown split'),
        ({'max_atoms': 0}, 'max_atoms must be >= 1'),
    ],
)
def test_decorate_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        decorate_prototypes(**{'n': 3, 'seed': 0, **kwargs})
