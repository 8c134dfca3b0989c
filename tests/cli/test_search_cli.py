"""``verdi data matembed search | identify | map`` on a real profile, pinned against numpy, pymatgen and scipy."""

import json

import numpy as np
import pytest
from aiida import orm
from click.testing import CliRunner
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from aiida_matembed.cli import cmd_matembed
from aiida_matembed.core.search import IndexMismatchError, exact_search
from aiida_matembed.core.xrd import write_xy
from aiida_matembed.data.identification import PhaseIdentificationData
from aiida_matembed.identify import identifications_of
from aiida_matembed.query import get_features
from aiida_matembed.search import VectorSource, group_index, similar_structures

from ..core.search.measured import GRID, render
from ..core.search.test_patterns import XRDML


@pytest.fixture
def group(aiida_profile_clean, examples):
    group = orm.Group(label='search-cli').store()
    nodes = []
    for e in examples:
        node = orm.StructureData(pymatgen=e.structure)
        node.label = e.label
        nodes.append(node.store())
    group.add_nodes(nodes)
    return group, nodes


def invoke(args):
    return CliRunner().invoke(cmd_matembed, args, catch_exceptions=False)


def test_search_computes_missing_vectors_and_matches_exact_numpy(group):
    group, nodes = group
    query = next(n for n in nodes if n.label.startswith('LiCoO2'))
    result = invoke(['search', str(query.pk), '-G', group.label, '-r', 'matembed.magpie', '-k', '5', '--json'])
    assert result.exit_code == 0, result.output
    matches = json.loads(result.output)['matches']
    # reference: brute-force cosine over the stored (now computed) vectors of the other structures
    others = [n for n in nodes if n.pk != query.pk]
    matrix = np.stack([get_features(n, 'matembed.magpie') for n in others])
    distances, rows = exact_search(matrix, get_features(query, 'matembed.magpie'), 5, 'cosine')
    np.testing.assert_allclose([m['distance'] for m in matches], distances[0], atol=1e-5)
    assert {m['pk'] for m in matches} == {others[r].pk for r in rows[0]}  # ZnS polymorphs tie (same composition)
    assert set(matches[0]) == {'pk', 'uuid', 'formula', 'distance'}
    assert query.pk not in {m['pk'] for m in matches}


def test_index_is_reused_until_the_vectors_change(group, examples):
    group, nodes = group
    source = VectorSource(representation='matembed.magpie')
    _, _, reused = group_index(group, source)
    assert not reused
    _, _, reused = group_index(group, source)
    assert reused
    extra = orm.StructureData(pymatgen=examples[0].structure.copy().scale_lattice(50.0)).store()
    group.add_nodes([extra])
    index, vectors, reused = group_index(group, source)  # a new FeaturesData row: a new index
    assert not reused and extra.pk in vectors.pks and len(index) == len(nodes) + 1


def test_search_from_a_structure_file_and_a_model(group, tmp_path, examples):
    group, _ = group
    path = tmp_path / 'nacl.cif'
    next(e.structure for e in examples if e.label == 'NaCl').to(filename=str(path))
    result = invoke(['search', str(path), '-G', group.label, '-m', 'matembed.cmml', '-k', '3', '--json'])
    assert result.exit_code == 0, result.output
    matches = json.loads(result.output)['matches']
    assert matches[0]['formula'] == 'NaCl' and matches[0]['distance'] == pytest.approx(0, abs=1e-4)


def test_structure_matcher_mode_agrees_with_pymatgen(group, tmp_path, examples):
    group, nodes = group
    target = next(e.structure for e in examples if e.label.startswith('CaTiO3'))
    path = tmp_path / 'relaxed.cif'
    target.copy().scale_lattice(target.volume * 1.05).to(filename=str(path))
    result = invoke(['search', str(path), '-G', group.label, '--match', '--json'])
    assert result.exit_code == 0, result.output
    found = {m['pk'] for m in json.loads(result.output)['matches']}
    expected = {n.pk for n in nodes if StructureMatcher().fit(target, n.get_pymatgen())}
    assert found == expected and len(found) == 1


def test_search_errors(group, aiida_profile_clean):
    group, nodes = group
    orm.Group(label='empty').store()
    result = CliRunner().invoke(cmd_matembed, ['search', str(nodes[0].pk), '-G', 'empty', '-r', 'matembed.magpie'])
    assert result.exit_code != 0 and 'has no StructureData' in result.output
    result = CliRunner().invoke(
        cmd_matembed, ['search', str(nodes[0].pk), '-G', group.label, '-r', 'matembed.magpie', '--no-compute']
    )
    assert result.exit_code != 0 and 'verdi data matembed featurize -G search-cli -r matembed.magpie' in result.output
    with pytest.raises(
        IndexMismatchError, match='matembed.element_fraction vector but the index holds matembed.magpie'
    ):
        similar_structures(None, group, VectorSource(representation='matembed.magpie'),
                           query_vector=np.ones(132), query_representation='matembed.element_fraction')  # fmt: skip


def test_identify_stores_the_result_with_provenance(group, tmp_path, examples):
    group, nodes = group
    target = next(e.structure for e in examples if e.label.startswith('LiCoO2'))
    path = write_xy(tmp_path / 'measured.xy', GRID, render([target], strain=0.015, zero=0.05, noise_seed=7))
    plot = tmp_path / 'fit.png'
    result = invoke(['identify', str(path), '-G', group.label, '--store', '--plot', str(plot), '--json'])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    licoo2 = next(n for n in nodes if n.label.startswith('LiCoO2'))
    assert summary['matches'][0]['pk'] == licoo2.pk and summary['phases'][0]['uuid'] == licoo2.uuid
    assert summary['phases'][0]['weight_fraction'] == pytest.approx(1.0)
    # the stored peaks' hkl families reach the refinement: the lattice of the strained cell (conventional setting)
    strained = SpacegroupAnalyzer(target).get_conventional_standard_structure().lattice.parameters
    refined = summary['phases'][0]['lattice']
    assert refined[:3] == pytest.approx([1.015 * v for v in strained[:3]], rel=1e-3)
    assert refined[3:] == pytest.approx(strained[3:], abs=0.01)
    assert plot.read_bytes()[:4] == b'\x89PNG'
    stored = orm.load_node(summary['node']['pk'])
    assert isinstance(stored, PhaseIdentificationData)
    creator = stored.creator
    assert creator.inputs.pattern.label == str(path)
    assert {n.pk for n in creator.inputs.structures.values()} == {n.pk for n in nodes}
    assert [n.pk for n in identifications_of(formula='LiCoO2')] == [stored.pk]
    assert [n.pk for n in identifications_of(licoo2)] == [stored.pk]


def test_identify_errors(group, tmp_path):
    group, _ = group
    empty = tmp_path / 'empty.xy'
    empty.write_text('')
    result = CliRunner().invoke(cmd_matembed, ['identify', str(empty), '-G', group.label])
    assert result.exit_code != 0 and 'empty' in result.output
    raw = tmp_path / 'scan.raw'
    raw.write_bytes(b'RAW4.00')
    result = CliRunner().invoke(cmd_matembed, ['identify', str(raw), '-G', group.label])
    assert result.exit_code != 0 and 'export the pattern as .xy' in result.output
    mo = tmp_path / 'mo.xrdml'
    mo.write_text(XRDML.format(counts=' '.join(['5'] * 100)).replace('1.5405980', '0.7093000'))
    result = CliRunner().invoke(cmd_matembed, ['identify', str(mo), '-G', group.label, '--wavelength', 'CuKa'])
    assert result.exit_code != 0 and 'measured at K-alpha1 = 0.7093 Å' in result.output
    text = tmp_path / 'text.xy'
    text.write_text('10 a\n')
    result = CliRunner().invoke(cmd_matembed, ['identify', str(text), '-G', group.label])
    assert result.exit_code != 0 and 'not a number' in result.output


def test_map_writes_png_and_html(group, tmp_path):
    group, nodes = group
    png, html = tmp_path / 'map.png', tmp_path / 'map.html'
    args = ['map', '-G', group.label, '-r', 'matembed.magpie', '-o', str(png), '--html', str(html), '--method', 'pca']
    result = invoke([*args, '--color-by', 'crystal_system', '--json'])
    assert result.exit_code == 0, result.output
    points = json.loads(result.output)['points']
    assert len(points) == len(nodes) and png.read_bytes()[:4] == b'\x89PNG'
    text = html.read_text()
    assert 'plotly' in text and 'LiCoO2' in text and 'space group 166' in text
    systems = {p['formula']: p['color'] for p in points}
    assert systems['NaCl'] == 'cubic' and systems['Mg'] == 'hexagonal'
