"""Symmetry of a measured powder pattern, optionally stored with provenance.

The numerics are :func:`aiida_matembed.core.symmetry.predict_symmetry`. With ``store=True`` the measured pattern is
stored as an ``XrdPatternsData`` and the result as the ``symmetry`` output (``orm.Dict``) of the
``matembed.predict_symmetry`` calcfunction, whose input is the pattern.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from aiida import orm

from .core.symmetry import SymmetryResult
from .core.symmetry import predict_symmetry as predict
from .core.xrd import MeasuredPattern, Peaks
from .core.xrd.wavelengths import resolve_wavelength
from .data.xrd import XrdPatternsData
from .plugins import use_aiida_entry_points

use_aiida_entry_points()

__all__ = ('symmetry_of_pattern',)


def symmetry_of_pattern(
    measured: MeasuredPattern,
    *,
    wavelength: str | float = 'CuKa',
    store: bool = False,
    **options: Any,
) -> tuple[SymmetryResult, dict[str, Any], orm.Dict | None]:
    """Crystal system, space groups and cell of ``measured``: ``(result, JSON summary, stored node or None)``.

    :param options: keyword options of :func:`~aiida_matembed.core.symmetry.predict_symmetry` (``top_k``,
        ``use_classifier``, ``tolerance``, ``max_zero_shift``, ``strip_doublet``, ...).
    :raises ValueError: for a pattern or options ``predict_symmetry`` refuses.
    """
    from .calculations.symmetry import SYMMETRY_OPTIONS

    unknown = sorted(set(options) - set(SYMMETRY_OPTIONS))
    if unknown:
        raise ValueError(f'unknown option(s) {unknown}; valid: {", ".join(SYMMETRY_OPTIONS)}')
    x = np.asarray(measured.two_theta, dtype=float)
    y = np.asarray(measured.intensity, dtype=float)
    result = predict(x, y, wavelength, **options)
    summary = result.as_dict()
    if not store:
        return result, summary, None
    from .calculations.symmetry import predict_symmetry as predict_calcfunction

    lam, lines = result.wavelength, result.two_theta
    d_spacing = lam / (2 * np.sin(np.radians(lines) / 2))
    peaks = Peaks(lines, result.intensity, [{} for _ in lines], d_spacing, np.zeros(len(lines), dtype=int))
    settings = {'wavelength': wavelength, 'wavelength_angstrom': resolve_wavelength(wavelength), 'measured': True,
                'two_theta_range': [float(x[0]), float(x[-1])], 'source_file': str(measured.path)}  # fmt: skip
    node = XrdPatternsData(x, y.astype(np.float32)[None, :], [peaks], settings=settings)
    node.label = str(measured.path)
    node.store()
    stored = {k: v for k, v in {'wavelength': wavelength, **options}.items() if v is not None}
    outputs, _ = predict_calcfunction.run_get_node(pattern=node, parameters=orm.Dict(stored))
    assert outputs is not None
    return result, summary, outputs['symmetry']
