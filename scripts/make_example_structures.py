"""Regenerate ``src/aiida_matembed/resources/example_structures.json`` from pymatgen's AFLOW prototypes.

The examples are real prototype structures shipped with pymatgen
(``pymatgen/analysis/prototypes/aflow_prototypes.json.gz``, Mehl et al. / Hicks et al., AFLOW library of
crystallographic prototypes), one LiCoO2 made by substituting the alpha-NaFeO2-type NaCrS2 prototype
(volume rescaled to the experimental cell, a = 2.816 Å, c = 14.05 Å) and one disordered fcc Cu-Au alloy.
"""

import gzip
import json
from pathlib import Path

import pymatgen.analysis.prototypes as prototypes
from pymatgen.core import Lattice, Structure

MINERALS = {
    'NaCl': 'Halite, Rock Salt',
    'Si (diamond)': 'diamond',
    'ZnS (zincblende)': 'Zincblende, Sphalerite',
    'ZnS (wurtzite)': 'Wurtzite',
    'CaTiO3 (cubic perovskite)': '(Cubic) Perovskite',
    'MgAl2O4 (spinel)': 'Spinel',
    'TiO2 (rutile)': 'Rutile',
    'TiO2 (anatase)': 'Anatase',
    'CaF2 (fluorite)': 'Fluorite',
    'Al2O3 (corundum)': 'Corundum',
    'Cu (fcc)': 'Copper',
    'W (bcc)': 'Tungsten',
    'Mg (hcp)': 'Magnesium',
    'C (graphite)': 'Graphite',
    'FeS2 (pyrite)': 'Pyrite',
    'CaCO3 (calcite)': 'Calcite',
}


def main() -> None:
    path = Path(prototypes.__file__).parent / 'aflow_prototypes.json.gz'
    with gzip.open(path, 'rt') as handle:
        entries = json.load(handle)
    by_mineral = {e['tags']['mineral']: e for e in entries}
    examples = []
    for label, mineral in MINERALS.items():
        entry = by_mineral[mineral]
        structure = Structure.from_dict(entry['snl'])
        if label.startswith('Si'):
            structure.replace_species({'C': 'Si'})
            structure.scale_lattice(structure.volume * (5.431 / 3.567) ** 3)
        examples.append({'label': label, 'aflow': entry['tags']['aflow'], 'structure': structure.as_dict()})
    licoo2 = Structure.from_dict(by_mineral['Caswellsilverite']['snl'])
    licoo2.replace_species({'Na': 'Li', 'Cr': 'Co', 'S': 'O'})
    licoo2.scale_lattice(Lattice.hexagonal(2.816, 14.05).volume / 3)  # 3 formula units per hexagonal cell
    examples.append(
        {'label': 'LiCoO2 (alpha-NaFeO2 type)', 'aflow': 'ABC2_hR4_166_a_b_c', 'structure': licoo2.as_dict()}
    )
    alloy = Structure(Lattice.cubic(3.85), [{'Cu': 0.5, 'Au': 0.5}] * 4,
                      [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])  # fmt: skip
    examples.append({'label': 'CuAu (disordered fcc)', 'aflow': 'A_cF4_225_a', 'structure': alloy.as_dict()})
    out = Path(__file__).parents[1] / 'src/aiida_matembed/resources/example_structures.json'
    out.write_text(json.dumps(examples) + '\n')
    print(f'wrote {len(examples)} structures to {out}')


if __name__ == '__main__':
    main()
