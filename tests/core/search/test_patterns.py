"""Measured-pattern files: .xy, .csv, PANalytical .xrdml; clear errors for empty, short and binary files."""

import numpy as np
import pytest

from aiida_matembed.core.search.patterns import read_pattern, xrdml_wavelength
from aiida_matembed.core.xrd import PatternFileError, write_xy

XRDML = """<?xml version="1.0" encoding="UTF-8"?>
<xrdMeasurements xmlns="http://www.xrdml.com/XRDMeasurement/1.5">
  <xrdMeasurement measurementType="Scan" status="Completed">
    <usedWavelength intended="K-Alpha 1">
      <kAlpha1 unit="Angstrom">1.5405980</kAlpha1>
      <kAlpha2 unit="Angstrom">1.5444260</kAlpha2>
      <ratioKAlpha2KAlpha1>0.5000</ratioKAlpha2KAlpha1>
    </usedWavelength>
    <scan appendNumber="0" mode="Continuous" scanAxis="Gonio" status="Completed">
      <dataPoints>
        <positions axis="2Theta" unit="deg">
          <startPosition>10.00</startPosition><endPosition>10.99</endPosition>
        </positions>
        <positions axis="Omega" unit="deg"><startPosition>5.0</startPosition><endPosition>5.5</endPosition></positions>
        <commonCountingTime unit="seconds">2.0</commonCountingTime>
        <counts unit="counts">{counts}</counts>
      </dataPoints>
    </scan>
  </xrdMeasurement>
</xrdMeasurements>
"""


def test_xrdml_axis_counts_and_wavelength(tmp_path):
    counts = np.arange(100, 200)
    path = tmp_path / 'scan.xrdml'
    path.write_text(XRDML.format(counts=' '.join(str(c) for c in counts)))
    pattern = read_pattern(path)
    np.testing.assert_allclose(pattern.two_theta, np.linspace(10.0, 10.99, 100))
    np.testing.assert_allclose(pattern.intensity, counts / 2.0)  # counts per second
    assert xrdml_wavelength(path) == (1.540598, 1.544426, 0.5)


def test_csv_with_a_header_and_xy(tmp_path):
    x = np.linspace(10, 60, 200)
    y = 1 + np.sin(x)
    csv = tmp_path / 'p.csv'
    csv.write_text('two_theta,intensity\n' + '\n'.join(f'{a},{b}' for a, b in zip(x, y, strict=True)))
    pattern = read_pattern(csv)
    np.testing.assert_allclose(pattern.two_theta, x)
    np.testing.assert_allclose(pattern.intensity, y)
    xy = read_pattern(write_xy(tmp_path / 'p.xy', x, y))
    np.testing.assert_allclose(xy.intensity, y, atol=1e-6)


@pytest.mark.parametrize(
    ('name', 'content', 'message'),
    [
        ('empty.xy', '', 'empty'),
        ('short.xy', '10 1\n11 2\n', 'at least 50'),
        ('zero.xy', '\n'.join(f'{10 + i * 0.1} 0' for i in range(60)), 'zero or negative'),
        ('scan.raw', 'RAW1.01', 'export the pattern as .xy'),
        ('bad.xrdml', '<xrdMeasurements>', 'not a readable XRDML'),
        ('bad.csv', 'a,b\n1,2\n2,x\n', 'not a number'),
    ],
)
def test_bad_files_are_refused_with_the_reason(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(PatternFileError, match=message):
        read_pattern(path)
