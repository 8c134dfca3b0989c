"""Indexing of lines simulated by pymatgen's XRDCalculator (another program), pinned against the structures' cells."""

from importlib import resources

import numpy as np
import pytest
from pymatgen.analysis.diffraction.xrd import XRDCalculator
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from aiida_matembed.core.symmetry import index_peaks

LAMBDA = 1.540598  # pymatgen's CuKa1 (Å)


def si():
    return Structure.from_spacegroup('Fd-3m', Lattice.cubic(5.431), ['Si'], [[0, 0, 0]])


def nacl():
    return Structure.from_spacegroup('Fm-3m', Lattice.cubic(5.640), ['Na', 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]])


def rutile():
    return Structure.from_spacegroup('P4_2/mnm', Lattice.tetragonal(4.594, 2.959), ['Ti', 'O'],
                                     [[0, 0, 0], [0.3053, 0.3053, 0]])  # fmt: skip


def corundum():
    return Structure.from_spacegroup('R-3c', Lattice.hexagonal(4.759, 12.991), ['Al', 'O'],
                                     [[0, 0, 0.3523], [0.3064, 0, 0.25]])  # fmt: skip


def forsterite():
    return Structure.from_spacegroup(
        'Pnma', Lattice.orthorhombic(10.207, 5.980, 4.756), ['Mg', 'Mg', 'Si', 'O', 'O', 'O'],
        [[0, 0, 0], [0.2774, 0.25, 0.9915], [0.0940, 0.25, 0.4262], [0.0913, 0.25, 0.7657], [0.4474, 0.25, 0.2215],
         [0.1628, 0.0331, 0.2777]],
    )  # fmt: skip


def pb3v2o8():
    """A real monoclinic structure (P2_1/c), a CIF file shipped with pyxtal."""
    with resources.as_file(resources.files('pyxtal') / 'database' / 'cifs' / 'PVO.cif') as path:
        return Structure.from_file(str(path))


def simulated_lines(structure, *, zero=0.0, noise=0.0, drop_weak=1.0, spurious=(), seed=0):
    """pymatgen peaks (Cu K-alpha1, 10-110°): lines weaker than ``drop_weak`` % and unresolved ones removed."""
    pattern = XRDCalculator('CuKa1').get_pattern(structure, two_theta_range=(10, 110))
    x, y = np.asarray(pattern.x), np.asarray(pattern.y)
    x, y = x[y >= drop_weak], y[y >= drop_weak]
    keep = [0]
    for i in range(1, len(x)):  # lines closer than 0.05° are one peak
        if x[i] - x[keep[-1]] < 0.05:
            if y[i] > y[keep[-1]]:
                keep[-1] = i
        else:
            keep.append(i)
    x, y = x[keep], y[keep]
    rng = np.random.default_rng(seed)
    x = x + zero + rng.normal(0, noise, len(x))
    if spurious:
        x = np.concatenate([x, spurious])
        y = np.concatenate([y, np.full(len(spurious), 3.0)])
    return x, y


def conventional_cell(structure):
    lattice = SpacegroupAnalyzer(structure).get_conventional_standard_structure().lattice
    return np.array([*lattice.abc, *lattice.angles])


@pytest.mark.parametrize(
    ('make', 'system', 'centring'),
    [(si, 'cubic', 'F'), (nacl, 'cubic', 'F'), (rutile, 'tetragonal', 'P'), (corundum, 'hexagonal', 'R'),
     (forsterite, 'orthorhombic', 'P')],
)  # fmt: skip
def test_cell_within_half_a_percent(make, system, centring):
    """Zero shift 0.05°, position noise 0.01°, a spurious line: the chosen cell is the structure's, within 0.5 %."""
    structure = make()
    x, y = simulated_lines(structure, zero=0.05, noise=0.01, spurious=(37.77,))
    result = index_peaks(x, y, wavelength='CuKa1')
    chosen = result.chosen()
    assert chosen is not None
    assert (chosen.lattice_system, chosen.centring) == (system, centring)
    found = np.array(chosen.cell.as_tuple())
    expected = conventional_cell(structure)
    if system == 'orthorhombic':  # axes in any order
        found[:3], expected[:3] = np.sort(found[:3]), np.sort(expected[:3])
    np.testing.assert_allclose(found, expected, rtol=5e-3)
    assert abs(chosen.zero_shift - 0.05) < 0.02
    assert chosen.m20 > 20
    assert chosen.n_indexed >= chosen.n_lines - 1  # the spurious line is left out


def test_monoclinic_real_structure():
    """Pb3V2O8 (P2_1/c) with missing weak lines (< 3 %): same lattice (Niggli-reduced) and volume within 0.5 %."""
    structure = pb3v2o8()
    x, y = simulated_lines(structure, zero=-0.03, noise=0.005, drop_weak=3.0)
    chosen = index_peaks(x, y, wavelength='CuKa1').chosen()
    assert chosen is not None and chosen.lattice_system == 'monoclinic'
    found = Lattice.from_parameters(*chosen.cell.as_tuple()).get_niggli_reduced_lattice()
    expected = structure.lattice.get_niggli_reduced_lattice()
    np.testing.assert_allclose(sorted(found.abc), sorted(expected.abc), rtol=5e-3)
    assert abs(found.volume - expected.volume) / expected.volume < 5e-3


def test_lower_symmetry_does_not_win_over_the_true_one():
    """The orthorhombic and monoclinic searches also index a cubic pattern; the cubic cell is chosen."""
    x, y = simulated_lines(nacl(), zero=0.02, noise=0.005)
    result = index_peaks(x, y, wavelength='CuKa1')
    assert {s.lattice_system for s in result.solutions} >= {'cubic'}
    assert result.chosen().lattice_system == 'cubic'


def test_figures_of_merit_follow_the_definitions():
    """M_N = Q_N / (2 <|ΔQ|> N_calc) and F_N = N / (<|Δ2θ|> N_poss) recomputed from the assigned lines."""
    structure = rutile()
    x, y = simulated_lines(structure, noise=0.01)
    chosen = index_peaks(x, y, wavelength=LAMBDA, max_zero_shift=0.0).chosen()
    n = chosen.n_lines
    g6 = np.array(chosen.g6)
    hkl = chosen.hkl[:n][chosen.indexed[:n]]
    h, k, ll = hkl.T
    q_calc = h * h * g6[0] + k * k * g6[1] + ll * ll * g6[2]
    q_obs = (2 * np.sin(np.radians(x[:n][chosen.indexed[:n]]) / 2) / LAMBDA) ** 2
    q_n = (2 * np.sin(np.radians(x[n - 1]) / 2) / LAMBDA) ** 2
    assert chosen.m20 == pytest.approx(q_n / (2 * np.mean(np.abs(q_obs - q_calc)) * chosen.n_calc), rel=1e-6)
    tt_calc = np.degrees(2 * np.arcsin(LAMBDA * np.sqrt(q_calc) / 2))
    mean = np.mean(np.abs(x[:n][chosen.indexed[:n]] - tt_calc))
    assert chosen.mean_delta_two_theta == pytest.approx(mean, rel=1e-6)
    assert chosen.f_n == pytest.approx(n / (mean * chosen.n_calc), rel=1e-6)
    # rutile P4_2/mnm: N_calc counts the distinct Q of the tetragonal P cell up to the N-th line
    distinct = {
        round(a * a * g6[0] + b * b * g6[0] + c * c * g6[2], 9)
        for a in range(8) for b in range(a + 1) for c in range(8) if a + b + c
    }  # fmt: skip
    assert chosen.n_calc == sum(1 for q in distinct if q <= q_n * (1 + 1e-9))


@pytest.mark.parametrize(
    ('two_theta', 'intensity', 'wavelength', 'message'),
    [
        ([], None, 'CuKa', 'at least 6'),
        ([20, 30, 40, np.nan, 50, 60], None, 'CuKa', 'NaN'),
        ([20, 30, 40], None, 'CuKa', 'at least 6'),
        ([20, 30, 40, 50, 60, 70], None, 'XxKa', 'unknown anode'),
        ([20, 30, 40, 50, 60, 190], None, 'CuKa', 'within'),
        ([20, 30, 40, 50, 60, 70], [1, 2, 3], 'CuKa', 'same length'),
        ([20, 30, 30, 50, 60, 70], None, 'CuKa', 'same position'),
    ],
)
def test_bad_input_raises_a_clear_error(two_theta, intensity, wavelength, message):
    with pytest.raises(ValueError, match=message):
        index_peaks(two_theta, intensity, wavelength=wavelength)


def test_unknown_lattice_system():
    with pytest.raises(ValueError, match='unknown lattice system'):
        index_peaks([20, 30, 40, 50, 60, 70], systems=('rhombic',))
