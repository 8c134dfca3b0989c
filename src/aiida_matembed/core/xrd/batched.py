"""Batched kinematic powder XRD: every reflection of many structures at once, on CPU or GPU.

Same physics and conventions as the numpy path in :mod:`.peaks` (see its docstring and references), arranged
so that a whole batch is a handful of tensor operations instead of a Python loop:

1. *Enumeration.* For each structure, the pairs ``(h, k)`` with ``|h| <= g_max |a|`` and ``|k| <= g_max |b|``
   are listed in the Friedel half-space; for each pair the ``l`` with ``|h b1 + k b2 + l b3| <= g_max`` follow
   from a quadratic inequality, so only reflections inside the limiting sphere are materialised (a box
   would hold up to ~6x more for oblique cells). All ragged ranges are expanded with ``repeat_interleave``.
2. *Structure factors* ``F = sum_j occ_j f_j(s) exp(2 pi i g.r_j)``: one entry per (reflection, scatterer)
   pair of the same structure, in chunks of bounded size (a 2,000-atom cell with Mo K-alpha is ~10^9
   pairs); form factors are evaluated once per (reflection, element of its structure).
3. *Merging* of reflections with equal 2θ (1e-5°) for profiles is a segment reduction
   (:func:`merge_reflections`); peaks with hkl families come from :func:`._kernels.split_peaks`.

All in float64; the result equals the numpy path to round-off (tested within 1e-9 relative). On the CPU
the default is the compiled kernel of :mod:`._kernels` (same enumeration, order and physics as loops, about
5x faster than the tensor form there); the tensor form is the GPU path and runs on the CPU with
``method='pairs'``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

import numpy as np
import torch

from ..elements import SYMBOLS, Z_MAX
from ..structures import (
    InvalidStructureError,
    PartiallyOccupiedError,
    first_in_segments,
    prepare_cells,
    to_pymatgen,
    validate_structure,
)

__all__ = ('Reflections', 'Scatterers', 'compute_reflections', 'merge_reflections', 'read_scatterers')

FORM_FACTOR_PREFACTOR = 41.78214
"""``(h c)^2 / (...)`` constant of the scattering-factor parametrisation (pymatgen ``XRDCalculator``)."""
PAIR_CHUNK = {'cpu': 1 << 20, 'cuda': 1 << 25}
"""Largest number of (reflection, scatterer) pairs held at once, per device type (memory bound)."""


@cache
def form_factor_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coefficients ``a_k``, ``b_k`` ``(Z_MAX + 1, 4)`` by atomic number and a mask of elements that have them."""
    from .peaks import scattering_params

    params = scattering_params()
    a = np.zeros((Z_MAX + 1, 4))
    b = np.zeros((Z_MAX + 1, 4))
    known = np.zeros(Z_MAX + 1, dtype=bool)
    for z, symbol in enumerate(SYMBOLS, start=1):
        if symbol in params:
            a[z], b[z], known[z] = params[symbol][:, 0], params[symbol][:, 1], True
    return a, b, known


@dataclass(frozen=True)
class Scatterers:
    """The scattering sites of a batch of structures, flattened (one row per site and species)."""

    lattice: np.ndarray
    """``(S, 3, 3)`` lattice vectors as rows (Å)."""
    frac: np.ndarray
    """``(J, 3)`` fractional coordinates of every scatterer."""
    z: np.ndarray
    """``(J,)`` atomic numbers."""
    occupancy: np.ndarray
    """``(J,)`` site occupancies (1 for ordered structures)."""
    ptr: np.ndarray
    """``(S + 1,)`` scatterers of structure ``s`` are rows ``ptr[s]:ptr[s + 1]``."""

    @property
    def n_structures(self) -> int:
        return len(self.lattice)


def read_scatterers(items: Sequence[Any]) -> tuple[Scatterers, list[int], dict[int, Exception]]:
    """Convert and validate a batch; return the scatterers of the good items, their indices and the others' errors.

    Checks are those of :func:`~aiida_matembed.core.structures.validate_structure` with partial occupancy allowed.
    """
    _, _, known = form_factor_table()
    cells = prepare_cells(items)
    errors: dict[int, Exception] = {}
    good: list[int] = []
    lattices: list[np.ndarray] = []
    fracs: list[np.ndarray] = []
    zs: list[np.ndarray] = []
    occupancies: list[np.ndarray | None] = []  # None: all sites fully occupied
    for index, cell in enumerate(cells):
        try:
            if isinstance(cell, PartiallyOccupiedError):
                structure = to_pymatgen(items[index])
                validate_structure(structure, allow_partial_occupancy=True)
                entries = [
                    (sp.Z, float(amount), site.frac_coords) for site in structure for sp, amount in site.species.items()
                ]
                zs.append(np.array([e[0] for e in entries], dtype=np.int64))
                occupancies.append(np.array([e[1] for e in entries]))
                fracs.append(np.array([e[2] for e in entries]))
                lattices.append(structure.lattice.matrix)
            elif isinstance(cell, Exception):
                raise cell
            else:
                zs.append(cell.z)
                occupancies.append(None)
                fracs.append(cell.frac)
                lattices.append(cell.lattice)
        except Exception as exception:
            errors[index] = exception
            continue
        good.append(index)
    counts = np.fromiter((len(z) for z in zs), dtype=np.int64, count=len(zs))
    z_all = np.concatenate(zs) if zs else np.zeros(0, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    missing = first_in_segments(~known[z_all], starts, counts)
    if (missing >= 0).any():  # elements without X-ray scattering factors: record, drop those structures
        for row in np.flatnonzero(missing >= 0):
            symbol = SYMBOLS[int(z_all[starts[row] + missing[row]]) - 1]
            errors[good[row]] = InvalidStructureError(f'no X-ray scattering factors for element {symbol}')
        keep = np.flatnonzero(missing < 0)
        good = [good[row] for row in keep]
        lattices, fracs = [lattices[row] for row in keep], [fracs[row] for row in keep]
        zs, occupancies = [zs[row] for row in keep], [occupancies[row] for row in keep]
        counts = counts[keep]
        z_all = np.concatenate(zs) if zs else np.zeros(0, dtype=np.int64)
    occupancy = np.ones(len(z_all))
    if any(o is not None for o in occupancies):
        occupancy = np.concatenate([np.ones(len(z)) if o is None else o for z, o in zip(zs, occupancies, strict=True)])
    scatterers = Scatterers(
        lattice=np.stack(lattices) if lattices else np.zeros((0, 3, 3)),
        frac=np.concatenate(fracs) if fracs else np.zeros((0, 3)),
        z=z_all,
        occupancy=occupancy,
        ptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
    )
    return scatterers, good, errors


class Reflections(NamedTuple):
    """Every reflection of a batch (one of each Friedel pair).

    Sorted by structure, then by 2θ rounded to :data:`MERGE_TOLERANCE`, then by hkl in decreasing order.
    """

    structure: torch.Tensor
    """``(M,)`` index of the structure in the batch."""
    hkl: torch.Tensor
    """``(M, 3)`` Miller indices."""
    g: torch.Tensor
    """``(M,)`` ``|g|`` (1/Å)."""
    two_theta: torch.Tensor
    """``(M,)`` 2θ (degrees)."""
    intensity: torch.Tensor
    """``(M,)`` ``2 |F|^2`` times the Lorentz-polarisation factor (both Friedel mates)."""


def lorentz_polarisation(two_theta: torch.Tensor) -> torch.Tensor:
    """Lorentz-polarisation factor ``(1 + cos^2 2θ) / (sin^2 θ cos θ)`` of 2θ in degrees (unpolarised beam)."""
    theta = torch.deg2rad(two_theta) / 2
    return (1 + torch.cos(2 * theta) ** 2) / (torch.sin(theta) ** 2 * torch.cos(theta))


def _ragged_arange(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For counts ``c_i``: the owner ``i`` and the position ``0..c_i-1`` of each of ``sum(c)`` items."""
    owner = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    starts = torch.cumsum(counts, 0) - counts
    return owner, torch.arange(len(owner), device=counts.device) - starts[owner]


class _Rods(NamedTuple):
    """Non-empty rods ``(h, k, l_low .. l_low + count - 1)`` of reflections, grouped by structure."""

    structure: torch.Tensor
    h: torch.Tensor
    k: torch.Tensor
    l_low: torch.Tensor
    length: torch.Tensor


def _enumerate(
    reciprocal: torch.Tensor, lengths: torch.Tensor, g_low: float, g_high: float
) -> tuple[_Rods, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every reflection with ``g_low <= |g| <= g_high``, in generation order (structure, h, k, l ascending).

    :return: the rods, and per reflection its structure, rod, ``l``, ``|g|`` and ``g`` (Cartesian, 1/Å).
    """
    bounds = torch.floor(g_high * lengths).long()  # |h| <= |g| |a|
    n_h, n_k = bounds[:, 0], bounds[:, 1]
    width = 2 * n_k + 1
    owner, position = _ragged_arange((n_h + 1) * width)
    h = position // width[owner]
    k = position % width[owner] - n_k[owner]
    half = (h > 0) | (k >= 0)  # Friedel half-space: h > 0, or h = 0 and k >= 0 (l > 0 below when k = 0)
    owner, h, k = owner[half], h[half], k[half]
    b1, b2, b3 = reciprocal[owner, 0], reciprocal[owner, 1], reciprocal[owner, 2]
    u = h[:, None] * b1 + k[:, None] * b2
    qa = (b3 * b3).sum(1)
    qb = 2 * (u * b3).sum(1)
    qc = (u * u).sum(1) - g_high**2
    root = torch.sqrt(torch.clamp(qb * qb - 4 * qa * qc, min=0))
    l_low = torch.ceil((-qb - root) / (2 * qa) - 1e-6).long()  # widened; the exact |g| filter follows
    l_high = torch.floor((-qb + root) / (2 * qa) + 1e-6).long()
    l_low = torch.where((h == 0) & (k == 0), torch.clamp(l_low, min=1), l_low)
    count = torch.clamp(l_high - l_low + 1, min=0)
    nonempty = count > 0
    rods = _Rods(owner[nonempty], h[nonempty], k[nonempty], l_low[nonempty], count[nonempty])
    u, b3 = u[nonempty], b3[nonempty]
    rod, position = _ragged_arange(rods.length)
    l_index = rods.l_low[rod] + position
    g_vec = u[rod] + l_index[:, None].to(u.dtype) * b3[rod]
    g = torch.linalg.vector_norm(g_vec, dim=1)
    keep = (g <= g_high) & (g >= g_low)
    return rods, rods.structure[rod[keep]], rod[keep], l_index[keep], g[keep], g_vec[keep]


def _slots(scatterers: Scatterers) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct elements ("slots") of each structure: slot of every scatterer, slot atomic numbers, counts."""
    ptr = scatterers.ptr
    slot_of = np.zeros(len(scatterers.z), dtype=np.int64)
    slot_z, slot_count = [], []
    for s in range(scatterers.n_structures):
        elements, inverse = np.unique(scatterers.z[ptr[s] : ptr[s + 1]], return_inverse=True)
        slot_of[ptr[s] : ptr[s + 1]] = inverse.reshape(-1)
        slot_z.append(elements)
        slot_count.append(len(elements))
    return slot_of, np.concatenate(slot_z), np.asarray(slot_count, dtype=np.int64)


def _form_factors(
    s2: torch.Tensor, slot_z: torch.Tensor, slot_start: torch.Tensor, n_slot: torch.Tensor, debye_waller: torch.Tensor
) -> torch.Tensor:
    """``f(s) exp(-B s^2)`` for every (reflection, element of its structure), flat, reflection-major."""
    device = s2.device
    a_table, b_table, _ = (torch.as_tensor(t, device=device) for t in form_factor_table())
    reflection, position = _ragged_arange(n_slot)
    z = slot_z[slot_start[reflection] + position]
    s2_q = s2[reflection]
    form = z - FORM_FACTOR_PREFACTOR * s2_q * (a_table[z] * torch.exp(-b_table[z] * s2_q[:, None])).sum(1)
    return form * torch.exp(-debye_waller[z] * s2_q)


def _structure_factors_pairs(
    scatterers: Scatterers,
    slot_of: np.ndarray,
    slot_count: np.ndarray,
    structure: torch.Tensor,
    hkl: torch.Tensor,
    form: torch.Tensor,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Real and imaginary ``F``: one term per (reflection, scatterer) pair, in chunks (GPU-friendly)."""
    f64 = torch.float64
    n_scat = torch.as_tensor(np.diff(scatterers.ptr), device=device)
    scat_ptr = torch.as_tensor(scatterers.ptr[:-1], device=device)
    frac = torch.as_tensor(scatterers.frac, dtype=f64, device=device)
    occupancy = torch.as_tensor(scatterers.occupancy, dtype=f64, device=device)
    slot_of_t = torch.as_tensor(slot_of, device=device)
    n_slot = torch.as_tensor(slot_count, device=device)[structure]
    slot_start = torch.cumsum(n_slot, 0) - n_slot
    f_real = torch.zeros(len(structure), dtype=f64, device=device)
    f_imag = torch.zeros(len(structure), dtype=f64, device=device)
    pairs_per_reflection = n_scat[structure]
    limit = PAIR_CHUNK.get(device.type, PAIR_CHUNK['cpu'])
    ends = torch.cumsum(pairs_per_reflection, 0).cpu().numpy()
    hkl_f = hkl.to(f64)
    start = 0
    while start < len(structure):
        base = ends[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, base + limit, side='right')))
        part = slice(start, stop)
        pair_r, position = _ragged_arange(pairs_per_reflection[part])
        j = scat_ptr[structure[part]][pair_r] + position
        h, k, l_ = (hkl_f[part, c][pair_r] for c in range(3))
        phase = (2 * math.pi) * (h * frac[j, 0] + k * frac[j, 1] + l_ * frac[j, 2])
        weight = form[slot_start[part][pair_r] + slot_of_t[j]] * occupancy[j]
        zeros = torch.zeros(stop - start, dtype=f64, device=device)
        f_real[part] = zeros.index_add(0, pair_r, weight * torch.cos(phase))
        f_imag[part] = zeros.index_add(0, pair_r, weight * torch.sin(phase))
        start = stop
    return f_real, f_imag


def _compiled_reflections(
    scatterers: Scatterers, wavelength: float, g_low: float, g_high: float, debye_waller: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Structure index, hkl, ``|g|``, 2θ and intensity of every reflection by the compiled CPU kernel (sorted)."""
    from ._kernels import count_reflections, fill_reflections

    a_table, b_table, _ = form_factor_table()
    lattice = np.ascontiguousarray(scatterers.lattice, dtype=np.float64)
    reciprocal = np.ascontiguousarray(np.linalg.inv(lattice).transpose(0, 2, 1))
    lengths = np.linalg.norm(lattice, axis=2)
    counts = count_reflections(reciprocal, lengths, g_low, g_high)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    n = int(offsets[-1])
    hkl = np.empty((n, 3), dtype=np.int64)
    g, two_theta, intensity = np.empty(n), np.empty(n), np.empty(n)
    fill_reflections(
        reciprocal, lengths, np.ascontiguousarray(scatterers.frac, dtype=np.float64), scatterers.z.astype(np.int64),
        scatterers.occupancy.astype(np.float64), scatterers.ptr.astype(np.int64), offsets, a_table, b_table,
        debye_waller, g_low, g_high, wavelength, MERGE_TOLERANCE, hkl, g, two_theta, intensity,
    )  # fmt: skip
    structure = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    return tuple(torch.from_numpy(a) for a in (structure, hkl, g, two_theta, intensity))  # type: ignore[return-value]


def _torch_reflections(
    scatterers: Scatterers,
    reciprocal: torch.Tensor,
    lengths: torch.Tensor,
    wavelength: float,
    g_low: float,
    g_high: float,
    debye_waller: np.ndarray,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Structure index, hkl, ``|g|``, 2θ and intensity of every reflection with tensor operations."""
    device = reciprocal.device
    rods, structure, rod, l_index, g, _ = _enumerate(reciprocal, lengths, g_low, g_high)
    hkl = torch.stack([rods.h[rod], rods.k[rod], l_index], dim=1)
    s2 = (g / 2) ** 2
    theta = torch.asin(torch.clamp(wavelength * g / 2, -1, 1))
    slot_of, slot_z, slot_count = _slots(scatterers)
    n_slot = torch.as_tensor(slot_count, device=device)[structure]
    slot_ptr = torch.as_tensor(np.concatenate([[0], np.cumsum(slot_count)]), device=device)
    form = _form_factors(s2, torch.as_tensor(slot_z, device=device), slot_ptr[structure], n_slot,
                         torch.as_tensor(debye_waller, device=device))  # fmt: skip
    f_real, f_imag = _structure_factors_pairs(scatterers, slot_of, slot_count, structure, hkl, form, device)
    f_squared = f_real**2 + f_imag**2
    two_theta = torch.rad2deg(2 * theta)
    return structure, hkl, g, two_theta, 2 * f_squared * lorentz_polarisation(two_theta)


def compute_reflections(
    scatterers: Scatterers,
    wavelength: float,
    two_theta_range: tuple[float, float],
    debye_waller: dict[str, float],
    device: torch.device,
    *,
    preferred_orientation: tuple[np.ndarray, np.ndarray] | None = None,
    method: str | None = None,
) -> Reflections:
    """All reflections of a batch and their intensities, sorted as :class:`Reflections` says.

    :param preferred_orientation: optional March-Dollase correction, ``(directions (S, 3), r (S,))``: the
        preferred-orientation axis of each structure as a reciprocal-lattice vector ``(h, k, l)`` and the
        March parameter ``r`` (1 = random powder). Each reflection is scaled by
        ``(r^2 cos^2 a + sin^2 a / r)^(-3/2)`` where ``a`` is its angle to the axis (Dollase, J. Appl.
        Cryst. 19, 267 (1986)).
    :param method: ``'compiled'`` (the numba kernel of :mod:`._kernels`, the CPU default) or ``'pairs'``
        (tensor operations, one term per reflection and scatterer in bounded chunks; the GPU default).
    """
    f64 = torch.float64
    low, high = (2 * math.sin(math.radians(t / 2)) / wavelength for t in two_theta_range)
    method = method or ('compiled' if device.type == 'cpu' else 'pairs')
    if method not in ('compiled', 'pairs') or (method == 'compiled' and device.type != 'cpu'):
        raise ValueError(f"method must be 'compiled' (CPU only) or 'pairs', got {method!r} on {device}")
    lattice = torch.as_tensor(scatterers.lattice, dtype=f64, device=device)
    if not len(lattice):
        empty = torch.zeros(0, dtype=f64, device=device)
        index = torch.zeros(0, dtype=torch.long, device=device)
        return Reflections(index, torch.zeros((0, 3), dtype=torch.long, device=device), empty, empty, empty)
    dw = np.zeros(Z_MAX + 1)
    for symbol, value in debye_waller.items():
        dw[SYMBOLS.index(symbol) + 1] = float(value)
    if method == 'compiled':
        structure, hkl, g, two_theta, intensity = _compiled_reflections(scatterers, wavelength, low, high, dw)
        reciprocal = torch.as_tensor(np.linalg.inv(scatterers.lattice).transpose(0, 2, 1))
    else:
        reciprocal = torch.linalg.inv(lattice).transpose(1, 2)  # rows b_i with a_i . b_j = delta_ij (no 2 pi)
        structure, hkl, g, two_theta, intensity = _torch_reflections(
            scatterers, reciprocal, torch.linalg.vector_norm(lattice, dim=2), wavelength, low, high, dw
        )
    if preferred_orientation is not None:
        directions, march = preferred_orientation
        axis = torch.einsum('si,sij->sj', torch.as_tensor(directions, dtype=f64, device=device), reciprocal)
        axis = axis / torch.linalg.vector_norm(axis, dim=1, keepdim=True)
        g_vec = torch.einsum('mi,mij->mj', hkl.to(f64), reciprocal[structure])
        cos_a = (g_vec * axis[structure]).sum(1) / g
        r = torch.as_tensor(march, dtype=f64, device=device)[structure]
        intensity = intensity * (r**2 * cos_a**2 + (1 - cos_a**2) / r) ** -1.5
    if method == 'compiled':  # sorted by the kernel
        return Reflections(structure, hkl, g, two_theta, intensity)
    # one stable sort on (structure, 2θ bin) of the reversed generation order: equal bins keep hkl decreasing
    key = (structure << _BIN_BITS) | torch.round(two_theta / MERGE_TOLERANCE).long()
    reverse = torch.arange(len(key) - 1, -1, -1, device=device)
    order = reverse[torch.sort(key[reverse], stable=True).indices]
    return Reflections(structure[order], hkl[order], g[order], two_theta[order], intensity[order])


MERGE_TOLERANCE = 1e-5
"""Reflections whose 2θ (degrees) round to the same multiple of this are one peak (pymatgen's tolerance)."""
_BIN_BITS = 25  # 180 / 1e-5 < 2^25


class MergedPeaks(NamedTuple):
    """Reflections with equal 2θ (within 1e-5°) summed into peaks; all tensors on the batch's device."""

    structure: torch.Tensor
    """``(P,)`` structure of each peak."""
    two_theta: torch.Tensor
    """``(P,)`` smallest 2θ of the peak's reflections (degrees)."""
    g: torch.Tensor
    """``(P,)`` smallest ``|g|`` of the peak's reflections (1/Å)."""
    intensity: torch.Tensor
    """``(P,)`` summed intensity (arbitrary units)."""
    n_reflections: torch.Tensor
    """``(P,)`` number of reflections (one per Friedel pair) in the peak."""
    peak_of: torch.Tensor
    """``(M,)`` peak of each reflection."""


def merge_reflections(reflections: Reflections) -> MergedPeaks:
    """Sum reflections of the same structure whose 2θ round to the same multiple of :data:`MERGE_TOLERANCE`."""
    device = reflections.g.device
    bins = torch.round(reflections.two_theta / MERGE_TOLERANCE).long()
    new = torch.ones(len(bins), dtype=torch.bool, device=device)
    if len(bins) > 1:
        new[1:] = (bins[1:] != bins[:-1]) | (reflections.structure[1:] != reflections.structure[:-1])
    peak_of = torch.cumsum(new.long(), 0) - 1
    first = torch.nonzero(new).reshape(-1)
    n_peaks = len(first)
    intensity = torch.zeros(n_peaks, dtype=reflections.intensity.dtype, device=device)
    intensity.index_add_(0, peak_of, reflections.intensity)
    count = torch.zeros(n_peaks, dtype=torch.long, device=device).index_add_(0, peak_of, torch.ones_like(peak_of))
    # position of the peak: its smallest 2θ (reflections in one bin may differ by up to the tolerance)
    two_theta = torch.full((n_peaks,), math.inf, dtype=reflections.two_theta.dtype, device=device)
    two_theta = two_theta.scatter_reduce(0, peak_of, reflections.two_theta, reduce='amin')
    g = torch.full((n_peaks,), math.inf, dtype=reflections.g.dtype, device=device)
    g = g.scatter_reduce(0, peak_of, reflections.g, reduce='amin')
    return MergedPeaks(reflections.structure[first], two_theta, g, intensity, count, peak_of)


def is_hexagonal(lattice: np.ndarray, angle_tol: float = 5.0, length_tol: float = 0.01) -> np.ndarray:
    """Pymatgen's ``Lattice.is_hexagonal`` for a stack of lattices ``(S, 3, 3)``, vectorised.

    Two angles within ``angle_tol`` of 90°, one within it of 60° or 120°, and the lengths of the axes at the
    positions of the two right angles equal within ``length_tol`` Å (pymatgen's exact test).
    """
    lengths = np.linalg.norm(lattice, axis=2)
    pairs = [(1, 2), (2, 0), (0, 1)]  # alpha = angle(b, c), beta = angle(c, a), gamma = angle(a, b)
    angles = np.stack(
        [
            np.degrees(
                np.arccos(np.clip((lattice[:, i] * lattice[:, j]).sum(1) / (lengths[:, i] * lengths[:, j]), -1, 1))
            )
            for i, j in pairs
        ],
        axis=1,
    )
    right = np.abs(angles - 90) <= angle_tol
    hexa = (np.abs(angles - 60) <= angle_tol) | (np.abs(angles - 120) <= angle_tol)
    out = (right.sum(1) == 2) & (hexa.sum(1) == 1)
    first_right = np.argmax(right, axis=1)
    second_right = 2 - np.argmax(right[:, ::-1], axis=1)
    rows = np.arange(len(lattice))
    return out & (np.abs(lengths[rows, first_right] - lengths[rows, second_right]) <= length_tol)
