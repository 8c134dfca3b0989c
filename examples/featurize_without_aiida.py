"""Featurise the 288 AFLOW prototypes with the core only (no AiiDA profile needed)."""

from aiida_matembed.core.datasets import load_aflow_prototypes
from aiida_matembed.core.representations import get_representation

prototypes = load_aflow_prototypes()
rep = get_representation('matembed.element_embedding', table='skipatom', stats=['mean', 'range'])
result = rep.featurize_many([p.structure for p in prototypes], errors='record')
print(result.features.shape, f'{len(result.failures)} failed:')
for failure in result.failures[:5]:
    print(f'  {prototypes[failure.index].label}: {failure.message}')
