"""Symmetry-preserving perturbations, checked against spglib's own analysis through pymatgen."""

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from aiida_matembed.core.datasets.perturb import cell_symmetry, perturb_structures, symmetries_of

# the number of independent strains each crystal system allows (elastic-strain symmetry, Nye 1957)
STRAIN_DIMENSIONS = {
    'cubic': 1,
    'hexagonal': 2,
    'trigonal': 2,
    'tetragonal': 2,
    'orthorhombic': 3,
    'monoclinic': 4,
    'triclinic': 6,
}


def _space_group(structure, symprec=1e-3):
    return SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number()


@pytest.fixture(scope='module')
def sample(prototypes):
    """Up to 10 pymatgen AFLOW prototypes (<= 24 sites) of each of the seven crystal systems."""
    by_system: dict[str, list] = {}
    for p in prototypes:
        if len(p.structure) <= 24:
            system = SpacegroupAnalyzer(p.structure, symprec=1e-3).get_crystal_system()
            by_system.setdefault(system, []).append(p.structure)
    assert len(by_system) == 7
    return [s for structures in by_system.values() for s in structures[:10]]


def test_space_group_is_kept_and_the_structure_changes(sample):
    symmetries = symmetries_of(sample)
    assert all(s is not None for s in symmetries)
    perturbed = perturb_structures(sample, symmetries, np.random.default_rng(0), strain=0.04, displacement=0.08)
    systems = set()
    for before, after in zip(sample, perturbed, strict=True):
        analyser = SpacegroupAnalyzer(before, symprec=1e-3)
        systems.add(analyser.get_crystal_system())
        assert _space_group(after) == analyser.get_space_group_number(), before.composition
        assert after.species == before.species
        assert not np.allclose(after.lattice.matrix, before.lattice.matrix)
    assert len(systems) == 7


def test_strain_dimensions_follow_the_crystal_system(sample):
    for structure in sample:
        system = SpacegroupAnalyzer(structure, symprec=1e-3).get_crystal_system()
        basis = cell_symmetry(structure).strain_basis
        assert len(basis) == STRAIN_DIMENSIONS[system], (structure.composition, system)
        gram = np.einsum('aij,bij->ab', basis, basis)
        np.testing.assert_allclose(gram, np.eye(len(basis)), atol=1e-10)
        np.testing.assert_allclose(basis, basis.transpose(0, 2, 1), atol=1e-12)


def test_cubic_cells_only_change_volume_and_fixed_sites_do_not_move():
    rocksalt = Structure.from_spacegroup('Fm-3m', Lattice.cubic(5.64), ['Na', 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]])
    symmetry = cell_symmetry(rocksalt)
    assert len(symmetry.permutations) == 192 and len(symmetry.rotations) == 192  # 48 x 4 centring translations
    (after,) = perturb_structures([rocksalt], [symmetry], np.random.default_rng(1), strain=0.05, displacement=0.2)
    a, b, c = after.lattice.abc
    assert a == pytest.approx(b, rel=1e-12) and b == pytest.approx(c, rel=1e-12) and a != pytest.approx(5.64)
    np.testing.assert_allclose(after.lattice.angles, [90, 90, 90], atol=1e-10)
    # every site of rock salt is a fixed Wyckoff position (4a, 4b): the symmetrised displacement is zero
    np.testing.assert_allclose(after.frac_coords, rocksalt.frac_coords, atol=1e-12)


def test_free_wyckoff_parameters_move():
    # wurtzite ZnO: 2b sites (1/3, 2/3, z) may only move along c
    zno = Structure.from_spacegroup(
        'P6_3mc', Lattice.hexagonal(3.25, 5.21), ['Zn', 'O'], [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]]
    )
    (after,) = perturb_structures([zno], symmetries_of([zno]), np.random.default_rng(2), strain=0.0, displacement=0.1)
    np.testing.assert_allclose(after.lattice.matrix, zno.lattice.matrix)
    moved = after.frac_coords - zno.frac_coords
    moved -= np.round(moved)
    np.testing.assert_allclose(moved[:, :2], 0.0, atol=1e-12)
    assert np.abs(moved[:, 2]).max() > 1e-3
    assert _space_group(after) == 186


def test_seeded_and_zero_sizes_are_identity(sample):
    symmetries = symmetries_of(sample[:5])
    first = perturb_structures(sample[:5], symmetries, np.random.default_rng(3))
    again = perturb_structures(sample[:5], symmetries, np.random.default_rng(3))
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.lattice.matrix, b.lattice.matrix)
        np.testing.assert_array_equal(a.frac_coords, b.frac_coords)
    same = perturb_structures(sample[:5], symmetries, np.random.default_rng(3), strain=0.0, displacement=0.0)
    for a, b in zip(same, sample[:5], strict=True):
        np.testing.assert_allclose(a.lattice.matrix, b.lattice.matrix)
        np.testing.assert_allclose(a.frac_coords, b.frac_coords % 1.0, atol=1e-12)


def test_bad_input():
    nacl = Structure(Lattice.cubic(5.64), ['Na', 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]])
    symmetry = cell_symmetry(nacl)
    with pytest.raises(ValueError, match='strain must be a finite number >= 0'):
        perturb_structures([nacl], [symmetry], np.random.default_rng(0), strain=-0.1)
    with pytest.raises(ValueError, match='displacement must be a finite number >= 0'):
        perturb_structures([nacl], [symmetry], np.random.default_rng(0), displacement=float('nan'))
    with pytest.raises(ValueError, match='1 structures but 2 symmetries'):
        perturb_structures([nacl], [symmetry, symmetry], np.random.default_rng(0))
    # a structure without symmetry analysis (None) is passed through unchanged; the others are perturbed
    out = perturb_structures([nacl, nacl], [None, symmetry], np.random.default_rng(0))
    assert out[0] is nacl and out[1] is not nacl
    assert symmetries_of(['not a structure', nacl])[0] is None
