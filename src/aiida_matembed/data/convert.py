"""Conversion between AiiDA ``StructureData`` and the core's pymatgen / ASE structures.

``StructureData`` holds a cell (Å), periodic boundary conditions and sites whose kinds are one element or a
mix of elements with weights (partial occupancy; the weights of a site may sum to less than 1, a vacancy).
It has no place for oxidation states, magnetic moments, charges or other per-site properties, so
:func:`to_structure_data` **strips** them (``Fe3+`` becomes ``Fe``) and returns what it stripped in
:func:`stripped_properties` form, which the importer keeps as node extras. It never fails on them: pymatgen
structures read from ICSD / COD CIFs carry oxidation-state species, which aiida-core's own
``StructureData(pymatgen=...)`` refuses with a ``TypeError`` in ``build_kind_name``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiida import orm

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from ..core.structures import Crystal

__all__ = (
    'pymatgen_to_structure_data',
    'stripped_properties',
    'structure_data_to_crystal',
    'structure_data_to_pymatgen',
    'to_structure_data',
)


def structure_data_to_pymatgen(node: orm.StructureData) -> Structure:
    """Convert a ``StructureData`` to a pymatgen ``Structure`` straight from its attributes.

    About 10x faster than ``StructureData.get_pymatgen()`` (which round-trips through ASE-like kinds);
    alloy and vacancy kinds become partially occupied sites. Positions are Cartesian, in Å.
    """
    from pymatgen.core import Lattice, Structure

    attributes = node.base.attributes.all
    kinds: dict[str, Any] = {}
    for kind in attributes.get('kinds', []):
        symbols, weights = kind['symbols'], kind['weights']
        if len(symbols) == 1 and weights[0] == 1.0:
            kinds[kind['name']] = symbols[0]
        else:
            kinds[kind['name']] = dict(zip(symbols, weights, strict=True))
    sites = attributes.get('sites', [])
    species = [kinds[site['kind_name']] for site in sites]
    positions = [site['position'] for site in sites]
    return Structure(Lattice(attributes['cell']), species, positions, coords_are_cartesian=True)


def structure_data_to_crystal(node: orm.StructureData) -> Crystal | None:
    """The arrays of an ordered ``StructureData`` (lattice, Cartesian positions in Å, atomic numbers).

    Read from the node's attributes without building any pymatgen or ASE object; ``None`` when a kind is not one
    element of weight 1 (alloys, vacancies, unknown symbols: use :func:`structure_data_to_pymatgen`).
    """
    import numpy as np

    from ..core.elements import ATOMIC_NUMBERS
    from ..core.structures import Crystal

    attributes = node.base.attributes.all
    numbers: dict[str, int] = {}
    for kind in attributes.get('kinds', []):
        symbols, weights = kind['symbols'], kind['weights']
        if len(symbols) != 1 or weights[0] != 1.0 or symbols[0] not in ATOMIC_NUMBERS:
            return None
        numbers[kind['name']] = ATOMIC_NUMBERS[symbols[0]]
    sites = attributes.get('sites', [])
    try:
        z = np.array([numbers[site['kind_name']] for site in sites], dtype=np.int64)
    except KeyError:
        return None
    positions = np.array([site['position'] for site in sites], dtype=float).reshape(-1, 3)
    return Crystal(np.array(attributes['cell'], dtype=float), positions, z)


def _element_symbol(species: Any) -> str:
    """The element symbol of a pymatgen ``Element`` / ``Species`` (oxidation state and spin dropped)."""
    from pymatgen.core import DummySpecies

    if isinstance(species, DummySpecies) or not hasattr(species, 'symbol'):
        raise ValueError(f'{species!s} is not a chemical element (a dummy species); StructureData needs elements')
    element = getattr(species, 'element', species)  # Species -> Element
    return str(element.symbol)


def pymatgen_to_structure_data(
    structure: Structure, pbc: tuple[bool, bool, bool] = (True, True, True)
) -> orm.StructureData:
    """Build an unstored ``StructureData`` from a pymatgen ``Structure`` of any kind of species.

    Oxidation states, spins, magnetic moments and other site properties are stripped (see the module docstring);
    a disordered site becomes a kind with several symbols and their weights (occupancies), so partially
    occupied structures are kept. Kinds are named after their elements (``Fe``, ``AuCu``, then ``AuCu1``, ...
    for mixtures of the same elements with other weights).

    :param pbc: periodic boundary conditions of the node (a slab read with ``pbc=(True, True, False)`` keeps them).
    :raises ValueError: for a dummy species, weights that aiida-core refuses (a site occupancy above 1), NaN or
        infinite values.
    """
    import numpy as np
    from aiida.orm.nodes.data.structure import Kind, Site

    matrix = np.asarray(structure.lattice.matrix, dtype=float)
    if not np.isfinite(matrix).all():
        raise ValueError('lattice contains NaN or infinite values: StructureData cannot store them')
    if len(structure):
        bad = np.flatnonzero(~np.isfinite(np.asarray(structure.frac_coords, dtype=float)).all(axis=1))
        if bad.size:
            raise ValueError(f'NaN or infinite coordinates at site {int(bad[0])}: StructureData cannot store them')
    node = orm.StructureData(cell=structure.lattice.matrix.tolist(), pbc=tuple(bool(p) for p in pbc))
    kinds: dict[tuple[tuple[str, ...], tuple[float, ...]], str] = {}
    raw_kinds: list[dict[str, Any]] = []
    raw_sites: list[dict[str, Any]] = []
    names: set[str] = set()
    for site in structure:
        amounts: dict[str, float] = {}
        for species, amount in site.species.items():
            symbol = _element_symbol(species)
            amounts[symbol] = amounts.get(symbol, 0.0) + float(amount)
        symbols = tuple(sorted(amounts))
        weights = tuple(round(amounts[s], 12) for s in symbols)
        key = (symbols, weights)
        name = kinds.get(key)
        if name is None:
            base = symbols[0] if len(symbols) == 1 and weights[0] == 1.0 else ''.join(symbols)
            name, suffix = base, 0
            while name in names:
                suffix += 1
                name = f'{base}{suffix}'
            kind = Kind(symbols=list(symbols), weights=list(weights), name=name)  # checks the weights
            raw_kinds.append(kind.get_raw())
            kinds[key] = name
            names.add(name)
        raw_sites.append(Site(kind_name=name, position=tuple(float(x) for x in site.coords)).get_raw())
    node.base.attributes.set('kinds', raw_kinds)
    node.base.attributes.set('sites', raw_sites)
    return node


def stripped_properties(structure: Structure) -> dict[str, Any]:
    """What :func:`pymatgen_to_structure_data` drops, as JSON: oxidation states, spins and site properties.

    :return: ``{'oxidation_states': [...], 'spins': [...], 'site_properties': {name: [...]}, 'charge': q}`` with
        only the keys that carry information (one value per site, ``None`` where a site has none; a disordered
        site gives a dict species -> value).
    """
    import math

    out: dict[str, Any] = {}

    def per_site(attribute: str) -> list[Any]:
        values: list[Any] = []
        for site in structure:
            found = {str(sp): getattr(sp, attribute, None) for sp in site.species}
            if len(found) == 1:
                values.append(next(iter(found.values())))
            else:
                values.append(found)
        return values

    oxidation = per_site('oxi_state')
    if any(v not in (None, 0) for v in oxidation):
        out['oxidation_states'] = oxidation
    spins = per_site('spin')
    if any(v is not None for v in spins):
        out['spins'] = spins
    properties: dict[str, Any] = {}
    for key, values in structure.site_properties.items():
        try:
            cleaned = [_json_value(v) for v in values]
        except (TypeError, ValueError):
            cleaned = [str(v) for v in values]
        properties[str(key)] = cleaned
    if properties:
        out['site_properties'] = properties
    charge = getattr(structure, '_charge', None)
    if charge and math.isfinite(float(charge)):
        out['charge'] = float(charge)
    return out


def _json_value(value: Any) -> Any:
    """A site property value as JSON (numpy arrays and scalars to lists / floats)."""
    import json

    import numpy as np

    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    json.dumps(value, allow_nan=False)
    return value


def to_structure_data(obj: Any) -> orm.StructureData:
    """Return ``obj`` as a ``StructureData`` (unstored if it was a pymatgen ``Structure`` or ASE ``Atoms``).

    Oxidation states, magnetic moments, charges and other per-site properties are stripped (module docstring);
    ASE ``Atoms`` keep their periodic boundary conditions and the kinds their tags define.

    :raises TypeError: for any other type.
    :raises ValueError: for a structure that ``StructureData`` cannot hold (dummy species, occupancy above 1, an
        ASE ``Atoms`` without a cell).
    """
    if isinstance(obj, orm.StructureData):
        return obj
    from ase import Atoms
    from pymatgen.core import Structure

    if isinstance(obj, Structure):
        return pymatgen_to_structure_data(obj)
    if isinstance(obj, Atoms):
        import numpy as np
        from pymatgen.core import Lattice

        volume = abs(float(np.linalg.det(obj.cell.array)))
        if not np.isfinite(obj.cell.array).all() or volume < 1e-6:
            raise ValueError(
                f'ASE Atoms with cell volume {volume:.3g} Å^3 (pbc={obj.pbc.tolist()}): StructureData needs a cell; '
                'put a molecule in a box'
            )
        numbers = obj.get_atomic_numbers()
        if (numbers < 1).any():
            raise ValueError(f'ASE Atoms has a dummy species (atomic number 0) at site {int((numbers < 1).argmax())}')
        if not np.isfinite(obj.positions).all():
            bad = int(np.flatnonzero(~np.isfinite(obj.positions).all(axis=1))[0])
            raise ValueError(f'NaN or infinite coordinates at site {bad}: StructureData cannot store them')
        try:  # aiida-core's conversion keeps the kinds ASE tags define (Fe1, Fe2, ...)
            return orm.StructureData(ase=obj)
        except Exception:  # e.g. properties aiida-core cannot map; this package's conversion strips them
            pass
        structure = Structure(
            Lattice(obj.cell.array),
            numbers.tolist(),
            obj.positions,
            coords_are_cartesian=True,
            validate_proximity=False,
        )
        return pymatgen_to_structure_data(structure, pbc=tuple(bool(p) for p in obj.pbc))  # type: ignore[arg-type]
    raise TypeError(f'expected StructureData, pymatgen Structure or ASE Atoms, got {type(obj).__name__}')
