"""Refinement of one candidate: reciprocal metric, lattice symmetry, March-Dollase texture, scale.

References: pymatgen's reciprocal lattice and point-group operations (spglib), Dollase's normalisation of the
March function, and pymatgen ``XRDCalculator`` patterns of strained and textured structures.
"""

import math

import numpy as np
import pytest
from pymatgen.analysis.diffraction.xrd import XRDCalculator
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from scipy.integrate import quad

from aiida_matembed.core.search.refinement import (
    CandidateGeometry,
    ProfileBasis,
    family_table,
    fit_texture,
    lattice_operations,
    lattice_parameters,
    march_dollase,
    reciprocal_metric,
)
from aiida_matembed.core.xrd import XrdSimulator

CU_KA1 = 1.540598


def rutile(a=4.594, c=2.959):
    lattice = Lattice.tetragonal(a, c)
    return Structure.from_spacegroup('P4_2/mnm', lattice, ['Ti', 'O'], [[0, 0, 0], [0.3053, 0.3053, 0]])


def wurtzite():
    return Structure.from_spacegroup(
        'P6_3mc', Lattice.hexagonal(3.25, 5.207), ['Zn', 'O'], [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]]
    )


def monoclinic():
    return Structure.from_spacegroup(
        'P2_1/c', Lattice.monoclinic(5.15, 5.21, 5.31, 99.2), ['Zr', 'O', 'O'],
        [[0.2758, 0.0411, 0.2082], [0.069, 0.342, 0.345], [0.451, 0.758, 0.479]],
    )  # fmt: skip


def rock_salt(a=5.64, anion='Cl'):
    return Structure.from_spacegroup('Fm-3m', Lattice.cubic(a), ['Na', anion], [[0, 0, 0], [0.5, 0.5, 0.5]])


def peaks_of(structure):
    return XrdSimulator('CuKa1', (5, 120)).peaks_many([structure])[0]


@pytest.mark.parametrize('make', [rutile, wurtzite, monoclinic, rock_salt])
def test_metric_from_indexed_peaks_is_pymatgens_reciprocal_metric(make):
    structure = make()
    peaks = peaks_of(structure)
    rep, _, ptr = family_table(peaks.hkls)
    metric = reciprocal_metric(rep[ptr[:-1]], peaks.d_spacing)
    # the hkls are in the conventional standard cell: compare with that cell's reciprocal metric
    conventional = SpacegroupAnalyzer(structure).get_conventional_standard_structure()
    reciprocal = conventional.lattice.reciprocal_lattice_crystallographic.matrix
    np.testing.assert_allclose(metric, reciprocal @ reciprocal.T, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(lattice_parameters(metric), conventional.lattice.parameters, rtol=1e-6)


def test_metric_of_inconsistent_indices_is_refused():
    peaks = peaks_of(rutile())
    rep, _, ptr = family_table(peaks.hkls)
    assert reciprocal_metric(rep[ptr[:-1]][::-1], peaks.d_spacing) is None  # indices of other peaks
    assert reciprocal_metric(rep[ptr[:-1]][:1], peaks.d_spacing[:1]) is None  # too few
    # four peaks over-determine the tetragonal form (a, c): the most symmetric form that fits is taken
    reciprocal = rutile().lattice.reciprocal_lattice_crystallographic.matrix
    np.testing.assert_allclose(reciprocal_metric(rep[ptr[:-1]][:4], peaks.d_spacing[:4]), reciprocal @ reciprocal.T,
                               rtol=1e-6, atol=1e-9)  # fmt: skip


def test_hexagonal_metric_from_h0l_and_hhl_families_alone():
    # these indices leave a general metric undetermined (k^2 = hk on every row); the hexagonal form fits exactly
    peaks = peaks_of(wurtzite())
    rep, _, ptr = family_table(peaks.hkls)
    first = rep[ptr[:-1]]
    subset = (first[:, 1] == 0) | (first[:, 0] == first[:, 1])
    reciprocal = wurtzite().lattice.reciprocal_lattice_crystallographic.matrix
    np.testing.assert_allclose(reciprocal_metric(first[subset], peaks.d_spacing[subset]), reciprocal @ reciprocal.T,
                               rtol=1e-6, atol=1e-9)  # fmt: skip


@pytest.mark.parametrize(
    ('make', 'order'), [(rock_salt, 48), (rutile, 16), (wurtzite, 24), (monoclinic, 4)]
)  # fmt: skip
def test_lattice_symmetry_is_the_holohedry_spglib_finds(make, order):
    # one atom per cell: the point group of the structure is the holohedry of its lattice
    conventional = SpacegroupAnalyzer(make()).get_conventional_standard_structure()
    bare = Structure(conventional.lattice, ['Cu'], [[0, 0, 0]])
    expected = len(SpacegroupAnalyzer(bare).get_point_group_operations())
    reciprocal = conventional.lattice.reciprocal_lattice_crystallographic.matrix
    ops = lattice_operations(reciprocal @ reciprocal.T)
    assert len(ops) == expected == order


@pytest.mark.parametrize('r', [0.5, 0.8, 1.0, 1.3, 2.0])
def test_march_dollase_is_normalised_over_the_sphere(r):
    # Dollase (1986): the integral over the half sphere, ∫_0^1 P(cos alpha) d cos alpha, is 1 for every r
    value, _ = quad(lambda c: float(march_dollase(np.array(c**2), r)), 0, 1)
    assert value == pytest.approx(1.0, rel=1e-8)


def test_texture_factors_average_the_planes_of_each_peak_like_spglib_symmetry():
    structure = rutile()
    peaks = peaks_of(structure)
    geometry = CandidateGeometry.from_peaks(peaks.d_spacing, peaks.hkls)
    assert geometry is not None
    direction = [tuple(v) for v in geometry.directions].index((0, 0, 1))
    factors = geometry.texture_factors(direction, 0.7)
    # reference: every reflection of each family from spglib's point-group operations, averaged by multiplicity
    ops = [op.rotation_matrix for op in SpacegroupAnalyzer(structure).get_symmetry_operations()]
    reciprocal = structure.lattice.reciprocal_lattice_crystallographic.matrix
    axis = np.array([0.0, 0.0, 1.0]) @ reciprocal
    axis /= np.linalg.norm(axis)
    for k, families in enumerate(peaks.hkls):
        total, weight = 0.0, 0
        for hkl, multiplicity in families.items():
            planes = np.unique(np.rint([np.asarray(hkl) @ r for r in ops]).astype(int), axis=0) @ reciprocal
            cos = np.abs(planes @ axis) / np.linalg.norm(planes, axis=1)
            total += multiplicity * np.mean((0.49 * cos**2 + (1 - cos**2) / 0.7) ** -1.5)
            weight += multiplicity
        assert factors[k] == pytest.approx(total / weight, rel=1e-9)


def render(two_theta, intensity, grid, fwhm=0.1):
    x = (grid[None, :] - np.asarray(two_theta)[:, None]) / fwhm
    shape = 0.5 * math.sqrt(4 * math.log(2) / math.pi) * np.exp(-4 * math.log(2) * x**2) + 0.5 * (2 / math.pi) / (
        1 + 4 * x**2
    )
    return np.asarray(intensity) @ shape / fwhm


def test_lattice_of_an_anisotropically_strained_cell_is_refined():
    stored, strained = rutile(), rutile(a=4.594 * 1.021, c=2.959 * 0.988)
    measured = XRDCalculator('CuKa1').get_pattern(strained, two_theta_range=(10, 110))
    zero = 0.05
    peaks = peaks_of(stored)
    geometry = CandidateGeometry.from_peaks(peaks.d_spacing, peaks.hkls)
    assert geometry is not None and len(geometry.basis) == 2  # a and c
    # pair each stored peak with the measured peak of the same indices (what the search-match does by position)
    start = geometry.metric / 1.01**2
    calc = geometry.two_theta(start, CU_KA1, 0.0)
    observed_all = np.asarray(measured.x) + zero
    keep = np.flatnonzero(np.isfinite(calc) & (calc < 110) & (peaks.intensity > 1))
    hkl_measured = [tuple(next(iter(f['hkl'] for f in families))) for families in measured.hkls]
    observed, matched = np.full(len(keep), np.nan), np.zeros(len(keep), dtype=bool)
    for i, k in enumerate(keep):
        target = tuple(int(v) for v in geometry.hkl[k])
        for j, hkl in enumerate(hkl_measured):
            if sorted(np.abs(hkl[:2])) == sorted(np.abs(target[:2])) and abs(hkl[2]) == abs(target[2]):
                observed[i], matched[i] = observed_all[j], True
    metric, z = geometry.refine_metric(keep, observed, matched, peaks.intensity[keep], CU_KA1, 1.01, 0.0, 0.15, 0.04)
    a, b, c, alpha, beta, gamma = lattice_parameters(metric)
    assert a == pytest.approx(4.594 * 1.021, abs=2e-4) and b == pytest.approx(a)
    assert c == pytest.approx(2.959 * 0.988, abs=2e-4)
    assert (alpha, beta, gamma) == pytest.approx((90, 90, 90))
    assert z == pytest.approx(zero, abs=2e-3)


@pytest.mark.parametrize(('axis', 'r'), [((0, 0, 1), 0.7), ((1, 1, 0), 1.4)])
def test_march_dollase_texture_and_scale_are_recovered_from_a_textured_profile(axis, r):
    structure = rutile()
    grid = np.arange(10, 110, 0.02)
    measured = XRDCalculator('CuKa1').get_pattern(structure, two_theta_range=(10, 110))
    # the measured intensities: pymatgen's, times the March-Dollase factor of each reflection (spglib planes)
    ops = [op.rotation_matrix for op in SpacegroupAnalyzer(structure).get_symmetry_operations()]
    reciprocal = structure.lattice.reciprocal_lattice_crystallographic.matrix
    g = np.asarray(axis, dtype=float) @ reciprocal
    g /= np.linalg.norm(g)
    textured = []
    for y, families in zip(measured.y, measured.hkls, strict=True):
        factor = []
        for family in families:
            planes = np.unique(np.rint([np.asarray(family['hkl']) @ op for op in ops]).astype(int), axis=0)
            planes = planes @ reciprocal
            cos = np.abs(planes @ g) / np.linalg.norm(planes, axis=1)
            factor.append(np.mean((r**2 * cos**2 + (1 - cos**2) / r) ** -1.5) * family['multiplicity'])
        textured.append(y * sum(factor) / sum(f['multiplicity'] for f in families))
    target = 3.0 * render(measured.x, textured, grid)
    peaks = peaks_of(structure)
    geometry = CandidateGeometry.from_peaks(peaks.d_spacing, peaks.hkls)
    assert geometry is not None
    two_theta = geometry.two_theta(geometry.metric, CU_KA1, 0.0)
    keep = np.flatnonzero(np.isfinite(two_theta) & (two_theta > 10) & (two_theta < 110))
    weight = np.ones(len(grid))
    basis = ProfileBasis.render(grid, two_theta[keep], np.full(len(keep), 0.1), weight, keep)
    fit = fit_texture(basis, peaks.intensity[keep], basis.projection(target * weight), geometry)
    assert fit.direction == axis
    assert fit.ratio == pytest.approx(r, rel=0.02)
    untextured = fit_texture(basis, peaks.intensity[keep], basis.projection(target * weight), geometry, texture=False)
    assert untextured.direction is None and fit.reduction > untextured.reduction
    # the scale of the 0-100 intensities: pymatgen's and this simulator's scaled intensities agree
    profile = basis.profile(fit.scale * peaks.intensity[keep] * geometry.texture_factors(
        [tuple(v) for v in geometry.directions].index(axis), fit.ratio)[keep])  # fmt: skip
    assert np.abs(profile - target).max() < 0.03 * target.max()


def test_every_example_structure_gets_its_lattice_symmetry_and_texture_directions(examples):
    for example in examples:
        if not example.structure.is_ordered:
            continue
        peaks = peaks_of(example.structure)
        geometry = CandidateGeometry.from_peaks(peaks.d_spacing, peaks.hkls)
        assert geometry is not None, example.label
        conventional = SpacegroupAnalyzer(example.structure).get_conventional_standard_structure()
        bare = Structure(conventional.lattice, ['Cu'], [[0, 0, 0]])
        assert len(geometry.operations) == len(SpacegroupAnalyzer(bare).get_point_group_operations()), example.label
        # one direction per set of low-index directions equivalent under the holohedry: 3 cubic, 5 hexagonal
        assert len(geometry.directions) == {48: 3, 24: 5, 16: 5, 8: 7, 4: 9, 2: 13}[len(geometry.operations)]
