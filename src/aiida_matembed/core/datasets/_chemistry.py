"""Chemistry rules shared by the synthetic crystals and the prototype decorations (private).

* **Elements used**: Z = 1..83 and Th, U, without the noble gases, Tc and Pm (:data:`POOL`).
* **Cation oxidation states** of an element: its positive states in pymatgen's ``common_oxidation_states`` or
  ``icsd_oxidation_states`` that are also among the states ``Composition.oxi_state_guesses`` tries (the ICSD
  states when pymatgen has any, else all known states). So every charge-balanced composition made here is also
  one that ``oxi_state_guesses`` finds balanced.
* **Anions**: a fixed table (:data:`ANIONS`) of the usual monatomic anions with weights that favour oxides, as
  in the Materials Project, where about half of the structures are oxides.
* **Covalent radii**: ASE's table (Cordero et al., *Dalton Trans.* 2832 (2008)), in Å.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from ..elements import SYMBOLS, atomic_number

__all__ = ('ANIONS', 'POOL', 'assign_charge_balanced', 'covalent_radius', 'min_contact_ratio')

ANIONS: dict[str, tuple[int, float]] = {
    'O': (-2, 6.0), 'S': (-2, 1.5), 'Se': (-2, 0.8), 'Te': (-2, 0.6),
    'F': (-1, 1.5), 'Cl': (-1, 1.2), 'Br': (-1, 0.7), 'I': (-1, 0.7), 'H': (-1, 0.4),
    'N': (-3, 1.2), 'P': (-3, 0.6), 'As': (-3, 0.3), 'Sb': (-3, 0.2), 'C': (-4, 0.3),
}  # fmt: skip
"""Anion element -> (oxidation state, relative weight)."""

_EXCLUDED = frozenset({'He', 'Ne', 'Ar', 'Kr', 'Xe', 'Tc', 'Pm'})
POOL: tuple[str, ...] = tuple(s for s in SYMBOLS[:83] if s not in _EXCLUDED) + ('Th', 'U')
"""Elements that synthetic crystals and decorations may contain."""

_NONMETAL_CATION_WEIGHT = 0.2
"""Weight of H, C, N, P, S, Se and the halogens as cations (e.g. S6+, P5+), relative to 1 for other elements."""

_LANTHANIDE_WEIGHT = 0.4
"""Weight of the lanthanides as cations, so that the 14 of them do not dominate the trivalent cations."""


def covalent_radius(z: int) -> float:
    """Return the covalent radius (Å) of element ``z`` (ASE's table, Cordero 2008)."""
    from ase.data import covalent_radii

    return float(covalent_radii[z])


@lru_cache(maxsize=1)
def _radii() -> np.ndarray:
    from ase.data import covalent_radii

    return np.asarray(covalent_radii, dtype=float)


@lru_cache(maxsize=1)
def cation_states() -> dict[str, tuple[int, ...]]:
    """Return element -> allowed positive oxidation states (see the module docstring)."""
    from pymatgen.core import Element

    states: dict[str, tuple[int, ...]] = {}
    for symbol in POOL:
        element = Element(symbol)
        tried = set(element.icsd_oxidation_states or element.oxidation_states)
        allowed = (set(element.common_oxidation_states) | set(element.icsd_oxidation_states)) & tried
        positive = tuple(sorted(int(q) for q in allowed if q > 0))
        if positive:
            states[symbol] = positive
    return states


def _cation_weight(symbol: str) -> float:
    z = atomic_number(symbol)
    if symbol in ANIONS and symbol not in ('As', 'Sb', 'Te'):
        return _NONMETAL_CATION_WEIGHT
    if 57 <= z <= 71:
        return _LANTHANIDE_WEIGHT
    return 1.0


@lru_cache(maxsize=1)
def _by_charge() -> dict[int, tuple[tuple[str, ...], np.ndarray]]:
    """Return charge -> (elements with that oxidation state, their weights)."""
    table: dict[int, list[tuple[str, float]]] = {}
    for symbol, states in cation_states().items():
        for q in states:
            table.setdefault(q, []).append((symbol, _cation_weight(symbol)))
    for symbol, (q, weight) in ANIONS.items():
        table.setdefault(q, []).append((symbol, weight))
    return {q: (tuple(s for s, _ in rows), np.array([w for _, w in rows])) for q, rows in sorted(table.items())}


@lru_cache(maxsize=8)
def _charge_grid(n_species: int) -> tuple[np.ndarray, np.ndarray]:
    """Return all charge vectors for ``n_species`` species with >= 1 cation and >= 1 anion, and their weights.

    The weight of a vector is the product of the total element weight of each charge, divided by 5 for each
    anion species beyond the first (compounds with one anion are the common case).
    """
    table = _by_charge()
    charges = np.array(sorted(table), dtype=np.int64)
    totals = np.array([table[int(q)][1].sum() for q in charges])
    grid = np.array(list(itertools.product(range(len(charges)), repeat=n_species)), dtype=np.int64)
    values = charges[grid]
    n_anions = (values < 0).sum(axis=1)
    keep = (n_anions >= 1) & ((values > 0).sum(axis=1) >= 1)
    weights = totals[grid].prod(axis=1) * 0.2 ** np.maximum(n_anions - 1, 0)
    return values[keep], weights[keep]


def assign_charge_balanced(counts: Sequence[int], rng: np.random.Generator) -> list[str] | None:
    """Choose distinct elements for species with ``counts`` atoms each so that the total charge is zero.

    A charge vector is drawn among all balanced ones (weighted as in :func:`_charge_grid`), then each species
    gets an element with that oxidation state (weighted, distinct). Returns ``None`` when no balanced assignment
    exists (e.g. counts (1, 12)) or the draw runs out of distinct elements.
    """
    counts_array = np.asarray(counts, dtype=np.int64)
    values, weights = _charge_grid(len(counts_array))
    balanced = values @ counts_array == 0
    if not balanced.any():
        return None
    options, p = values[balanced], weights[balanced]
    charges = options[rng.choice(len(options), p=p / p.sum())]
    table = _by_charge()
    chosen: list[str] = [''] * len(charges)
    for j in rng.permutation(len(charges)):
        elements, element_weights = table[int(charges[j])]
        free = np.array([e not in chosen for e in elements])
        if not free.any():
            return None
        w = element_weights * free
        chosen[j] = elements[rng.choice(len(elements), p=w / w.sum())]
    return chosen


def min_contact_ratio(lattice: np.ndarray, numbers: np.ndarray, frac: np.ndarray) -> float:
    """Return the smallest ``d_ij / (r_i + r_j)`` over all pairs of sites and periodic images.

    ``d_ij`` is the distance (Å) and ``r`` the covalent radius. Pairs further apart than 2.5 times the largest
    sum of radii are not considered (the ratio is then reported as 2.5 or more).
    """
    from pymatgen.optimization.neighbors import find_points_in_spheres

    radii = _radii()[np.asarray(numbers, dtype=np.int64)]
    cutoff = float(2.5 * 2 * radii.max())
    cart = np.ascontiguousarray(np.asarray(frac, dtype=float) @ lattice)
    centers, points, _, distances = find_points_in_spheres(
        cart,
        cart,
        r=cutoff,
        pbc=np.array([1, 1, 1], dtype=np.int64),
        lattice=np.ascontiguousarray(lattice, dtype=float),
        tol=1e-8,
    )
    keep = distances > 1e-8
    if not keep.any():
        return 2.5
    ratio = distances[keep] / (radii[centers[keep]] + radii[points[keep]])
    return float(min(ratio.min(), 2.5))


def summed_cubed_radii(numbers: np.ndarray) -> float:
    """Return the sum over sites of the cubed covalent radius (Å^3): a volume estimate up to a constant."""
    return float((_radii()[np.asarray(numbers, dtype=np.int64)] ** 3).sum())


@lru_cache(maxsize=1)
def _element_table() -> dict[str, tuple[int, int, bool]]:
    """Return element -> (group, period, is_metal) for the pool (pymatgen)."""
    from pymatgen.core import Element

    return {s: (int(Element(s).group), int(Element(s).row), bool(Element(s).is_metal)) for s in POOL}


def neighbour_elements(symbol: str) -> tuple[tuple[str, ...], np.ndarray]:
    """Return elements chemically close to ``symbol`` by position in the periodic table, with weights.

    Rule for species without an oxidation state (metals, intermetallics, elements): same metal / non-metal
    character, group within +-1 and period within +-1 (lanthanides count as group 3), excluding ``symbol``
    itself; only elements of :data:`POOL` are returned. Weight 2 for the same group or the same period, 1 for a
    diagonal neighbour.
    """
    from pymatgen.core import Element

    table = _element_table()
    if symbol in table:
        group, period, metal = table[symbol]
    else:  # e.g. an actinide of a prototype: its neighbours in the pool
        element = Element(symbol)
        group, period, metal = int(element.group), int(element.row), bool(element.is_metal)
    names, weights = [], []
    for other, (g, p, m) in table.items():
        if other == symbol or m != metal or abs(g - group) > 1 or abs(p - period) > 1:
            continue
        names.append(other)
        weights.append(2.0 if g == group or p == period else 1.0)
    return tuple(names), np.array(weights)
