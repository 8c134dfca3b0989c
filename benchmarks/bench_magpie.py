"""Magpie statistics: aiida-matembed vs matminer on pymatgen's 288 AFLOW prototypes, one process.

Run:  python benchmarks/bench_magpie.py
Goal (issue #2): >= 100x matminer's throughput with identical values (1e-6 relative).
"""

import platform
import warnings

import numpy as np

from timing import best_of

warnings.filterwarnings('ignore')


def main():
    from matminer.featurizers.composition import ElementProperty

    from aiida_matembed.core.datasets import load_aflow_prototypes
    from aiida_matembed.core.representations import get_representation

    prototypes = load_aflow_prototypes()
    compositions = [p.structure.composition for p in prototypes]
    structures = [p.structure for p in prototypes]
    reference = ElementProperty.from_preset('magpie', impute_nan=True)
    ours = get_representation('matembed.magpie')
    ours.featurize_many(compositions[:2])  # load the table once

    t_ref, expected = best_of(lambda: np.array([reference.featurize(c) for c in compositions]), 3)
    t_ours, result = best_of(lambda: ours.featurize_many(compositions).features, 20)
    t_struct, from_structures = best_of(lambda: ours.featurize_many(structures).features, 3)

    np.testing.assert_allclose(result, expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(from_structures, expected, rtol=1e-6, atol=1e-9)
    deviation = np.abs(result - expected)
    significant = np.abs(expected) > 1e-6
    worst_rel = np.max(deviation[significant] / np.abs(expected[significant]))
    n = len(compositions)
    print(f'machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}')
    print(f'{n} compositions x 132 features; values equal: max |Δ| {deviation.max():.1e}, max relative {worst_rel:.1e}')
    print(f'matminer ElementProperty(magpie):      {t_ref / n * 1e3:8.3f} ms per composition')
    print(f'aiida-matembed matembed.magpie:        {t_ours / n * 1e3:8.4f} ms per composition')
    print(f'  from Structures (incl. validation):  {t_struct / n * 1e3:8.4f} ms per structure')
    print(f'ratio (compositions): {t_ref / t_ours:.0f}x   (goal >= 100x)')


if __name__ == '__main__':
    main()
