"""Measured and simulated powder patterns as ``.xy`` / ``.xye`` text files.

Format: one point per line, whitespace- or comma-separated columns ``2θ intensity [esd]``; blank lines
and comments (lines starting with ``#``, ``!``, ``;`` or ``'``, and anything after a ``#`` on a line)
are ignored. 2θ must increase strictly; every value must be a finite number.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ('MeasuredPattern', 'PatternFileError', 'read_xy', 'write_xy')

_COMMENT_STARTS = ('#', '!', ';', "'")
_SPLIT = re.compile(r'[\s,]+')


class PatternFileError(ValueError):
    """A malformed pattern file; the message names the file and the line."""


@dataclass(frozen=True)
class MeasuredPattern:
    """A powder pattern read from a file."""

    two_theta: np.ndarray
    """2θ (degrees), strictly increasing."""
    intensity: np.ndarray
    """Intensities (counts or arbitrary units)."""
    esd: np.ndarray | None
    """Estimated standard deviations of the intensities (``.xye``), else ``None``."""
    path: str = ''


def read_xy(path: str | Path) -> MeasuredPattern:
    """Read a two-column (``.xy``) or three-column (``.xye``) pattern.

    :raises PatternFileError: naming the file and line for text where a number belongs, a line with one
        column or a different number of columns than the first data line, NaN or infinite values,
        2θ that does not strictly increase, or a file without data.
    """
    path = Path(path)
    rows: list[list[float]] = []
    lines: list[int] = []
    with path.open(encoding='utf-8', errors='replace') as handle:
        for number, raw in enumerate(handle, start=1):
            text = raw.split('#', 1)[0].strip()
            if not text or text.startswith(_COMMENT_STARTS):
                continue
            fields = [f for f in _SPLIT.split(text) if f]
            where = f'{path}, line {number}'
            if len(fields) < 2:
                raise PatternFileError(f'{where}: one column ({text!r}); expected 2θ and intensity [and esd]')
            if len(fields) > 3:
                raise PatternFileError(f'{where}: {len(fields)} columns; expected 2 (.xy) or 3 (.xye)')
            try:
                values = [float(f) for f in fields]
            except ValueError:
                raise PatternFileError(f'{where}: not a number in {text!r}') from None
            if not all(math.isfinite(v) for v in values):
                raise PatternFileError(f'{where}: NaN or infinite value in {text!r}')
            if rows and len(values) != len(rows[0]):
                raise PatternFileError(f'{where}: {len(values)} columns, but the first data line has {len(rows[0])}')
            if rows and values[0] <= rows[-1][0]:
                raise PatternFileError(
                    f'{where}: 2θ = {values[0]} does not increase (previous point {rows[-1][0]} on line {lines[-1]})'
                )
            rows.append(values)
            lines.append(number)
    if not rows:
        raise PatternFileError(f'{path}: no data lines')
    data = np.asarray(rows)
    return MeasuredPattern(data[:, 0], data[:, 1], data[:, 2] if data.shape[1] == 3 else None, str(path))


def write_xy(
    path: str | Path,
    two_theta: np.ndarray,
    intensity: np.ndarray,
    esd: np.ndarray | None = None,
    *,
    header: str = '',
) -> Path:
    """Write a pattern as ``.xy`` (or ``.xye`` with ``esd``); ``header`` lines are written as ``#`` comments."""
    columns = [np.asarray(two_theta, dtype=float), np.asarray(intensity, dtype=float)]
    if esd is not None:
        columns.append(np.asarray(esd, dtype=float))
    if len({len(c) for c in columns}) != 1:
        raise ValueError('two_theta, intensity (and esd) must have the same length')
    path = Path(path)
    comment = '\n'.join(f'# {line}' for line in header.splitlines())
    np.savetxt(path, np.column_stack(columns), fmt='%.6f', header=comment, comments='')
    return path
