"""Structural representations pinned against their reference implementations.

References: matminer 0.10 ``SineCoulombMatrix``, ``CoulombMatrix``, ``RadialDistributionFunction`` and
``PartialRadialDistributionFunction``; featomic's ``SoapPowerSpectrum`` called directly.
"""

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from aiida_matembed.core.representations import FeaturizationError, get_representation
from aiida_matembed.core.representations.structural import ANGSTROM_TO_BOHR


@pytest.fixture(scope='module')
def structures(prototypes):
    return [p.structure for p in prototypes if p.structure.is_ordered]


@pytest.fixture(scope='module')
def small(structures):
    """Every fourth prototype (72 structures): enough variety, fast enough for the slow references."""
    return structures[::4]


def _sorted_by_magnitude(values):
    """Decreasing |eigenvalue|; for +x and -x, +x first (matminer leaves them in LAPACK's order)."""
    values = np.real(values)
    return np.array([sorted(row, key=lambda v: (-round(abs(v), 8), -v)) for row in values])


@pytest.mark.parametrize(
    ('name', 'reference_class'), [('sine_matrix', 'SineCoulombMatrix'), ('coulomb_matrix', 'CoulombMatrix')]
)
@pytest.mark.parametrize('diagonal', [True, False])
def test_matrix_spectra_equal_matminer(structures, monkeypatch, name, reference_class, diagonal):
    from matminer.featurizers.structure import matrix

    # matminer converts with the "Angstrom star" (1.00001495 Å); use the Angstrom, as we do (documented)
    monkeypatch.setattr(matrix, 'ANG_TO_BOHR', ANGSTROM_TO_BOHR)
    reference = getattr(matrix, reference_class)(diag_elems=diagonal).fit(structures)
    expected = _sorted_by_magnitude(np.array([reference.featurize(s) for s in structures]))
    rep = get_representation(f'matembed.{name}', max_sites=reference._max_eigs, diagonal=diagonal)
    np.testing.assert_allclose(rep.featurize_many(structures).features, expected, rtol=1e-10, atol=1e-8)


def test_sine_matrix_textbook_value_for_one_atom():
    # one atom: the spectrum is the diagonal 0.5 Z^2.4 (Faber et al. 2015)
    features = get_representation('matembed.sine_matrix', max_sites=3).featurize(
        Structure(Lattice.cubic(3), ['Fe'], [[0, 0, 0]])
    )
    np.testing.assert_allclose(features, [0.5 * 26**2.4, 0, 0], rtol=1e-14)


def test_matrix_spectra_are_sorted_and_padded(structures):
    rep = get_representation('matembed.coulomb_matrix', max_sites=120)
    features = rep.featurize_many(structures).features
    magnitudes = np.abs(features)
    assert np.all(np.diff(magnitudes, axis=1) <= 1e-9)
    for row, structure in zip(features, structures, strict=True):
        assert np.all(row[len(structure) :] == 0)


def test_matrix_spectrum_names_the_option_to_raise(structures):
    big = next(s for s in structures if len(s) > 20)
    rep = get_representation('matembed.sine_matrix', max_sites=20)
    with pytest.raises(FeaturizationError, match=rf'{len(big)} sites, more than max_sites=20.*max_sites'):
        rep.featurize(big)
    result = rep.featurize_many([structures[0], big], errors='record')
    assert [f.index for f in result.failures] == [1]
    assert np.isfinite(result.features[0]).all()


def test_sine_matrix_overlap_check_gives_the_single_structure_messages(prototypes):
    """The sine matrix checks overlaps on its own sin^2 terms: cells with a site moved next to another one (or onto
    a periodic image of it, or supercells) fail with the message validate_structure gives, the others are kept."""
    from aiida_matembed.core.structures import InvalidStructureError, validate_structure

    rng = np.random.default_rng(11)
    batch = []
    for p in prototypes[::3]:
        s = p.structure
        if not s.is_ordered or len(s) > 24:
            continue
        if len(s) <= 4 and rng.random() < 0.3:
            s = s * (2, 2, 2)
        frac = s.frac_coords.copy()
        if rng.random() < 0.5 and len(s) > 1:
            i, j = rng.choice(len(s), size=2, replace=False)
            frac[i] = frac[j] + rng.normal(scale=0.03, size=3) + rng.integers(-1, 2, size=3)
        batch.append(Structure(s.lattice, s.species, frac))
    result = get_representation('matembed.sine_matrix', max_sites=200).featurize_many(batch, errors='record')
    failed = {f.index: f.message for f in result.failures}
    for k, structure in enumerate(batch):
        try:
            validate_structure(structure)
        except InvalidStructureError as exception:
            assert failed.get(k) == str(exception)
        else:
            assert k not in failed and np.isfinite(result.features[k]).all()
    assert 10 <= len(failed) < len(batch)


def _cumulative_counts_agree(ours, reference, distances, edges):
    """Cumulative pair counts agree at every bin edge that no pair distance lies on (within 1e-8 Å)."""
    on_edge = np.array([np.any(np.abs(distances - e) < 1e-8) for e in edges[1:]])
    np.testing.assert_allclose(np.cumsum(ours)[~on_edge], np.cumsum(reference)[~on_edge], rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(ours.sum(), reference.sum(), rtol=1e-9)


def test_rdf_equals_matminer_divided_by_the_number_of_sites(small):
    """Same histogram and shell normalisation as matminer; matminer's values are N times ours (not intensive).

    Pairs exactly on a bin edge are assigned by round-off in matminer and to the upper bin here, so the
    comparison is on cumulative counts at every edge no pair distance sits on.
    """
    from matminer.featurizers.structure import RadialDistributionFunction

    reference = RadialDistributionFunction(cutoff=6.0, bin_size=0.1)
    rep = get_representation('matembed.rdf', cutoff=6.0, bin_size=0.1)
    features = rep.featurize_many(small).features
    edges = np.arange(61) * 0.1
    shells = 4 / 3 * np.pi * np.diff(edges**3)
    exact_rows = 0
    for structure, row in zip(small, features, strict=True):
        expected = reference.featurize(structure)
        distances = np.array([n.nn_distance for site in structure.get_all_neighbors(6.0) for n in site])
        n, density = len(structure), len(structure) / structure.volume
        _cumulative_counts_agree(row * n * shells * density, expected * shells * density, distances, edges)
        exact_rows += np.allclose(row * n, expected, rtol=1e-10, atol=1e-10)
    assert exact_rows >= 0.8 * len(small)
    assert rep.feature_labels()[0] == 'rdf 0.000-0.100A'


def test_rdf_tends_to_one_and_counts_fcc_neighbours():
    a = 4.05
    aluminium = Structure(Lattice.cubic(a), ['Al'] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    rep = get_representation('matembed.rdf', cutoff=30.0, bin_size=0.5)
    g = rep.featurize(aluminium)
    shells = 4 / 3 * np.pi * np.diff((np.arange(61) * 0.5) ** 3)
    counts = g * shells * 4 / a**3
    assert counts[int(a / np.sqrt(2) / 0.5)] == pytest.approx(12)  # 12 nearest neighbours at a / sqrt(2)
    assert np.mean(g[40:]) == pytest.approx(1.0, abs=0.05)  # g -> 1 at large r


@pytest.mark.filterwarnings('ignore:to_reduced_dict is deprecated')
def test_partial_rdf_equals_matminer(small):
    """Same pairs, bins and per-centre normalisation as matminer, up to one matminer slip.

    matminer divides by ``N * c_a`` with ``c_a = fractional_composition.to_reduced_dict[a]``, which is the
    atomic fraction ``x_a`` except where pymatgen writes the reduced formula of a diatomic element as
    ``X2`` (O2, N2, H2, F2, Cl2, ...): there matminer's values are half the per-atom ones computed here.
    """
    from matminer.featurizers.structure import PartialRadialDistributionFunction

    reference = PartialRadialDistributionFunction(cutoff=5.0, bin_size=0.25)
    rep = get_representation('matembed.partial_rdf', cutoff=5.0, bin_size=0.25)
    for structure in small[:30]:
        reference.fit([structure])
        fitted = rep.fit([structure])
        expected = reference.featurize(structure)
        fractions = structure.composition.fractional_composition
        slip = {e: amount / fractions[e] for e, amount in fractions.to_reduced_dict.items()}
        assert fitted.species == reference.elements_
        assert [label.split(' ')[0] for label in fitted.feature_labels()] == [
            label.split(' ')[0] for label in reference.feature_labels()
        ]
        ours = fitted.featurize(structure)
        n_bins = 20
        edges = np.arange(n_bins + 1) * 0.25
        distances = np.array([n.nn_distance for site in structure.get_all_neighbors(5.0) for n in site])
        for block, label in enumerate(fitted.feature_labels()[::n_bins]):
            part = slice(block * n_bins, (block + 1) * n_bins)
            centre = label.split('-')[0]
            _cumulative_counts_agree(ours[part], expected[part] * slip.get(centre, 1.0), distances, edges)


def test_partial_rdf_species_from_the_batch_and_unknown_elements(structures):
    rep = get_representation('matembed.partial_rdf', cutoff=4.0, bin_size=0.5)
    batch = structures[:5]
    result = rep.featurize_many(batch)
    fitted = rep.fit(batch)
    assert result.labels == fitted.feature_labels()
    assert fitted.get_params()['species'] == fitted.species and fitted.species
    narrow = get_representation('matembed.partial_rdf', cutoff=4.0, bin_size=0.5, species=['Na', 'Cl'])
    with pytest.raises(FeaturizationError, match='element .* is not in the species list'):
        narrow.featurize(Structure(Lattice.cubic(4), ['Na', 'Br'], [[0, 0, 0], [0.5, 0.5, 0.5]]))
    with pytest.raises(ValueError, match='unknown element'):
        get_representation('matembed.partial_rdf', species=['Na', 'Xx'])


@pytest.mark.parametrize(
    ('params', 'message'),
    [
        ({'cutoff': 0}, 'cutoff must be > 0'),
        ({'cutoff': -1.0}, 'cutoff must be > 0'),
        ({'cutoff': 1e4}, 'larger than the supported maximum'),
        ({'cutoff': float('nan')}, 'cutoff must be > 0'),
        ({'cutoff': 10.0, 'bin_size': 0.3}, 'whole number of bins'),
        ({'bin_size': 0}, 'bin_size must be a number'),
    ],
)
def test_rdf_rejects_bad_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        get_representation('matembed.rdf', **params)


def test_rdf_of_a_cell_with_a_very_short_lattice_vector_equals_its_supercell():
    """A 0.6 Å lattice vector: 50 images of each atom along it within the cutoff, all found."""
    needle = Structure(Lattice([[0.6, 0, 0], [0, 7, 0], [0, 0, 7]]), ['H', 'H'], [[0, 0, 0], [0.5, 0.5, 0.5]])
    rep = get_representation('matembed.rdf', cutoff=15.0, bin_size=0.1)
    np.testing.assert_allclose(rep.featurize(needle), rep.featurize(needle * (7, 1, 1)), rtol=1e-12)


def test_a_structure_whose_neighbour_list_would_exhaust_memory_fails_alone(monkeypatch):
    from aiida_matembed.core import neighbors

    monkeypatch.setattr(neighbors, 'MAX_PAIRS', 5_000)
    monkeypatch.setattr(neighbors.neighbor_list, '__kwdefaults__', {'max_pairs': 5_000})
    rep = get_representation('matembed.rdf', cutoff=8.0, bin_size=0.5)
    small = Structure(Lattice.cubic(4.0), ['Na', 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]])
    big = small * (4, 4, 4)
    result = rep.featurize_many([small, big, small], errors='record')
    assert [f.index for f in result.failures] == [1]
    assert 'neighbour pairs' in result.failures[0].message and 'lower the cutoff' in result.failures[0].message
    np.testing.assert_array_equal(result.features[0], result.features[2])


def test_small_cells_see_their_periodic_images():
    """A 1-atom cell much smaller than the cutoff: the RDF of the cell equals that of a 3x3x3 supercell."""
    polonium = Structure(Lattice.cubic(3.35), ['Po'], [[0, 0, 0]])
    rep = get_representation('matembed.rdf', cutoff=12.0, bin_size=0.1)
    np.testing.assert_allclose(rep.featurize(polonium), rep.featurize(polonium * (3, 3, 3)), rtol=1e-12)
    g = rep.featurize(polonium)
    assert g[int(3.35 / 0.1)] > 0  # 6 nearest neighbours, all images of the single atom


# ------------------------------------------------------------------------------------------ SOAP
def _featomic_reference(structures, species, cutoff=5.0, n_max=6, l_max=4, sigma=0.5, smoothing=0.5):
    """Structure-averaged SOAP straight from featomic + metatensor (keys moved to properties, then a mean)."""
    import featomic
    import metatensor
    from featomic.basis import Gto, TensorProduct
    from featomic.cutoff import Cutoff, ShiftedCosine
    from featomic.density import Gaussian
    from pymatgen.io.ase import AseAtomsAdaptor

    from aiida_matembed.core.elements import atomic_number

    calculator = featomic.SoapPowerSpectrum(
        cutoff=Cutoff(radius=cutoff, smoothing=ShiftedCosine(width=smoothing)),
        density=Gaussian(width=sigma),
        basis=TensorProduct(max_angular=l_max, radial=Gto(max_radial=n_max - 1)),
    )
    zs = sorted(atomic_number(s) for s in species)
    pairs = [(a, b) for i, a in enumerate(zs) for b in zs[i:]]
    descriptor = calculator.compute([AseAtomsAdaptor.get_atoms(s) for s in structures])
    descriptor = descriptor.keys_to_samples('center_type')
    descriptor = descriptor.keys_to_properties(
        metatensor.Labels(['neighbor_1_type', 'neighbor_2_type'], np.array(pairs, dtype=np.int32))
    )
    block = descriptor.block()
    systems = block.samples.column('system')
    values = np.asarray(block.values)
    reference = np.stack([values[systems == k].mean(axis=0) for k in range(len(structures))])
    props = np.asarray(block.properties.values)  # (neighbor_1_type, neighbor_2_type, l, n_1, n_2)
    return reference, props


def test_soap_equals_featomic_structure_average(structures):
    batch = structures[:25]
    rep = get_representation('matembed.soap').fit(batch)
    ours = rep.featurize_many(batch).features
    reference, props = _featomic_reference(batch, rep.species)
    from aiida_matembed.core.elements import SYMBOLS

    column = {label: k for k, label in enumerate(rep.feature_labels())}
    order = [column[f'soap {SYMBOLS[a - 1]}-{SYMBOLS[b - 1]} n{n1} n{n2} l{ell}'] for a, b, ell, n1, n2 in props]
    np.testing.assert_allclose(ours[:, order], reference, rtol=1e-10, atol=1e-12)
    assert len(order) == rep.n_features


def test_soap_per_species_average_recovers_the_structure_average(structures):
    batch = structures[:12]
    per_species = get_representation('matembed.soap', average='species', n_max=3, l_max=2).fit(batch)
    full = get_representation('matembed.soap', n_max=3, l_max=2, species=per_species.species)
    blocks = per_species.featurize_many(batch).features.reshape(len(batch), len(per_species.species), -1)
    counts = np.array([[s.composition[e] for e in per_species.species] for s in batch])
    weighted = (blocks * counts[:, :, None]).sum(axis=1) / counts.sum(axis=1)[:, None]
    np.testing.assert_allclose(weighted, full.featurize_many(batch).features, rtol=1e-10, atol=1e-14)


def test_soap_rejects_bad_options_and_foreign_elements():
    with pytest.raises(ValueError, match='average must be'):
        get_representation('matembed.soap', average='atoms')
    with pytest.raises(ValueError, match='n_max must be an integer'):
        get_representation('matembed.soap', n_max=0)
    with pytest.raises(ValueError, match='too large for SOAP'):
        get_representation('matembed.soap', cutoff=25.0)
    rep = get_representation('matembed.soap', species=['Na', 'Cl'], n_max=2, l_max=1)
    with pytest.raises(FeaturizationError, match='element K is not in the species list'):
        rep.featurize(Structure(Lattice.cubic(4), ['K', 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]]))
