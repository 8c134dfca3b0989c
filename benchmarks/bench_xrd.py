"""Powder XRD engine vs pymatgen's ``XRDCalculator``: speed side by side, agreement on every prototype.

Run:  python benchmarks/bench_xrd.py [peaks] [profiles] [large] [gpu] [agreement]   (default: all)

Goals (issue #4):
- peaks vs pymatgen ``XRDCalculator`` on the 288 prototypes, Cu K-alpha 10-110°, same process, one core: >= 100x;
- gridded profiles (Cu K-alpha, 10-110° in 0.02° steps = 5001 points, pseudo-Voigt, FWHM 0.1°): >= 20,000
  patterns per minute on the CPU here (the peer, for a ratio: pymatgen's peaks broadened with numpy on the
  full grid, what one writes without this package);
- on an H100-class GPU: >= 10,000 patterns per second for cells <= 50 atoms (device name printed);
- memory bounded: a 2,000-atom cell with Mo K-alpha completes (time and peak resident memory printed);
- agreement: every pymatgen peak above 0.5 (0-100 scale) found within 1e-3° with intensity within 0.5 and the
  same hkl families, no extra peak above 0.5; all 288 + 579 prototypes, Cu and Mo K-alpha; worst deviations.
Our timings include reading and validating every structure; pymatgen validates nothing.
"""

import os
import sys

ONE_CORE = '--all-cores' not in sys.argv
if ONE_CORE:
    for _variable in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ.setdefault(_variable, '1')

import platform  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from timing import best_of  # noqa: E402

warnings.filterwarnings('ignore')
if ONE_CORE:
    torch.set_num_threads(1)


def prototypes():
    from aiida_matembed.core.datasets import load_aflow_prototypes

    return [p.structure for p in load_aflow_prototypes()]


def bench_peaks(structures):
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    from aiida_matembed.core.xrd import XrdSimulator

    for anode in ('CuKa', 'MoKa'):
        peer = XRDCalculator(anode)
        ours = XrdSimulator(anode)
        t_peer, _ = best_of(lambda: [peer.get_pattern(s, two_theta_range=(10, 110)) for s in structures], 1)  # noqa: B023
        ours.peaks_many(structures[:8])  # warm-up (torch kernels)
        t_ours, _ = best_of(lambda: ours.peaks_many(structures), 5)  # noqa: B023
        t_numpy, _ = best_of(lambda: [ours.peaks(s) for s in structures], 2)  # noqa: B023
        n = len(structures)
        print(
            f'peaks {anode} 10-110°: pymatgen {t_peer / n * 1e3:7.3f} ms/structure   ours (batched) '
            f'{t_ours / n * 1e3:6.3f} ms/structure   ratio {t_peer / t_ours:6.1f}x   goal >= 100x (Cu)'
        )
        print(f'{"":<22}ours, numpy one-by-one {t_numpy / n * 1e3:6.3f} ms/structure ({t_peer / t_numpy:.1f}x)')


def _peer_profiles(structures, grid, fwhm=0.1, eta=0.5):
    """pymatgen peaks broadened with a pseudo-Voigt on the full grid (numpy broadcasting)."""
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    calculator = XRDCalculator('CuKa')
    out = np.zeros((len(structures), len(grid)))
    for row, structure in enumerate(structures):
        pattern = calculator.get_pattern(structure, two_theta_range=(10, 110), scaled=False)
        x = (grid[None, :] - pattern.x[:, None]) / fwhm
        shape = (1 - eta) * np.sqrt(4 * np.log(2) / np.pi) * np.exp(-4 * np.log(2) * x**2) + eta * 2 / np.pi / (
            1 + 4 * x**2
        )
        out[row] = pattern.y @ shape / fwhm
        out[row] /= out[row].max()
    return out


def bench_profiles(structures):
    from aiida_matembed.core.xrd import XrdSimulator

    simulator = XrdSimulator('CuKa')
    batch = (structures * 7)[:2000]
    simulator.profiles_many(batch[:16])
    t_ours, (grid, _) = best_of(lambda: simulator.profiles_many(batch), 3)
    sample = structures[::4]
    t_peer, expected = best_of(lambda: _peer_profiles(sample, grid), 1)
    _, ours_sample = simulator.profiles_many(sample)
    rate = len(batch) / t_ours * 60
    peer_rate = len(sample) / t_peer * 60
    threads = torch.get_num_threads()
    print(
        f'profiles (5001 points, pseudo-Voigt 0.1°), {threads} thread(s): ours {rate:9,.0f} patterns/min   '
        f'pymatgen + numpy broadening {peer_rate:7,.0f} patterns/min   ratio {rate / peer_rate:6.1f}x   '
        f'goal >= 20,000/min'
    )
    print(f'{"":<22}max |ours - peer| on max-normalised patterns: {np.abs(ours_sample - expected).max():.1e}')


def bench_large():
    from pymatgen.core import Lattice, Structure

    from aiida_matembed.core.xrd import XrdSimulator

    cell = Structure.from_spacegroup('Fm-3m', Lattice.cubic(5.6402), ['Na', 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]])
    cell = cell * (5, 5, 10)
    cell.perturb(0.05, seed=0)  # seeded: the same cell in every run
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    peaks = XrdSimulator('MoKa').peaks_many([cell])[0]
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f'large cell: {len(cell)} atoms, Mo K-alpha 10-110°: {elapsed:.2f} s, {len(peaks)} peaks, '
        f'peak resident memory {after:.0f} MB (before {before:.0f} MB)'
    )


def bench_gpu(structures):
    from aiida_matembed.core.xrd import XrdSimulator

    if not torch.cuda.is_available():
        print('gpu: no GPU on this machine; not measured')
        return
    small = [s for s in structures if len(s) <= 50]
    batch = (small * (20_000 // len(small) + 1))[:20_000]
    simulator = XrdSimulator('CuKa')
    simulator.profiles_many(batch[:512], device='cuda')
    torch.cuda.synchronize()
    t, _ = best_of(lambda: simulator.profiles_many(batch, device='cuda', batch_size=4096), 3)
    print(
        f'gpu ({torch.cuda.get_device_name()}): {len(batch) / t:,.0f} patterns/s (cells <= 50 atoms, 5001 points, '
        f'validation and transfer to numpy included)   goal >= 10,000/s'
    )


def standard_cell(structure):
    """The structure in spglib's standard conventional setting (symprec 0.01 Å, 5°), positions not idealised."""
    import spglib
    from pymatgen.core import Lattice, Structure

    cell = (structure.lattice.matrix, structure.frac_coords, [site.specie.Z for site in structure])
    lattice, frac, numbers = spglib.standardize_cell(cell, to_primitive=False, no_idealize=True, symprec=0.01,
                                                     angle_tolerance=5)  # fmt: skip
    return Structure(Lattice(lattice), list(numbers), frac)


def bench_agreement():
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    from aiida_matembed.core.datasets import load_aflow_prototypes, load_pyriodic_prototypes
    from aiida_matembed.core.xrd import XrdSimulator
    from aiida_matembed.testing.xrd import compare_with_pymatgen

    sets = {'pymatgen 288': load_aflow_prototypes(), 'pyriodic 579': load_pyriodic_prototypes()}
    for anode in ('CuKa', 'MoKa'):
        peer = XRDCalculator(anode)
        for name, entries in sets.items():
            structures = [e.structure for e in entries]
            results = XrdSimulator(anode).peaks_many(structures, errors='record')
            worst_t = worst_i = 0.0
            failed, bad, peaks = [], [], 0
            for entry, ours in zip(entries, results, strict=True):
                if ours.error is not None:
                    failed.append(f'{entry.label}: {ours.error}')
                    continue
                expected = peer.get_pattern(entry.structure, two_theta_range=(10, 110))
                labels = None  # the labels of the conventional standard cell: pymatgen on spglib's standard cell
                if ours.hkl_setting == 'conventional':  # (not idealised, so that near-symmetric cells keep their peaks)
                    labels = peer.get_pattern(standard_cell(entry.structure), two_theta_range=(10, 110))
                agreement = compare_with_pymatgen(ours, expected, labels=labels)
                worst_t, worst_i = max(worst_t, agreement.max_two_theta), max(worst_i, agreement.max_intensity)
                peaks += int((ours.intensity > 0.5).sum())
                if not agreement.ok:
                    bad.append(f'{entry.label}: {agreement.problems[:2]}')
            print(
                f'agreement {anode} {name}: {len(structures) - len(failed) - len(bad)}/{len(structures)} agree '
                f'({peaks} peaks > 0.5); worst |Δ2θ| {worst_t:.1e}°, worst |ΔI| {worst_i:.1e}; '
                f'{len(bad)} disagree; {len(failed)} refused as bad input'
            )
            for line in (bad + failed)[:6]:
                print(f'    {line}')


def main():
    wanted = [a for a in sys.argv[1:] if not a.startswith('--')] or ['peaks', 'profiles', 'large', 'gpu', 'agreement']
    print(f'# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, '
          f'{"one core" if ONE_CORE else "all cores"}')  # fmt: skip
    if 'large' in wanted:  # first, so that the peak resident memory is this test's
        bench_large()
    structures = prototypes()
    if 'peaks' in wanted:
        bench_peaks(structures)
    if 'profiles' in wanted:
        bench_profiles(structures)
    if 'gpu' in wanted:
        bench_gpu(structures)
    if 'agreement' in wanted:
        bench_agreement()


if __name__ == '__main__':
    main()
