"""Measured powder patterns from files: ``.xy`` / ``.xye`` / ``.dat`` / ``.txt``, ``.csv`` and PANalytical ``.xrdml``.

* ``.xy``-like text: :func:`aiida_matembed.core.xrd.read_xy` (2θ, intensity [, esd]);
* ``.csv``: two or three comma- (or semicolon-) separated columns; a first line of column names is skipped;
* ``.xrdml`` (PANalytical XML, any schema version): the 2θ axis of the first scan (``startPosition`` /
  ``endPosition`` or ``listPositions``), its ``counts`` or ``intensities`` (divided by ``commonCountingTime`` when
  given as counts), and the wavelength of the ``usedWavelength`` element (:func:`xrdml_wavelength`).

Bruker ``.raw`` is binary; no maintained reader installs here (``xylib-py`` does not build), so such a file is
refused with the advice to export ``.xy`` from the instrument software.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..xrd.io import MeasuredPattern, PatternFileError, read_xy

__all__ = ('PATTERN_SUFFIXES', 'read_pattern', 'xrdml_wavelength')

PATTERN_SUFFIXES = ('.xy', '.xye', '.dat', '.txt', '.csv', '.xrdml')


def read_pattern(path: str | Path) -> MeasuredPattern:
    """Read a measured pattern; :class:`~aiida_matembed.core.xrd.PatternFileError` naming the file when it is bad.

    Beyond the reader's own checks: at least 50 points, and not all intensities zero.
    """
    path = Path(path)
    if not path.is_file():
        raise PatternFileError(f'{path}: no such file')
    suffix = path.suffix.lower()
    if suffix == '.raw':
        raise PatternFileError(
            f'{path}: Bruker .raw is a binary format no installed reader handles here; export the pattern as .xy '
            '(two columns: 2θ, intensity) from the instrument software'
        )
    if path.stat().st_size == 0:
        raise PatternFileError(f'{path}: the file is empty')
    if suffix == '.xrdml':
        pattern = _read_xrdml(path)
    elif suffix == '.csv':
        pattern = _read_csv(path)
    else:
        pattern = read_xy(path)
    if len(pattern.two_theta) < 50:
        raise PatternFileError(f'{path}: {len(pattern.two_theta)} points; a powder pattern needs at least 50')
    if not np.any(pattern.intensity > 0):
        raise PatternFileError(f'{path}: every intensity is zero or negative')
    return pattern


def _read_csv(path: Path) -> MeasuredPattern:
    rows: list[list[float]] = []
    for number, raw in enumerate(path.read_text(encoding='utf-8', errors='replace').splitlines(), start=1):
        text = raw.strip()
        if not text or text.startswith('#'):
            continue
        fields = [f.strip() for f in re.split(r'[,;\t]', text) if f.strip()]
        try:
            values = [float(f) for f in fields]
        except ValueError:
            if not rows:  # a header line of column names
                continue
            raise PatternFileError(f'{path}, line {number}: not a number in {text!r}') from None
        if len(values) not in (2, 3):
            raise PatternFileError(f'{path}, line {number}: {len(values)} columns; expected 2θ, intensity [, esd]')
        if not all(math.isfinite(v) for v in values):
            raise PatternFileError(f'{path}, line {number}: NaN or infinite value in {text!r}')
        if rows and values[0] <= rows[-1][0]:
            raise PatternFileError(f'{path}, line {number}: 2θ = {values[0]} does not increase')
        rows.append(values[:2] if rows and len(rows[0]) == 2 else values)
    if not rows:
        raise PatternFileError(f'{path}: no data lines')
    data = np.asarray([r[:2] for r in rows])
    return MeasuredPattern(data[:, 0], data[:, 1], None, str(path))


def _local(tag: str) -> str:
    return tag.rsplit('}', 1)[-1]


def _find(element: ET.Element, name: str) -> ET.Element | None:
    for child in element.iter():
        if _local(child.tag) == name:
            return child
    return None


def _xrdml_root(path: Path) -> ET.Element:
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as exception:
        raise PatternFileError(f'{path}: not a readable XRDML (XML) file: {exception}') from None


def _read_xrdml(path: Path) -> MeasuredPattern:
    root = _xrdml_root(path)
    points = _find(root, 'dataPoints')
    if points is None:
        raise PatternFileError(f'{path}: no dataPoints element (is it an XRDML file?)')
    values_element = next((c for c in points if _local(c.tag) in ('counts', 'intensities')), None)
    if values_element is None or not (values_element.text or '').strip():
        raise PatternFileError(f'{path}: no counts or intensities in the first scan')
    try:
        values = np.array([float(v) for v in (values_element.text or '').split()])
    except ValueError:
        raise PatternFileError(f'{path}: counts are not numbers') from None
    axis = next((c for c in points if _local(c.tag) == 'positions' and c.get('axis') in ('2Theta', '2theta')), None)
    if axis is None:
        raise PatternFileError(f'{path}: no 2Theta positions in the first scan')
    listed = next((c for c in axis if _local(c.tag) == 'listPositions'), None)
    if listed is not None:
        two_theta = np.array([float(v) for v in (listed.text or '').split()])
    else:
        start = next((c for c in axis if _local(c.tag) == 'startPosition'), None)
        end = next((c for c in axis if _local(c.tag) == 'endPosition'), None)
        if start is None or end is None:
            raise PatternFileError(f'{path}: the 2Theta axis has neither start/end nor listed positions')
        two_theta = np.linspace(float(start.text or 'nan'), float(end.text or 'nan'), len(values))
    if len(two_theta) != len(values):
        raise PatternFileError(f'{path}: {len(two_theta)} 2θ positions for {len(values)} intensities')
    timing = next((c for c in points if _local(c.tag) == 'commonCountingTime'), None)
    if _local(values_element.tag) == 'counts' and timing is not None and float(timing.text or 0) > 0:
        values = values / float(timing.text or 1)
    if not (np.isfinite(two_theta).all() and np.isfinite(values).all()) or not (np.diff(two_theta) > 0).all():
        raise PatternFileError(f'{path}: 2θ must be finite and increase strictly, intensities finite')
    return MeasuredPattern(two_theta, values, None, str(path))


def xrdml_wavelength(path: str | Path) -> tuple[float, float | None, float | None] | None:
    """``(K-alpha1, K-alpha2 or None, ratio or None)`` in Å from an XRDML ``usedWavelength``; ``None`` if absent."""
    root = _xrdml_root(Path(path))
    used = _find(root, 'usedWavelength')
    if used is None:
        return None

    def value(name: str) -> float | None:
        element = next((c for c in used if _local(c.tag) == name), None)
        return float(element.text) if element is not None and element.text else None

    alpha1 = value('kAlpha1')
    if alpha1 is None:
        return None
    return alpha1, value('kAlpha2'), value('ratioKAlpha2KAlpha1')
