"""``matembed.simulate_xrd``: simulate the powder patterns of a batch in ONE process with ONE output node."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from ..core.xrd import Peaks
from ..core.xrd.settings import XrdSettings
from ..data.xrd import XrdPatternsData
from .batch import (
    convert_structures,
    failure_record,
    run_maybe_cached,
    store_structures,
    structures_namespace,
)
from .bulk_links import link_inputs_in_bulk

__all__ = ('SIMULATE_XRD_IDENTIFIER', 'XRD_LABELS_VERSION', 'simulate_xrd', 'simulate_xrd_structures')

SIMULATE_XRD_IDENTIFIER = 'aiida.calculations:matembed.simulate_xrd'
"""Caching identifier of :func:`simulate_xrd` (for ``verdi config set caching.enabled_for``)."""

XRD_LABELS_VERSION = 2
"""Version of the peak labels (2: conventional standard setting), recorded on each process so it enters the cache
key: patterns stored before with other labels are not reused."""


@calcfunction
def simulate_xrd(parameters: orm.Dict | None = None, **kwargs: Any) -> dict[str, orm.Data]:
    """Simulate peaks and gridded profiles of the structures in the ``structures`` namespace.

    :param parameters: the fields of :class:`~aiida_matembed.core.xrd.settings.XrdSettings` to change from
        :data:`~aiida_matembed.core.xrd.settings.DEFAULT_XRD` (``wavelength``, ``two_theta_range``, ``step``,
        ``shape``, ``fwhm``, ``eta``, ``doublet``, ``hkl_setting``).
    :returns: ``patterns`` (one :class:`XrdPatternsData`) and, if any row failed, ``failures`` (a ``List``).
    """
    nodes = structures_namespace(kwargs)
    settings = XrdSettings.from_dict(parameters.get_dict() if parameters is not None else None)
    converted, converted_rows, failures = convert_structures(nodes)
    all_peaks = [Peaks.failed('not converted') for _ in nodes]
    peaks, grid, good_profiles = settings.patterns(converted)
    profiles = np.full((len(nodes), len(grid)), np.nan, dtype=np.float32)
    for row, result, profile in zip(converted_rows, peaks, good_profiles, strict=True):
        all_peaks[row] = result
        profiles[row] = profile
        if result.error is not None:
            error_type, _, message = result.error.partition(': ')
            failures.append(failure_record(row, nodes[row], error_type, message))
    failures.sort(key=lambda f: f['index'])
    outputs: dict[str, orm.Data] = {
        'patterns': XrdPatternsData(
            grid,
            profiles,
            all_peaks,
            settings=settings.stored_attributes(),
            rows=[n.uuid for n in nodes],
            failures=failures,
        )
    }
    if failures:
        outputs['failures'] = orm.List(failures)
    return outputs


def _record_labels_version(process: Any) -> None:
    """Put :data:`XRD_LABELS_VERSION` on the process node before it is hashed (so it enters the cache key)."""
    process.node.base.attributes.set('xrd_labels_version', XRD_LABELS_VERSION)


link_inputs_in_bulk(simulate_xrd, after_inputs=_record_labels_version)


def simulate_xrd_structures(
    structures: Iterable[Any], parameters: dict[str, Any] | None = None, *, use_cache: bool = True
) -> tuple[XrdPatternsData, orm.CalcFunctionNode]:
    """Run :func:`simulate_xrd` on ``StructureData``, pymatgen or ASE structures (unstored ones are stored).

    With ``use_cache`` (default) a batch already simulated with the same settings is not simulated again: the
    new process is a cached copy (``process.base.caching.get_cache_source()`` names the original).

    :raises ValueError: for bad settings, before anything is stored.
    """
    XrdSettings.from_dict(parameters)  # validates
    nodes = store_structures(structures)
    inputs: dict[str, Any] = {'structures': nodes, 'parameters': orm.Dict(parameters or {}).store()}
    outputs, process = run_maybe_cached(simulate_xrd, SIMULATE_XRD_IDENTIFIER, use_cache, **inputs)
    assert outputs is not None
    return outputs['patterns'], process
