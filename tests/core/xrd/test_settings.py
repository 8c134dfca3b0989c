"""``XrdSettings``: the one settings object of a simulated pattern (validation, round trips, comparisons)."""

import subprocess
import sys

import numpy as np
import pytest
from pymatgen.analysis.diffraction.xrd import WAVELENGTHS as PYMATGEN_WAVELENGTHS
from pymatgen.core import Lattice, Structure

from aiida_matembed.core.xrd import DEFAULT_XRD, MODEL_XRD, XrdSettings, XrdSimulator


def test_presets_and_derived_values():
    assert DEFAULT_XRD.n_points == 5001 and DEFAULT_XRD.grid[0] == 10.0 and DEFAULT_XRD.grid[-1] == pytest.approx(110.0)
    assert MODEL_XRD.n_points == 2001 and MODEL_XRD.fwhm == 0.2
    # K-alpha (2:1 mean) without the doublet, K-alpha1 with it: pymatgen's values
    assert DEFAULT_XRD.wavelength_angstrom == PYMATGEN_WAVELENGTHS['CuKa']
    assert XrdSettings(doublet=True).wavelength_angstrom == PYMATGEN_WAVELENGTHS['CuKa1']
    assert XrdSettings(wavelength='MoKa1', doublet=True).wavelength_angstrom == PYMATGEN_WAVELENGTHS['MoKa1']
    assert XrdSettings(wavelength=1.5).wavelength_angstrom == 1.5


@pytest.mark.parametrize(
    ('changes', 'message'),
    [
        ({'wavelength': 'Unobtainium'}, 'unknown anode'),
        ({'wavelength': -1.0}, 'wavelength'),
        ({'wavelength': True}, 'anode name or a number'),
        ({'two_theta_range': (50.0, 20.0)}, '0 < min < max < 180'),
        ({'two_theta_range': ('a', 'b')}, 'two numbers'),
        ({'step': 0.0}, 'step must be > 0'),
        ({'step': 0.03}, 'whole number of steps'),
        ({'shape': 'triangle'}, 'shape'),
        ({'eta': 2.0}, 'eta'),
        ({'fwhm': 0.0}, 'fwhm must be in'),
        ({'fwhm': float('nan')}, 'fwhm must be in'),
        ({'doublet': True, 'wavelength': 1.54}, 'doublet needs an anode name'),
        ({'doublet': True, 'wavelength': 'CuKb1'}, 'doublet needs an anode name'),
        ({'doublet': 'yes'}, 'doublet must be true or false'),
        ({'hkl_setting': 'primitive'}, 'hkl_setting'),
    ],
)
def test_bad_settings_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        XrdSettings.from_dict(changes)


def test_dict_round_trip_and_partial_dictionaries():
    settings = XrdSettings(wavelength='MoKa', two_theta_range=(5, 45), step=0.05, doublet=True)
    assert XrdSettings.from_dict(settings.as_dict()) == settings
    stored = settings.stored_attributes()
    assert stored['two_theta_range'] == [5.0, 45.0] and stored['wavelength_angstrom'] == PYMATGEN_WAVELENGTHS['MoKa1']
    assert XrdSettings.from_dict(stored) == settings  # the derived wavelength is ignored when read back
    # missing keys come from the base: a model card written before a setting existed reads as MODEL_XRD
    assert XrdSettings.from_dict({'step': 0.05}, base=MODEL_XRD) == MODEL_XRD
    assert XrdSettings.from_dict(None) == DEFAULT_XRD
    with pytest.raises(
        ValueError, match=r"unknown XRD setting\(s\) \['two_theta_min'\]; valid settings: \['wavelength'"
    ):
        XrdSettings.from_dict({'two_theta_min': 5})


def test_differences_name_what_changes_a_profile():
    assert DEFAULT_XRD.differences(XrdSettings(hkl_setting='input')) == []  # labels only
    assert DEFAULT_XRD.differences(XrdSettings(wavelength=DEFAULT_XRD.wavelength_angstrom)) == []  # same Å
    found = MODEL_XRD.differences(XrdSettings(step=0.02, fwhm=0.1, doublet=True))
    assert [item.split()[0] for item in found] == ['wavelength', 'step', 'fwhm', 'doublet']


def test_patterns_are_the_simulators_with_the_same_options():
    nacl = Structure(Lattice.cubic(5.64), ['Na', 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]])
    settings = XrdSettings(step=0.05, fwhm=0.2, shape='gaussian')
    peaks, grid, profiles = settings.patterns([nacl, nacl.copy()])
    simulator = XrdSimulator('CuKa', (10.0, 110.0))
    reference = simulator.profiles_many([nacl], step=0.05, fwhm=0.2, shape='gaussian')[1]
    np.testing.assert_array_equal(grid, settings.grid)
    np.testing.assert_allclose(profiles, np.repeat(reference, 2, axis=0), rtol=0, atol=1e-7)
    np.testing.assert_allclose(peaks[0].two_theta, simulator.peaks(nacl).two_theta)
    np.testing.assert_allclose(settings.check_patterns(profiles * 3.0), profiles, rtol=1e-6)
    with pytest.raises(ValueError, match='expected patterns of 2001 points'):
        settings.check_patterns(np.ones(10))
    with pytest.raises(ValueError, match='no positive intensity'):
        settings.check_patterns(np.zeros((1, 2001)))


def test_reading_settings_does_not_import_torch():
    """The CLI reads its defaults from here at start-up; torch and the compiled kernels load only when used."""
    code = 'import sys, aiida_matembed.cli; print("torch" in sys.modules, "numba" in sys.modules)'
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ['False', 'False']
