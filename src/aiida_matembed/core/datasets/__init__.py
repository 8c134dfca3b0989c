"""Structure sets: the offline examples and AFLOW prototypes, and the training data of the learned models.

* :func:`load_example_structures`, :func:`load_aflow_prototypes`, :func:`load_pyriodic_prototypes`: structures that
  ship offline.
* :class:`StructureSet` (:mod:`.store`): a compact labelled set of ordered crystals saved to one ``.npz``.
* :func:`synthetic_crystals` (:mod:`.synthetic`), :func:`decorate_prototypes` and :func:`structure_type_key`
  (:mod:`.prototypes`), the held-out split (:mod:`.heldout`) and :func:`build_dataset` (:mod:`.build`): the
  reproducible, offline training and held-out sets (issue #5).
* :func:`~.perturb.perturb_structures` (:mod:`.perturb`): random strains and displacements that keep the space
  group, for resampling training patterns every epoch.
* :func:`load_structure_set` (:mod:`.loaders`): user data from CIF folders, extxyz, pymatgen JSON or ASE databases.
"""

from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from pymatgen.core import Structure

__all__ = (
    'HELDOUT_FRACTION',
    'PYRIODIC_DECORATION',
    'SOURCES',
    'SPLITS',
    'STANDARD_LABELS',
    'LabelledStructure',
    'StructureSet',
    'build_dataset',
    'concatenate',
    'crystal_system',
    'decorate_prototypes',
    'heldout_prototypes',
    'is_heldout',
    'load_aflow_prototypes',
    'load_example_structures',
    'load_pyriodic_prototypes',
    'load_structure_set',
    'reference_prototypes',
    'structure_type_key',
    'synthetic_crystals',
)

PYRIODIC_DECORATION = ('Fe', 'O', 'Si', 'Ba', 'Cl')
"""Elements given to pyriodic-aflow's anonymous atom types 0, 1, 2, ... (fixed, so results are reproducible)."""


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


def _aflow_prototypes_path() -> Path:
    """Path of pymatgen's ``aflow_prototypes.json.gz``, found without importing ``pymatgen.analysis.prototypes``.

    (That import takes several seconds: it pulls in the structure matcher and more.)
    """
    from importlib.util import find_spec

    spec = find_spec('pymatgen')
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - pymatgen is a dependency
        raise ImportError('the AFLOW prototypes need pymatgen')
    return Path(next(iter(spec.submodule_search_locations))) / 'analysis' / 'prototypes' / 'aflow_prototypes.json.gz'


def load_aflow_prototypes() -> list[LabelledStructure]:
    """Return the 288 AFLOW prototypes that pymatgen ships, labelled by mineral name or AFLOW label."""
    from pymatgen.core import Structure

    with gzip.open(_aflow_prototypes_path(), 'rt') as handle:
        entries = json.load(handle)
    return [
        LabelledStructure(e['tags']['mineral'] or e['tags']['aflow'], e['tags']['aflow'], Structure.from_dict(e['snl']))
        for e in entries
    ]


def load_pyriodic_prototypes() -> list[LabelledStructure]:
    """Return the 579 AFLOW prototypes of the ``pyriodic-aflow`` package, decorated deterministically.

    pyriodic-aflow stores each prototype as Cartesian positions (Å, float32), anonymous integer atom types and
    a HOOMD box ``(Lx, Ly, Lz, xy, xz, yz)``, i.e. lattice vectors ``(Lx, 0, 0)``, ``(xy Ly, Ly, 0)`` and
    ``(xz Lz, yz Lz, Lz)``. Type ``t`` becomes element ``PYRIODIC_DECORATION[t]``. The label is pyriodic's
    name (Pearson symbol and formula), ``aflow`` its Pearson symbol and space-group number.

    :raises ImportError: when ``pyriodic-aflow`` is not installed.
    """
    from pymatgen.core import Lattice, Structure

    try:
        path = resources.files('pyriodic_aflow').joinpath('unit_cells/aflow_db.json')
    except ModuleNotFoundError:
        raise ImportError('the pyriodic prototypes need pyriodic-aflow: pip install pyriodic-aflow') from None
    out = []
    for entry in json.loads(path.read_text()):
        lx, ly, lz, xy, xz, yz = entry['box']
        lattice = Lattice([[lx, 0.0, 0.0], [xy * ly, ly, 0.0], [xz * lz, yz * lz, lz]])
        species = [PYRIODIC_DECORATION[t] for t in entry['types']]
        structure = Structure(lattice, species, entry['positions'], coords_are_cartesian=True)
        pearson = entry['name'].split('-', 1)[0]
        out.append(LabelledStructure(entry['name'], f'{pearson}_{entry["space_group"]}', structure))
    return out


from .build import build_dataset  # noqa: E402
from .heldout import HELDOUT_FRACTION, heldout_prototypes, is_heldout  # noqa: E402
from .loaders import load_structure_set  # noqa: E402
from .prototypes import SPLITS, crystal_system, decorate_prototypes, reference_prototypes, structure_type_key  # noqa: E402
from .store import SOURCES, STANDARD_LABELS, StructureSet, concatenate  # noqa: E402
from .synthetic import synthetic_crystals  # noqa: E402
