"""Small structure sets for tests: good ones for the contract, bad ones with the error they must give."""

from __future__ import annotations

from functools import cache
from typing import Any, NamedTuple, cast

import numpy as np

from ..core.datasets import load_example_structures


def contract_structures() -> list[Any]:
    """Ordered example structures (17 of them) covering cubic to trigonal cells, 1 to 14 sites."""
    return [e.structure for e in load_example_structures() if e.structure.is_ordered]


class BadInput(NamedTuple):
    """A bad input and a fragment its error message must contain."""

    label: str
    structure: Any
    message: str


def bad_inputs() -> list[BadInput]:
    """Inputs every representation must reject with a clear message (or record as a failure)."""
    from ase import Atoms
    from pymatgen.core import DummySpecies, Lattice, Structure

    cubic = Lattice.cubic(4.0)
    none: Any = cast(Any, [])  # pymatgen accepts empty species and coordinates
    half: Any = [[0, 0, 0], [0.5, 0.5, 0.5]]
    nan_coords = Structure(cubic, ['Na', 'Cl'], half)
    nan_coords.replace(1, 'Cl', [np.nan, 0.5, 0.5])
    return [
        BadInput('no sites', Structure(cubic, none, none), 'no sites'),
        BadInput(
            'overlapping atoms',
            Structure(cubic, ['Na', 'Cl'], cast(Any, [[0, 0, 0], [0.05, 0, 0]])),
            'overlapping atoms',
        ),
        BadInput(
            'zero volume',
            Atoms('NaCl', positions=[[0, 0, 0], [2, 0, 0]], cell=[[4, 0, 0], [0, 4, 0], [8, 8, 0]], pbc=True),
            'zero cell volume',
        ),
        BadInput(
            'negative volume',
            Structure(Lattice([[0, 4, 0], [4, 0, 0], [0, 0, 4]]), ['Na', 'Cl'], half),
            'negative cell volume',
        ),
        BadInput('NaN coordinates', nan_coords, 'NaN'),
        BadInput(
            'unknown species',
            Structure(cubic, ['Na', DummySpecies('X')], half),
            'unknown species',
        ),
        BadInput('not a structure', 42, 'expected a pymatgen Structure'),
        BadInput('non-periodic ASE Atoms', Atoms('H2', positions=[[0, 0, 0], [0.74, 0, 0]]), 'pbc'),
        BadInput('infinite coordinates', _infinite_coordinates(), 'infinite coordinates'),
        BadInput(
            'atoms 0.035 Å apart across the periodic boundary',
            Structure(cubic, ['Na', 'Cl'], cast(Any, [[0.0001, 0.5, 0.5], [0.9914, 0.5, 0.5]])),
            'overlapping atoms',
        ),
        BadInput('1 km cell', Structure(Lattice.cubic(1e13), ['Na', 'Cl'], half), 'longer than'),
        BadInput('10,000-atom cell', _large_cell(), 'more than'),
    ]


def _infinite_coordinates() -> Any:
    from pymatgen.core import Lattice, Structure

    coords: Any = [[0, 0, 0], [0.5, 0.5, 0.5]]
    structure = Structure(Lattice.cubic(4.0), ['Na', 'Cl'], coords)
    structure.replace(0, 'Na', [np.inf, 0, 0])
    return structure


@cache
def _large_cell() -> Any:
    """A 10,000-atom NaCl supercell (made once; representations must not modify their inputs)."""
    from pymatgen.core import Lattice, Structure

    frac = np.stack(np.meshgrid(*[np.arange(20)] * 2, np.arange(25), indexing='ij'), axis=-1).reshape(-1, 3)
    frac = (frac + 0.25) / np.array([20, 20, 25])
    species = ['Na', 'Cl'] * (len(frac) // 2)
    return Structure(Lattice.orthorhombic(56.4, 56.4, 70.5), species, frac)
