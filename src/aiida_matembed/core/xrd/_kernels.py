"""Compiled (numba) CPU kernel: every reflection of a batch with its kinematic intensity, in one pass.

Same physics, enumeration order and conventions as the torch path of :mod:`.batched` (see its docstring),
written as loops so that nothing of size (reflections x scatterers) is ever materialised:

- for each structure, the rods ``(h, k)`` of the Friedel half-space and, per rod, the ``l`` inside the
  limiting sphere from the same quadratic inequality;
- phase factors are tabulated once per structure and scatterer, ``occ_j exp(2 pi i h x_j)``,
  ``exp(2 pi i k y_j)`` and ``exp(2 pi i l z_j)``; per rod their planar product ``P_j`` is formed once, so
  each (reflection, scatterer) term of ``F = sum_j f_j(s) occ_j exp(2 pi i g.r_j)`` costs one complex
  multiply-add;
- form factors ``f(s) = Z - 41.78214 s^2 sum_k a_k exp(-b_k s^2)`` (pymatgen's parametrisation) times the
  Debye-Waller factor ``exp(-B s^2)``, once per element and run of equal ``|g|`` (symmetry equivalents);
- peaks merged, scaled and grouped into hkl families by :func:`split_peaks`.

Kinematic theory: B. E. Warren, *X-ray Diffraction* (Dover, 1990), ch. 4; pymatgen ``XRDCalculator``.
Compiled on first use and cached on disk where possible (:func:`..._kernels.compiled`); one thread.
"""

from __future__ import annotations

import math

import numpy as np

from .._kernels import compiled

__all__ = ('count_reflections', 'fill_reflections', 'split_peaks')

_TWO_PI = 2.0 * math.pi


@compiled()
def _l_range(u: np.ndarray, b3: np.ndarray, g_high: float, h: int, k: int) -> tuple[int, int]:
    """``l`` range of rod ``(h, k)`` inside the sphere ``|u + l b3| <= g_high`` (widened by 1e-6)."""
    qa = b3[0] * b3[0] + b3[1] * b3[1] + b3[2] * b3[2]
    qb = 2.0 * (u[0] * b3[0] + u[1] * b3[1] + u[2] * b3[2])
    qc = u[0] * u[0] + u[1] * u[1] + u[2] * u[2] - g_high * g_high
    root = math.sqrt(max(qb * qb - 4.0 * qa * qc, 0.0))
    l_low = math.ceil((-qb - root) / (2.0 * qa) - 1e-6)
    l_high = math.floor((-qb + root) / (2.0 * qa) + 1e-6)
    if h == 0 and k == 0 and l_low < 1:
        l_low = 1  # Friedel half-space: (0, 0, l) with l > 0
    return l_low, l_high


@compiled()
def _list_reflections(
    reciprocal: np.ndarray,
    length_a: float,
    length_b: float,
    g_low: float,
    g_high: float,
    hkl: np.ndarray,
    g_out: np.ndarray,
    start: int,
) -> int:
    """Reflections of one structure in generation order (``h``, ``k``, ``l`` ascending), Friedel half-space.

    Writes ``(h, k, l)`` and ``|g|`` into rows ``start, start + 1, ...`` of ``hkl`` and ``g_out`` unless
    ``hkl`` has no rows (counting only); returns the number of reflections.
    """
    b1, b2, b3 = reciprocal[0], reciprocal[1], reciprocal[2]
    n_h = math.floor(g_high * length_a)
    n_k = math.floor(g_high * length_b)
    write = len(hkl) > 0
    u = np.empty(3)
    n = 0
    for h in range(0, n_h + 1):
        for k in range(-n_k if h > 0 else 0, n_k + 1):
            for c in range(3):
                u[c] = h * b1[c] + k * b2[c]
            l_low, l_high = _l_range(u, b3, g_high, h, k)
            for l_ in range(l_low, l_high + 1):
                x, y, z = u[0] + l_ * b3[0], u[1] + l_ * b3[1], u[2] + l_ * b3[2]
                g = math.sqrt(x * x + y * y + z * z)
                if g_low <= g <= g_high:
                    if write:
                        if start + n >= len(hkl):
                            raise RuntimeError('more reflections than counted')
                        hkl[start + n, 0] = h
                        hkl[start + n, 1] = k
                        hkl[start + n, 2] = l_
                        g_out[start + n] = g
                    n += 1
    return n


@compiled()
def count_reflections(reciprocal: np.ndarray, lengths: np.ndarray, g_low: float, g_high: float) -> np.ndarray:
    """Number of reflections with ``g_low <= |g| <= g_high`` of each structure (one per Friedel pair).

    :param reciprocal: ``(S, 3, 3)`` reciprocal vectors as rows, ``a_i . b_j = delta_ij`` (1/Å, no 2 pi).
    :param lengths: ``(S, 3)`` lengths of the direct lattice vectors (Å).
    """
    counts = np.zeros(reciprocal.shape[0], dtype=np.int64)
    no_hkl, no_g = np.empty((0, 3), dtype=np.int64), np.empty(0)
    for s in range(reciprocal.shape[0]):
        counts[s] = _list_reflections(reciprocal[s], lengths[s, 0], lengths[s, 1], g_low, g_high, no_hkl, no_g, 0)
    return counts


@compiled()
def fill_reflections(
    reciprocal: np.ndarray,
    lengths: np.ndarray,
    frac: np.ndarray,
    z: np.ndarray,
    occupancy: np.ndarray,
    ptr: np.ndarray,
    offsets: np.ndarray,
    a_table: np.ndarray,
    b_table: np.ndarray,
    debye_waller: np.ndarray,
    g_low: float,
    g_high: float,
    wavelength: float,
    merge_tolerance: float,
    hkl: np.ndarray,
    g_out: np.ndarray,
    two_theta: np.ndarray,
    intensity: np.ndarray,
) -> None:
    """Fill ``hkl``, ``|g|``, 2θ (degrees) and intensity of every reflection.

    Reflections of structure ``s`` go to rows ``offsets[s]:offsets[s + 1]`` (from :func:`count_reflections`),
    sorted by 2θ rounded to a multiple of ``merge_tolerance`` (degrees) and, within one such bin, by
    decreasing generation order (``h``, ``k``, ``l`` ascending), as the torch path sorts. Intensity is
    ``2 |F|^2`` (both Friedel mates) times the Lorentz-polarisation factor ``(1 + cos^2 2θ) / (sin^2 θ cos θ)``.

    Per structure: (1) enumerate the reflections in generation order; (2) sort them (stable radix sort of
    the bins); (3) form factors in sorted order, evaluated once per run of equal ``|g|`` (equal within 1e-13
    relative: symmetry-equivalent reflections); (4) structure factors rod by rod in generation order, the
    planar factor ``P_j`` formed once per rod; (5) rows permuted into sorted order.

    :param frac: ``(J, 3)`` fractional coordinates; scatterers of structure ``s`` are ``ptr[s]:ptr[s + 1]``.
    :param z: ``(J,)`` atomic numbers (all with scattering factors); ``occupancy``: ``(J,)`` site occupancies.
    :param a_table: ``(Z_MAX + 1, 4)`` coefficients ``a_k`` by atomic number; ``b_table`` likewise (Å^2).
    :param debye_waller: ``(Z_MAX + 1,)`` B factors (Å^2) by atomic number (0: none).
    """
    n_structures = reciprocal.shape[0]
    u = np.empty(3)
    for s in range(n_structures):
        lo, hi = ptr[s], ptr[s + 1]
        r0, r1 = offsets[s], offsets[s + 1]
        n_rows = r1 - r0
        if n_rows == 0:
            continue
        n_atoms = hi - lo
        b1, b2, b3 = reciprocal[s, 0], reciprocal[s, 1], reciprocal[s, 2]
        n_h = math.floor(g_high * lengths[s, 0])
        n_k = math.floor(g_high * lengths[s, 1])
        n_l = math.floor(g_high * lengths[s, 2]) + 1
        # (1) reflections in generation order, with |g| and 2θ
        found = _list_reflections(reciprocal[s], lengths[s, 0], lengths[s, 1], g_low, g_high, hkl[:r1], g_out, r0)
        if found != n_rows:
            raise RuntimeError('fill_reflections: fewer reflections than count_reflections found')
        for row in range(r0, r1):
            two_theta[row] = math.degrees(2.0 * math.asin(min(wavelength * g_out[row] / 2.0, 1.0)))
        # (2) sorted order
        order = _bin_order(two_theta[r0:r1], merge_tolerance)
        # scatterers grouped by element (stable): elements[e] owns atoms starts[e]:starts[e + 1] of `atoms`
        atoms = np.argsort(z[lo:hi], kind='mergesort') + lo
        elements = np.empty(n_atoms, dtype=np.int64)
        starts = np.empty(n_atoms + 1, dtype=np.int64)
        n_elements = 0
        for position in range(n_atoms):
            element = z[atoms[position]]
            if n_elements == 0 or elements[n_elements - 1] != element:
                elements[n_elements] = element
                starts[n_elements] = position
                n_elements += 1
        starts[n_elements] = n_atoms
        # (3) f(s) exp(-B s^2) per (reflection, element), once per run of equal |g| in sorted order
        form = np.empty((n_rows, n_elements))
        previous = -1.0
        for i in range(n_rows):
            r = order[i]
            g = g_out[r0 + r]
            if previous >= 0 and abs(g - previous) <= 1e-13 * g:
                form[r] = form[order[i - 1]]
                continue
            previous = g
            s2 = (g / 2.0) ** 2
            for e in range(n_elements):
                element = elements[e]
                total = 0.0
                for q in range(4):
                    total += a_table[element, q] * math.exp(-b_table[element, q] * s2)
                value = element - 41.78214 * s2 * total
                if debye_waller[element] != 0.0:
                    value *= math.exp(-debye_waller[element] * s2)
                form[r, e] = value
        # (4) phase tables (powers of one complex exponential per atom and axis), then F rod by rod
        table_h = np.empty((n_h + 1, n_atoms), dtype=np.complex128)
        table_k = np.empty((2 * n_k + 1, n_atoms), dtype=np.complex128)
        table_l = np.empty((2 * n_l + 1, n_atoms), dtype=np.complex128)
        for position in range(n_atoms):
            j = atoms[position]
            _powers(frac[j, 0], occupancy[j], table_h[:, position], 0)
            _powers(frac[j, 1], 1.0, table_k[:, position], n_k)
            _powers(frac[j, 2], 1.0, table_l[:, position], n_l)
        planar = np.empty(n_atoms, dtype=np.complex128)
        row = r0
        for h in range(0, n_h + 1):
            for k in range(-n_k if h > 0 else 0, n_k + 1):
                for c in range(3):
                    u[c] = h * b1[c] + k * b2[c]
                l_low, l_high = _l_range(u, b3, g_high, h, k)
                if l_high < l_low:
                    continue
                for position in range(n_atoms):
                    planar[position] = table_h[h, position] * table_k[k + n_k, position]
                for l_ in range(l_low, l_high + 1):
                    if row >= r1 or hkl[row, 0] != h or hkl[row, 1] != k or hkl[row, 2] != l_:
                        continue  # outside the 2θ range (the rows of step 1 are exactly the kept ones)
                    axial = table_l[l_ + n_l]
                    f_real = 0.0
                    f_imag = 0.0
                    for e in range(n_elements):
                        sum_real = 0.0
                        sum_imag = 0.0
                        for position in range(starts[e], starts[e + 1]):
                            p = planar[position]
                            q_ = axial[position]
                            sum_real += p.real * q_.real - p.imag * q_.imag
                            sum_imag += p.real * q_.imag + p.imag * q_.real
                        f_real += form[row - r0, e] * sum_real
                        f_imag += form[row - r0, e] * sum_imag
                    sin_theta = min(wavelength * g_out[row] / 2.0, 1.0)
                    sin2 = sin_theta * sin_theta
                    cos_2theta = 1.0 - 2.0 * sin2
                    lorentz = (1.0 + cos_2theta * cos_2theta) / (sin2 * math.sqrt(1.0 - sin2))
                    intensity[row] = 2.0 * (f_real * f_real + f_imag * f_imag) * lorentz
                    row += 1
        if row != r1:
            raise RuntimeError('fill_reflections: structure factors not computed for every reflection')
        # (5) rows into sorted order
        order += r0
        hkl[r0:r1] = hkl[order]
        g_out[r0:r1] = g_out[order]
        two_theta[r0:r1] = two_theta[order]
        intensity[r0:r1] = intensity[order]


@compiled()
def _powers(x: float, weight: float, out: np.ndarray, centre: int) -> None:
    """``out[centre + m] = weight exp(2 pi i m x)`` for ``m = -centre .. len(out) - 1 - centre``.

    ``len(out) - 1 - centre >= centre`` (the positive range covers the negative one, taken as conjugates).

    Successive powers of ``exp(2 pi i x)``, re-anchored on an exact ``cos``/``sin`` every 16 steps so that
    rounding does not accumulate (relative error ~1e-15).
    """
    step = complex(math.cos(_TWO_PI * x), math.sin(_TWO_PI * x))
    value = complex(weight, 0.0)
    for m in range(len(out) - centre):
        if m % 16 == 0 and m > 0:
            phase = _TWO_PI * m * x
            value = weight * complex(math.cos(phase), math.sin(phase))
        out[centre + m] = value
        if m > 0 and centre - m >= 0:
            out[centre - m] = value.conjugate()
        value *= step


@compiled()
def _bin_order(two_theta: np.ndarray, merge_tolerance: float) -> np.ndarray:
    """Stable order of rows by 2θ bin, later rows first within a bin.

    A least-significant-digit radix sort (9-bit digits) of the bins relative to the smallest: stable, so
    starting from the reversed rows leaves equal bins in decreasing generation order; linear in the rows.
    """
    n = len(two_theta)
    keys = np.empty(n, dtype=np.int64)
    for i in range(n):
        keys[i] = np.int64(np.rint(two_theta[i] / merge_tolerance))
    order = np.arange(n - 1, -1, -1)
    if n < 2:
        return order
    keys -= keys.min()
    largest = keys.max()
    buffer = np.empty(n, dtype=np.int64)
    counts = np.empty(513, dtype=np.int64)
    shift = 0
    while shift == 0 or (largest >> shift) > 0:
        counts[:] = 0
        for i in range(n):
            counts[((keys[order[i]] >> shift) & 511) + 1] += 1
        for digit in range(512):
            counts[digit + 1] += counts[digit]
        for i in range(n):
            digit = (keys[order[i]] >> shift) & 511
            buffer[counts[digit]] = order[i]
            counts[digit] += 1
        order, buffer = buffer, order
        shift += 9
    return order


@compiled()
def _greater(a: np.ndarray, b: np.ndarray, n: int) -> bool:
    """Whether ``a[:n]`` is lexicographically greater than ``b[:n]``."""
    for c in range(n):
        if a[c] != b[c]:
            return a[c] > b[c]
    return False


@compiled(error_model='numpy')
def split_peaks(
    offsets: np.ndarray,
    hkl: np.ndarray,
    g: np.ndarray,
    two_theta: np.ndarray,
    intensity: np.ndarray,
    hexagonal: np.ndarray,
    merge_tolerance: float,
    cutoff: float,
) -> tuple[np.ndarray, ...]:
    """Merge sorted reflections into peaks, scale, cut and group each peak's members into hkl families.

    Reflections of structure ``s`` are rows ``offsets[s]:offsets[s + 1]``, sorted as :func:`fill_reflections`
    leaves them (by 2θ bin of width ``merge_tolerance`` degrees). A peak is a run of equal bins: its intensity
    the sum, its 2θ and ``|g|`` the smallest of its members; intensities are scaled so that each structure's
    strongest peak is 100 and peaks at or below ``cutoff`` are dropped. Within a kept peak, members whose
    ``|h|, |k|, |l|`` (``|h|, |k|, |i|, |l|`` with ``i = -h - k`` for hexagonal cells) are permutations of
    each other form a family, in order of first member, represented by the largest index tuple among its
    members and their Friedel mates, with multiplicity twice its members (pymatgen's ``get_unique_families``).

    :return: per kept peak: structure, 2θ, scaled intensity, d-spacing (Å), multiplicity, first family;
        per family: representative ``(F, 4)`` (3 columns used for non-hexagonal cells) and multiplicity;
        the first kept peak of each structure ``(S + 1,)``.
    """
    n_rows = len(g)
    n_structures = len(offsets) - 1
    peak_structure = np.empty(n_rows, dtype=np.int64)
    peak_two_theta = np.empty(n_rows)
    peak_intensity = np.empty(n_rows)
    peak_d = np.empty(n_rows)
    peak_multiplicity = np.empty(n_rows, dtype=np.int64)
    family_ptr = np.empty(n_rows + 1, dtype=np.int64)
    family_rep = np.empty((n_rows, 4), dtype=np.int64)  # rows filled as families are found
    family_sig = np.empty((n_rows, 4), dtype=np.int64)
    bins = np.empty(n_rows, dtype=np.int64)  # 2θ bin of every reflection, computed once
    for r in range(n_rows):
        bins[r] = np.int64(np.rint(two_theta[r] / merge_tolerance))
    family_count = np.empty(n_rows, dtype=np.int64)
    structure_ptr = np.empty(n_structures + 1, dtype=np.int64)
    indices = np.empty(4, dtype=np.int64)
    mate = np.empty(4, dtype=np.int64)
    signature = np.empty(4, dtype=np.int64)
    n_peaks = 0
    n_families = 0
    for s in range(n_structures):
        structure_ptr[s] = n_peaks
        lo, hi = offsets[s], offsets[s + 1]
        columns = 4 if hexagonal[s] else 3
        strongest = 0.0
        i = lo
        while i < hi:  # pass 1: the strongest merged peak
            key = bins[i]
            total = 0.0
            j = i
            while j < hi and bins[j] == key:
                total += intensity[j]
                j += 1
            strongest = max(strongest, total)
            i = j
        i = lo
        while i < hi:  # pass 2: peaks above the cut-off and their families
            key = bins[i]
            total = 0.0
            smallest_two_theta = two_theta[i]
            smallest_g = g[i]
            j = i
            while j < hi and bins[j] == key:
                total += intensity[j]
                smallest_two_theta = min(smallest_two_theta, two_theta[j])
                smallest_g = min(smallest_g, g[j])
                j += 1
            scaled = total / strongest * 100.0
            if scaled > cutoff:
                peak_structure[n_peaks] = s
                peak_two_theta[n_peaks] = smallest_two_theta
                peak_intensity[n_peaks] = scaled
                peak_d[n_peaks] = 1.0 / smallest_g
                peak_multiplicity[n_peaks] = 2 * (j - i)
                family_ptr[n_peaks] = n_families
                first_family = n_families
                for r in range(i, j):
                    h, k, l_ = hkl[r, 0], hkl[r, 1], hkl[r, 2]
                    indices[0], indices[1] = h, k
                    if columns == 4:
                        indices[2], indices[3] = -h - k, l_
                    else:
                        indices[2] = l_
                    for c in range(columns):  # insertion sort of |indices| into the signature
                        mate[c] = -indices[c]
                        value = abs(indices[c])
                        position = c
                        while position > 0 and signature[position - 1] > value:
                            signature[position] = signature[position - 1]
                            position -= 1
                        signature[position] = value
                    larger = mate if _greater(mate, indices, columns) else indices
                    found = -1
                    for f in range(first_family, n_families):
                        same = True
                        for c in range(columns):
                            if family_sig[f, c] != signature[c]:
                                same = False
                                break
                        if same:
                            found = f
                            break
                    if found < 0:
                        found = n_families
                        n_families += 1
                        family_count[found] = 0
                        family_rep[found, 3] = 0  # unused by 3-index families
                        for c in range(columns):
                            family_sig[found, c] = signature[c]
                            family_rep[found, c] = larger[c]
                    elif _greater(larger, family_rep[found], columns):
                        for c in range(columns):
                            family_rep[found, c] = larger[c]
                    family_count[found] += 2
                n_peaks += 1
            i = j
    structure_ptr[n_structures] = n_peaks
    family_ptr[n_peaks] = n_families
    return (
        peak_structure[:n_peaks].copy(),
        peak_two_theta[:n_peaks].copy(),
        peak_intensity[:n_peaks].copy(),
        peak_d[:n_peaks].copy(),
        peak_multiplicity[:n_peaks].copy(),
        family_ptr[: n_peaks + 1].copy(),
        family_rep[:n_families].copy(),
        family_count[:n_families].copy(),
        structure_ptr,
    )
