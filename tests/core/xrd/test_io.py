"""Reading and writing ``.xy`` / ``.xye`` patterns, and clear errors for malformed files."""

import numpy as np
import pytest

from aiida_matembed.core.xrd import XrdSimulator
from aiida_matembed.core.xrd.io import PatternFileError, read_xy, write_xy


def test_round_trip_of_a_simulated_pattern(tmp_path, examples):
    grid, patterns = XrdSimulator().profiles_many([examples[0].structure], step=0.05)
    path = write_xy(tmp_path / 'nacl.xy', grid, patterns[0], header='simulated\nCu Ka')
    assert path.read_text().startswith('# simulated\n# Cu Ka\n')
    pattern = read_xy(path)
    np.testing.assert_allclose(pattern.two_theta, grid, atol=1e-6)
    np.testing.assert_allclose(pattern.intensity, patterns[0], atol=1e-6)
    assert pattern.esd is None


def test_xye_comments_commas_and_blank_lines(tmp_path):
    path = tmp_path / 'measured.xye'
    path.write_text("! instrument: lab diffractometer\n' another comment\n\n10.0, 5, 1.0\n10.02 7 1.2  # peak\n")
    pattern = read_xy(path)
    np.testing.assert_array_equal(pattern.two_theta, [10.0, 10.02])
    np.testing.assert_array_equal(pattern.esd, [1.0, 1.2])


@pytest.mark.parametrize(
    ('text', 'message'),
    [
        ('10 5\n10.02 abc\n', r'line 2: not a number'),
        ('10 5\n10.02\n', r'line 2: one column'),
        ('10 5\n9.98 6\n', r'line 2: 2θ = 9.98 does not increase'),
        ('10 5\n10.02 nan\n', r'line 2: NaN or infinite'),
        ('10 5 1\n10.02 6\n', r'line 2: 2 columns, but the first data line has 3'),
        ('# only a comment\n', r'no data lines'),
        ('10 5 1 2\n', r'line 1: 4 columns'),
    ],
)
def test_malformed_files_name_the_file_and_line(tmp_path, text, message):
    path = tmp_path / 'bad.xy'
    path.write_text(text)
    with pytest.raises(PatternFileError, match=message) as info:
        read_xy(path)
    assert str(path) in str(info.value)
