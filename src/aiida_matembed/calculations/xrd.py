"""``matembed.simulate_xrd``: simulate the powder patterns of a batch in ONE process with ONE output node."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from ..core.xrd import Peaks, XrdSimulator
from ..core.xrd.peaks import patterns_from_settings
from ..data.xrd import XrdPatternsData
from .batch import (
    convert_structures,
    failure_record,
    link_inputs_in_bulk,
    run_maybe_cached,
    store_structures,
    structures_namespace,
)

__all__ = ('SIMULATE_XRD_IDENTIFIER', 'XRD_DEFAULTS', 'XRD_LABELS_VERSION', 'simulate_xrd', 'simulate_xrd_structures')

SIMULATE_XRD_IDENTIFIER = 'aiida.calculations:matembed.simulate_xrd'
"""Caching identifier of :func:`simulate_xrd` (for ``verdi config set caching.enabled_for``)."""

XRD_DEFAULTS: dict[str, Any] = {
    'wavelength': 'CuKa',
    'two_theta_range': [10.0, 110.0],
    'step': 0.02,
    'shape': 'pseudo-voigt',
    'fwhm': 0.1,
    'eta': 0.5,
    'doublet': False,
    'hkl_setting': 'conventional',
}
"""Settings of :func:`simulate_xrd` when not given (Cu K-alpha, 10-110° in 0.02° steps, Suzuki et al. 2022; peaks
labelled with the Miller indices of the conventional standard cell)."""

XRD_LABELS_VERSION = 2
"""Version of the peak labels (2: conventional standard setting), recorded on each process so it enters the cache
key: patterns stored before with other labels are not reused."""


def _settings(parameters: dict[str, Any] | None) -> dict[str, Any]:
    settings = {**XRD_DEFAULTS, **(parameters or {})}
    unknown = sorted(set(settings) - set(XRD_DEFAULTS))
    if unknown:
        raise ValueError(f'unknown XRD option(s) {unknown}; valid options: {sorted(XRD_DEFAULTS)}')
    simulator = XrdSimulator(
        settings['wavelength'],
        tuple(settings['two_theta_range']),
        doublet=bool(settings['doublet']),
        hkl_setting=settings['hkl_setting'],
    )
    # checks the profile options (grid, shape, width, eta) on an empty batch, before anything is stored
    simulator.profiles_many(
        [], step=settings['step'], shape=settings['shape'], fwhm=settings['fwhm'], eta=settings['eta']
    )
    settings['wavelength_angstrom'] = simulator.wavelength
    settings['two_theta_range'] = list(simulator.two_theta_range)
    return settings


@calcfunction
def simulate_xrd(parameters: orm.Dict | None = None, **kwargs: Any) -> dict[str, orm.Data]:
    """Simulate peaks and gridded profiles of the structures in the ``structures`` namespace.

    :param parameters: ``wavelength`` (anode or Å), ``two_theta_range``, ``step``, ``shape``, ``fwhm``, ``eta``,
        ``doublet`` (K-alpha1/K-alpha2 in the profiles; peaks at K-alpha1), ``hkl_setting`` (``conventional``:
        Miller indices of the conventional standard cell; ``input``: of the cell as stored).
    :returns: ``patterns`` (one :class:`XrdPatternsData`) and, if any row failed, ``failures`` (a ``List``).
    """
    nodes = structures_namespace(kwargs)
    settings = _settings(parameters.get_dict() if parameters is not None else None)
    converted, converted_rows, failures = convert_structures(nodes)
    all_peaks = [Peaks.failed('not converted') for _ in nodes]
    peaks, grid, good_profiles = patterns_from_settings(converted, settings)
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
            grid, profiles, all_peaks, settings=settings, rows=[n.uuid for n in nodes], failures=failures
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
    _settings(parameters)
    nodes = store_structures(structures)
    inputs: dict[str, Any] = {'structures': nodes, 'parameters': orm.Dict(parameters or {}).store()}
    outputs, process = run_maybe_cached(simulate_xrd, SIMULATE_XRD_IDENTIFIER, use_cache, **inputs)
    assert outputs is not None
    return outputs['patterns'], process
