"""``matembed.predict_symmetry``: crystal system, space group and cell of a stored measured pattern.

Input: the measured pattern (``pattern``, an :class:`~aiida_matembed.data.XrdPatternsData` with one row, its grid and
counts) and the options (``parameters``, those of :data:`SYMMETRY_OPTIONS`). Output: ``symmetry``, an ``orm.Dict``
with :meth:`aiida_matembed.core.symmetry.SymmetryResult.as_dict` (crystal system, top-k space groups and their
probabilities, the route that decided, the refined cell, M20 and F_N, the zero shift) and the name and weights'
sha256 of the classifier model where it took part; "which measurements were found orthorhombic" is a query on its
attributes.
"""

from __future__ import annotations

from typing import Any

from aiida import orm
from aiida.engine import calcfunction

from ..data.xrd import XrdPatternsData

__all__ = ('SYMMETRY_OPTIONS', 'predict_symmetry')

SYMMETRY_OPTIONS = (
    'wavelength', 'top_k', 'use_classifier', 'min_score', 'confident_score', 'tolerance', 'max_zero_shift',
    'strip_doublet',
)  # fmt: skip
"""Options of :func:`aiida_matembed.core.symmetry.predict_symmetry` that ``parameters`` may hold."""


@calcfunction
def predict_symmetry(pattern: XrdPatternsData, parameters: orm.Dict) -> dict[str, orm.Data]:
    """Index the pattern, rank its space groups and store the result (module docstring)."""
    from ..core.symmetry import predict_symmetry as predict

    options: dict[str, Any] = parameters.get_dict()
    unknown = sorted(set(options) - set(SYMMETRY_OPTIONS))
    if unknown:
        raise ValueError(f'unknown option(s) {unknown}; valid: {", ".join(SYMMETRY_OPTIONS)}')
    profiles = pattern.profiles if 'profiles' in pattern.get_arraynames() else None
    if profiles is None or profiles.shape[0] != 1:
        raise ValueError('the pattern must hold exactly one measured profile')
    wavelength = options.pop('wavelength', pattern.base.attributes.get('wavelength', 'CuKa'))
    result = predict(pattern.grid, profiles[0].astype(float), wavelength, **options)
    summary = result.as_dict()
    if result.route != 'indexing':
        from ..core.models import load_model

        card = load_model('matembed.xrd_symmetry', device='cpu').card
        summary['classifier'] = {'name': card.name, 'sha256': card.sha256}
    return {'symmetry': orm.Dict(summary)}
