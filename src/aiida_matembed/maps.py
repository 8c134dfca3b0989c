"""Maps of a Group's stored vectors (:mod:`aiida_matembed.core.search.maps`) coloured by what the graph knows.

``color_by``: ``crystal_system`` / ``space_group`` (spglib, symprec 0.01 Å), ``element`` (the element with the
largest atomic fraction, the heaviest on ties), ``extras.KEY`` (a node extra), ``LINK.KEY`` (an output of the newest
process that finished OK with the structure as input, e.g. a DFT ``output_parameters.energy``), or ``MODEL[:COLUMN]``
(a stored prediction of a registered model, e.g. ``matembed.xrd_symmetry:0``; column by index or label).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from aiida import orm

from .calculations.batch import load_structures
from .search import GroupVectors, VectorSource, _formulas, group_vectors

__all__ = ('group_map', 'structure_labels')


def _symmetry(nodes: list[orm.StructureData]) -> tuple[list[int], list[str]]:
    import spglib

    from .core.datasets import crystal_system

    numbers, systems = [], []
    for node in nodes:
        attributes = node.base.attributes.all
        kinds = {k['name']: k['symbols'] for k in attributes.get('kinds', [])}
        sites = attributes.get('sites', [])
        try:
            from pymatgen.core import Element

            species = [Element(kinds[s['kind_name']][0]).Z for s in sites]
            cell = np.asarray(attributes['cell'])
            frac = np.linalg.solve(cell.T, np.asarray([s['position'] for s in sites]).T).T
            dataset = spglib.get_symmetry_dataset((cell, frac, species), symprec=0.01)  # type: ignore[arg-type]
            number = int(dataset.number) if dataset is not None else 0
        except Exception:
            number = 0
        numbers.append(number)
        systems.append(crystal_system(number) if number else 'unknown')
    return numbers, systems


def _main_element(nodes: list[orm.StructureData]) -> list[str]:
    from pymatgen.core import Composition

    out = []
    for node in nodes:
        try:
            composition = Composition(node.get_formula(mode='hill'))
            out.append(str(max(composition, key=lambda e: (composition.get_atomic_fraction(e), e.Z))))
        except Exception:
            out.append('?')
    return out


def _model_column(spec: str, pks: list[int]) -> list[Any]:
    from .query import get_embedding_node

    name, _, column = spec.partition(':')
    values: list[Any] = []
    for pk in pks:
        try:
            node, row = get_embedding_node(pk, name)
        except Exception:
            values.append(float('nan'))
            continue
        labels = node.labels
        index = int(column) if column.isdigit() else (labels.index(column) if column else 0)
        values.append(float(node.features[row][index]))
    return values


def structure_labels(pks: list[int], color_by: str) -> tuple[list[Any], str]:
    """One colour value per structure for ``color_by`` (module docstring) and the legend title."""
    nodes = load_structures(pks)
    if color_by in ('crystal_system', 'space_group'):
        numbers, systems = _symmetry(nodes)
        return (
            (systems, 'crystal system') if color_by == 'crystal_system' else ([str(n) for n in numbers], 'space group')
        )
    if color_by == 'element':
        return _main_element(nodes), 'main element'
    if color_by.startswith('extras.'):
        key = color_by.split('.', 1)[1]
        values = [n.base.extras.get(key, None) for n in nodes]
        return [float('nan') if v is None else v for v in values], key
    from .core.models import available_models

    if color_by.split(':', 1)[0] in available_models():
        return _model_column(color_by, pks), color_by
    if '.' in color_by:
        from .datasets import _dft_columns

        records = _dft_columns(pks, {'value': color_by})
        values = [r['value'] for r in records]
        if all(v is None for v in values):
            raise ValueError(f'no structure of the map has an output {color_by!r} of a finished process')
        return [float('nan') if v is None else v for v in values], color_by
    raise ValueError(
        f'--color-by {color_by!r}: expected crystal_system, space_group, element, extras.KEY, LINK.KEY or '
        'MODEL[:COLUMN]'
    )


def group_map(
    group: orm.Group | str | int,
    source: VectorSource,
    *,
    output: str | Path | None = None,
    html: str | Path | None = None,
    method: str = 'umap',
    color_by: str = 'crystal_system',
    seed: int = 0,
    compute: bool = True,
) -> dict[str, Any]:
    """Project the Group's stored vectors to 2-D, write the PNG (``output``) and HTML (``html``) maps.

    :return: ``{'method', 'color_by', 'points': [{'pk', 'uuid', 'formula', 'x', 'y', 'color'}]}``.
    """
    from .core.search.maps import plot_map, project_2d, write_map_html

    vectors: GroupVectors = group_vectors(group, source, compute=compute)
    if len(vectors.pks) < 3:
        raise ValueError(
            f'a map needs at least 3 structures with {vectors.name} vectors, the group has {len(vectors.pks)}'
        )
    coords = project_2d(vectors.matrix, method, seed=seed)
    colors, legend = structure_labels(vectors.pks, color_by)
    formulas = _formulas(vectors.pks)
    numbers, _ = (
        _symmetry(load_structures(vectors.pks)) if color_by != 'space_group' else ([int(c) for c in colors], [])
    )
    title = f'{vectors.name} ({method})'
    if output is not None:
        plot_map(coords, colors, title=title, color_label=legend, path=output)
    if html is not None:
        hover = [f'{formulas[pk]}<br>pk {pk}<br>space group {n}<br>{legend}: {c}'
                 for pk, n, c in zip(vectors.pks, numbers, colors, strict=True)]  # fmt: skip
        write_map_html(coords, hover, colors, html, title=title, color_label=legend)
    points = [
        {'pk': pk, 'uuid': uuid, 'formula': formulas[pk], 'x': float(x), 'y': float(y),
         'color': c if not isinstance(c, float) or np.isfinite(c) else None}
        for pk, uuid, (x, y), c in zip(vectors.pks, vectors.uuids, coords, colors, strict=True)
    ]  # fmt: skip
    return {'method': method, 'color_by': color_by, 'representation': vectors.name, 'points': points}
