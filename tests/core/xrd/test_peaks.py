"""XRD peaks pinned against pymatgen's ``XRDCalculator`` and textbook patterns."""

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from aiida_matembed.core.xrd import WAVELENGTHS, XrdSimulator


def _pymatgen_families(pattern):
    return [{tuple(entry['hkl']): entry['multiplicity'] for entry in peak} for peak in pattern.hkls]


@pytest.mark.parametrize(('anode', 'every'), [('CuKa', 2), ('MoKa', 9)])
def test_peaks_equal_pymatgen_on_the_aflow_prototypes(prototypes, anode, every):
    """Every peak: same 2θ, scaled intensity, d-spacing and hkl families (CI runs a subset for Mo)."""
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    structures = [p.structure for p in prototypes][::every]
    reference = XRDCalculator(anode)
    simulator = XrdSimulator(anode, two_theta_range=(10, 110), hkl_setting='input')  # labels of the cell as given
    for structure, ours in zip(structures, simulator.peaks_many(structures), strict=True):
        expected = reference.get_pattern(structure, two_theta_range=(10, 110))
        np.testing.assert_allclose(ours.two_theta, expected.x, rtol=1e-10)
        np.testing.assert_allclose(ours.intensity, expected.y, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(ours.d_spacing, expected.d_hkls, rtol=1e-10)
        assert ours.hkls == _pymatgen_families(expected)
        assert list(ours.multiplicity) == [sum(f.values()) for f in ours.hkls]


def test_textbook_patterns():
    rocksalt = Structure.from_spacegroup('Fm-3m', Lattice.cubic(5.6402), ['Na', 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]])
    silicon = Structure.from_spacegroup('Fd-3m', Lattice.cubic(5.4309), ['Si'], [[0, 0, 0]])
    cscl = Structure(Lattice.cubic(4.123), ['Cs', 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]])
    simulator = XrdSimulator('CuKa')
    nacl = simulator.peaks(rocksalt)
    strongest = int(np.argmax(nacl.intensity))
    assert nacl.hkls[strongest] == {(2, 0, 0): 6}  # the (200) line of rock salt
    assert nacl.two_theta[strongest] == pytest.approx(2 * np.degrees(np.arcsin(1.54184 / (2 * 5.6402 / 2))), abs=1e-9)
    assert nacl.hkls[0] == {(1, 1, 1): 8}  # fcc: h, k, l all odd or all even only
    si = simulator.peaks(silicon)
    bragg_111 = 2 * np.degrees(np.arcsin(1.54184 / (2 * 5.4309 / np.sqrt(3))))  # 28.47° (28.44° with Cu Ka1)
    assert si.hkls[0] == {(1, 1, 1): 8} and si.two_theta[0] == pytest.approx(bragg_111, abs=1e-9)
    assert {(2, 0, 0): 6} not in si.hkls  # diamond glide: (200) is extinct
    cs = simulator.peaks(cscl)
    assert cs.hkls[0] == {(1, 0, 0): 6}  # primitive cubic: (100) present (Cs and Cl scatter differently)
    assert cs.d_spacing[0] == pytest.approx(4.123)


@pytest.mark.parametrize(
    ('kwargs', 'message'),
    [
        ({'wavelength': 0}, 'wavelength must be > 0'),
        ({'wavelength': -1.5}, 'wavelength must be > 0'),
        ({'wavelength': 'XxKa'}, 'unknown anode'),
        ({'two_theta_range': (110, 10)}, '0 < min < max < 180'),
        ({'two_theta_range': (0, 90)}, '0 < min < max < 180'),
        ({'two_theta_range': (10, 190)}, '0 < min < max < 180'),
        ({'two_theta_range': 'wide'}, 'two numbers'),
        ({'debye_waller': {'Na': -1}}, 'must be >= 0'),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        XrdSimulator(**kwargs)


def test_anodes_and_bad_structures_in_a_batch(examples):
    assert WAVELENGTHS['MoKa1'] == 0.7093 and XrdSimulator(1.0).wavelength == 1.0
    good = examples[0].structure
    heavy = Structure(Lattice.cubic(4), ['Na', 'Og'], [[0, 0, 0], [0.5, 0.5, 0.5]])
    overlapping = Structure(Lattice.cubic(4), ['Na', 'Cl'], [[0, 0, 0], [0.05, 0, 0]])
    simulator = XrdSimulator()
    with pytest.raises(ValueError, match='structure 1: no X-ray scattering factors for element Og'):
        simulator.peaks_many([good, heavy])
    result = simulator.peaks_many([good, heavy, overlapping, good], errors='record')
    assert [p.error is None for p in result] == [True, False, False, True]
    assert 'overlapping atoms' in result[2].error and len(result[2]) == 0
    np.testing.assert_array_equal(result[0].intensity, result[3].intensity)


def test_partial_occupancy_weights_the_scattering(examples):
    """A disordered site scatters with the occupancy-weighted form factor, as in pymatgen."""
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    disordered = next(e.structure for e in examples if not e.structure.is_ordered)
    ours = XrdSimulator().peaks(disordered)
    expected = XRDCalculator().get_pattern(disordered, two_theta_range=(10, 110))
    np.testing.assert_allclose(ours.intensity, expected.y, rtol=1e-7)


@pytest.mark.parametrize(('anode', 'every', 'max_sites'), [('CuKa', 5, 80), ('MoKa', 12, 40)])
def test_peaks_agree_with_pymatgen_on_the_pyriodic_prototypes(anode, every, max_sites):
    """The acceptance check of issue #4 on pyriodic-aflow's prototypes (CI subset; the benchmark runs all 579).

    Every pymatgen peak above 0.5 found within 1e-3° with intensity within 0.5 and the same hkl families, and
    no extra peak above 0.5. Four prototypes have sites closer than 0.5 Å (disorder in the source): they are
    recorded as failures, the rest of the batch is kept.
    """
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    from aiida_matembed.core.datasets import load_pyriodic_prototypes
    from aiida_matembed.testing.xrd import compare_with_pymatgen

    structures = [p.structure for p in load_pyriodic_prototypes() if len(p.structure) <= max_sites][::every]
    reference = XRDCalculator(anode)
    # labels of the cell as given (test_hkl.py checks the conventional ones)
    results = XrdSimulator(anode, hkl_setting='input').peaks_many(structures, errors='record')
    checked = 0
    for structure, ours in zip(structures, results, strict=True):
        if ours.error is not None:
            assert 'overlapping atoms' in ours.error
            continue
        agreement = compare_with_pymatgen(ours, reference.get_pattern(structure, two_theta_range=(10, 110)))
        assert agreement.ok, agreement.problems
        checked += 1
    assert checked >= len(structures) - 1 > 10


def test_pyriodic_prototypes_load_with_their_decoration():
    from aiida_matembed.core.datasets import PYRIODIC_DECORATION, load_pyriodic_prototypes

    prototypes = load_pyriodic_prototypes()
    assert len(prototypes) == 579
    rocksalt = [p for p in prototypes if p.label.startswith('cF8-') and p.aflow.endswith('_225')]
    assert rocksalt and all(len(p.structure) == 8 for p in rocksalt)
    species = {str(el) for p in prototypes for el in p.structure.composition.elements}
    assert species <= set(PYRIODIC_DECORATION)
    hexagonal = next(p for p in prototypes if p.label.startswith('hP'))
    assert hexagonal.structure.lattice.gamma == pytest.approx(120, abs=1e-6)
