"""``matembed.identify_phases``: identify the phases of a stored measured pattern among candidate structures.

Inputs: the measured pattern (``pattern``, an :class:`~aiida_matembed.data.XrdPatternsData` with one row), the
candidates' simulated peaks (``references`` namespace of ``XrdPatternsData``), the candidate structures
(``structures`` namespace, row order = sorted keys) and the options (``parameters``). Output: one
:class:`~aiida_matembed.data.PhaseIdentificationData`, so "which measurements were identified as LiCoO2" is a query
(:func:`aiida_matembed.identify.identifications_of`).
"""

from __future__ import annotations

from typing import Any

from aiida import orm
from aiida.engine import calcfunction

from ..data.identification import PhaseIdentificationData
from ..data.xrd import XrdPatternsData
from .bulk_links import link_inputs_in_bulk

__all__ = ('IDENTIFY_OPTIONS', 'identify_phases')

IDENTIFY_OPTIONS = ('wavelength', 'strip_doublet', 'top', 'max_phases', 'max_strain', 'max_zero_shift')
"""Options of :func:`aiida_matembed.core.search.identify_phases` that ``parameters`` may hold."""


@calcfunction
def identify_phases(pattern: XrdPatternsData, parameters: orm.Dict, **kwargs: Any) -> dict[str, orm.Data]:
    """Run the search-match and multi-phase fit on ``pattern`` against the candidates (module docstring)."""
    from ..core.search.identify import identify_phases as identify
    from ..identify import references_from_nodes, summary_with_nodes

    references = kwargs.pop('references', None) or {}
    structures = kwargs.pop('structures', None) or {}
    if kwargs:
        raise ValueError(f'unexpected inputs {sorted(kwargs)}')
    if not structures or not references:
        raise ValueError('give the candidates (structures) and their simulated peaks (references)')
    options = parameters.get_dict()
    unknown = sorted(set(options) - set(IDENTIFY_OPTIONS))
    if unknown:
        raise ValueError(f'unknown option(s) {unknown}; valid: {", ".join(IDENTIFY_OPTIONS)}')
    nodes = [structures[key] for key in sorted(structures)]
    refs = references_from_nodes(nodes, [references[key] for key in sorted(references)])
    grid = pattern.grid
    result = identify(grid, pattern.profiles[0].astype(float), refs, **options)
    return {'identification': PhaseIdentificationData(summary_with_nodes(result, nodes))}


link_inputs_in_bulk(identify_phases)
