"""The batched torch XRD path: equal to the numpy path, chunking, devices, doublet and augmentations."""

import math

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from aiida_matembed.core.xrd import WAVELENGTHS, XrdAugmentation, XrdSimulator, batched
from aiida_matembed.core.xrd.peaks import _family_arrays_lexsort, family_arrays

ROCKSALT = Structure.from_spacegroup('Fm-3m', Lattice.cubic(5.6402), ['Na', 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]])
TETRAGONAL = Structure(Lattice.tetragonal(3.9, 5.1), ['Ti', 'O'], [[0, 0, 0], [0.5, 0.5, 0.3]])


def _assert_same_peaks(ours, expected, rtol=1e-9):
    assert len(ours) == len(expected)
    np.testing.assert_allclose(ours.two_theta, expected.two_theta, rtol=rtol)
    np.testing.assert_allclose(ours.intensity, expected.intensity, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.d_spacing, expected.d_spacing, rtol=rtol)
    np.testing.assert_array_equal(ours.multiplicity, expected.multiplicity)
    assert ours.hkls == expected.hkls


@pytest.mark.parametrize('anode', ['CuKa', 'MoKa'])
def test_batched_peaks_equal_the_numpy_path(prototypes, examples, anode):
    """Same peaks within 1e-6 relative (the issue's bound; observed ~1e-13), partial occupancy included."""
    structures = [p.structure for p in prototypes][:: 4 if anode == 'CuKa' else 12] + [e.structure for e in examples]
    simulator = XrdSimulator(anode)
    for structure, ours in zip(structures, simulator.peaks_many(structures), strict=True):
        _assert_same_peaks(ours, simulator.peaks(structure))


def test_batch_size_does_not_change_results(prototypes):
    structures = [p.structure for p in prototypes][::9]
    simulator = XrdSimulator('CuKa')
    reference = simulator.peaks_many(structures)
    for result in (simulator.peaks_many(structures, batch_size=5), simulator.peaks_many(structures, batch_size=1)):
        for ours, expected in zip(result, reference, strict=True):
            _assert_same_peaks(ours, expected)


def test_tensor_path_equals_compiled_kernel(prototypes, monkeypatch):
    """The GPU method (tensor pair sums, run here on the CPU in many chunks) and the CPU default (compiled
    kernel) give the same reflections in the same order and the same intensities, partial occupancy and
    Debye-Waller factors included."""
    structures = [p.structure for p in prototypes][::7] + [
        Structure(Lattice.cubic(4.2), [{'Fe': 0.5, 'Ni': 0.5}, 'O'], [[0, 0, 0], [0.5, 0.5, 0.5]])
    ]
    scatterers, _, _ = batched.read_scatterers(structures)
    cpu = torch.device('cpu')
    compiled = batched.compute_reflections(scatterers, 1.54184, (10, 110), {'O': 0.5}, cpu)
    monkeypatch.setitem(batched.PAIR_CHUNK, 'cpu', 1000)  # several chunks
    pairs = batched.compute_reflections(scatterers, 1.54184, (10, 110), {'O': 0.5}, cpu, method='pairs')
    assert torch.equal(compiled.hkl, pairs.hkl) and torch.equal(compiled.structure, pairs.structure)
    torch.testing.assert_close(compiled.two_theta, pairs.two_theta, rtol=1e-12, atol=1e-12)
    scale = float(pairs.intensity.max())
    torch.testing.assert_close(compiled.intensity, pairs.intensity, rtol=1e-9, atol=1e-9 * scale)
    with pytest.raises(ValueError, match='compiled'):
        batched.compute_reflections(scatterers, 1.54184, (10, 110), {}, cpu, method='gemm')


@pytest.mark.skipif(not torch.cuda.is_available(), reason='no GPU here (tested when one is present)')
def test_gpu_peaks_and_profiles_equal_cpu(prototypes):
    structures = [p.structure for p in prototypes][::3]
    simulator = XrdSimulator('CuKa')
    for ours, expected in zip(
        simulator.peaks_many(structures, device='cuda'), simulator.peaks_many(structures), strict=True
    ):
        _assert_same_peaks(ours, expected)
    _, on_gpu = simulator.profiles_many(structures, device='cuda')
    _, on_cpu = simulator.profiles_many(structures)
    np.testing.assert_allclose(on_gpu, on_cpu, atol=1e-5)


def test_device_and_batch_options_are_checked():
    simulator = XrdSimulator()
    with pytest.raises(ValueError, match='device must be'):
        simulator.peaks_many([ROCKSALT], device='tpu')
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='no GPU'):
            simulator.peaks_many([ROCKSALT], device='cuda')
        assert len(simulator.peaks_many([ROCKSALT], device='auto')[0]) > 0  # falls back to the CPU
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match='batch_size must be a positive integer'):
            simulator.peaks_many([ROCKSALT], batch_size=bad)


def test_hexagonal_test_and_families_match_pymatgen_conventions(prototypes):
    lattices = np.stack([p.structure.lattice.matrix for p in prototypes])
    expected = [p.structure.lattice.is_hexagonal() for p in prototypes]
    assert list(batched.is_hexagonal(lattices)) == expected and any(expected)
    rng = np.random.default_rng(0)
    hkl = rng.integers(-3, 4, size=(400, 3))
    peak_of = np.sort(rng.integers(0, 40, size=400))
    for packed, sorted_ in zip(family_arrays(hkl, peak_of), _family_arrays_lexsort(hkl, peak_of), strict=True):
        np.testing.assert_array_equal(packed, sorted_)


def test_profile_window_against_the_exact_sum(prototypes):
    structures = [p.structure for p in prototypes][::25]
    simulator = XrdSimulator()
    for shape, bound in (('gaussian', 1e-6), ('pseudo-voigt', 2e-3), ('lorentzian', 4e-3)):
        _, windowed = simulator.profiles_many(structures, shape=shape)
        _, exact = simulator.profiles_many(structures, shape=shape, window=math.inf)
        assert np.abs(windowed - exact).max() < bound, shape
    _, varying = simulator.profiles_many(structures, caglioti=(0.02, -0.01, 0.01), window=math.inf)
    _, varying_windowed = simulator.profiles_many(structures, caglioti=(0.02, -0.01, 0.01))
    assert np.abs(varying - varying_windowed).max() < 2e-3
    with pytest.raises(ValueError, match='window must be > 0'):
        simulator.profiles_many(structures, window=0)


def test_kalpha_doublet():
    single = XrdSimulator('CuKa1')
    doublet = XrdSimulator('CuKa', doublet=True)
    assert doublet.wavelength == WAVELENGTHS['CuKa1'] and doublet.wavelength2 == WAVELENGTHS['CuKa2']
    _assert_same_peaks(doublet.peaks_many([ROCKSALT])[0], single.peaks(ROCKSALT))  # peaks are listed at K-alpha1
    grid, pattern = doublet.profiles_many([ROCKSALT], step=0.001, shape='gaussian', fwhm=0.02, normalize=False)
    d200 = 5.6402 / 2
    first, second = (2 * math.degrees(math.asin(WAVELENGTHS[f'CuKa{i}'] / (2 * d200))) for i in (1, 2))
    assert second - first == pytest.approx(0.081, abs=0.002)  # the resolved doublet of the (200) line
    peak1, peak2 = (pattern[0, np.abs(grid - t) < 0.035].sum() for t in (first, second))  # line areas
    lp = [(1 + math.cos(math.radians(t)) ** 2) / (math.sin(math.radians(t / 2)) ** 2 * math.cos(math.radians(t / 2)))
          for t in (first, second)]  # fmt: skip
    assert peak2 / peak1 == pytest.approx(0.5 * lp[1] / lp[0], rel=2e-3)
    for bad in ('MoKb1', 1.54, 'CuKa2'):
        with pytest.raises(ValueError, match='doublet needs an anode'):
            XrdSimulator(bad, doublet=True)


def test_march_dollase_factor_on_reflections():
    scatterers, _, _ = batched.read_scatterers([TETRAGONAL])
    cpu = torch.device('cpu')
    plain = batched.compute_reflections(scatterers, 1.54184, (10, 110), {}, cpu)
    r = 0.6
    oriented = batched.compute_reflections(
        scatterers, 1.54184, (10, 110), {}, cpu, preferred_orientation=(np.array([[0.0, 0.0, 1.0]]), np.array([r]))
    )
    rows = zip(plain.hkl, plain.intensity, oriented.intensity, strict=True)
    ratio = {tuple(h.tolist()): float(b / a) for h, a, b in rows}
    assert ratio[(0, 0, 1)] == pytest.approx(r**-3)  # along the axis: (r^2)^(-3/2)
    assert ratio[(1, 0, 0)] == pytest.approx(r**1.5)  # perpendicular: (1/r)^(-3/2)
    cos2 = (1 / 5.1) ** 2 / ((1 / 3.9) ** 2 + (1 / 5.1) ** 2)
    assert ratio[(1, 0, 1)] == pytest.approx((r**2 * cos2 + (1 - cos2) / r) ** -1.5)


def test_augmentations_are_seeded_per_pattern_and_do_what_they_say():
    structures = [ROCKSALT, TETRAGONAL, ROCKSALT * (1, 1, 2)]
    simulator = XrdSimulator()
    augment = XrdAugmentation(noise=0.01, background=0.1, zero_shift=0.1, broadening=0.5,
                              preferred_orientation=(0.7, 1.3))  # fmt: skip
    _, first = simulator.profiles_many(structures, augment=augment, seed=3)
    _, again = simulator.profiles_many(structures, augment=augment, seed=3, batch_size=1)
    _, other = simulator.profiles_many(structures, augment=augment, seed=4)
    np.testing.assert_allclose(first, again, atol=1e-6)  # independent of the batching
    assert np.abs(first - other).max() > 0.01
    assert first.min() >= 0 and first.max(axis=1) == pytest.approx(np.ones(3))
    _, clean = simulator.profiles_many(structures)
    # zero shift alone: the strongest line moves by the drawn shift
    shift_only = XrdAugmentation(zero_shift=0.2)
    fine, shifted = simulator.profiles_many(structures, augment=shift_only, seed=1, step=0.002)
    _, unshifted = simulator.profiles_many(structures, step=0.002)
    drawn = shift_only.draw(np.arange(3), 1)['shift']
    moved = fine[np.argmax(shifted, axis=1)] - fine[np.argmax(unshifted, axis=1)]
    np.testing.assert_allclose(moved, drawn, atol=0.0021)
    # noise alone: residual standard deviation ~ noise (relative to the maximum)
    _, noisy = simulator.profiles_many([TETRAGONAL], augment=XrdAugmentation(noise=0.02), seed=0, normalize=False)
    _, plain = simulator.profiles_many([TETRAGONAL], normalize=False)
    residual = (noisy - plain)[0] / plain.max()
    assert np.std(residual[plain[0] > 0.05 * plain.max()]) == pytest.approx(0.02, rel=0.15)
    # broadening alone: lines only get wider
    _, broad = simulator.profiles_many([ROCKSALT], augment=XrdAugmentation(broadening=1.0), seed=2)
    assert (broad[0] > 0.5).sum() >= (clean[0] > 0.5).sum()


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'noise': -0.1}, 'noise must be a number >= 0'),
        ({'zero_shift': float('nan')}, 'zero_shift must be'),
        ({'preferred_orientation': (0.0, 1.2)}, '0 < r_min <= r_max'),
        ({'preferred_orientation': (1.2, 0.8)}, '0 < r_min <= r_max'),
        ({'preferred_orientation': 'platy'}, 'preferred_orientation must be'),
    ],
)
def test_bad_augmentations(kwargs, message):
    with pytest.raises(ValueError, match=message):
        XrdAugmentation(**kwargs)


def test_bad_seed_and_augment_type():
    simulator = XrdSimulator()
    with pytest.raises(ValueError, match='seed must be'):
        simulator.profiles_many([ROCKSALT], augment=XrdAugmentation(noise=0.1), seed=-1)
    with pytest.raises(ValueError, match='augment must be an XrdAugmentation'):
        simulator.profiles_many([ROCKSALT], augment={'noise': 0.1})


def test_all_reflections_extinct_gives_no_peaks_on_both_paths():
    """A Debye-Waller factor so large that every intensity underflows to 0: no peaks, no error, both paths."""
    iron = Structure(Lattice.cubic(2.87), ['Fe'], [[0, 0, 0]])
    simulator = XrdSimulator('CuKa', debye_waller={'Fe': 1e6})
    single, (batched_peaks,) = simulator.peaks(iron), simulator.peaks_many([iron])
    assert len(single) == len(batched_peaks) == 0 and batched_peaks.error is None
