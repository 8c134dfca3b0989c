"""``matembed.prerelax``: relax a batch of structures with CHGNet so that DFT starts near its minimum.

CHGNet (Deng et al., Nat. Mach. Intell. 5, 1031 (2023)) is a universal interatomic potential trained on the
Materials Project relaxation trajectories; its pretrained weights ship inside its wheel (optional extra
``aiida-matembed[chgnet]``), so nothing is downloaded. Each structure is relaxed (positions, and the cell
unless ``relax_cell`` is false) with FIRE until the largest force is below ``fmax`` (eV/Å) or ``steps`` steps.

One process for the batch: inputs are the structures (namespace ``structures``) and ``parameters``; outputs are
the relaxed structures (namespace ``relaxed``, same keys) and one ``ArrayData`` ``summary`` with, per input row,
the CHGNet energy per atom before and after (eV/atom), the largest force after (eV/Å) and the number of
steps. Structures CHGNet cannot handle (partial occupancy, elements beyond Pu, isolated atoms) are listed in
``failures`` and get no relaxed output; the rest of the batch is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from .batch import (
    convert_structures,
    failure_record,
    row_key,
    store_structures,
    structures_namespace,
)
from .bulk_links import link_inputs_in_bulk

__all__ = ('DEFAULTS', 'prerelax', 'prerelax_structures')

DEFAULTS = {'fmax': 0.05, 'steps': 300, 'relax_cell': True, 'model_version': '0.3.0'}
"""Default options: force threshold (eV/Å), most FIRE steps, whether the cell relaxes, CHGNet weights."""


def check_parameters(parameters: dict[str, Any] | None) -> dict[str, Any]:
    """Options merged with :data:`DEFAULTS` and validated."""
    merged = {**DEFAULTS, **(parameters or {})}
    unknown = sorted(set(merged) - set(DEFAULTS))
    if unknown:
        raise ValueError(f'unknown option(s) {unknown}; valid options: {sorted(DEFAULTS)}')
    if not isinstance(merged['fmax'], int | float) or merged['fmax'] <= 0:
        raise ValueError(f'fmax must be a positive number (eV/Å), got {merged["fmax"]!r}')
    if isinstance(merged['steps'], bool) or not isinstance(merged['steps'], int) or merged['steps'] < 1:
        raise ValueError(f'steps must be a positive integer, got {merged["steps"]!r}')
    if merged['model_version'] not in ('0.3.0', '0.2.0', 'r2scan'):
        raise ValueError(f"model_version must be '0.3.0', '0.2.0' or 'r2scan', got {merged['model_version']!r}")
    return merged


@lru_cache(maxsize=2)
def _optimizer(model_version: str) -> Any:
    """CHGNet's FIRE optimiser with the pretrained weights (loaded once per process and version)."""
    try:
        from chgnet.model import CHGNet, StructOptimizer
    except ImportError:
        raise ImportError('CHGNet is not installed: pip install "aiida-matembed[chgnet]"') from None
    model = CHGNet.load(model_name=model_version, verbose=False)
    return StructOptimizer(model=model)


@calcfunction
def prerelax(parameters: orm.Dict | None = None, **kwargs: Any) -> dict[str, Any]:
    """Relax the structures of the ``structures`` namespace with CHGNet (see the module docstring)."""
    options = check_parameters(parameters.get_dict() if parameters is not None else None)
    keys = sorted(kwargs.get('structures', {}))
    nodes = structures_namespace(kwargs)
    converted, rows, failures = convert_structures(nodes)
    summary = np.full((len(nodes), 4), np.nan)
    relaxed: dict[str, orm.StructureData] = {}
    optimizer = _optimizer(options['model_version']) if converted else None
    for structure, row in zip(converted, rows, strict=True):
        try:
            result = optimizer.relax(  # type: ignore[union-attr]
                structure,
                fmax=options['fmax'],
                steps=options['steps'],
                relax_cell=options['relax_cell'],
                verbose=False,
            )
        except Exception as exception:  # CHGNet raises plain errors (e.g. unknown element): record, keep the rest
            failures.append(failure_record(row, nodes[row], type(exception).__name__, str(exception)))
            continue
        trajectory = result['trajectory']
        n_atoms = len(structure)
        forces = np.asarray(trajectory.forces[-1])
        summary[row] = (
            trajectory.energies[0] / n_atoms,
            trajectory.energies[-1] / n_atoms,
            float(np.linalg.norm(forces, axis=1).max()) if forces.size else 0.0,
            len(trajectory.energies),
        )
        node = orm.StructureData(pymatgen=result['final_structure'].remove_oxidation_states())
        relaxed[keys[row]] = node
    outputs: dict[str, Any] = {'relaxed': relaxed}
    array = orm.ArrayData()
    array.set_array('summary', summary)
    array.base.attributes.set('columns', ['energy_per_atom_start', 'energy_per_atom', 'max_force', 'steps'])
    array.base.attributes.set('units', ['eV/atom', 'eV/atom', 'eV/Å', ''])
    outputs['summary'] = array
    if failures:
        failures.sort(key=lambda f: f['index'])
        outputs['failures'] = orm.List(failures)
    return outputs


link_inputs_in_bulk(prerelax)


def prerelax_structures(
    structures: Iterable[Any] | Mapping[str, Any], parameters: dict[str, Any] | None = None
) -> tuple[list[orm.StructureData | None], orm.CalcFunctionNode]:
    """Run :func:`prerelax` on structures (``StructureData``, pymatgen or ASE; unstored ones are stored).

    :returns: the relaxed structure of each input (``None`` where CHGNet failed) and the process node.
    """
    options = check_parameters(parameters)
    nodes = store_structures(structures)
    outputs, process = prerelax.run_get_node(structures=nodes, parameters=orm.Dict(options))
    relaxed = (outputs or {}).get('relaxed', {})
    return [relaxed.get(row_key(i)) for i in range(len(nodes))], process
