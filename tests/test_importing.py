"""Importing structure files into a Group: every good item kept, every bad one explained, re-runs add nothing."""

from pathlib import Path

import numpy as np
import pytest
from aiida import orm

from aiida_matembed.importing import IMPORT_KEY_EXTRA, import_structures
from tests.fixtures.bad_inputs import FILES, expected_items, manifest
from tests.fixtures.bad_inputs.make_corpus import write_large_files

REAL_CIFS = Path(__file__).resolve().parent / 'fixtures' / 'real_cifs'


def _group_nodes(label):
    query = orm.QueryBuilder().append(orm.Group, filters={'label': label}, tag='g')
    query.append(orm.StructureData, with_group='g')
    return sorted(query.all(flat=True), key=lambda n: n.pk)


def test_the_corpus_imports_every_good_item_and_explains_every_other(aiida_profile_clean, tmp_path):
    entries = manifest()
    entries.update(write_large_files(tmp_path))
    report = import_structures([FILES, tmp_path], 'corpus')
    expected = expected_items(entries)
    n_good = sum(outcome == 'imported' for *_, outcome, _ in expected)
    assert len(report.imported) == n_good == len(_group_nodes('corpus'))
    assert report.n_files == len(entries)
    failed = {(Path(f['file']).name, f['item']) for f in report.failed}
    for path, item, outcome, reason in expected:
        name = Path(path).name
        if outcome == 'failed':
            matches = [f for f in report.failed if Path(f['file']).name == name and (not item or f['item'] == item)]
            assert matches, f'{path}: not reported'
            assert all(reason.lower() in f['reason'].lower() for f in matches), matches
        else:
            assert not any(n == name and (not item or i == item) for n, i in failed), f'{path} [{item}] failed'
    assert not report.duplicates


def test_extras_name_the_source_and_describe_the_structure(aiida_profile_clean):
    report = import_structures([REAL_CIFS, FILES / 'ZnO_oxidation_states.cif', FILES / 'partial_occupancy.cif'], 'x')
    assert not report.failed and len(report.imported) == 10
    nodes = {n.base.extras.get('source_file'): n for n in _group_nodes('x')}
    sic = nodes['cod_1010995.cif'].base.extras.all
    assert sic['cif_block'] == '1010995' and sic['formula'] == 'SiC'
    assert sic['space_group'] == 'F-43m' and sic['space_group_number'] == 216
    assert sic['partial_occupancy'] is False and len(sic['source_sha256']) == 64
    zno = nodes['ZnO_oxidation_states.cif']
    assert zno.get_formula() == 'O2Zn2' and zno.base.extras.get('space_group_number') == 186
    assert zno.base.extras.get('stripped_properties')['oxidation_states'] == [2, 2, -2, -2]
    alloy = nodes['partial_occupancy.cif']
    assert alloy.base.extras.get('partial_occupancy') is True
    assert [(k.symbols, k.weights) for k in alloy.kinds] == [(('Au', 'Cu'), (0.5, 0.5))]


def test_running_the_same_import_again_adds_nothing(aiida_profile_clean):
    first = import_structures([REAL_CIFS], 'again')
    second = import_structures([REAL_CIFS], 'again')
    assert len(first.imported) == 8 and not second.imported
    assert sorted(d['pk'] for d in second.duplicates) == sorted(i['pk'] for i in first.imported)
    assert len(_group_nodes('again')) == 8


def test_an_interrupted_import_completes_when_run_again(aiida_profile_clean):
    """Interrupted (Ctrl-C) after the third file: whole files are in the Group; the re-run adds the rest, once."""
    calls = []

    def stop_after_three(done):
        calls.append(done)
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_structures([REAL_CIFS], 'interrupted', progress=stop_after_three)
    assert len(_group_nodes('interrupted')) == 3
    report = import_structures([REAL_CIFS], 'interrupted')
    assert len(report.imported) == 5 and len(report.duplicates) == 3
    nodes = _group_nodes('interrupted')
    assert len(nodes) == 8 and len({n.base.extras.get(IMPORT_KEY_EXTRA) for n in nodes}) == 8


def test_dedupe_skips_structures_pymatgen_matches(aiida_profile_clean):
    """The three rock-salt files (one with a 0.2% larger cell, one under a unicode name) are one structure."""
    files = [
        FILES / 'a' / 'NaCl.cif',
        FILES / 'b' / 'NaCl.cif',
        FILES / 'Quarz_αβ_石英.cif',
        REAL_CIFS / 'cod_1010995.cif',
    ]
    report = import_structures(files, 'dedupe', dedupe=True)
    assert [Path(i['file']).name for i in report.imported] == ['NaCl.cif', 'cod_1010995.cif']
    assert len(report.duplicates) == 2 and {d['pk'] for d in report.duplicates} == {report.imported[0]['pk']}
    assert 'StructureMatcher' in report.duplicates[0]['reason']
    without = import_structures(files[1:3], 'no-dedupe')
    assert len(without.imported) == 2


def test_imported_partial_occupancy_is_used_by_compositional_and_refused_by_structural_representations(
    aiida_profile_clean,
):
    from aiida_matembed.calculations.featurize import featurize_structures

    import_structures([FILES / 'partial_occupancy.cif', FILES / 'a' / 'NaCl.cif'], 'mixed')
    nodes = _group_nodes('mixed')
    composition, _ = featurize_structures(nodes, 'matembed.element_fraction')
    assert composition.base.attributes.get('n_failed') == 0
    row = composition.features[0]
    labels = composition.labels
    assert row[labels.index('Cu')] == pytest.approx(0.5) and row[labels.index('Au')] == pytest.approx(0.5)
    structural, _ = featurize_structures(nodes, 'matembed.sine_matrix')
    assert [f['index'] for f in structural.failures] == [0]
    assert 'partially occupied' in structural.failures[0]['message']
    assert np.isfinite(structural.features[1]).all()
