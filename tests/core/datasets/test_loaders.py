import json

import ase.db
import ase.io
import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator
from pymatgen.io.ase import AseAtomsAdaptor

from aiida_matembed.core.datasets import load_structure_set
from aiida_matembed.core.structures import PartiallyOccupiedError


@pytest.fixture(scope='module')
def few(ordered_examples):
    return ordered_examples[:5]  # NaCl, Si, ZnS (zincblende, wurtzite), CaTiO3


def same_structures(structure_set, structures):
    assert len(structure_set) == len(structures)
    for got, expected in zip(structure_set.structures(), structures, strict=True):
        assert got.composition == expected.composition
        assert got.lattice.volume == pytest.approx(expected.lattice.volume, rel=1e-6)


def test_cif_folder(tmp_path, few):
    for k, example in enumerate(few):
        example.structure.to(filename=str(tmp_path / f'{k:02d}_{example.label.split()[0]}.cif'))
    (tmp_path / 'notes.txt').write_text('ignored')
    loaded = load_structure_set(tmp_path)
    same_structures(loaded, [e.structure for e in few])
    assert loaded.labels['name'].tolist() == ['00_NaCl', '01_Si', '02_ZnS', '03_ZnS', '04_CaTiO3']
    assert loaded.labels['prototype'][0] == 'AB_cF8_225_a_b' and set(loaded.labels['source']) == {'user'}
    assert loaded.metadata['format'] == 'cif'


def test_extxyz_info_and_results_become_columns(tmp_path, few):
    frames = []
    for k, example in enumerate(few):
        atoms = AseAtomsAdaptor.get_atoms(example.structure)
        atoms.info = {'tag': example.label, 'index': k, 'space_group': 999}
        atoms.calc = SinglePointCalculator(atoms, energy=-1.5 * k)
        frames.append(atoms)
    path = tmp_path / 'set.extxyz'
    ase.io.write(path, frames, format='extxyz')
    loaded = load_structure_set(path)
    same_structures(loaded, [e.structure for e in few])
    assert loaded.labels['tag'].tolist() == [e.label for e in few]
    assert loaded.labels['index'].tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(loaded.labels['energy'], [0.0, -1.5, -3.0, -4.5, -6.0])
    assert loaded.labels['user_space_group'].tolist() == [999] * 5  # the computed column is kept
    assert loaded.labels['space_group'][0] == 225
    only = load_structure_set(path, label_keys=['energy'])
    assert 'tag' not in only.labels and 'energy' in only.labels


def test_pymatgen_json_layouts(tmp_path, few):
    structures = [e.structure for e in few]
    as_list = tmp_path / 'list.json'
    as_list.write_text(json.dumps([s.as_dict() for s in structures]))
    same_structures(load_structure_set(as_list), structures)
    as_dict = tmp_path / 'dict.json'
    as_dict.write_text(json.dumps({e.label: e.structure.as_dict() for e in few}))
    loaded = load_structure_set(as_dict)
    assert loaded.labels['name'].tolist() == [e.label for e in few]
    records = tmp_path / 'records.json'
    entries = [{'structure': s.as_dict(), 'band_gap': float(k), 'note': 'x' if k else None}
               for k, s in enumerate(structures)]  # fmt: skip
    records.write_text(json.dumps(entries))
    loaded = load_structure_set(records)
    assert loaded.labels['band_gap'].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert loaded.labels['note'].tolist() == ['', 'x', 'x', 'x', 'x']


def test_ase_database(tmp_path, few):
    path = tmp_path / 'set.db'
    with ase.db.connect(str(path)) as database:
        for k, example in enumerate(few):
            database.write(AseAtomsAdaptor.get_atoms(example.structure), formation_energy=-0.1 * k, family=f'f{k % 2}')
    loaded = load_structure_set(path)
    same_structures(loaded, [e.structure for e in few])
    assert loaded.labels['db_id'].tolist() == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(loaded.labels['formation_energy'], [-0.0, -0.1, -0.2, -0.3, -0.4])
    assert loaded.labels['family'].tolist() == ['f0', 'f1', 'f0', 'f1', 'f0']


def test_errors_name_the_file_and_item(tmp_path, examples, few):
    with pytest.raises(FileNotFoundError, match='no such file'):
        load_structure_set(tmp_path / 'missing.json')
    (tmp_path / 'data.csv').write_text('a,b')
    with pytest.raises(ValueError, match='unknown format'):
        load_structure_set(tmp_path / 'data.csv')
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ValueError, match='no .cif files'):
        load_structure_set(empty)
    bad_cif = tmp_path / 'cifs'
    bad_cif.mkdir()
    few[0].structure.to(filename=str(bad_cif / 'a.cif'))
    (bad_cif / 'b.cif').write_text('data_broken\n_cell_length_a 3\n')
    with pytest.raises(ValueError, match=r'b\.cif'):
        load_structure_set(bad_cif)
    disordered = next(e.structure for e in examples if not e.structure.is_ordered)
    mixed = tmp_path / 'mixed.json'
    mixed.write_text(json.dumps([few[0].structure.as_dict(), disordered.as_dict()]))
    with pytest.raises(PartiallyOccupiedError, match=r'mixed\.json item 1: site 0 is partially occupied'):
        load_structure_set(mixed)
    broken = tmp_path / 'broken.json'
    broken.write_text(json.dumps([few[0].structure.as_dict(), {'lattice': 'nope'}]))
    with pytest.raises(ValueError, match=r'broken\.json item 1: not a valid pymatgen Structure'):
        load_structure_set(broken)
    labels = tmp_path / 'labels.json'
    records = [{'structure': few[0].structure.as_dict(), 'y': 1}, {'structure': few[1].structure.as_dict(), 'y': 'a'}]
    labels.write_text(json.dumps(records))
    with pytest.raises(ValueError, match=r"labels\.json item 1: label 'y' mixes strings and numbers"):
        load_structure_set(labels)
    with pytest.raises(ValueError, match=r"label key\(s\) 'missing' not found"):
        load_structure_set(labels, label_keys=['missing'])
    not_json = tmp_path / 'text.json'
    not_json.write_text('{')
    with pytest.raises(ValueError, match='cannot read as JSON'):
        load_structure_set(not_json)
