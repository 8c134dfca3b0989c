"""Reading structure files one item at a time: the bad-input corpus, real CIFs, files / folders / patterns."""

import time
from pathlib import Path

import numpy as np
import pytest

from aiida_matembed.core.datasets.importing import (
    ImportFailure,
    ImportItem,
    check_structure,
    collect_files,
    describe_structure,
    detect_format,
    read_file,
)
from tests.fixtures.bad_inputs import FILES, expected_items, manifest
from tests.fixtures.bad_inputs.make_corpus import write_large_files

REAL_CIFS = Path(__file__).resolve().parents[2] / 'fixtures' / 'real_cifs'


def _read_all(paths):
    files, missing = collect_files(paths)
    return files, missing, {path: list(read_file(path)) for path in files}


def test_every_corpus_file_gives_its_outcome_and_reason(tmp_path):
    """Each of the 36 files: imported, or refused with a one-line reason naming it; nothing raises."""
    entries = manifest()
    entries.update(write_large_files(tmp_path))
    assert len({e['kind'] for e in entries.values()}) >= 30
    start = time.perf_counter()
    _, missing, results = _read_all([FILES, tmp_path])
    elapsed = time.perf_counter() - start
    assert not missing
    by_item = {}
    for path, items in results.items():
        relative = str(path.relative_to(FILES)) if FILES in path.parents else path.name
        assert items, f'{relative}: nothing reported'
        for entry in items:
            assert isinstance(entry, ImportItem | ImportFailure)
            item = entry.item if 'items' in entries[relative] else ''
            by_item.setdefault((relative, item), []).append(entry)
            assert entry.file == str(path)
            if isinstance(entry, ImportFailure):
                assert entry.reason and '\n' not in entry.reason
    for relative, item, outcome, reason in expected_items(entries):
        got = by_item[(relative, item)]
        for entry in got:
            kind = 'imported' if isinstance(entry, ImportItem) else 'failed'
            assert kind == outcome, f'{relative} [{item}]: {kind}, expected {outcome} ({getattr(entry, "reason", "")})'
            if outcome == 'failed':
                assert reason.lower() in entry.reason.lower(), f'{relative}: {entry.reason!r}'
    assert elapsed < 20  # the 10,000-atom and 1 km cells are refused by counting, not computed


def test_large_inputs_are_refused_before_any_computation(tmp_path):
    write_large_files(tmp_path)
    start = time.perf_counter()
    [failure] = list(read_file(tmp_path / 'ten_thousand_atoms.extxyz'))
    assert time.perf_counter() - start < 2
    assert isinstance(failure, ImportFailure) and failure.reason == '10000 sites: more than 5000'
    start = time.perf_counter()
    [failure] = list(read_file(FILES / 'one_km_cell.vasp'))
    assert time.perf_counter() - start < 1 and 'longer than 1000 Å' in failure.reason


def test_real_cifs_are_all_read_with_their_formula_and_space_group():
    """The 8 COD mineral CIFs: formula and space group equal to what each file itself states."""
    import re

    from pymatgen.core import Composition

    _, _, results = _read_all([REAL_CIFS])
    assert len(results) == 8
    for path, items in results.items():
        [item] = items
        assert isinstance(item, ImportItem), item
        assert item.item == path.stem.removeprefix('cod_')  # the CIF data block
        text = path.read_text()
        number = int(re.search(r'_space_group_IT_number\s+(\d+)', text).group(1))
        formula = re.search(r"_chemical_formula_sum\s+'([^']+)'", text).group(1)
        described = describe_structure(item.structure)
        assert described['space_group_number'] == number, path.name
        assert described['formula'] == Composition(formula.replace(' ', '')).reduced_formula, path.name
        assert described['partial_occupancy'] is False


def test_oxidation_states_partial_occupancy_slabs_and_magnetic_moments_are_kept():
    [zno] = list(read_file(FILES / 'ZnO_oxidation_states.cif'))
    assert isinstance(zno, ImportItem) and {str(s) for s in zno.structure.species} == {'Zn2+', 'O2-'}
    [alloy] = list(read_file(FILES / 'partial_occupancy.cif'))
    assert isinstance(alloy, ImportItem) and not alloy.structure.is_ordered
    assert describe_structure(alloy.structure)['partial_occupancy'] is True
    [slab] = list(read_file(FILES / 'slab_with_vacuum.extxyz'))
    assert isinstance(slab, ImportItem) and slab.pbc == (True, True, False)
    [iron] = list(read_file(FILES / 'magnetic_moments.extxyz'))
    assert isinstance(iron, ImportItem) and iron.structure.site_properties['magmom'] == [2.2]


def test_files_folders_and_patterns_are_collected_once_each(tmp_path):
    files, missing = collect_files([FILES / 'a', str(FILES / '*.vasp'), FILES / 'a' / 'NaCl.cif', tmp_path / 'nope'])
    names = [str(f.relative_to(FILES)) for f in files]
    assert names[0] == 'a/NaCl.cif' and names.count('a/NaCl.cif') == 1
    assert {'zero_volume.vasp', 'one_km_cell.vasp', 'tiny_cell_below_cutoff.vasp'} <= set(names)
    assert [(m.file, m.reason) for m in missing] == [(str(tmp_path / 'nope'), 'no such file or folder')]
    (tmp_path / 'empty_folder').mkdir()
    _, missing = collect_files([tmp_path / 'empty_folder', str(tmp_path / '*.cif')])
    assert [m.reason for m in missing] == ['folder has no files', 'pattern matches no file']


@pytest.mark.parametrize(
    ('name', 'fmt'),
    [('x.cif', 'cif'), ('POSCAR', 'poscar'), ('CONTCAR_relaxed', 'poscar'), ('x.vasp', 'poscar'), ('x.xyz', 'extxyz'),
     ('x.extxyz', 'extxyz'), ('x.db', 'ase-db'), ('x.json', 'json'), ('x.json.gz', 'json')],
)  # fmt: skip
def test_format_from_the_file_name(tmp_path, name, fmt):
    assert detect_format(tmp_path / name) == fmt


def test_a_forced_format_and_an_ase_database(tmp_path):
    import ase.db
    from ase.build import bulk

    assert isinstance(next(read_file(FILES / 'cif_with_txt_extension.txt', 'cif')), ImportItem)
    [failure] = list(read_file(FILES / 'a' / 'NaCl.cif', 'poscar'))
    assert isinstance(failure, ImportFailure) and failure.reason.startswith('cannot read as poscar')
    database = ase.db.connect(tmp_path / 'set.db')
    database.write(bulk('Cu'), energy_per_atom=-3.5)
    database.write(bulk('Si', cubic=True) * (2, 2, 2), label='too big')
    database.write(bulk('Na'), label='good')
    results = list(read_file(tmp_path / 'set.db', max_sites=32))
    assert [type(r).__name__ for r in results] == ['ImportItem', 'ImportFailure', 'ImportItem']
    assert results[0].labels == {'energy_per_atom': -3.5} and results[1].reason == '64 sites: more than 32'
    assert results[1].item == 'row 2'


def test_check_structure_refuses_what_the_core_refuses_and_allows_split_sites():
    from pymatgen.core import Lattice, Structure

    split = Structure(Lattice.cubic(5.0), [{'O': 0.5}, {'O': 0.5}, 'Ti'], [[0, 0, 0], [0.04, 0, 0], [0.5, 0.5, 0.5]])
    assert check_structure(split) is None  # half-occupied positions 0.2 Å apart: one disordered site
    ordered = Structure(Lattice.cubic(5.0), ['O', 'O'], [[0, 0, 0], [0.04, 0, 0]])
    assert check_structure(ordered) == 'overlapping atoms: sites 0 and 1 are 0.200 Å apart (< 0.5 Å)'
    nan = Structure(Lattice.cubic(5.0), ['O'], [[0, 0, 0]])
    nan.lattice = Lattice(np.full((3, 3), np.nan))
    assert check_structure(nan) == 'lattice contains NaN or infinite values'
