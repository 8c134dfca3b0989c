"""Structure sets that ship offline: the package's example structures and pymatgen's AFLOW prototypes."""

from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from pymatgen.core import Structure

__all__ = ('LabelledStructure', 'load_aflow_prototypes', 'load_example_structures')


class LabelledStructure(NamedTuple):
    """A structure with a human-readable label and its AFLOW prototype label."""

    label: str
    aflow: str
    structure: Structure


def load_example_structures() -> list[LabelledStructure]:
    """Return the 18 example structures shipped with the package (real prototypes; see the JSON's script).

    NaCl, Si, ZnS (zincblende, wurtzite), CaTiO3, MgAl2O4, TiO2 (rutile, anatase), CaF2, Al2O3, Cu, W, Mg,
    graphite, FeS2, CaCO3, LiCoO2 and a disordered fcc CuAu alloy.
    """
    from pymatgen.core import Structure

    text = resources.files('aiida_matembed').joinpath('resources/example_structures.json').read_text()
    return [LabelledStructure(e['label'], e['aflow'], Structure.from_dict(e['structure'])) for e in json.loads(text)]


def load_aflow_prototypes() -> list[LabelledStructure]:
    """Return the 288 AFLOW prototypes that pymatgen ships, labelled by mineral name or AFLOW label."""
    import pymatgen.analysis.prototypes
    from pymatgen.core import Structure

    path = Path(pymatgen.analysis.prototypes.__file__).parent / 'aflow_prototypes.json.gz'
    with gzip.open(path, 'rt') as handle:
        entries = json.load(handle)
    return [
        LabelledStructure(e['tags']['mineral'] or e['tags']['aflow'], e['tags']['aflow'], Structure.from_dict(e['snl']))
        for e in entries
    ]
