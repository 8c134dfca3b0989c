"""Miller indices of powder peaks in the conventional standard setting of the crystal.

A reflection is computed on whatever cell a structure is given in; its indices ``h`` refer to that cell. The
labels crystallographers, powder diffraction cards and pymatgen's plot of a conventional cell use refer to the
conventional cell in the standard setting of the space group (International Tables A): NaCl's strongest lines
are (111), (200), (220), not the (110), (211), (222) of its primitive cell. This module finds that cell with
spglib (``get_symmetry_dataset``, the cell of pymatgen's ``SpacegroupAnalyzer.get_refined_structure``) and
transforms the indices.

If spglib gives ``(a_s b_s c_s) = (a b c) P^-1`` (lattice vectors as columns, ``P`` its
``transformation_matrix``), a reciprocal vector with indices ``h`` (a row) on the input cell has indices
``h P^-1`` on the standard cell (``h_j = g . a_j``). Reflections whose transformed indices are not integers are
extinct by the centring of the smaller cell (zero intensity in an exact supercell) and are left out of the labels;
if a peak with intensity has only such reflections (a superstructure spglib's tolerance sees through), the
structure keeps the indices of its input cell and says so (``setting == 'input'``).

Cost: one spglib call per structure, about 1-2 ms for the small cells of the AFLOW prototypes, i.e. several times
the cost of the peaks themselves; so it runs only when the labels of a structure are first read (plots, stored
patterns, exports), once per :class:`~.peaks.Peaks`.

Reference: A. Togo, K. Shinohara, I. Tanaka, Sci. Technol. Adv. Mater. Meth. 4, 2384822 (2024) (spglib);
International Tables for Crystallography Vol. A (2016), section 1.5 (transformations of Miller indices).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = (
    'ANGLE_TOLERANCE',
    'SYMPREC',
    'ConventionalLabels',
    'conventional_labels',
    'site_types',
    'standard_transform',
    'structure_types',
)

SYMPREC = 0.01
"""spglib distance tolerance (Å), pymatgen's ``SpacegroupAnalyzer`` default."""
ANGLE_TOLERANCE = 5.0
"""spglib angle tolerance (degrees), pymatgen's default."""
_INTEGER_TOL = 1e-3


class ConventionalLabels(NamedTuple):
    """Hkl families of the peaks of one structure, as :func:`~.peaks.family_arrays` returns them."""

    representatives: np.ndarray
    counts: np.ndarray
    family_peak: np.ndarray
    setting: str
    """``'conventional'`` or ``'input'`` (spglib found no standard cell the indices transform to)."""


def site_types(z: np.ndarray, occupancy: np.ndarray, frac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One spglib type per site from scatterer entries (a disordered site is several entries at one position).

    :return: the fractional coordinates of the sites and an integer type per site (equal for equal occupations).
    """
    if len(z) == 0:
        return frac, np.zeros(0, dtype=np.int64)
    new_site = np.ones(len(z), dtype=bool)
    new_site[1:] = np.any(frac[1:] != frac[:-1], axis=1)
    if new_site.all() and np.all(occupancy == 1):
        return frac, np.asarray(z, dtype=np.int64)
    site_of = np.cumsum(new_site) - 1
    keys: dict[tuple[tuple[int, float], ...], int] = {}
    types = np.empty(int(site_of[-1]) + 1, dtype=np.int64)
    for site in range(len(types)):
        rows = np.flatnonzero(site_of == site)
        key = tuple(sorted((int(z[r]), round(float(occupancy[r]), 6)) for r in rows))
        types[site] = keys.setdefault(key, len(keys) + 1)
    return frac[new_site], types


def structure_types(structure: Any) -> tuple[np.ndarray, np.ndarray]:
    """Fractional coordinates and one spglib type per site of a pymatgen ``Structure`` (same occupation, same type)."""
    keys: dict[tuple[tuple[int, float], ...], int] = {}
    types = np.empty(len(structure), dtype=np.int64)
    for index, site in enumerate(structure):
        key = tuple(sorted((int(sp.Z), round(float(a), 6)) for sp, a in site.species.items()))
        types[index] = keys.setdefault(key, len(keys) + 1)
    return np.asarray(structure.frac_coords, dtype=float), types


def standard_transform(lattice: np.ndarray, frac: np.ndarray, types: np.ndarray) -> np.ndarray | None:
    """The matrix ``M`` (3 x 3) with ``h_standard = h_input @ M``, or ``None`` when spglib finds no symmetry.

    The standard conventional lattice (rows, Å, unrotated) is ``M.T @ lattice``.
    """
    import spglib

    try:
        cell: Any = (np.asarray(lattice, dtype=float), np.asarray(frac, dtype=float), np.asarray(types, dtype=np.int64))
        dataset = spglib.get_symmetry_dataset(cell, symprec=SYMPREC, angle_tolerance=ANGLE_TOLERANCE)
    except Exception:  # spglib raises for some degenerate inputs; the input setting is kept then
        return None
    if dataset is None:
        return None
    return np.linalg.inv(np.asarray(dataset.transformation_matrix, dtype=float))


def conventional_labels(
    hkl: np.ndarray,
    peak_of: np.ndarray,
    lattice: np.ndarray,
    frac: np.ndarray,
    types: np.ndarray,
    *,
    peak_two_theta: np.ndarray | None = None,
    wavelength: float | None = None,
) -> ConventionalLabels:
    """Hkl families of the peaks of one structure in its conventional standard setting (module docstring).

    pymatgen, given the conventional cell, lists with each peak every reflection of that cell at the same 2θ,
    including those the lattice centring extinguishes (zero intensity), and counts them in the multiplicities
    and in the choice of each family's representative. With ``peak_two_theta`` and ``wavelength`` these
    reflections are added too (found by enumerating the standard cell's reflections within 1e-5° of each
    peak), so that labels and multiplicities are those pymatgen gives on the standard conventional cell.

    :param hkl: ``(R, 3)`` integer indices (input cell) of the reflections of the kept peaks, one per Friedel pair.
    :param peak_of: ``(R,)`` non-decreasing peak number of each reflection (every peak has at least one).
    :param lattice: ``(3, 3)`` input lattice (rows, Å); ``frac`` and ``types`` the sites (see :func:`site_types`).
    :param peak_two_theta: 2θ (degrees) of each peak; ``wavelength`` in Å.
    :return: families ordered by peak and, within a peak, by decreasing standard ``(h, k, l)``; 4 indices
        ``(h, k, i, l)`` when the standard cell is hexagonal (pymatgen's ``Lattice.is_hexagonal``).
    """
    from .batched import is_hexagonal
    from .peaks import family_arrays

    hkl = np.asarray(hkl, dtype=np.int64)
    peak_of = np.asarray(peak_of, dtype=np.int64)
    n_peaks = int(peak_of[-1]) + 1 if len(peak_of) else 0
    transform = standard_transform(lattice, frac, types)
    setting = 'input'
    indices, peaks, standard_lattice = hkl, peak_of, np.asarray(lattice, dtype=float)
    if transform is not None:
        moved = hkl @ transform
        rounded = np.rint(moved)
        integer = np.all(np.abs(moved - rounded) < _INTEGER_TOL, axis=1)
        if len(np.unique(peak_of[integer])) == n_peaks:  # every peak keeps at least one reflection
            indices, peaks = rounded[integer].astype(np.int64), peak_of[integer]
            standard_lattice = transform.T @ standard_lattice
            setting = 'conventional'
            if peak_two_theta is not None and wavelength is not None and np.linalg.det(transform) > 1 + 1e-6:
                extra, extra_peak = _extinct_reflections(standard_lattice, transform, peak_two_theta, wavelength)
                indices, peaks = np.concatenate([indices, extra]), np.concatenate([peaks, extra_peak])
    if setting == 'conventional':  # pymatgen's order within a peak: decreasing (h, k, l)
        order = np.lexsort((-indices[:, 2], -indices[:, 1], -indices[:, 0], peaks))
        indices, peaks = indices[order], peaks[order]
    if bool(is_hexagonal(standard_lattice[None])[0]):
        indices = np.column_stack([indices[:, 0], indices[:, 1], -indices[:, 0] - indices[:, 1], indices[:, 2]])
    representatives, counts, family_peak = family_arrays(indices, peaks)
    return ConventionalLabels(representatives, counts, family_peak, setting)


def _extinct_reflections(
    standard_lattice: np.ndarray, transform: np.ndarray, peak_two_theta: np.ndarray, wavelength: float
) -> tuple[np.ndarray, np.ndarray]:
    """Reflections of the standard cell, one per Friedel pair, extinct by its centring, at the 2θ of a peak.

    :return: their indices ``(E, 3)`` and the peak of each (within :data:`~.batched.MERGE_TOLERANCE` degrees).
    """
    from .batched import MERGE_TOLERANCE

    peak_two_theta = np.asarray(peak_two_theta, dtype=float)
    top = min(179.999, float(peak_two_theta.max()) + 1e-3)
    g_max = 2 * np.sin(np.radians(top / 2)) / wavelength
    bounds = np.floor(g_max * np.linalg.norm(standard_lattice, axis=1)).astype(int)
    axes = [np.arange(-b, b + 1) for b in bounds]
    grid = np.stack(np.meshgrid(*axes, indexing='ij'), axis=-1).reshape(-1, 3)
    h, k, l_ = grid.T
    grid = grid[(h > 0) | ((h == 0) & (k > 0)) | ((h == 0) & (k == 0) & (l_ > 0))]
    back = grid @ np.linalg.inv(transform)  # indices on the input cell: integers for allowed reflections
    grid = grid[~np.all(np.abs(back - np.rint(back)) < _INTEGER_TOL, axis=1)]
    g = np.linalg.norm(grid @ np.linalg.inv(standard_lattice).T, axis=1)
    inside = wavelength * g / 2 < 1
    grid, g = grid[inside], g[inside]
    two_theta = np.degrees(2 * np.arcsin(wavelength * g / 2))
    order = np.argsort(peak_two_theta)
    sorted_peaks = peak_two_theta[order]
    nearest = np.clip(np.searchsorted(sorted_peaks, two_theta), 1, max(1, len(sorted_peaks) - 1))
    candidates = np.stack([nearest - 1, np.minimum(nearest, len(sorted_peaks) - 1)], axis=1)
    distance = np.abs(sorted_peaks[candidates] - two_theta[:, None])
    best = candidates[np.arange(len(candidates)), np.argmin(distance, axis=1)]
    close = distance.min(axis=1) < MERGE_TOLERANCE
    return grid[close].astype(np.int64), order[best[close]].astype(np.int64)
