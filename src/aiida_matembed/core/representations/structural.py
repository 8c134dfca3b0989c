"""Structural representations: sine / Coulomb matrix spectra, radial distribution functions, SOAP.

These are the hand-built structure descriptors of the "Materials Data and Representations" lecture
(Walsh 2024). Each one needs an ordered crystal (no partial occupancy) and handles periodic images
itself, so a cell far smaller than a cutoff is fine.

* :class:`SineMatrix` and :class:`CoulombMatrix`: eigenvalue spectra of the sine matrix (Faber et al.
  2015) and of the Coulomb matrix with minimum-image distances (Rupp et al. 2012), sorted by decreasing
  magnitude and zero-padded to ``max_sites``. Matrices of equal size are diagonalised together.
* :class:`RadialDistributionFunction` and :class:`PartialRadialDistributionFunction`: histograms of
  periodic pair distances on a declared grid (Schütt et al. 2014), from one vectorised neighbour list.
* :class:`Soap`: the SOAP power spectrum (Bartók et al. 2013) computed by featomic, averaged over the
  atoms of each structure (all atoms, or each central species separately).

Units: lengths in Å; matrix elements in atomic units (charges in e, distances in Bohr), as in the
references.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np

from ..elements import SYMBOLS, atomic_number
from ..neighbors import check_cutoff, neighbor_list
from ..structures import (
    MIN_INTERATOMIC_DISTANCE,
    SMALL_CELL_SITES,
    Cell,
    InvalidStructureError,
    closest_pair,
    overlap_error,
    prepare_cells,
    to_pymatgen,
)
from .base import Representation

__all__ = (
    'CoulombMatrix',
    'PartialRadialDistributionFunction',
    'RadialDistributionFunction',
    'SineMatrix',
    'Soap',
    'StructuralRepresentation',
)

BOHR_RADIUS = 0.529177210903
"""Bohr radius in Å (CODATA 2018)."""
ANGSTROM_TO_BOHR = 1.0 / BOHR_RADIUS

FABER_2015 = (
    '@article{faber2015crystal, title={Crystal structure representations for machine learning models of '
    'formation energies}, author={Faber, Felix and Lindmaa, Alexander and von Lilienfeld, O. Anatole and '
    'Armiento, Rickard}, journal={International Journal of Quantum Chemistry}, volume={115}, number={16}, '
    'pages={1094--1101}, year={2015}, doi={10.1002/qua.24917}}'
)
RUPP_2012 = (
    '@article{rupp2012fast, title={Fast and accurate modeling of molecular atomization energies with machine '
    'learning}, author={Rupp, Matthias and Tkatchenko, Alexandre and M{\\"u}ller, Klaus-Robert and von '
    'Lilienfeld, O. Anatole}, journal={Physical Review Letters}, volume={108}, pages={058301}, year={2012}, '
    'doi={10.1103/PhysRevLett.108.058301}}'
)
SCHUTT_2014 = (
    '@article{schutt2014represent, title={How to represent crystal structures for machine learning: Towards '
    'fast prediction of electronic properties}, author={Sch{\\"u}tt, K. T. and Glawe, H. and Brockherde, F. '
    'and Sanna, A. and M{\\"u}ller, K. R. and Gross, E. K. U.}, journal={Physical Review B}, volume={89}, '
    'pages={205118}, year={2014}, doi={10.1103/PhysRevB.89.205118}}'
)
BARTOK_2013 = (
    "@article{bartok2013representing, title={On representing chemical environments}, author={Bart{\\'o}k, "
    "Albert P. and Kondor, Risi and Cs{\\'a}nyi, G{\\'a}bor}, journal={Physical Review B}, volume={87}, "
    'pages={184115}, year={2013}, doi={10.1103/PhysRevB.87.184115}}'
)
MUSIL_2021 = (
    '@article{musil2021efficient, title={Efficient implementation of atom-density representations}, '
    "author={Musil, F{\\'e}lix and Veit, Max and Goscinski, Alexander and Fraux, Guillaume and Willatt, "
    'Michael J. and Stricker, Markus and Junge, Till and Ceriotti, Michele}, journal={The Journal of Chemical '
    'Physics}, volume={154}, pages={114109}, year={2021}, doi={10.1063/5.0044689}}'
)

_MATRIX_BLOCK_ELEMENTS = 2_000_000
"""Largest number of matrix elements diagonalised in one batched call (bounds the temporaries)."""


def canonical_species(symbols: Sequence[str]) -> list[str]:
    """Validate element symbols, drop duplicates and sort them as pymatgen sorts ``Element`` objects.

    pymatgen orders elements by Pauling electronegativity (then symbol); matminer's partial RDF uses the
    same order, so the column blocks of :class:`PartialRadialDistributionFunction` line up with it.
    """
    from pymatgen.core import Element

    if isinstance(symbols, str) or not symbols:
        raise ValueError(f'species must be a non-empty list of element symbols, got {symbols!r}')
    for symbol in symbols:
        atomic_number(symbol)  # raises for unknown symbols
    return [e.symbol for e in sorted({Element(s) for s in symbols})]


def species_in(structures: Sequence[Any]) -> list[str]:
    """Element symbols present in structures (or ``Composition`` objects); unreadable items are skipped."""
    from pymatgen.core import Composition

    found: set[int] = set()
    for item in structures:
        try:
            composition = item if isinstance(item, Composition) else to_pymatgen(item).composition
            found.update(int(getattr(sp, 'Z', 0) or 0) for sp in composition)
        except Exception:
            continue
    return [SYMBOLS[z - 1] for z in sorted(found) if 1 <= z <= len(SYMBOLS)]


class StructuralRepresentation(Representation):
    """Shared input handling of the structural representations (ordered crystals only).

    A batch is validated at once by :func:`~aiida_matembed.core.structures.prepare_cells`; subclasses add
    their own checks of one :class:`Cell` in :meth:`_check_cell`.
    """

    input_kind = 'structure'
    supports_partial_occupancy = False
    checks_overlap_itself: ClassVar[bool] = False
    """True when :meth:`_check_cell` finds overlapping atoms from a neighbour list it builds anyway."""

    def _prepare(self, item: Any) -> Any:
        result = self._prepare_many([item])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def _prepare_many(self, items: Sequence[Any]) -> list[Any]:
        out: list[Any] = prepare_cells(items, check_overlap=not self.checks_overlap_itself)
        for k, cell in enumerate(out):
            if isinstance(cell, Cell):
                try:
                    out[k] = self._check_cell(cell)
                except Exception as exception:
                    out[k] = exception
        return out

    def _check_cell(self, cell: Cell) -> Any:
        """Check (and optionally convert) one valid cell; raise to reject it."""
        return cell


class _SpeciesOption(StructuralRepresentation):
    """A ``species`` option (element symbols) that ``None`` leaves to :meth:`fit` ("from the batch")."""

    species: list[str] | None

    def fit(self, structures: Sequence[Any]) -> Representation:
        if self.species is not None:
            return self
        found = species_in(structures)
        if not found:
            return self
        return type(self).from_params({**self.get_params(), 'species': found})

    def _species(self) -> list[str]:
        if self.species is None:
            raise ValueError(f'{self.name}: species is None; pass species=[...] or call fit(structures) first')
        return self.species

    def _check_species(self, cell: Cell) -> None:
        allowed = {atomic_number(s) for s in self._species()}
        missing = sorted(set(cell.z.tolist()) - allowed)
        if missing:
            raise InvalidStructureError(
                f'element {SYMBOLS[missing[0] - 1]} is not in the species list {self._species()} of {self.name}'
            )


def _check_int(value: Any, name: str, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not minimum <= value <= maximum:
        raise ValueError(f'{name} must be an integer in [{minimum}, {maximum}], got {value!r}')
    return int(value)


def _check_positive(value: Any, name: str, maximum: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < float(value) <= maximum:
        raise ValueError(f'{name} must be a number in (0, {maximum}], got {value!r}')
    return float(value)


# ------------------------------------------------------------------------------------ matrix spectra
class _MatrixSpectrum(StructuralRepresentation):
    """Sorted eigenvalues of an ``N x N`` site matrix, zero-padded to ``max_sites``."""

    intensive = False
    label_prefix: ClassVar[str]

    def __init__(self, *, max_sites: int = 64, diagonal: bool = True) -> None:
        self.max_sites = _check_int(max_sites, 'max_sites', 1, 4096)
        if not isinstance(diagonal, bool):
            raise ValueError(f'diagonal must be true or false, got {diagonal!r}')
        self.diagonal = diagonal

    def feature_labels(self) -> list[str]:
        return [f'{self.label_prefix} eig {i}' for i in range(self.max_sites)]

    def _check_cell(self, cell: Cell) -> Cell:
        if len(cell.z) > self.max_sites:
            raise InvalidStructureError(
                f'structure has {len(cell.z)} sites, more than max_sites={self.max_sites} of {self.name}: '
                f'raise the option max_sites (e.g. -p max_sites={len(cell.z)})'
            )
        return cell

    def _off_diagonal_distance(self, frac: np.ndarray, lattice: np.ndarray, cells: list[Cell]) -> np.ndarray:
        """``(B, M, M)`` pair "distances" in Bohr of zero-padded cells (only real pairs are used)."""
        raise NotImplementedError

    def _compute(self, prepared: list[Cell]) -> np.ndarray:
        out = np.zeros((len(prepared), self.max_sites))
        by_size: dict[int, list[int]] = {}
        for row, cell in enumerate(prepared):
            by_size.setdefault(_bucket(len(cell.z)), []).append(row)
        for m, rows in by_size.items():
            step = max(1, _MATRIX_BLOCK_ELEMENTS // (m * m * 3))
            for start in range(0, len(rows), step):
                block = rows[start : start + step]
                spectra = self._spectra([prepared[r] for r in block], m)
                width = min(m, self.max_sites)
                out[block, :width] = spectra[:, :width]
        return out

    def _spectra(self, cells: list[Cell], m: int) -> np.ndarray:
        """Sorted spectra of cells padded to ``m`` sites with empty (Z = 0) rows and columns.

        A zero row and column adds one zero eigenvalue and leaves the others unchanged; sorted by
        magnitude, the padding zeros come last, where the spectrum is zero-padded anyway. The padding
        depends only on the cell's own size, so a structure gives the same numbers in any batch.
        """
        b = len(cells)
        z = np.zeros((b, m))
        frac = np.zeros((b, m, 3))
        for k, cell in enumerate(cells):
            z[k, : len(cell.z)] = cell.z
            frac[k, : len(cell.z)] = cell.frac
        lattice = np.stack([c.lattice for c in cells])
        distance = self._off_diagonal_distance(frac, lattice, cells)
        real = z > 0
        pairs = real[:, :, None] & real[:, None, :] & ~np.eye(m, dtype=bool)
        with np.errstate(divide='ignore', invalid='ignore'):
            matrix = np.where(pairs, z[:, :, None] * z[:, None, :] / np.where(pairs, distance, 1.0), 0.0)
        if self.diagonal:
            matrix[:, np.arange(m), np.arange(m)] = 0.5 * z**2.4
        return sort_spectra(np.linalg.eigvalsh(matrix))


_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128)


def _bucket(n: int) -> int:
    """Padded size of an ``n``-site matrix: few distinct sizes, so a batch is diagonalised in few calls."""
    for size in _BUCKETS:
        if n <= size:
            return size
    return -(-n // 64) * 64


def sort_spectra(eigenvalues: np.ndarray) -> np.ndarray:
    """Sort each row by decreasing magnitude; of a pair ``+x, -x`` (equal to 1e-8) the positive comes first."""
    magnitude = np.round(np.abs(eigenvalues), 8)
    order = np.lexsort((-eigenvalues, -magnitude), axis=-1)
    return np.take_along_axis(eigenvalues, order, axis=-1)


class SineMatrix(_MatrixSpectrum):
    """Eigenvalue spectrum of the sine matrix (Faber et al. 2015), a periodic Coulomb-matrix variant.

    ``M_ii = 0.5 Z_i^2.4`` and ``M_ij = Z_i Z_j / |B^T sin^2(pi (f_i - f_j))|`` with ``f`` fractional
    coordinates, ``B`` the lattice (rows) and the distance in Bohr. Eigenvalues are sorted by decreasing
    absolute value and padded with zeros to ``max_sites``. Values equal matminer's ``SineCoulombMatrix``
    (sorted), except that matminer converts Å to Bohr with the "Ångström star" (1.00001495 Å); this uses
    the Ångström (a relative difference of 1.5e-5 in the off-diagonal elements).

    The matrices are built while the batch is validated: the overlap check of the cells up to 200 sites reads
    the same ``sin^2(pi (f_i - f_j))`` (see :meth:`_prepare_many`), so a batch is read, checked and diagonalised
    with numpy operations only.

    The spectrum depends on the number of sites, so it is not intensive (a supercell differs).

    :param max_sites: padded length; structures with more sites fail with a clear message.
    :param diagonal: keep ``0.5 Z^2.4`` on the diagonal (``False``: zeros, as matminer's ``diag_elems``).
    """

    name = 'matembed.sine_matrix'
    version = 1
    description = 'Sorted eigenvalues of the sine matrix (Faber et al. 2015), zero-padded'
    label_prefix = 'sine matrix'
    checks_overlap_itself = True

    def citations(self) -> list[str]:
        return [FABER_2015]

    def _prepare_many(self, items: Sequence[Any]) -> list[Any]:
        """Validate a batch and build the (padded) sine matrix of every good cell; the overlap check shares them.

        In a cell whose interplanar spacings ``h_k`` all exceed twice the overlap limit ``d``, two sites are
        closer than ``d`` only if, for every axis ``k``, their wrapped fractional difference ``w_k`` satisfies
        ``|w_k| h_k < d`` (see :func:`~aiida_matembed.core.structures.read_cells`), i.e.
        ``sin^2(pi f_ik - pi f_jk) < sin^2(pi d / h_k)``: the ``sin^2`` terms of the sine matrix select the few
        candidate pairs, whose minimum-image distance is then measured. Other cells are checked by the
        neighbour search.
        """
        out = super()._prepare_many(items)  # read and checked, overlaps left to this method
        by_size: dict[int, list[int]] = {}
        for k, cell in enumerate(out):
            if isinstance(cell, Cell):
                by_size.setdefault(_bucket(len(cell.z)), []).append(k)
        for m, rows in by_size.items():
            step = max(1, _MATRIX_BLOCK_ELEMENTS // (m * m * 3))
            for start in range(0, len(rows), step):
                block = rows[start : start + step]
                cells: list[Cell] = [out[k] for k in block]
                matrices, overlapping = self._matrices(cells, m)
                for position, k in enumerate(block):
                    out[k] = _SineItem(matrices, position)
                for position in np.flatnonzero(overlapping).tolist():
                    cell = cells[position]
                    pair = closest_pair(cell.cart, cell.lattice, MIN_INTERATOMIC_DISTANCE)
                    if pair is not None:
                        out[block[position]] = overlap_error(pair, MIN_INTERATOMIC_DISTANCE)
        return out

    def _matrices(self, cells: list[Cell], m: int) -> tuple[np.ndarray, np.ndarray]:
        """``(B, m, m)`` sine matrices of cells padded to ``m`` sites, and which cells may have overlapping atoms."""
        b = len(cells)
        z = np.zeros((b, m))
        frac = np.zeros((3, b, m))  # axis first: every array below is contiguous per axis
        for k, cell in enumerate(cells):
            z[k, : len(cell.z)] = cell.z
            frac[:, k, : len(cell.z)] = cell.frac.T
        lattice = np.stack([c.lattice for c in cells])
        # sin^2(pi (f_i - f_j)) per axis, from sin(pi f) and cos(pi f) of each site: no sine per pair
        sine, cosine = np.sin(np.pi * frac), np.cos(np.pi * frac)
        sin2 = []
        for axis in range(3):
            term = sine[axis][:, :, None] * cosine[axis][:, None, :]
            term -= cosine[axis][:, :, None] * sine[axis][:, None, :]
            term *= term
            sin2.append(term)
        # |sum_k sin2_k a_k|^2 = sum_kl sin2_k sin2_l (a_k . a_l) with the metric g = B B^T, factorised
        g = (lattice @ lattice.transpose(0, 2, 1))[:, :, :, None, None]  # (B, 3, 3, 1, 1)
        s0, s1, s2 = sin2
        squared = g[:, 0, 0] * s0
        squared += 2 * g[:, 0, 1] * s1
        squared += 2 * g[:, 0, 2] * s2
        squared *= s0
        second = g[:, 1, 1] * s1
        second += 2 * g[:, 1, 2] * s2
        second *= s1
        squared += second
        third = g[:, 2, 2] * s2
        third *= s2
        squared += third
        np.maximum(squared, 0.0, out=squared)
        distance = np.sqrt(squared, out=squared)
        distance *= ANGSTROM_TO_BOHR
        real = z > 0
        pairs = real[:, :, None] & real[:, None, :]
        pairs[:, np.arange(m), np.arange(m)] = False
        with np.errstate(divide='ignore', invalid='ignore'):
            matrix = z[:, :, None] * z[:, None, :]
            matrix /= distance
        matrix = np.where(pairs, matrix, 0.0)
        if self.diagonal:
            matrix[:, np.arange(m), np.arange(m)] = 0.5 * z**2.4
        # overlap candidates from the same sin^2 terms (cells with large enough spacings; the others: all flagged)
        volumes = np.array([c.volume for c in cells])
        crosses = np.cross(lattice[:, [1, 2, 0]], lattice[:, [2, 0, 1]])
        spacings = volumes[:, None] / np.sqrt((crosses**2).sum(axis=2))  # (B, 3)
        sizes = real.sum(axis=1)
        checked = (spacings.min(axis=1) > 2 * MIN_INTERATOMIC_DISTANCE) & (sizes <= SMALL_CELL_SITES)
        threshold = np.sin(np.pi * np.minimum(MIN_INTERATOMIC_DISTANCE / spacings, 0.5)) ** 2  # (B, 3)
        near = pairs & checked[:, None, None]
        for axis in range(3):
            near &= sin2[axis] < threshold[:, axis, None, None]
        overlapping = ~checked
        cell_index, i, j = np.nonzero(near)
        if len(cell_index):
            wrapped = frac[:, cell_index, j].T - frac[:, cell_index, i].T
            wrapped -= np.rint(wrapped)
            vector = np.einsum('pi,pij->pj', wrapped, lattice[cell_index])
            close = (vector * vector).sum(axis=1) < MIN_INTERATOMIC_DISTANCE**2
            overlapping[cell_index[close]] = True
        return matrix, overlapping

    def _compute(self, prepared: list[Any]) -> np.ndarray:
        out = np.zeros((len(prepared), self.max_sites))
        by_block: dict[int, list[int]] = {}
        for row, item in enumerate(prepared):
            by_block.setdefault(id(item.block), []).append(row)
        for rows in by_block.values():
            block = prepared[rows[0]].block
            positions = [prepared[r].position for r in rows]
            if positions != list(range(len(block))):  # part of a block (or another order): take those matrices
                block = block[positions]
            m = block.shape[1]
            width = min(m, self.max_sites)
            out[rows, :width] = sort_spectra(np.linalg.eigvalsh(block))[:, :width]
        return out


class _SineItem(NamedTuple):
    """A validated cell's sine matrix ``block[position]``, zero-padded to its size bucket.

    The block is shared by the cells of one bucket, which are diagonalised together.
    """

    block: np.ndarray
    position: int


class CoulombMatrix(_MatrixSpectrum):
    """Eigenvalue spectrum of the Coulomb matrix (Rupp et al. 2012) with minimum-image distances.

    ``M_ii = 0.5 Z_i^2.4`` and ``M_ij = Z_i Z_j / d_ij`` where ``d_ij`` (Bohr) is the shortest distance
    between site ``i`` and any periodic image of site ``j`` (pymatgen's ``Lattice.get_all_distances``,
    the distance matminer's ``CoulombMatrix`` uses for a ``Structure``). Eigenvalues are sorted by
    decreasing absolute value and zero-padded to ``max_sites``; matminer leaves them unsorted and uses
    the "Ångström star" for the Bohr conversion (a 1.5e-5 relative difference).

    :param max_sites: padded length; structures with more sites fail with a clear message.
    :param diagonal: keep ``0.5 Z^2.4`` on the diagonal.
    """

    name = 'matembed.coulomb_matrix'
    version = 1
    description = 'Sorted eigenvalues of the Coulomb matrix with minimum-image distances (Rupp et al. 2012)'
    label_prefix = 'coulomb matrix'

    def citations(self) -> list[str]:
        return [RUPP_2012]

    def _off_diagonal_distance(self, frac: np.ndarray, lattice: np.ndarray, cells: list[Cell]) -> np.ndarray:
        from pymatgen.core import Lattice

        out = np.ones(frac.shape[:2] + frac.shape[1:2])
        for k, cell in enumerate(cells):
            n = len(cell.z)
            out[k, :n, :n] = Lattice(cell.lattice).get_all_distances(cell.frac, cell.frac)
        return out * ANGSTROM_TO_BOHR


# ------------------------------------------------------------------------- radial distribution functions
def _bin_grid(cutoff: float, bin_size: float) -> tuple[int, np.ndarray]:
    n_bins = round(cutoff / bin_size)
    if n_bins < 1 or abs(n_bins * bin_size - cutoff) > 1e-9 * cutoff:
        raise ValueError(f'cutoff ({cutoff} Å) must be a whole number of bins of bin_size ({bin_size} Å)')
    return n_bins, np.arange(n_bins + 1) * bin_size


def _bin_index(distances: np.ndarray, bin_size: float) -> np.ndarray:
    """Bin of each distance; bins are ``[k h, (k + 1) h)``.

    A distance within 1e-9 of a bin edge goes to the upper bin, so that round-off (a rotated copy of
    the crystal) never moves a pair between bins.
    """
    return np.floor(distances / bin_size + 1e-9).astype(np.int64)


class RadialDistributionFunction(StructuralRepresentation):
    """Radial distribution function ``g(r)`` of a crystal on the grid ``[0, cutoff)`` in steps of ``bin_size``.

    ``g(r_k) = n_k / (N * rho * 4/3 pi (r_{k+1}^3 - r_k^3))`` with ``n_k`` the number of ordered pairs
    (periodic images included) whose distance falls in bin ``k``, ``N`` the number of sites and
    ``rho = N / V``; ``g -> 1`` at large ``r`` and a supercell gives the same ``g``. matminer's
    ``RadialDistributionFunction`` omits the ``1 / N`` (its values are ``N`` times these, so they change
    with the cell chosen); otherwise the histogram and its bins are the same.

    :param cutoff: largest distance (Å), a whole number of bins.
    :param bin_size: bin width (Å).
    """

    name = 'matembed.rdf'
    version = 1
    description = 'Radial distribution function g(r) on a fixed grid (periodic images included)'

    def __init__(self, *, cutoff: float = 10.0, bin_size: float = 0.1) -> None:
        self.cutoff = check_cutoff(cutoff)
        self.bin_size = _check_positive(bin_size, 'bin_size', self.cutoff)
        self._n_bins, self._edges = _bin_grid(self.cutoff, self.bin_size)

    def citations(self) -> list[str]:
        return [SCHUTT_2014]

    def feature_labels(self) -> list[str]:
        e = self._edges
        return [f'rdf {e[k]:.3f}-{e[k + 1]:.3f}A' for k in range(self._n_bins)]

    def _shell_volumes(self) -> np.ndarray:
        return 4.0 / 3.0 * np.pi * np.diff(self._edges**3)

    def _compute(self, prepared: list[Cell]) -> np.ndarray:
        counts = np.zeros((len(prepared), self._n_bins))
        for row, cell in enumerate(prepared):
            pairs = neighbor_list(cell.cart, cell.lattice, self.cutoff)
            bins = _bin_index(pairs.distances, self.bin_size)
            bins = bins[bins < self._n_bins]
            counts[row] = np.bincount(bins, minlength=self._n_bins)
        n_sites = np.array([len(c.z) for c in prepared], dtype=float)
        density = n_sites / np.array([c.volume for c in prepared])
        return counts / (n_sites * density)[:, None] / self._shell_volumes()[None, :]


class PartialRadialDistributionFunction(_SpeciesOption, RadialDistributionFunction):
    """Partial radial distribution functions ``g_ab(r)`` for every pair of species ``a <= b``.

    ``g_ab(r_k) = n_ab,k / (N_a * 4/3 pi (r_{k+1}^3 - r_k^3))``: the number of ``b`` neighbours per
    ``a`` atom in each spherical shell divided by the shell volume, the convention of Schütt et al.
    (2014) and of matminer's ``PartialRadialDistributionFunction`` (at large ``r`` it tends to the number
    density of ``b``). Species are ordered as pymatgen orders elements (by electronegativity), as in
    matminer; pairs absent from a structure are zero. Intensive. One deliberate difference: matminer
    divides by ``N * to_reduced_dict[a]``, which halves its values for elements whose pymatgen reduced
    formula is diatomic (O2, N2, H2, F2, Cl2, ...); here it is always ``N_a``.

    :param cutoff: largest distance (Å), a whole number of bins.
    :param bin_size: bin width (Å).
    :param species: element symbols to include, or ``None`` to take them from the batch
        (:meth:`fit`); a structure with an element outside the list fails with a clear message.
    """

    name = 'matembed.partial_rdf'
    version = 1
    description = 'Partial radial distribution functions g_ab(r) for each pair of species (Schütt et al. 2014)'

    def __init__(self, *, cutoff: float = 10.0, bin_size: float = 0.1, species: list[str] | None = None) -> None:
        super().__init__(cutoff=cutoff, bin_size=bin_size)
        self.species = None if species is None else canonical_species(species)

    def _pairs(self) -> list[tuple[str, str]]:
        return list(itertools.combinations_with_replacement(self._species(), 2))

    def feature_labels(self) -> list[str]:
        e = self._edges
        return [f'{a}-{b} prdf {e[k]:.3f}-{e[k + 1]:.3f}A' for a, b in self._pairs() for k in range(self._n_bins)]

    def _check_cell(self, cell: Cell) -> Cell:
        self._check_species(cell)
        return cell

    def _compute(self, prepared: list[Cell]) -> np.ndarray:
        species = [atomic_number(s) for s in self._species()]
        n_species = len(species)
        position = np.full(max(species) + 1, -1)
        position[species] = np.arange(n_species)
        # column block of the ordered pair (a, b): the unordered pair, centre first in species order
        block = np.full((n_species, n_species), -1)
        for k, (a, b) in enumerate(itertools.combinations_with_replacement(range(n_species), 2)):
            block[a, b] = k
        first_of_pair = [a for a, _ in itertools.combinations_with_replacement(range(n_species), 2)]
        n_bins = self._n_bins
        out = np.zeros((len(prepared), len(self._pairs()) * n_bins))
        shells = self._shell_volumes()
        for row, cell in enumerate(prepared):
            kind = position[cell.z]
            pairs = neighbor_list(cell.cart, cell.lattice, self.cutoff)
            centre, other = kind[pairs.centers], kind[pairs.neighbors]
            bins = _bin_index(pairs.distances, self.bin_size)
            keep = (bins < n_bins) & (block[centre, other] >= 0)
            columns = block[centre[keep], other[keep]] * n_bins + bins[keep]
            counts = np.bincount(columns, minlength=out.shape[1]).astype(float)
            n_centre = np.bincount(kind, minlength=n_species).astype(float)
            per_block = np.repeat(n_centre[first_of_pair], n_bins)
            with np.errstate(invalid='ignore', divide='ignore'):
                values = counts / per_block / np.tile(shells, len(self._pairs()))
            out[row] = np.where(per_block > 0, values, 0.0)
        return out


# --------------------------------------------------------------------------------------------- SOAP
SoapAverage = Literal['structure', 'species']


class Soap(_SpeciesOption):
    """SOAP power spectrum (Bartók et al. 2013) averaged over the atoms of each structure, by featomic.

    featomic (Musil et al. 2021) computes the per-atom power spectrum ``p^{ab}_{n n' l}`` of the
    Gaussian-smeared neighbour density (GTO radial basis, shifted-cosine cutoff smoothing; periodic
    images included). This class only adapts inputs and outputs: it converts structures, places every
    ``(neighbour a, neighbour b)`` block in fixed columns for the declared species, and averages:

    * ``average='structure'``: the mean over all atoms (one vector per structure);
    * ``average='species'``: the mean over the atoms of each central species, one block per species
      (zeros for a species absent from the structure).

    :param cutoff: neighbour cutoff radius (Å).
    :param n_max: number of radial basis functions (featomic ``max_radial = n_max - 1``).
    :param l_max: largest angular momentum.
    :param sigma: width of the atomic Gaussians (Å).
    :param cutoff_smoothing: width of the shifted-cosine smoothing at the cutoff (Å).
    :param species: element symbols, or ``None`` to take them from the batch (:meth:`fit`); structures with
        an element outside the list fail with a clear message.
    :param average: ``'structure'`` or ``'species'`` (see above).

    featomic runs on all cores by itself, so ``featurize_many(n_jobs=...)`` computes in-process.
    """

    name = 'matembed.soap'
    version = 1
    threaded = True  # featomic parallelises over structures itself (rayon); n_jobs is ignored
    description = 'SOAP power spectrum averaged over each structure (featomic)'

    def __init__(
        self,
        *,
        cutoff: float = 5.0,
        n_max: int = 6,
        l_max: int = 4,
        sigma: float = 0.5,
        cutoff_smoothing: float = 0.5,
        species: list[str] | None = None,
        average: SoapAverage = 'structure',
    ) -> None:
        self.cutoff = check_cutoff(cutoff)
        if self.cutoff > 15.0:
            raise ValueError(f'cutoff = {self.cutoff} Å is too large for SOAP (at most 15 Å)')
        self.n_max = _check_int(n_max, 'n_max', 1, 20)
        self.l_max = _check_int(l_max, 'l_max', 0, 15)
        self.sigma = _check_positive(sigma, 'sigma', self.cutoff)
        self.cutoff_smoothing = _check_positive(cutoff_smoothing, 'cutoff_smoothing', self.cutoff)
        self.species = None if species is None else canonical_species(species)
        if average not in ('structure', 'species'):
            raise ValueError(f"average must be 'structure' or 'species', got {average!r}")
        self.average: SoapAverage = average
        self._calculator: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state['_calculator'] = None  # featomic calculators hold C handles; rebuild in the worker
        return state

    def citations(self) -> list[str]:
        return [BARTOK_2013, MUSIL_2021]

    def _property_labels(self) -> list[tuple[int, int, int]]:
        return [(ell, n1, n2) for ell in range(self.l_max + 1) for n1 in range(self.n_max) for n2 in range(self.n_max)]

    def _neighbour_pairs(self) -> list[tuple[str, str]]:
        """Unordered neighbour-species pairs in featomic's convention (``a <= b`` by atomic number)."""
        symbols = sorted(self._species(), key=atomic_number)
        return list(itertools.combinations_with_replacement(symbols, 2))

    def feature_labels(self) -> list[str]:
        props = self._property_labels()
        pairs = self._neighbour_pairs()
        body = [f'{a}-{b} n{n1} n{n2} l{ell}' for a, b in pairs for (ell, n1, n2) in props]
        if self.average == 'structure':
            return [f'soap {x}' for x in body]
        return [f'soap {c}: {x}' for c in self._species() for x in body]

    def _featomic(self) -> Any:
        if self._calculator is None:
            import featomic
            from featomic.basis import Gto, TensorProduct
            from featomic.cutoff import Cutoff, ShiftedCosine
            from featomic.density import Gaussian

            self._calculator = featomic.SoapPowerSpectrum(
                cutoff=Cutoff(radius=self.cutoff, smoothing=ShiftedCosine(width=self.cutoff_smoothing)),
                density=Gaussian(width=self.sigma),
                basis=TensorProduct(max_angular=self.l_max, radial=Gto(max_radial=self.n_max - 1)),
            )
        return self._calculator

    def _check_cell(self, cell: Cell) -> Any:
        from ase import Atoms

        self._check_species(cell)
        return Atoms(numbers=cell.z, positions=cell.cart, cell=cell.lattice, pbc=True)

    def _compute(self, prepared: list[Any]) -> np.ndarray:
        import metatensor

        props = self._property_labels()
        selected = metatensor.Labels(['l', 'n_1', 'n_2'], np.array(props, dtype=np.int32).reshape(-1, 3))
        descriptor = self._featomic().compute(prepared, selected_properties=selected)
        n_props = len(props)
        pair_index = {(atomic_number(a), atomic_number(b)): k for k, (a, b) in enumerate(self._neighbour_pairs())}
        centre_index = {atomic_number(s): k for k, s in enumerate(self._species())}
        n_pairs = len(pair_index)
        n_centres = 1 if self.average == 'structure' else len(centre_index)
        sums = np.zeros((len(prepared), n_centres, n_pairs * n_props))
        counts = np.zeros((len(prepared), n_centres))
        for key, block in descriptor.items():
            centre, a, b = (int(key[name]) for name in ('center_type', 'neighbor_1_type', 'neighbor_2_type'))
            c = 0 if self.average == 'structure' else centre_index[centre]
            k = pair_index[(a, b)]
            systems = np.asarray(block.samples.column('system'), dtype=np.int64)
            if not len(systems):
                continue
            # samples are sorted by system: sum each run of rows at once
            starts = np.flatnonzero(np.r_[True, systems[1:] != systems[:-1]])
            sums[systems[starts], c, k * n_props : (k + 1) * n_props] += np.add.reduceat(
                np.asarray(block.values), starts, axis=0
            )
        for row, atoms in enumerate(prepared):
            numbers = atoms.numbers
            if self.average == 'structure':
                counts[row, 0] = len(numbers)
            else:
                for z, k in centre_index.items():
                    counts[row, k] = np.count_nonzero(numbers == z)
        with np.errstate(invalid='ignore', divide='ignore'):
            means = np.where(counts[:, :, None] > 0, sums / counts[:, :, None], 0.0)
        return means.reshape(len(prepared), -1)
