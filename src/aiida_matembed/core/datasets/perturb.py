"""Symmetry-preserving perturbations of crystals: strains and atomic displacements that keep the space group.

Training a powder-pattern symmetry classifier on a fixed set of structures teaches it their intensity patterns;
what decides the crystal system and space group is how the peak positions are related (the lattice metric
allowed by the point group) and which reflections are absent (the centring and glide/screw translations).
Resampling each structure every epoch with a random strain and random displacements that respect its own
symmetry operations gives new patterns with the same labels, as the on-the-fly generation of synthetic
crystals does in Schopmans et al., *Digital Discovery* 2, 1644 (2023).

Both perturbations are projected onto the symmetric subspace with the Reynolds operator (the group average):

* strain ``E`` (symmetric, Cartesian) -> ``mean_g R_g E R_g^T`` where ``R_g`` are the Cartesian rotations of the
  cell's operations; the result commutes with every ``R_g``, so the strained lattice has the same operations
  (a cubic cell only changes volume, a tetragonal one ``a`` and ``c``, a triclinic one all six parameters);
* displacements ``d_i`` (fractional) -> ``d'_j = mean_g W_g d_{g^-1(j)}``, where ``g`` maps atom ``i`` to
  ``perm_g(i)``; atoms on special positions only move along their free directions.

The operations are found with spglib (Togo et al., *Sci. Technol. Adv. Mater. Meth.* 4, 2384822 (2024)).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pymatgen.core import Structure

__all__ = ('CellSymmetry', 'cell_symmetry', 'perturb_structures')

_VOIGT = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]


@dataclass(frozen=True)
class CellSymmetry:
    """The symmetry operations of one cell, in the forms the perturbations need."""

    rotations: np.ndarray
    """``(G, 3, 3)`` integer rotations acting on fractional column vectors (spglib's ``W``)."""
    permutations: np.ndarray
    """``(G, N)``: operation ``g`` takes atom ``i`` to atom ``permutations[g, i]``."""
    strain_basis: np.ndarray
    """``(d, 3, 3)`` orthonormal (Frobenius) basis of the symmetric Cartesian strains the point group allows;
    ``d`` is 1 (cubic), 2 (hexagonal, trigonal, tetragonal), 3 (orthorhombic), 4 (monoclinic) or 6 (triclinic)."""


def cell_symmetry(structure: Structure, symprec: float = 1e-3, match_tol: float = 1e-2) -> CellSymmetry:
    """The operations of ``structure`` (spglib, tolerance ``symprec`` in Å) and the atom permutation of each.

    :param match_tol: largest distance (Å) between an atom's image and the atom it is matched to.
    :raises ValueError: for a structure spglib cannot analyse or whose operations do not permute its atoms.
    """
    import spglib

    lattice = np.asarray(structure.lattice.matrix, dtype=float)
    frac = np.asarray(structure.frac_coords, dtype=float)
    numbers = np.array([site.specie.Z for site in structure], dtype=np.int64)
    with warnings.catch_warnings():  # spglib 2.5+ warns about its return-None error handling, which we check
        warnings.filterwarnings('ignore', 'Set OLD_ERROR_HANDLING', DeprecationWarning)
        try:
            cell: Any = (lattice, frac, numbers)
            found = spglib.get_symmetry(cell, symprec=symprec)
        except Exception as exception:  # spglib.error.SpglibError where OLD_ERROR_HANDLING is off
            raise ValueError(f'spglib found no symmetry operations ({exception})') from None
    if found is None:
        raise ValueError(f'spglib found no symmetry operations ({spglib.get_error_message()})')
    rotations = np.asarray(found['rotations'], dtype=np.int64)
    translations = np.asarray(found['translations'], dtype=float)
    images = np.einsum('gij,nj->gni', rotations, frac) + translations[:, None, :]  # (G, N, 3)
    diff = images[:, :, None, :] - frac[None, None, :, :]  # (G, N, N, 3)
    diff -= np.round(diff)
    distance = np.linalg.norm(diff @ lattice, axis=-1)
    distance = np.where(numbers[None, :, None] == numbers[None, None, :], distance, np.inf)
    permutations = distance.argmin(axis=2)
    worst = float(np.take_along_axis(distance, permutations[:, :, None], axis=2).max())
    if worst > match_tol:
        raise ValueError(f'the symmetry operations do not map the atoms onto each other (worst {worst:.3g} Å)')
    if any(len(np.unique(p)) != len(p) for p in permutations):
        raise ValueError('a symmetry operation maps two atoms onto one')
    # Cartesian rotations (x_cart = L^T x_frac): R = L^T W L^-T
    cart = np.einsum('ji,gjk,kl->gil', lattice, rotations, np.linalg.inv(lattice).T)
    projected = []
    for a, b in _VOIGT:
        unit = np.zeros((3, 3))
        unit[a, b] = unit[b, a] = 1.0
        projected.append(np.einsum('gij,jk,glk->il', cart, unit, cart).ravel() / len(cart))
    _, singular, vt = np.linalg.svd(np.array(projected))
    rank = int((singular > 1e-6 * singular[0]).sum())
    basis = vt[:rank].reshape(rank, 3, 3)
    basis = 0.5 * (basis + basis.transpose(0, 2, 1))
    return CellSymmetry(rotations, permutations.astype(np.int32), basis)


def _symmetrise_displacements(displacement: np.ndarray, symmetry: CellSymmetry) -> np.ndarray:
    out = np.zeros_like(displacement)
    for rotation, permutation in zip(symmetry.rotations, symmetry.permutations, strict=True):
        out[permutation] += displacement @ rotation.T
    return out / len(symmetry.rotations)


def perturb_structures(
    structures: list[Structure],
    symmetries: list[CellSymmetry | None],
    rng: np.random.Generator,
    *,
    strain: float = 0.03,
    displacement: float = 0.05,
) -> list[Structure]:
    """Copies of ``structures`` with a random symmetric strain and random symmetric displacements.

    :param symmetries: from :func:`cell_symmetry`; ``None`` leaves that structure unchanged.
    :param strain: standard deviation of each coefficient of the strain in the orthonormal symmetric basis
        (dimensionless; clipped at 2.5 standard deviations), e.g. 0.03 changes lattice parameters by ~2-3%.
    :param displacement: standard deviation (Å) of each Cartesian component of the random displacement before
        it is symmetrised (the symmetrised one is smaller on special positions).
    """
    from pymatgen.core import Lattice, Structure

    if len(structures) != len(symmetries):
        raise ValueError(f'{len(structures)} structures but {len(symmetries)} symmetries')
    for name, value in (('strain', strain), ('displacement', displacement)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f'{name} must be a finite number >= 0, got {value!r}')
    out: list[Structure] = []
    for structure, symmetry in zip(structures, symmetries, strict=True):
        if symmetry is None:
            out.append(structure)
            continue
        lattice = np.asarray(structure.lattice.matrix, dtype=float)
        coefficients = np.clip(rng.normal(0.0, strain, len(symmetry.strain_basis)), -2.5 * strain, 2.5 * strain)
        epsilon = np.einsum('d,dij->ij', coefficients, symmetry.strain_basis)
        frac = np.asarray(structure.frac_coords, dtype=float)
        if displacement > 0:
            moves = rng.normal(0.0, displacement, frac.shape) @ np.linalg.inv(lattice)  # Cartesian Å -> fractional
            frac = frac + _symmetrise_displacements(moves, symmetry)
        new_lattice = lattice @ (np.eye(3) + epsilon)
        out.append(Structure(Lattice(new_lattice), structure.species, frac % 1.0))
    return out


def symmetries_of(structures: list[Any], symprec: float = 1e-3) -> list[CellSymmetry | None]:
    """:func:`cell_symmetry` of each structure, ``None`` where it fails (those are not perturbed)."""
    out: list[CellSymmetry | None] = []
    for structure in structures:
        try:
            out.append(cell_symmetry(structure, symprec=symprec))
        except (ValueError, TypeError, AttributeError):
            out.append(None)
    return out
