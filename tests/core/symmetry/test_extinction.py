"""Systematic absences against pymatgen's calculated intensities, and extinction rankings of real structures."""

import numpy as np
import pytest
import spglib
from pymatgen.analysis.diffraction.xrd import XRDCalculator
from pymatgen.core import Lattice, Structure

from aiida_matembed.core.symmetry import index_peaks, rank_space_groups, space_group_prior, systematically_absent

from .test_indexing import nacl, pb3v2o8, si, simulated_lines


def tungsten():
    return Structure.from_spacegroup('Im-3m', Lattice.cubic(3.165), ['W'], [[0, 0, 0]])


@pytest.mark.parametrize('hall', [525, 523, 529, 81, 292])  # Fd-3m, Fm-3m, Im-3m, P2_1/c, Pnma
def test_absences_are_reflections_with_zero_structure_factor(hall):
    """A structure with atoms on general positions of the group: absent reflections have F = 0, others not."""
    ops = spglib.get_symmetry_from_database(hall)
    rotations, translations = ops['rotations'], ops['translations']
    rng = np.random.default_rng(hall)
    sites = np.array([r @ p + t for p in rng.random((2, 3)) for r, t in zip(rotations, translations, strict=True)])
    hkl = np.array(
        [(h, k, ll) for h in range(-4, 5) for k in range(-4, 5) for ll in range(-4, 5) if (h, k, ll) > (0, 0, 0)]
    )
    f = np.abs(np.exp(2j * np.pi * hkl @ sites.T).sum(axis=1))
    absent = systematically_absent(hkl, rotations, translations)
    assert absent.any() and not absent.all()
    np.testing.assert_array_less(f[absent], 1e-8)
    assert (f[~absent] > 1e-6).mean() > 0.95  # a few allowed ones vanish by accident


def _ranked(structure, wavelength='CuKa1'):
    x, y = simulated_lines(structure, zero=0.02, noise=0.005)
    if wavelength != 'CuKa1':
        pattern = XRDCalculator(wavelength).get_pattern(structure, two_theta_range=(10, 110))
        x, y = np.asarray(pattern.x), np.asarray(pattern.y)
    result = index_peaks(x, y, wavelength=wavelength)
    chosen = result.chosen()
    return rank_space_groups(chosen.lattice_system, chosen.g6, chosen.zero_shift, result.two_theta,
                             result.intensity, result.wavelength)  # fmt: skip


def test_fd3m_absences_beat_fm3m():
    """Si: the d-glide absences (200, 222, 420 missing) favour Fd-3m over Fm-3m; both have no violation."""
    groups = {g.number: g for g in _ranked(si())}
    assert groups[227].n_violations == 0 and groups[225].n_violations == 0
    assert groups[227].log_likelihood > groups[225].log_likelihood + 2
    assert [g.number for g in _ranked(si())][:2].count(227) == 1
    assert groups[229].n_violations > 0  # I-centred groups forbid 111


def test_fm3m():
    ranked = _ranked(nacl())
    assert ranked[0].number == 225
    assert all(g.symbol.startswith('F') for g in ranked[:3])
    assert all(g.n_violations > 0 for g in ranked if g.symbol.startswith('I'))  # NaCl's 111 and 311


def test_im3m_with_mo_radiation():
    """Tungsten has 5 lines with Cu; with Mo K-alpha1 it has enough to index, and the body centring shows."""
    ranked = _ranked(tungsten(), 'MoKa1')
    top = [g.number for g in ranked[:3]]
    assert 229 in top
    assert all(g.symbol.startswith('I') for g in ranked[:3])


def test_p21c_real_structure():
    """Pb3V2O8: h0l and 0k0 conditions of P2_1/c (in the setting of the indexed cell) rank it first."""
    x, y = simulated_lines(pb3v2o8(), zero=-0.03, noise=0.005, drop_weak=0.5)
    result = index_peaks(x, y, wavelength='CuKa1')
    chosen = result.chosen()
    ranked = rank_space_groups('monoclinic', chosen.g6, chosen.zero_shift, result.two_theta, result.intensity,
                               result.wavelength)  # fmt: skip
    assert ranked[0].number == 14
    assert ranked[0].setting.startswith('P 1 2_1/')
    by_number = {g.number: g for g in ranked}
    assert by_number[14].log_likelihood > by_number[11].log_likelihood + 5  # P2_1/m: no h0l glide condition
    assert by_number[14].log_likelihood > by_number[15].log_likelihood + 5  # C2/c: centred


def test_prior_is_the_materials_project_frequency():
    assert max(range(1, 231), key=space_group_prior) == 225  # rock salt and its derivatives
    assert space_group_prior(14) > space_group_prior(4) > space_group_prior(3)
    assert sum(space_group_prior(n) for n in range(1, 231)) == pytest.approx(1.0)


def test_unknown_lattice_system():
    with pytest.raises(ValueError, match='unknown lattice system'):
        rank_space_groups('rhombic', np.ones(6), 0.0, [20.0], [100.0], 1.54)
