import json
import zipfile

import numpy as np
import pytest
from ase.build import bulk
from pymatgen.core import Lattice, Structure

from aiida_matembed.core.datasets import STANDARD_LABELS, StructureSet, concatenate
from aiida_matembed.core.structures import InvalidStructureError, PartiallyOccupiedError


@pytest.fixture(scope='module')
def example_set(ordered_examples):
    names = [e.label for e in ordered_examples]
    energies = np.linspace(-1.0, 1.0, len(names))
    return StructureSet.from_structures(
        [e.structure for e in ordered_examples],
        labels={'name': names, 'energy': energies},
        metadata={'builder': 'test', 'seed': 1},
    )


def test_standard_labels_are_computed(example_set, ordered_examples):
    assert len(example_set) == len(ordered_examples) == 17
    assert set(STANDARD_LABELS) <= set(example_set.labels)
    row = example_set.row(0)
    assert row['name'] == 'NaCl'
    assert row['prototype'] == 'AB_cF8_225_a_b'
    assert row['space_group'] == 225 and row['crystal_system'] == 'cubic'
    assert row['formula'] == 'NaCl' and row['source'] == 'user'
    assert example_set.labels['space_group'].dtype == np.int64
    assert example_set.labels['name'].dtype.kind == 'U'
    systems = dict(zip(example_set.labels['name'], example_set.labels['crystal_system'], strict=True))
    assert systems['TiO2 (rutile)'] == 'tetragonal' and systems['Al2O3 (corundum)'] == 'trigonal'
    assert systems['Mg (hcp)'] == 'hexagonal'


def test_layout_and_structures_round_trip(example_set, ordered_examples):
    assert example_set.ptr[0] == 0 and example_set.ptr[-1] == len(example_set.numbers)
    assert example_set.numbers.dtype == np.int16 and example_set.lattices.shape == (17, 3, 3)
    for i, example in enumerate(ordered_examples):
        structure = example_set.structure(i)
        np.testing.assert_allclose(structure.lattice.matrix, example.structure.lattice.matrix)
        np.testing.assert_allclose(structure.frac_coords, example.structure.frac_coords)
        assert structure.atomic_numbers == example.structure.atomic_numbers
    assert len(example_set.structures()) == 17
    with pytest.raises(IndexError):
        example_set.structure(17)


def test_save_load_is_exact_and_never_pickles(example_set, tmp_path):
    path = example_set.save(tmp_path / 'set')
    assert path.suffix == '.npz'
    with np.load(path, allow_pickle=False) as data:
        assert str(data['format']) == 'aiida_matembed.StructureSet/1'
        assert json.loads(str(data['metadata'])) == {'builder': 'test', 'seed': 1}
        assert data['label__prototype'].dtype.kind == 'U'
    loaded = StructureSet.load(path)
    assert loaded.sha256() == example_set.sha256()
    assert loaded.metadata == example_set.metadata
    for key, column in example_set.labels.items():
        np.testing.assert_array_equal(loaded.labels[key], column)
    np.testing.assert_array_equal(loaded.frac_coords, example_set.frac_coords)


def test_hash_covers_structures_and_labels_not_metadata(example_set):
    digest = example_set.sha256()
    assert len(digest) == 64
    same = StructureSet(example_set.lattices, example_set.numbers, example_set.frac_coords, example_set.ptr,
                        {k: v.astype('U64') if v.dtype.kind == 'U' else v for k, v in example_set.labels.items()},
                        metadata={'other': True})  # fmt: skip
    assert same.sha256() == digest  # width of the unicode dtype and metadata do not matter
    labels = dict(example_set.labels, energy=example_set.labels['energy'] + 1e-9)
    changed = StructureSet(example_set.lattices, example_set.numbers, example_set.frac_coords, example_set.ptr, labels)
    assert changed.sha256() != digest
    moved = example_set.frac_coords.copy()
    moved[0, 0] += 1e-6
    moved_set = StructureSet(example_set.lattices, example_set.numbers, moved, example_set.ptr, example_set.labels)
    assert moved_set.sha256() != digest


def test_subset_and_concatenate(example_set):
    part = example_set.subset([3, 0, 3])
    assert list(part.labels['name']) == [example_set.labels['name'][3], 'NaCl', example_set.labels['name'][3]]
    assert part.structure(1) == example_set.structure(0)
    mask = example_set.labels['crystal_system'] == 'cubic'
    cubic = example_set.subset(mask)
    assert len(cubic) == int(mask.sum()) and set(cubic.labels['crystal_system']) == {'cubic'}
    assert len(example_set.subset([])) == 0
    with pytest.raises(IndexError):
        example_set.subset([99])
    other = StructureSet.from_structures([bulk('Cu', 'fcc', a=3.6)], labels={'tag': ['ase']}, source='user')
    joined = concatenate([example_set.subset([0, 1]), other])
    assert len(joined) == 3 and joined.n_sites.tolist() == [2, 2, 1]
    assert joined.labels['tag'].tolist() == ['', '', 'ase']  # missing strings are ''
    assert np.isnan(joined.labels['energy'][2]) and joined.labels['energy'][0] == -1.0  # missing numbers are NaN
    assert joined.labels['prototype'][2] == 'A_cF4_225_a'
    assert StructureSet.concatenate([example_set]).sha256() == example_set.sha256()
    assert joined.counts('crystal_system') == {'cubic': 3}


def test_bad_input_gives_clear_errors(examples, tmp_path):
    disordered = next(e.structure for e in examples if not e.structure.is_ordered)
    with pytest.raises(PartiallyOccupiedError, match='structure 1: site 0 is partially occupied'):
        StructureSet.from_structures([examples[0].structure, disordered])
    with pytest.raises(TypeError, match='structure 0'):
        StructureSet.from_structures(['NaCl'])
    overlapping = Structure(Lattice.cubic(3), ['Na', 'Cl'], [[0, 0, 0], [0.01, 0, 0]])
    with pytest.raises(InvalidStructureError, match='overlapping'):
        StructureSet.from_structures([overlapping])
    with pytest.raises(ValueError, match="label 'x' has shape"):
        StructureSet.from_structures([examples[0].structure], labels={'x': [1, 2]})
    with pytest.raises(ValueError, match='all numbers or all strings'):
        StructureSet.from_structures([examples[0].structure], labels={'x': [{'a': 1}]})
    with pytest.raises(ValueError, match='JSON'):
        StructureSet.from_structures([examples[0].structure], metadata={'x': object()})


def test_load_errors_name_the_file(example_set, tmp_path):
    with pytest.raises(FileNotFoundError, match='no StructureSet file'):
        StructureSet.load(tmp_path / 'missing.npz')
    text = tmp_path / 'text.npz'
    text.write_text('not a zip')
    with pytest.raises(ValueError, match='not a StructureSet .npz file'):
        StructureSet.load(text)
    other = tmp_path / 'other.npz'
    np.savez(other, features=np.zeros(3))
    with pytest.raises(ValueError, match='no "format" entry'):
        StructureSet.load(other)
    pickled = tmp_path / 'pickled.npz'
    np.savez(pickled, format=np.array('aiida_matembed.StructureSet/1'), metadata=np.array([{'a': 1}], dtype=object))
    with pytest.raises(ValueError, match='pickl'):
        StructureSet.load(pickled)
    path = example_set.save(tmp_path / 'good.npz')
    broken = tmp_path / 'broken.npz'
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(broken, 'w') as target:
        for item in source.infolist():
            if item.filename != 'ptr.npy':
                target.writestr(item, source.read(item.filename))
    with pytest.raises(ValueError, match='malformed: missing ptr'):
        StructureSet.load(broken)
