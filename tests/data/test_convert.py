"""pymatgen / ASE structures with oxidation states, spins, magnetic moments and charges become StructureData."""

import numpy as np
import pytest
from ase.build import bulk
from pymatgen.core import Lattice, Species, Structure

from aiida_matembed.core.datasets.importing import read_file
from aiida_matembed.data.convert import stripped_properties, structure_data_to_pymatgen, to_structure_data
from tests.fixtures.bad_inputs import FILES


def _decorated():
    """Structures as ICSD / COD CIFs give them: Bi, SiC, Ca2RuO4 and ZnO with oxidation-state species."""
    bismuth = Structure.from_spacegroup('R-3m', Lattice.hexagonal(4.546, 11.862), ['Bi'], [[0, 0, 0.2339]])
    bismuth.add_oxidation_state_by_element({'Bi': 0})
    sic = Structure.from_spacegroup('F-43m', Lattice.cubic(4.358), ['Si', 'C'], [[0, 0, 0], [0.25, 0.25, 0.25]])
    sic.add_oxidation_state_by_element({'Si': 4, 'C': -4})
    ca2ruo4 = Structure(
        Lattice.orthorhombic(5.41, 5.49, 11.96),
        [Species('Ca', 2), Species('Ca', 2), Species('Ru', 4, spin=2), Species('O', -2), Species('O', -2)],
        [[0, 0, 0.35], [0.5, 0.5, 0.85], [0, 0, 0], [0.2, 0.3, 0.02], [0, 0, 0.17]],
        site_properties={'magmom': [0.0, 0.0, 1.5, 0.0, 0.0]},
        charge=0.0,
    )
    [zno] = list(read_file(FILES / 'ZnO_oxidation_states.cif'))
    return {'Bi': bismuth, 'SiC': sic, 'Ca2RuO4': ca2ruo4, 'ZnO': zno.structure}


@pytest.mark.parametrize('name', ['Bi', 'SiC', 'Ca2RuO4', 'ZnO'])
def test_decorated_structures_convert_with_the_same_sites(aiida_profile, name):
    structure = _decorated()[name]
    node = to_structure_data(structure).store()
    back = structure_data_to_pymatgen(node)
    np.testing.assert_allclose(back.lattice.matrix, structure.lattice.matrix, atol=1e-12)
    np.testing.assert_allclose(back.cart_coords, structure.cart_coords, atol=1e-12)
    assert [s.species_string for s in back] == [site.specie.element.symbol for site in structure]
    assert back.composition.reduced_formula == structure.composition.element_composition.reduced_formula


def test_what_is_stripped_is_returned():
    decorated = _decorated()
    ca2ruo4 = stripped_properties(decorated['Ca2RuO4'])
    assert ca2ruo4['oxidation_states'] == [2, 2, 4, -2, -2]
    assert ca2ruo4['spins'] == [None, None, 2, None, None]
    assert ca2ruo4['site_properties'] == {'magmom': [0.0, 0.0, 1.5, 0.0, 0.0]}
    assert stripped_properties(decorated['SiC'])['oxidation_states'][:1] == [4]
    plain = Structure(Lattice.cubic(4.0), ['Na', 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert stripped_properties(plain) == {}


def test_ase_atoms_with_magnetic_moments_keep_their_tagged_kinds(aiida_profile):
    iron = bulk('Fe', cubic=True)
    iron.set_initial_magnetic_moments([2.2, -2.2])
    iron.set_tags([1, 2])
    node = to_structure_data(iron)
    assert sorted(k.name for k in node.kinds) == ['Fe1', 'Fe2'] and node.pbc == (True, True, True)


def test_calcfunctions_take_decorated_structures(aiida_profile):
    """The featurise and XRD calcfunctions store decorated pymatgen structures themselves (no TypeError)."""
    from aiida_matembed.calculations.featurize import featurize_structures
    from aiida_matembed.calculations.xrd import simulate_xrd_structures

    structures = list(_decorated().values())
    features, _ = featurize_structures(structures, 'matembed.magpie')
    assert features.base.attributes.get('n_failed') == 0 and np.isfinite(features.features).all()
    patterns, _ = simulate_xrd_structures(structures, {'step': 0.05})
    assert patterns.base.attributes.get('n_failed') == 0
    assert next(iter(patterns.peaks(1).hkls[0])) == (1, 1, 1)  # SiC (zincblende): (111) first


def test_structure_data_arrays_equal_the_pymatgen_conversion(aiida_profile, prototypes):
    """An ordered StructureData read into arrays gives the cell, positions and species of its pymatgen conversion;
    alloy sites are left to pymatgen (None)."""
    from aiida_matembed.core.structures import prepare_cells
    from aiida_matembed.data.convert import structure_data_to_crystal

    nodes = [to_structure_data(p.structure) for p in prototypes[::20] if p.structure.is_ordered]
    for node in nodes:
        crystal = structure_data_to_crystal(node)
        structure = structure_data_to_pymatgen(node)
        assert crystal is not None
        np.testing.assert_array_equal(crystal.lattice, structure.lattice.matrix)
        np.testing.assert_allclose(crystal.positions, structure.cart_coords, rtol=0, atol=1e-12)
        assert crystal.numbers.tolist() == [site.specie.Z for site in structure]
        (from_arrays,), (from_pymatgen,) = prepare_cells([crystal]), prepare_cells([structure])
        np.testing.assert_array_equal(from_arrays.frac, from_pymatgen.frac)  # bitwise: the same conversion
        np.testing.assert_array_equal(from_arrays.cart, from_pymatgen.cart)
        np.testing.assert_array_equal(from_arrays.z, from_pymatgen.z)
    alloy = Structure(Lattice.cubic(3.6), [{'Cu': 0.5, 'Au': 0.5}], [[0, 0, 0]])
    assert structure_data_to_crystal(to_structure_data(alloy)) is None
