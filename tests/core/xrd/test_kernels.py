"""The compiled CPU kernels of the XRD engine, against direct numpy references."""

import math

import numpy as np
import pytest

from aiida_matembed.core.xrd import _kernels
from aiida_matembed.core.xrd.peaks import family_arrays


@pytest.mark.parametrize('centre', [0, 7, 150])
def test_phase_powers_equal_the_direct_exponentials(centre):
    """Powers of exp(2 pi i x), re-anchored every 16 steps, stay within 1e-12 of exp(2 pi i m x) up to m = 300
    (the direct phase 2 pi m x itself carries a rounding of ~|2 pi m x| 1e-16, ~1e-13 here)."""
    rng = np.random.default_rng(1)
    for x in rng.random(20) * 2 - 0.5:
        out = np.empty(300 + centre + 1, dtype=np.complex128)
        _kernels._powers(x, 0.75, out, centre)
        m = np.arange(-centre, 301)
        np.testing.assert_allclose(out, 0.75 * np.exp(2j * math.pi * m * x), rtol=0, atol=1e-12)


def test_bin_order_is_stable_on_reversed_rows():
    """Rows by 2θ bin ascending, later rows first within a bin: what the tensor path's stable sort gives."""
    rng = np.random.default_rng(2)
    for n in (1, 2, 50, 3000):
        two_theta = 10 + rng.integers(0, 40, size=n) * 2.5 + rng.random(n) * 1e-7  # many rows per bin
        order = _kernels._bin_order(two_theta, 1e-5)
        bins = np.rint(two_theta / 1e-5).astype(np.int64)
        np.testing.assert_array_equal(order, np.lexsort((-np.arange(n), bins)))


@pytest.mark.parametrize('hexagonal', [False, True])
def test_split_peaks_families_equal_the_array_version(hexagonal):
    """Peaks, cut-off and hkl families of the kernel equal family_arrays (the numpy path's grouping)."""
    rng = np.random.default_rng(3)
    n = 600
    peak_of = np.sort(rng.integers(0, 60, size=n))
    hkl = rng.integers(-4, 5, size=(n, 3))
    two_theta = 20 + peak_of * 0.5 + rng.random(n) * 4e-6  # members of a peak differ within its 1e-5° bin
    g = 2 * np.sin(np.radians(two_theta / 2)) / 1.54184
    intensity = rng.random(n) * 100
    intensity[peak_of == 5] = 1e-9  # a peak below the cut-off
    # a second structure with no reflections, then a third: a copy of the first at 10x the intensity
    offsets = np.array([0, n, n, 2 * n], dtype=np.int64)
    hkl, g, two_theta = np.concatenate([hkl, hkl]), np.concatenate([g, g]), np.concatenate([two_theta, two_theta])
    out = _kernels.split_peaks(
        offsets, hkl, g, two_theta, np.concatenate([intensity, 10 * intensity]), np.array([hexagonal] * 3), 1e-5, 1e-3
    )
    structure, peak_two_theta, scaled, d_spacing, multiplicity, family_ptr, representatives, counts, ptr = out
    summed = np.bincount(peak_of, weights=intensity)
    kept = np.flatnonzero(summed / summed.max() * 100 > 1e-3)
    assert 5 not in kept and list(ptr) == [0, len(kept), len(kept), 2 * len(kept)]
    np.testing.assert_array_equal(structure, np.repeat([0, 2], len(kept)))
    smallest_two_theta = np.array([two_theta[:n][peak_of == p].min() for p in kept])
    smallest_g = np.array([g[:n][peak_of == p].min() for p in kept])
    np.testing.assert_array_equal(peak_two_theta, np.tile(smallest_two_theta, 2))
    np.testing.assert_allclose(scaled, np.tile(summed[kept] / summed.max() * 100, 2))
    np.testing.assert_array_equal(d_spacing, np.tile(1 / smallest_g, 2))
    assert np.array_equal(family_ptr[len(kept) :] - family_ptr[len(kept)], family_ptr[: len(kept) + 1])
    half = family_ptr[len(kept)]
    np.testing.assert_array_equal(representatives[half:], representatives[:half])
    family_ptr, representatives, counts = family_ptr[: len(kept) + 1], representatives[:half], counts[:half]
    hkl = hkl[:n]
    np.testing.assert_array_equal(multiplicity, np.tile(2 * np.bincount(peak_of)[kept], 2))
    member = np.isin(peak_of, kept)
    indices = hkl[member]
    if hexagonal:
        indices = np.column_stack([indices[:, 0], indices[:, 1], -indices[:, 0] - indices[:, 1], indices[:, 2]])
    expected_reps, expected_counts, family_peak = family_arrays(indices, np.searchsorted(kept, peak_of[member]))
    np.testing.assert_array_equal(representatives[:, : indices.shape[1]], expected_reps)
    np.testing.assert_array_equal(counts, expected_counts)
    np.testing.assert_array_equal(family_ptr, np.searchsorted(family_peak, np.arange(len(kept) + 1)))
