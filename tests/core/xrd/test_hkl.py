"""Peak labels in the conventional standard setting, pinned against pymatgen on the standard conventional cells.

The reference is pymatgen's ``XRDCalculator`` on ``SpacegroupAnalyzer(...).get_refined_structure()`` (spglib's
standard conventional cell, symprec 0.01 Å, angle tolerance 5°). Our peaks are computed on the cell as given:
the conventional cell itself, or the primitive standard cell (``get_primitive_standard_structure``), whose own
Miller indices pymatgen would print instead.
"""

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from aiida_matembed.core.xrd import XrdSimulator


def _families(pattern, k):
    return {tuple(entry['hkl']): entry['multiplicity'] for entry in pattern.hkls[k]}


def _centred(prototypes):
    """Every third prototype with a centred lattice (where the labels of the two cells differ), every 16th other."""
    centred = [e for e in prototypes if e.aflow.split('_')[1][1:2] in ('F', 'I', 'C', 'A', 'B', 'R')]
    others = [e for e in prototypes if e not in centred]
    return [e.structure for e in centred[::3] + others[::16]]


@pytest.fixture(scope='module')
def cells(prototypes):
    """(conventional, primitive, pymatgen pattern of the conventional cell) of the chosen AFLOW prototypes."""
    from pymatgen.analysis.diffraction.xrd import XRDCalculator
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    calculator = XRDCalculator('CuKa')
    out = []
    for structure in _centred(prototypes):
        analyzer = SpacegroupAnalyzer(structure, symprec=0.01, angle_tolerance=5)
        conventional = analyzer.get_refined_structure()
        primitive = analyzer.get_primitive_standard_structure()
        out.append((conventional, primitive, calculator.get_pattern(conventional, two_theta_range=(10, 110))))
    return out


@pytest.mark.parametrize('given', ['conventional', 'primitive'])
@pytest.mark.parametrize('path', ['batched', 'numpy'])
def test_labels_equal_pymatgen_on_the_conventional_cell(cells, given, path):
    """Every pymatgen peak above 0.5: the same hkl families with the same multiplicities, from either cell."""
    simulator = XrdSimulator('CuKa')
    structures = [c[0] if given == 'conventional' else c[1] for c in cells]
    if path == 'numpy':  # the one-by-one path on a third of them
        cells, structures = cells[::3], structures[::3]
    results = simulator.peaks_many(structures) if path == 'batched' else [simulator.peaks(s) for s in structures]
    assert len(cells) > 10
    n_relabelled = 0
    for (conventional, primitive, expected), ours in zip(cells, results, strict=True):
        assert ours.hkl_setting == 'conventional'
        for k in np.flatnonzero(expected.y > 0.5):
            nearest = int(np.argmin(np.abs(ours.two_theta - expected.x[k])))
            assert abs(ours.two_theta[nearest] - expected.x[k]) < 1e-6
            assert ours.hkls[nearest] == _families(expected, k), (conventional.composition, expected.x[k])
        n_relabelled += len(primitive) < len(conventional)
    assert n_relabelled > len(cells) / 2  # most chosen prototypes are centred: their primitive cells are smaller


def test_rock_salt_lines_are_labelled_as_on_the_powder_cards():
    """NaCl given as its 2-atom primitive cell: (111), (200), (220), (311), (222), not (110), (211), (222), ..."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    rocksalt = Structure.from_spacegroup('Fm-3m', Lattice.cubic(5.6402), ['Na', 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]])
    primitive = SpacegroupAnalyzer(rocksalt).get_primitive_standard_structure()
    assert len(primitive) == 2
    for simulator in (XrdSimulator('CuKa'),):
        for peaks in (simulator.peaks_many([primitive])[0], simulator.peaks(primitive)):
            assert [next(iter(f)) for f in peaks.hkls[:5]] == [(1, 1, 1), (2, 0, 0), (2, 2, 0), (3, 1, 1), (2, 2, 2)]
            assert peaks.hkls[:2] == [{(1, 1, 1): 8}, {(2, 0, 0): 6}]
    as_given = XrdSimulator('CuKa', hkl_setting='input').peaks_many([primitive])[0]
    assert as_given.hkl_setting == 'input' and (1, 1, 0) in as_given.hkls[1]  # the primitive cell's own indices


def test_positions_and_intensities_do_not_depend_on_the_labels(prototypes):
    structures = [p.structure for p in prototypes][::9]
    for path in ('batched', 'numpy'):
        runs = []
        for setting in ('conventional', 'input'):
            simulator = XrdSimulator('CuKa', hkl_setting=setting)
            runs.append(
                simulator.peaks_many(structures) if path == 'batched' else [simulator.peaks(s) for s in structures]
            )
        for a, b in zip(*runs, strict=True):
            np.testing.assert_array_equal(a.two_theta, b.two_theta)
            np.testing.assert_array_equal(a.intensity, b.intensity)
            np.testing.assert_array_equal(a.d_spacing, b.d_spacing)
            np.testing.assert_array_equal(a.multiplicity, b.multiplicity)


def test_hexagonal_conventional_cell_of_a_rhombohedral_primitive_cell_gets_four_indices():
    """R-3m Bi given as its rhombohedral primitive cell: labels in hexagonal (h, k, i, l) axes, as pymatgen's."""
    from pymatgen.analysis.diffraction.xrd import XRDCalculator
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    hexagonal = Structure.from_spacegroup('R-3m', Lattice.hexagonal(4.546, 11.862), ['Bi'], [[0, 0, 0.2339]])
    primitive = SpacegroupAnalyzer(hexagonal).get_primitive_standard_structure()
    assert len(primitive) == 2 and not primitive.lattice.is_hexagonal()
    peaks = XrdSimulator('CuKa').peaks_many([primitive])[0]
    assert all(len(hkl) == 4 and hkl[0] + hkl[1] + hkl[2] == 0 for family in peaks.hkls for hkl in family)
    expected = XRDCalculator('CuKa').get_pattern(hexagonal, two_theta_range=(10, 110))
    strongest = int(np.argmax(expected.y))
    nearest = int(np.argmin(np.abs(peaks.two_theta - expected.x[strongest])))
    assert peaks.hkls[nearest] == _families(expected, strongest) == {(1, 0, -1, 2): 12}  # Bi (012), 27.2°


def test_a_supercell_is_labelled_in_the_cell_of_its_crystal():
    """An exact 2x1x1 NaCl supercell: fcc labels, the supercell's odd-h reflections (extinct) left out."""
    rocksalt = Structure.from_spacegroup('Fm-3m', Lattice.cubic(5.6402), ['Na', 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]])
    peaks = XrdSimulator('CuKa').peaks_many([rocksalt * (2, 1, 1)])[0]
    assert peaks.hkl_setting == 'conventional'
    assert peaks.hkls[:3] == [{(1, 1, 1): 8}, {(2, 0, 0): 6}, {(2, 2, 0): 12}]


def test_peaks_only_the_given_cell_explains_keep_its_indices():
    """A peak whose reflections all have non-integer standard indices: the labels stay those of the given cell."""
    from aiida_matembed.core.xrd.hkl import conventional_labels

    rocksalt = Structure.from_spacegroup('Fm-3m', Lattice.cubic(5.6402), ['Na', 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]])
    supercell = rocksalt * (2, 1, 1)
    types = np.array([site.specie.Z for site in supercell])
    hkl = np.array([[2, 1, 1], [1, 0, 0]])  # (211) of the supercell is (111) of fcc; (100) is (1/2 0 0)
    allowed = conventional_labels(hkl[:1], np.array([0]), supercell.lattice.matrix, supercell.frac_coords, types)
    assert allowed.setting == 'conventional' and allowed.representatives.tolist() == [[1, 1, 1]]
    both = conventional_labels(hkl, np.array([0, 1]), supercell.lattice.matrix, supercell.frac_coords, types)
    assert both.setting == 'input' and both.representatives.tolist() == [[2, 1, 1], [1, 0, 0]]


def test_partially_occupied_alloy_is_labelled_in_its_conventional_cell(examples):
    alloy = next(e.structure for e in examples if not e.structure.is_ordered)
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    primitive = SpacegroupAnalyzer(alloy).get_primitive_standard_structure()
    for structure in (alloy, primitive):
        peaks = XrdSimulator('CuKa').peaks_many([structure])[0]
        assert peaks.hkl_setting == 'conventional'
        assert [next(iter(f)) for f in peaks.hkls[:2]] == [(1, 1, 1), (2, 0, 0)]  # fcc CuAu solid solution
