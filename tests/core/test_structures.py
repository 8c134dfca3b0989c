import numpy as np
import pytest
from ase.build import bulk
from pymatgen.core import Lattice, Structure

from aiida_matembed.core.structures import (
    InvalidStructureError,
    closest_pair,
    composition_of,
    element_amounts,
    to_pymatgen,
    validate_structure,
)
from aiida_matembed.testing import bad_inputs


@pytest.mark.parametrize('bad', bad_inputs(), ids=lambda b: b.label)
def test_bad_structures_are_rejected_with_a_clear_message(bad):
    with pytest.raises((InvalidStructureError, TypeError), match='(?i)' + bad.message):
        validate_structure(to_pymatgen(bad.structure))


def test_ase_atoms_convert_with_the_same_cell_and_positions():
    atoms = bulk('NaCl', 'rocksalt', a=5.64)
    structure = to_pymatgen(atoms)
    np.testing.assert_allclose(structure.lattice.matrix, atoms.cell.array)
    np.testing.assert_allclose(structure.cart_coords, atoms.positions)
    assert [str(s) for s in structure.species] == atoms.get_chemical_symbols()


def test_a_site_too_close_to_its_own_periodic_image_is_an_overlap():
    tiny = Structure(Lattice([[0.3, 0, 0], [0, 4, 0], [0, 0, 4]]), ['H'], [[0, 0, 0]])
    with pytest.raises(InvalidStructureError, match='site 0 and its periodic image are 0.300'):
        validate_structure(tiny)


def test_closest_pair_sees_neighbours_across_the_cell_boundary():
    structure = Structure(Lattice.cubic(5.0), ['Na', 'Cl'], [[0.01, 0, 0], [0.97, 0, 0]])
    i, j, distance = closest_pair(structure.cart_coords, structure.lattice.matrix, 0.5)
    assert (i, j) == (0, 1)
    assert distance == pytest.approx(0.2)
    assert closest_pair(structure.cart_coords, structure.lattice.matrix, 0.1) is None


def test_partial_occupancy_is_rejected_only_when_asked(examples):
    alloy = next(e.structure for e in examples if not e.structure.is_ordered)
    validate_structure(alloy)
    with pytest.raises(InvalidStructureError, match='partially occupied'):
        validate_structure(alloy, allow_partial_occupancy=False)


def test_element_amounts_merge_oxidation_states():
    from pymatgen.core import Composition, Species

    magnetite = Composition({Species('Fe', 2): 1, Species('Fe', 3): 2, Species('O', -2): 4})
    z, amounts = element_amounts(composition_of(magnetite))
    assert dict(zip(z.tolist(), amounts.tolist(), strict=True)) == {26: 3.0, 8: 4.0}


@pytest.mark.parametrize('formula', ['Xx2O', 'Na(Cl', ''])
def test_formula_errors_are_clear(formula):
    from aiida_matembed.core.representations import FeaturizationError, get_representation

    with pytest.raises(FeaturizationError, match='structure 0: (cannot parse formula|unknown species|empty)'):
        get_representation('matembed.magpie').featurize_many([formula])


def test_batched_overlap_check_agrees_with_the_neighbour_search(prototypes):
    """prepare_cells (27 images, padded buckets) finds exactly the overlaps pymatgen's search finds."""
    from pymatgen.core import Structure

    from aiida_matembed.core.structures import Cell, closest_pair, prepare_cells

    rng = np.random.default_rng(3)
    batch = []
    for p in prototypes[:120]:
        s = p.structure
        if not s.is_ordered or len(s) > 20:
            continue
        frac = s.frac_coords.copy()
        if rng.random() < 0.5 and len(s) > 1:  # move one site next to another (or its image)
            i, j = rng.choice(len(s), size=2, replace=False)
            frac[i] = frac[j] + rng.normal(scale=0.03, size=3) + rng.integers(-1, 2, size=3)
        batch.append(Structure(s.lattice, s.species, frac))
    results = prepare_cells(batch)
    for structure, result in zip(batch, results, strict=True):
        expected = closest_pair(structure.cart_coords, structure.lattice.matrix, 0.5)
        if expected is None:
            assert isinstance(result, Cell)
        else:
            assert isinstance(result, InvalidStructureError) and 'overlapping atoms' in str(result)
            assert f'{expected[2]:.3f} Å apart' in str(result)
    assert sum(isinstance(r, Exception) for r in results) >= 10


def test_batch_validation_gives_the_single_structure_messages_and_keeps_good_items(examples):
    """prepare_cells checks a whole batch with array reductions; every bad item (mixed among good ones) gets
    the message validate_structure gives it alone, and the good items come back as cells."""
    from aiida_matembed.core.structures import Cell, prepare_cells

    good = [e.structure for e in examples if e.structure.is_ordered]
    batch, expected = [], []
    for k, bad in enumerate(bad_inputs()):
        batch += [good[k % len(good)], bad.structure]
        try:
            validate_structure(to_pymatgen(bad.structure))
            message = None
        except (InvalidStructureError, TypeError) as exception:
            message = str(exception)
        expected += [None, message]
    results = prepare_cells(batch)
    for item, result, message in zip(batch, results, expected, strict=True):
        if message is None:
            assert isinstance(result, Cell) and len(result.z) == len(to_pymatgen(item))
        else:
            assert isinstance(result, Exception) and str(result) == message


def test_compiled_overlap_check_on_supercells_agrees_with_the_neighbour_search(prototypes):
    """Cells of 24-200 sites (supercells of prototypes, one site moved next to another or onto an image) get
    the compiled 27-image check; it reports the pair and distance pymatgen's neighbour search finds."""
    from aiida_matembed.core.structures import Cell, closest_pair, prepare_cells

    rng = np.random.default_rng(5)
    batch = []
    for p in prototypes[::9]:
        s = p.structure
        if not s.is_ordered or len(s) > 12:
            continue
        supercell = s * (2, 2, 2) if len(s) >= 3 else s * (3, 3, 3)
        frac = supercell.frac_coords.copy()
        if rng.random() < 0.5:
            i, j = rng.choice(len(supercell), size=2, replace=False)
            frac[i] = frac[j] + rng.normal(scale=0.02, size=3) + rng.integers(-1, 2, size=3)
        batch.append(Structure(supercell.lattice, supercell.species, frac))
    # a supercell of an overlapping cell: 64 pairs at the same distance, the message must still name the pair
    # the single-structure check names
    batch.append(Structure(Lattice.cubic(3.0), ['Na', 'Cl'], [[0, 0, 0], [0.05, 0.02, 0.01]]) * (4, 4, 4))
    assert len(batch) >= 15 and all(24 < len(s) <= 200 for s in batch)
    results = prepare_cells(batch)
    for structure, result in zip(batch, results, strict=True):
        expected = closest_pair(structure.cart_coords, structure.lattice.matrix, 0.5)
        if expected is None:
            assert isinstance(result, Cell)
        else:
            with pytest.raises(InvalidStructureError, match='overlapping atoms') as single:
                validate_structure(structure)
            assert isinstance(result, InvalidStructureError) and str(result) == str(single.value)
    assert 5 <= sum(isinstance(r, Exception) for r in results) < len(batch)


def test_crystal_arrays_are_checked_as_pymatgen_structures(examples):
    """A Crystal (plain arrays) gives the features and, when bad, the messages of the same pymatgen structure."""
    from pymatgen.core import Element

    from aiida_matembed.core.representations import get_representation
    from aiida_matembed.core.structures import Crystal, prepare_cells

    def crystal(structure):
        numbers = np.array([site.specie.Z for site in structure], dtype=np.int64)
        return Crystal(structure.lattice.matrix, structure.cart_coords, numbers)

    good = [e.structure for e in examples if e.structure.is_ordered]
    bad = [b.structure for b in bad_inputs() if isinstance(b.structure, Structure) and b.structure.is_ordered]
    bad = [s for s in bad if all(isinstance(site.specie, Element) for site in s)]  # a Crystal holds elements
    assert len(bad) >= 5
    structures = [*good, *bad]
    arrays = [crystal(s) for s in structures]
    for ours, theirs in zip(prepare_cells(arrays), prepare_cells(structures), strict=True):
        if isinstance(theirs, Exception):
            assert type(ours) is type(theirs) and str(ours) == str(theirs)
        else:
            np.testing.assert_allclose(ours.cart, theirs.cart, rtol=1e-12, atol=1e-12)
    for name in ('matembed.magpie', 'matembed.sine_matrix'):
        rep = get_representation(name)
        ours = rep.featurize_many(arrays, errors='record')
        theirs = rep.featurize_many(structures, errors='record')
        # fractional coordinates from the Cartesian ones: equal to round-off (the AiiDA path is bitwise equal)
        np.testing.assert_allclose(ours.features, theirs.features, rtol=1e-12)
        assert [f.message for f in ours.failures] == [f.message for f in theirs.failures]
    with pytest.raises(InvalidStructureError, match='unknown species'):
        to_pymatgen(Crystal(np.eye(3) * 3, np.zeros((1, 3)), np.array([0])))
