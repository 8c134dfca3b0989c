"""Phase identification: background, K-alpha2 stripping, peak search and search-match on rendered patterns."""

import numpy as np
import pytest
from pymatgen.analysis.diffraction.xrd import XRDCalculator
from pymatgen.analysis.structure_matcher import StructureMatcher

from aiida_matembed.core.search.identify import (
    ReferencePeaks,
    find_peaks,
    identify_phases,
    snip_background,
    strip_kalpha2,
)

from .measured import CU_KA1, CU_KA2, GRID, render


@pytest.fixture(scope='module')
def references(examples, prototypes):
    structures = [e.structure for e in examples if e.structure.is_ordered] + [p.structure for p in prototypes]
    return ReferencePeaks.from_structures(structures, wavelength='CuKa', two_theta_range=(5.0, 120.0)), structures


def example(examples, label):
    return next(e.structure for e in examples if e.label.startswith(label))


def same(structure, candidate):
    return StructureMatcher().fit(structure, candidate)


def test_snip_background_recovers_a_smooth_background():
    x = GRID
    background = 200 + 100 * np.exp(-(x - 10) / 30)
    peaks = sum(1000 * np.exp(-0.5 * ((x - c) / 0.05) ** 2) for c in (25, 40, 41, 70))
    estimate = snip_background(background + peaks, 75)
    away = np.all([np.abs(x - c) > 1 for c in (25, 40, 41, 70)], axis=0)
    assert np.max(np.abs(estimate[away] - background[away]) / background[away]) < 0.03


def test_rachinger_stripping_removes_the_kalpha2_companion(examples):
    nacl = example(examples, 'NaCl')
    with_doublet = render([nacl], doublet=True, noise_seed=1, counts=1e7) - 0.05e7
    single = render([nacl], doublet=False, noise_seed=1, counts=1e7) - 0.05e7
    stripped = strip_kalpha2(GRID, with_doublet, CU_KA1, CU_KA2)
    # the stripped pattern has the shape of the pattern rendered without K-alpha2 (both scaled to their maximum)
    assert np.corrcoef(with_doublet, single)[0, 1] < 0.95
    assert np.corrcoef(stripped, single)[0, 1] > 0.999


def test_peak_positions_agree_with_pymatgen(examples):
    nacl = example(examples, 'NaCl')
    counts = render([nacl], doublet=False, noise_seed=2)
    net = counts - snip_background(counts, 75)
    found = find_peaks(GRID, net)
    reference = XRDCalculator('CuKa1').get_pattern(nacl, two_theta_range=(10, 110))
    strong = np.asarray(reference.x)[np.asarray(reference.y) > 5]
    nearest = np.abs(found.two_theta[:, None] - strong[None, :]).min(axis=0)
    assert np.all(nearest < 0.01)


@pytest.mark.parametrize(
    ('label', 'strain', 'zero'), [('LiCoO2', 0.02, 0.08), ('CaTiO3', -0.025, -0.1), ('TiO2 (anatase', 0.01, 0.0)]
)
def test_single_phase_is_found_first_despite_strain_and_zero_shift(references, examples, label, strain, zero):
    refs, structures = references
    target = example(examples, label)
    counts = render([target], strain=strain, zero=zero, noise_seed=3)
    result = identify_phases(GRID, counts, refs, wavelength='CuKa')
    best = result.matches[0]
    assert same(target, structures[best.index])
    assert best.d_scale == pytest.approx(1 + strain, abs=0.003)
    assert best.zero_shift == pytest.approx(zero, abs=0.03)
    assert same(target, structures[result.phases[0].match.index])


def test_two_phase_mixture_gives_both_phases_and_weight_fractions(references, examples):
    refs, structures = references
    a, b = example(examples, 'NaCl'), example(examples, 'TiO2 (rutile')
    counts = render([a, b], fractions=(0.3, 0.7), strain=0.01, noise_seed=4, counts=20000)
    result = identify_phases(GRID, counts, refs, wavelength='CuKa', max_phases=3)
    found = {i: p for p in result.phases for i in [p.match.index]}
    phase_a = next(p for i, p in found.items() if same(a, structures[i]))
    phase_b = next(p for i, p in found.items() if same(b, structures[i]))
    assert result.weight_basis == 'Hill-Howard'
    assert phase_a.weight_fraction == pytest.approx(0.3, abs=0.07)
    assert phase_b.weight_fraction == pytest.approx(0.7, abs=0.07)
    assert result.rwp < 0.3 and not (result.unexplained.intensity > 10).any()


def test_unexplained_peak_is_reported(references, examples):
    refs, _ = references
    counts = render([example(examples, 'NaCl')], noise_seed=5)
    counts += 3000 * np.exp(-0.5 * ((GRID - 21.3) / 0.04) ** 2)  # a line no candidate has
    result = identify_phases(GRID, counts, refs, wavelength='CuKa', max_phases=1)
    assert np.any(np.abs(result.unexplained.two_theta - 21.3) < 0.05)


def test_bad_patterns_are_refused(references):
    refs, _ = references
    with pytest.raises(ValueError, match='at least 50'):
        identify_phases(GRID[:10], np.ones(10), refs)
    with pytest.raises(ValueError, match='flat'):
        identify_phases(GRID, np.full(len(GRID), 7.0), refs)
    with pytest.raises(ValueError, match='cover d'):
        identify_phases(GRID + 60, np.random.default_rng(0).random(len(GRID)), refs, wavelength='MoKa')
    with pytest.raises(ValueError, match='increase'):
        identify_phases(GRID[::-1], np.ones(len(GRID)), refs)


def test_candidates_without_hkl_families_are_matched_by_their_d_scale(references, examples):
    refs, structures = references
    bare = ReferencePeaks(refs.d_spacing, refs.intensity, refs.ptr, refs.wavelength, refs.d_min, refs.d_max,
                          refs.keys, refs.formulas, refs.structures)  # fmt: skip
    target = example(examples, 'LiCoO2')
    counts = render([target], strain=0.02, zero=0.08, noise_seed=3)
    best = identify_phases(GRID, counts, bare, wavelength='CuKa').matches[0]
    assert same(target, structures[best.index])
    assert best.lattice is None and best.texture_direction is None  # no indices: no cell or texture refined
    refined = identify_phases(GRID, counts, refs, wavelength='CuKa').matches[0]
    assert refined.index == best.index and refined.profile_rwp < best.profile_rwp
