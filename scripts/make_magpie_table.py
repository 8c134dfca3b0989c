"""Regenerate ``src/aiida_matembed/core/representations/resources/magpie_elements.json``.

The Magpie elemental property tables (Ward et al., npj Comput. Mater. 2, 16028 (2016)) are read from
the copy that matminer ships (``matminer/utils/data_files/magpie_elementdata``), without imputation,
for Z = 1..118 (missing values are ``null``). Run with the dev extra installed::

    python scripts/make_magpie_table.py
"""

import json
import math
from pathlib import Path

from matminer.utils.data import MagpieData
from pymatgen.core import Element

PROPERTIES = [
    'Number', 'MendeleevNumber', 'AtomicWeight', 'MeltingT', 'Column', 'Row', 'CovalentRadius',
    'Electronegativity', 'NsValence', 'NpValence', 'NdValence', 'NfValence', 'NValence', 'NsUnfilled',
    'NpUnfilled', 'NdUnfilled', 'NfUnfilled', 'NUnfilled', 'GSvolume_pa', 'GSbandgap', 'GSmagmom',
    'SpaceGroupNumber',
]  # fmt: skip
UNITS = {
    'AtomicWeight': 'u', 'MeltingT': 'K', 'CovalentRadius': 'pm', 'Electronegativity': 'Pauling',
    'GSvolume_pa': 'Å^3/atom', 'GSbandgap': 'eV', 'GSmagmom': 'μB/atom',
}  # fmt: skip


def main() -> None:
    data = MagpieData(impute_nan=False)
    table = {}
    for prop in PROPERTIES:
        values = []
        for z in range(1, 119):
            value = data.all_elemental_props[prop][Element.from_Z(z).symbol]
            values.append(None if math.isnan(value) else value)
        table[prop] = values
    out = {
        'description': 'Magpie elemental properties for Z = 1..118 (null: missing), as shipped by matminer '
        '0.10 (magpie_elementdata). Missing values are imputed at run time by the mean over elements.',
        'reference': 'L. Ward, A. Agrawal, A. Choudhary, C. Wolverton, npj Comput. Mater. 2, 16028 (2016)',
        'units': UNITS,
        'properties': table,
    }
    path = Path(__file__).parents[1] / 'src/aiida_matembed/core/representations/resources/magpie_elements.json'
    path.write_text(json.dumps(out, indent=0) + '\n')
    print(f'wrote {path}')


if __name__ == '__main__':
    main()
