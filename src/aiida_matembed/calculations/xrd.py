"""``matembed.simulate_xrd``: simulate the powder patterns of a batch in ONE process with ONE output node."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from ..core.xrd import Peaks, XrdSimulator
from ..data.xrd import XrdPatternsData
from .batch import convert_structures, failure_record, link_inputs_in_bulk, store_structures, structures_namespace

__all__ = ('XRD_DEFAULTS', 'simulate_xrd', 'simulate_xrd_structures')

XRD_DEFAULTS: dict[str, Any] = {
    'wavelength': 'CuKa',
    'two_theta_range': [10.0, 110.0],
    'step': 0.02,
    'shape': 'pseudo-voigt',
    'fwhm': 0.1,
    'eta': 0.5,
}
"""Settings of :func:`simulate_xrd` when not given (Cu K-alpha, 10-110° in 0.02° steps, Suzuki et al. 2022)."""


def _settings(parameters: dict[str, Any] | None) -> dict[str, Any]:
    settings = {**XRD_DEFAULTS, **(parameters or {})}
    unknown = sorted(set(settings) - set(XRD_DEFAULTS))
    if unknown:
        raise ValueError(f'unknown XRD option(s) {unknown}; valid options: {sorted(XRD_DEFAULTS)}')
    simulator = XrdSimulator(settings['wavelength'], tuple(settings['two_theta_range']))
    settings['wavelength_angstrom'] = simulator.wavelength
    settings['two_theta_range'] = list(simulator.two_theta_range)
    return settings


@calcfunction
def simulate_xrd(parameters: orm.Dict | None = None, **kwargs: Any) -> dict[str, orm.Data]:
    """Simulate peaks and gridded profiles of the structures in the ``structures`` namespace.

    :param parameters: ``wavelength`` (anode or Å), ``two_theta_range``, ``step``, ``shape``, ``fwhm``, ``eta``.
    :returns: ``patterns`` (one :class:`XrdPatternsData`) and, if any row failed, ``failures`` (a ``List``).
    """
    nodes = structures_namespace(kwargs)
    settings = _settings(parameters.get_dict() if parameters is not None else None)
    simulator = XrdSimulator(settings['wavelength'], tuple(settings['two_theta_range']))
    converted, converted_rows, failures = convert_structures(nodes)
    empty = np.zeros(0)
    all_peaks = [Peaks(empty, empty, [], empty, np.zeros(0, dtype=int), 'not converted') for _ in nodes]
    for row, result in zip(converted_rows, simulator.peaks_many(converted, errors='record'), strict=True):
        all_peaks[row] = result
        if result.error is not None:
            error_type, _, message = result.error.partition(': ')
            failures.append(failure_record(row, nodes[row], error_type, message))
    good = [row for row in converted_rows if all_peaks[row].error is None]
    structure_of = dict(zip(converted_rows, converted, strict=True))
    grid, good_profiles = simulator.profiles_many(
        [structure_of[row] for row in good],
        step=settings['step'],
        shape=settings['shape'],
        fwhm=settings['fwhm'],
        eta=settings['eta'],
    )
    profiles = np.full((len(nodes), len(grid)), np.nan)
    profiles[good] = good_profiles
    failures.sort(key=lambda f: f['index'])
    outputs: dict[str, orm.Data] = {
        'patterns': XrdPatternsData(
            grid, profiles, all_peaks, settings=settings, rows=[n.uuid for n in nodes], failures=failures
        )
    }
    if failures:
        outputs['failures'] = orm.List(failures)
    return outputs


link_inputs_in_bulk(simulate_xrd)


def simulate_xrd_structures(
    structures: Iterable[Any], parameters: dict[str, Any] | None = None
) -> tuple[XrdPatternsData, orm.CalcFunctionNode]:
    """Run :func:`simulate_xrd` on ``StructureData``, pymatgen or ASE structures (unstored ones are stored).

    :raises ValueError: for bad settings, before anything is stored.
    """
    _settings(parameters)
    nodes = store_structures(structures)
    outputs, process = simulate_xrd.run_get_node(structures=nodes, parameters=orm.Dict(parameters or {}).store())
    assert outputs is not None
    return outputs['patterns'], process
