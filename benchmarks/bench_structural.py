"""Structural representations and crystal graphs vs their peers, side by side, one process, one core.

Run:  python benchmarks/bench_structural.py [sine] [rdf] [graphs] [soap]   (default: all)
Goals (issue #3), on pymatgen's ordered AFLOW prototypes:
- sine-matrix spectrum vs matminer ``SineCoulombMatrix``: >= 50x, equal values;
- RDF vs matminer ``RadialDistributionFunction``: >= 50x;
- crystal graphs (8 Å, 12 neighbours, cells <= 50 atoms): >= 2,000 graphs/s on one core and >= 10x a
  per-structure loop over pymatgen's ``get_all_neighbors`` (how CGCNN's ``CIFData`` builds graphs);
- SOAP: within 20% of calling featomic directly on the same structures.
Our timings include reading and validating every structure (overlaps, volume, species); the peers
validate nothing.
"""

import os

for _variable in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS', 'RAYON_NUM_THREADS'):
    os.environ.setdefault(_variable, '1')

import platform  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

from timing import best_of  # noqa: E402

warnings.filterwarnings('ignore')


def report(name, n, t_peer, t_ours, goal):
    ratio = t_peer / t_ours
    print(
        f'{name:<34} peer {t_peer / n * 1e3:8.3f} ms/structure   ours {t_ours / n * 1e3:7.3f} ms/structure   '
        f'ratio {ratio:7.1f}x   goal {goal}'
    )
    return ratio


def bench_sine(structures):
    from matminer.featurizers.structure import matrix

    from aiida_matembed.core.representations import get_representation
    from aiida_matembed.core.representations.structural import ANGSTROM_TO_BOHR, sort_spectra

    matrix.ANG_TO_BOHR = ANGSTROM_TO_BOHR  # same unit as ours (matminer uses the "Angstrom star")
    peer = matrix.SineCoulombMatrix().fit(structures)
    ours = get_representation('matembed.sine_matrix', max_sites=peer._max_eigs)
    t_peer, expected = best_of(lambda: np.array([peer.featurize(s) for s in structures]), 1)
    t_ours, result = best_of(lambda: ours.featurize_many(structures).features, 5)
    cells = ours._prepare_many(structures)
    t_kernel, _ = best_of(lambda: ours._compute(cells), 5)
    deviation = np.abs(result - sort_spectra(np.real(expected))).max()
    ratio = report('sine matrix spectrum', len(structures), t_peer, t_ours, '>= 50x')
    print(f'{"":<34} max |difference| {deviation:.2e}; spectrum kernel alone (no validation) {t_peer / t_kernel:.1f}x')
    return ratio


def bench_rdf(structures):
    from matminer.featurizers.structure import RadialDistributionFunction

    from aiida_matembed.core.representations import get_representation

    peer = RadialDistributionFunction(cutoff=10.0, bin_size=0.1)
    ours = get_representation('matembed.rdf', cutoff=10.0, bin_size=0.1)
    t_peer, _ = best_of(lambda: [peer.featurize(s) for s in structures], 1)
    t_ours, _ = best_of(lambda: ours.featurize_many(structures).features, 3)
    return report('RDF (10 Å, 0.1 Å bins)', len(structures), t_peer, t_ours, '>= 50x')


def cgcnn_graphs(structures, table, centers, width, radius=8.0, max_num_nbr=12):
    """What CGCNN's ``CIFData.__getitem__`` does per structure (without reading the CIF)."""
    import torch

    out = []
    for crystal in structures:
        atom_fea = torch.tensor(np.vstack([table[site.specie.Z] for site in crystal]), dtype=torch.float32)
        all_nbrs = crystal.get_all_neighbors(radius, include_index=True)
        all_nbrs = [sorted(nbrs, key=lambda x: x[1]) for nbrs in all_nbrs]
        nbr_fea_idx, nbr_fea = [], []
        for nbr in all_nbrs:
            nbr_fea_idx.extend(x[2] for x in nbr[:max_num_nbr])
            nbr_fea.extend(x[1] for x in nbr[:max_num_nbr])
        distances = np.array(nbr_fea)
        expanded = np.exp(-((distances[:, None] - centers[None, :]) ** 2) / width**2)
        out.append((atom_fea, torch.tensor(expanded, dtype=torch.float32), torch.tensor(nbr_fea_idx)))
    return out


def bench_graphs(structures):
    import torch

    from aiida_matembed.core.representations import get_representation

    torch.set_num_threads(1)
    small = [s for s in structures if len(s) <= 50]
    ours = get_representation('matembed.crystal_graph')
    table = np.nan_to_num(ours.atom_table())
    t_peer, _ = best_of(lambda: cgcnn_graphs(small, table, ours.gaussian_centers, ours.gaussian_width), 1)
    t_ours, result = best_of(lambda: ours.graphs_many(small).graphs, 3)
    t_vec, _ = best_of(lambda: ours.featurize_many(small).features, 3)
    t_batch, _ = best_of(lambda: ours.graphs_batch(small)[0], 3)
    ratio = report('crystal graphs (Data objects)', len(small), t_peer, t_ours, '>= 10x')
    rate = len(small) / t_ours
    edges = sum(g.edge_index.shape[1] for g in result)
    print(
        f'{"":<34} {rate:,.0f} graphs/s on one core (goal >= 2,000); {len(small)} cells <= 50 atoms, '
        f'{edges / len(small):.0f} edges per graph; pooled vector view {len(small) / t_vec:,.0f} structures/s'
    )
    print(
        f'{"":<34} one Batch built directly (graphs_batch): {len(small) / t_batch:,.0f} graphs/s '
        f'(goal >= 2,000); ratio to the CGCNN loop {t_peer / t_batch:.1f}x'
    )
    return ratio, rate


def bench_soap(structures):
    # the 80 prototypes made only of the 12 commonest elements: 78 species pairs, 14,040 columns
    from collections import Counter

    import featomic
    import metatensor
    from featomic.basis import Gto, TensorProduct
    from featomic.cutoff import Cutoff, ShiftedCosine
    from featomic.density import Gaussian
    from pymatgen.io.ase import AseAtomsAdaptor

    from aiida_matembed.core.representations import get_representation

    counts = Counter(el.symbol for s in structures for el in s.composition.elements)
    common = {symbol for symbol, _ in counts.most_common(12)}
    structures = [s for s in structures if {el.symbol for el in s.composition.elements} <= common]
    ours = get_representation('matembed.soap', species=sorted(common))
    atoms = [AseAtomsAdaptor.get_atoms(s) for s in structures]  # the peer gets ready ASE objects, untimed
    calculator = featomic.SoapPowerSpectrum(
        cutoff=Cutoff(radius=5.0, smoothing=ShiftedCosine(width=0.5)),
        density=Gaussian(width=0.5),
        basis=TensorProduct(max_angular=4, radial=Gto(max_radial=5)),
    )

    def direct():
        descriptor = calculator.compute(atoms)
        descriptor = descriptor.keys_to_samples('center_type')
        descriptor = descriptor.keys_to_properties(['neighbor_1_type', 'neighbor_2_type'])
        return metatensor.mean_over_samples(descriptor, sample_names='atom')

    t_peer, _ = best_of(direct, 3)
    t_ours, _ = best_of(lambda: ours.featurize_many(structures).features, 3)
    report('SOAP (5 Å, n 6, l 4), 12 species', len(structures), t_peer, t_ours, 'ours/featomic <= 1.2')
    print(f'{"":<34} overhead: ours takes {t_ours / t_peer:.2f}x the time of featomic called directly')
    return t_ours / t_peer


def main():
    from aiida_matembed.core.datasets import load_aflow_prototypes

    structures = [p.structure for p in load_aflow_prototypes() if p.structure.is_ordered]
    print(f'{len(structures)} ordered AFLOW prototypes (pymatgen); {platform.processor() or platform.machine()}')
    only = sys.argv[1:]
    if not only or 'sine' in only:
        bench_sine(structures)
    if not only or 'rdf' in only:
        bench_rdf(structures)
    if not only or 'graphs' in only:
        bench_graphs(structures)
    if not only or 'soap' in only:
        bench_soap(structures)


if __name__ == '__main__':
    main()
