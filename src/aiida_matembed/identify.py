"""Phase identification against the structures of a Group, with their simulated peaks read from the graph.

The candidates' peaks are the ``XrdPatternsData`` that ``matembed.simulate_xrd`` stored for them (any batch, the
newest that covers the measured d range at the reference wavelength); structures without one are simulated first
(stored with provenance, once). The numerics are :func:`aiida_matembed.core.search.identify.identify_phases`.
With ``store=True`` the measured pattern is stored as an ``XrdPatternsData`` and the identification as a
:class:`~aiida_matembed.data.PhaseIdentificationData` made by the ``matembed.identify_phases`` calcfunction, whose
inputs are the pattern, the references and the candidate structures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from aiida import orm

from .calculations.batch import chunks
from .core.search.identify import Identification, ReferencePeaks
from .core.xrd import MeasuredPattern, Peaks
from .core.xrd.wavelengths import WAVELENGTHS, resolve_wavelength
from .data.identification import PhaseIdentificationData
from .data.xrd import XrdPatternsData
from .plugins import use_aiida_entry_points

use_aiida_entry_points()

__all__ = ('identifications_of', 'identify_in_group', 'reference_patterns', 'references_from_nodes')


def _d_range(wavelength: float, two_theta_range: Sequence[float]) -> tuple[float, float]:
    low, high = (float(v) for v in two_theta_range)
    return wavelength / (2 * math.sin(math.radians(high) / 2)), wavelength / (2 * math.sin(math.radians(low) / 2))


def reference_patterns(
    pks: list[int], wavelength: float, d_range: tuple[float, float], *, simulate: bool = True
) -> list[XrdPatternsData]:
    """``XrdPatternsData`` that hold peaks of every structure of ``pks`` at ``wavelength`` (Å) covering ``d_range``.

    Structures without such peaks are simulated (``matembed.simulate_xrd``, Cu/Mo/... as ``wavelength``, 2θ range
    covering ``d_range``, 0.1° profile step) when ``simulate``; otherwise :class:`ValueError` says how.
    """
    from .calculations.xrd import simulate_xrd_structures

    chosen: dict[int, int] = {}
    for chunk in chunks(pks):
        qb = orm.QueryBuilder()
        qb.append(
            XrdPatternsData,
            filters={'attributes.wavelength_angstrom': {'and': [{'>': wavelength - 1e-6}, {'<': wavelength + 1e-6}]}},
            project=['id', 'attributes.two_theta_range'],
            tag='xrd',
        )
        qb.append(orm.CalculationNode, with_outgoing='xrd', tag='process')
        qb.append(
            orm.StructureData, with_outgoing='process', project='id', tag='structure',
            filters={'id': {'in': chunk}}, edge_filters={'label': {'like': 'structures__%'}},
        )  # fmt: skip
        for row in qb.iterdict():
            xrd_pk, two_theta_range = row['xrd']['id'], row['xrd']['attributes.two_theta_range']
            structure_pk = row['structure']['id']
            low, high = _d_range(wavelength, two_theta_range)
            if low <= d_range[0] * 1.01 and high >= d_range[1] * 0.99:  # the core crops what is left over
                chosen[structure_pk] = max(chosen.get(structure_pk, 0), xrd_pk)
    missing = [pk for pk in pks if pk not in chosen]
    nodes = {pk: orm.load_node(pk) for pk in set(chosen.values())}
    if missing:
        high = min(179.0, math.degrees(2 * math.asin(min(1.0, wavelength / (2 * d_range[0])))))
        low = max(1.0, math.degrees(2 * math.asin(wavelength / (2 * d_range[1]))))
        low, high = math.floor(low * 10) / 10, math.ceil(high * 10) / 10
        if not simulate:
            raise ValueError(
                f'{len(missing)} candidate(s) have no simulated peaks at {wavelength:g} Å over 2θ {low:g}-{high:g}°: '
                f'simulate them with `verdi data matembed xrd -G GROUP --wavelength {wavelength:g} '
                f'--two-theta-min {low:g} --two-theta-max {high:g}`'
            )
        settings = {'wavelength': wavelength, 'two_theta_range': [low, high], 'step': 0.1}
        for chunk in chunks(missing):
            structures = orm.QueryBuilder().append(orm.StructureData, filters={'id': {'in': chunk}}).all(flat=True)
            patterns, _ = simulate_xrd_structures(sorted(structures, key=lambda n: n.pk), settings)
            nodes[patterns.pk or 0] = patterns
    return [nodes[pk] for pk in sorted(nodes)]  # type: ignore[misc]


def references_from_nodes(
    structures: Sequence[orm.StructureData], patterns: Sequence[XrdPatternsData]
) -> ReferencePeaks:
    """The peaks of each structure (newest successful row among ``patterns``) as :class:`ReferencePeaks`.

    Keys are the positions in ``structures``; all ``patterns`` must share one wavelength.
    """
    from .data.convert import structure_data_to_pymatgen
    from .search import _formulas

    if not patterns:
        raise ValueError('no simulated patterns of the candidates')
    wavelengths = {round(float(p.base.attributes.get('wavelength_angstrom')), 6) for p in patterns}
    if len(wavelengths) != 1:
        raise ValueError(f'the references were simulated at different wavelengths: {sorted(wavelengths)} Å')
    wavelength = wavelengths.pop()
    where: dict[str, tuple[int, int]] = {}
    arrays: dict[int, dict[str, np.ndarray]] = {}
    d_lo, d_hi = 0.0, math.inf
    for k, node in sorted(enumerate(patterns), key=lambda item: item[1].pk or 0):
        failed = {f.get('uuid') for f in node.failures}
        arrays[k] = {name: node.get_array(name) for name in ('peak_d_spacing', 'peak_intensity', 'peak_ptr')}
        low, high = _d_range(wavelength, node.base.attributes.get('two_theta_range'))
        d_lo, d_hi = max(d_lo, low), min(d_hi, high)
        for row, uuid in enumerate(node.rows):
            if uuid and uuid not in failed:
                where[uuid] = (k, row)
    by_position = dict(sorted(enumerate(patterns), key=lambda item: item[1].pk or 0))
    families: dict[int, list[Any]] = {}

    def hkls(k: int, row: int) -> Callable[[], Any]:  # read from the repository only for the candidates refined
        def load() -> Any:
            if k not in families:
                families[k] = by_position[k].hkl_families()
            return families[k][row]

        return load

    d_parts, i_parts, counts = [], [], []
    hkl_loaders: list[Callable[[], Any]] = []
    for structure in structures:
        if structure.uuid not in where:
            counts.append(0)
            hkl_loaders.append(list)
            continue
        k, row = where[structure.uuid]
        hkl_loaders.append(hkls(k, row))
        ptr = arrays[k]['peak_ptr']
        part = slice(int(ptr[row]), int(ptr[row + 1]))
        d_parts.append(arrays[k]['peak_d_spacing'][part])
        i_parts.append(arrays[k]['peak_intensity'][part])
        counts.append(part.stop - part.start)
    formulas = _formulas([s.pk or 0 for s in structures])

    def loader(node: orm.StructureData) -> Any:
        return lambda: structure_data_to_pymatgen(node)

    return ReferencePeaks(
        d_spacing=np.concatenate(d_parts) if d_parts else np.zeros(0),
        intensity=np.concatenate(i_parts) if i_parts else np.zeros(0),
        ptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        wavelength=wavelength,
        d_min=d_lo,
        d_max=d_hi,
        keys=list(range(len(structures))),
        formulas=[formulas.get(s.pk or 0, '') for s in structures],
        structures=[loader(s) for s in structures],
        hkls=hkl_loaders,
    )


def summary_with_nodes(result: Identification, structures: Sequence[orm.StructureData]) -> dict[str, Any]:
    """``result.as_dict()`` with the candidates' ``pk`` and ``uuid`` in place of their position ``key``."""
    summary = result.as_dict()
    for entry in (*summary['matches'], *summary['phases']):
        node = structures[int(entry.pop('key'))]
        entry['pk'], entry['uuid'] = node.pk, node.uuid
    summary['phase_uuids'] = [p['uuid'] for p in summary['phases']]
    summary['phase_formulas'] = [p['formula'] for p in summary['phases']]
    return summary


def _reference_wavelength(wavelength: str | float) -> float:
    """The wavelength the candidates are simulated at: the anode's (K-alpha mean for ``XxKa``) or the number."""
    return resolve_wavelength(wavelength)


def identify_in_group(
    measured: MeasuredPattern,
    group: orm.Group | str | int,
    *,
    wavelength: str | float = 'CuKa',
    top: int = 5,
    max_phases: int = 3,
    max_strain: float = 0.04,
    strip_kalpha2: bool | None = None,
    store: bool = False,
    simulate: bool = True,
) -> tuple[Identification, dict[str, Any], PhaseIdentificationData | None]:
    """Identify the phases of ``measured`` among the Group's structures.

    :return: the core result (keys = positions among the candidates), its summary with ``pk`` / ``uuid`` (the
        ``--json`` output), and the stored :class:`PhaseIdentificationData` when ``store``.
    :raises ValueError: for an empty Group, a bad pattern or options (with the reason).
    """
    from .core.search.identify import identify_phases

    group = group if isinstance(group, orm.Group) else orm.load_group(group)
    query = orm.QueryBuilder().append(orm.Group, filters={'id': group.pk}, tag='group')
    query.append(orm.StructureData, with_group='group')
    structures = sorted(query.all(flat=True), key=lambda n: n.pk)
    if not structures:
        raise ValueError(f'group {group.label!r} has no StructureData to match against')
    reference_wavelength = _reference_wavelength(wavelength)
    lam = resolve_wavelength(wavelength)
    if isinstance(wavelength, str) and wavelength.endswith('Ka') and f'{wavelength}1' in WAVELENGTHS:
        lam = WAVELENGTHS[f'{wavelength}1']
    x = np.asarray(measured.two_theta, dtype=float)
    if not (x[0] > 0 and x[-1] < 180):
        raise ValueError(f'{measured.path}: 2θ must lie within (0, 180) degrees, got {x[0]:g}-{x[-1]:g}')
    d_pattern = _d_range(lam, (x[0], x[-1]))
    d_need = (d_pattern[0] / (1 + max_strain), d_pattern[1] / (1 - max_strain))
    covered = (d_pattern[0], d_pattern[1])  # reuse stored peaks that cover the pattern itself
    try:
        patterns = reference_patterns([s.pk for s in structures], reference_wavelength, covered, simulate=False)
    except ValueError:
        if not simulate:
            raise
        patterns = reference_patterns([s.pk for s in structures], reference_wavelength, d_need, simulate=True)
    refs = references_from_nodes(structures, patterns)
    options: dict[str, Any] = {'wavelength': wavelength, 'strip_doublet': strip_kalpha2, 'top': top,
                               'max_phases': max_phases, 'max_strain': max_strain}  # fmt: skip
    result = identify_phases(x, np.asarray(measured.intensity, dtype=float), refs, **options)
    summary = summary_with_nodes(result, structures)
    if not store:
        return result, summary, None
    from .calculations.batch import row_key
    from .calculations.identify import identify_phases as identify_calcfunction

    empty = Peaks(np.zeros(0), np.zeros(0), [], np.zeros(0), np.zeros(0, dtype=int))
    peaks = Peaks(result.peaks.two_theta, result.peaks.intensity, [{} for _ in result.peaks.two_theta],
                  lam / (2 * np.sin(np.radians(result.peaks.two_theta) / 2)),
                  np.zeros(len(result.peaks), dtype=int)) if len(result.peaks) else empty  # fmt: skip
    settings = {'wavelength': wavelength, 'wavelength_angstrom': resolve_wavelength(wavelength), 'measured': True,
                'two_theta_range': [float(x[0]), float(x[-1])], 'source_file': str(measured.path)}  # fmt: skip
    pattern_node = XrdPatternsData(
        x, np.asarray(measured.intensity, dtype=np.float32)[None, :], [peaks], settings=settings
    )
    pattern_node.label = str(measured.path)
    pattern_node.store()
    stored_options = {k: v for k, v in options.items() if v is not None}
    outputs, _ = identify_calcfunction.run_get_node(
        pattern=pattern_node,
        parameters=orm.Dict(stored_options),
        references={f'r{i:05d}': node for i, node in enumerate(patterns)},
        structures={row_key(i): node for i, node in enumerate(structures)},
    )
    assert outputs is not None
    return result, summary, outputs['identification']


def identifications_of(
    structure: orm.StructureData | int | str | None = None, *, formula: str | None = None
) -> list[PhaseIdentificationData]:
    """Stored identifications that found ``structure`` (node, pk or UUID) or a phase of reduced ``formula``.

    E.g. ``identifications_of(formula='LiCoO2')``: "which measurements were identified as LiCoO2"; each result's
    ``creator.inputs.pattern`` is the measured pattern.
    """
    if (structure is None) == (formula is None):
        raise ValueError('give either a structure or a formula')
    qb = orm.QueryBuilder().append(PhaseIdentificationData, tag='identification')
    qb.order_by({'identification': {'id': 'asc'}})
    found = []
    uuid = None
    if structure is not None:
        node = structure if isinstance(structure, orm.StructureData) else orm.load_node(structure)
        uuid = node.uuid
    for (item,) in qb.iterall():
        by_uuid = uuid is not None and uuid in item.get('phase_uuids', [])
        if by_uuid or (formula is not None and formula in item.get('phase_formulas', [])):
            found.append(item)
    return found
