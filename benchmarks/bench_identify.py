"""Phase identification of perturbed measured-like patterns among >= 1,000 candidates, and its cost.

Run:  python benchmarks/bench_identify.py [--n-single 60] [--n-mixtures 40] [--speed-candidates 10000] [--no-learned]

Targets: top-1 >= 0.97 on single-phase patterns; both phases reported for two-phase mixtures (weight fraction of
each >= 20 %) >= 0.9; one identification among 10,000 candidates (peaks precomputed) <= 1 s on one core. The peer
is the route with learned embeddings alone (``matembed.cmml``: the measured pattern's XRD embedding against the
candidates' structure embeddings, nearest first), in the same run.

The "measured" patterns come from another program: pymatgen's ``XRDCalculator`` (Cu K-alpha1 peaks, absolute
intensities) of real structures (CIF files shipped in installed packages: pyxtal, ase, matminer), rendered here
with: a lattice strain (isotropic, 1-3 % of either sign, plus a random anisotropic part of 0.2 %), a zero shift of
+-0.1°, March-Dollase texture (r in 0.7-1.3 about a random low-index axis, averaged over each reflection's
symmetry-equivalent planes), K-alpha2 (half the K-alpha1 intensity), pseudo-Voigt peaks with Caglioti widths
(FWHM 0.06-0.2°), a smooth background and Poisson counting noise (strongest peak 2,000-20,000 counts) on 10-110° in
0.02° steps. Mixtures weigh each phase's intensities by ``w / (M V)`` (Hill & Howard 1987). Candidates: the real
structures (unstrained, as stored), pymatgen's 288 AFLOW prototypes, pyriodic-aflow's 579 and decorated prototypes.
"""

import argparse
import os
import sys

if '--all-cores' not in sys.argv:
    for _variable in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS', 'NUMBA_NUM_THREADS'):
        os.environ.setdefault(_variable, '1')

import math
import platform
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings('ignore')
LAMBDA1, LAMBDA2 = 1.540598, 1.544426  # pymatgen's CuKa1 / CuKa2 (Å)
GRID = np.round(np.arange(10.0, 110.0 + 1e-9, 0.02), 6)


def real_structures(max_sites=80):
    """Ordered inorganic crystals from CIF files shipped in installed packages (deduplicated by formula)."""
    import site

    from pymatgen.core import Structure

    roots = site.getsitepackages()
    paths = sorted({str(p) for root in roots for p in Path(root).rglob('*.cif')})
    out, seen = [], set()
    for path in paths:
        if '/tests/' in path or '/test_files/' in path:
            continue
        try:
            structure = Structure.from_file(path)
        except Exception:
            continue
        if not structure.is_ordered or len(structure) > max_sites or 'H' in structure.composition:
            continue
        key = (structure.composition.reduced_formula, round(structure.volume / len(structure), 1))
        if key in seen:
            continue
        seen.add(key)
        out.append((os.path.relpath(path, roots[0]), structure))
    return out


def candidate_structures(real, n_decorated):
    from aiida_matembed.core.datasets import decorate_prototypes, load_aflow_prototypes, load_pyriodic_prototypes

    structures = [s for _, s in real]
    structures += [p.structure for p in load_aflow_prototypes()]
    structures += [p.structure for p in load_pyriodic_prototypes()]
    if n_decorated:
        structures += decorate_prototypes(n_decorated, seed=7, split='all').structures()
    return structures


def _equivalent_planes(structure, hkl, cache):
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    key = id(structure)
    if key not in cache:
        try:
            cache[key] = [
                op.rotation_matrix for op in SpacegroupAnalyzer(structure, symprec=0.01).get_symmetry_operations()
            ]
        except Exception:
            cache[key] = [np.eye(3)]
    return np.unique(np.rint([np.asarray(hkl) @ r for r in cache[key]]).astype(int), axis=0)


def equivalents(candidates, targets):
    """Candidates crystallographically identical to each target (StructureMatcher), itself included."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    matcher = StructureMatcher()
    formulas = [s.composition.reduced_formula for s in candidates]
    out = {}
    for i in targets:
        same = {i}
        for j, formula in enumerate(formulas):
            if j != i and formula == formulas[i] and matcher.fit(candidates[i], candidates[j]):
                same.add(j)
        out[i] = same
    return out


def target_indices(candidates, real, kind):
    """Indices of the structures patterns are made of: the real ones, or (``prototypes``, for development only, so
    that the real structures stay held out) pymatgen's ordered AFLOW prototypes of <= 80 sites without H."""
    if kind == 'real':
        return list(range(len(real)))
    start = len(real)
    return [
        start + k
        for k, s in enumerate(candidates[start : start + 288])
        if s.is_ordered and len(s) <= 80 and 'H' not in s.composition
    ]


def measured_pattern(structures, fractions, rng, *, texture=True, anisotropic_strain=0.002):
    """Counts on GRID of a mixture (see the module docstring) and the perturbation drawn.

    ``anisotropic_strain=0`` keeps the strain isotropic (the symmetry of the lattice unchanged).
    """
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    calculator = XRDCalculator('CuKa1')
    zero = rng.uniform(-0.1, 0.1)
    u, w = rng.uniform(0, 0.01), rng.uniform(0.0036, 0.01)
    eta = rng.uniform(0.3, 0.7)
    signal = np.zeros_like(GRID)
    cache: dict = {}
    for structure, fraction in zip(structures, fractions, strict=True):
        magnitude = rng.uniform(0.01, 0.03) * rng.choice([-1, 1])
        anisotropic = rng.uniform(-anisotropic_strain, anisotropic_strain, (3, 3))
        strain = np.eye(3) * (1 + magnitude) + (anisotropic + anisotropic.T) / 2
        strained = structure.copy()
        strained.lattice = type(structure.lattice)(structure.lattice.matrix @ strain)
        pattern = calculator.get_pattern(strained, scaled=False, two_theta_range=(9, 111))
        intensity = np.asarray(pattern.y, dtype=float) * fraction / (structure.composition.weight * structure.volume)
        if texture:
            axis = [(0, 0, 1), (1, 0, 0), (0, 1, 0), (1, 1, 0), (1, 0, 1), (0, 1, 1), (1, 1, 1)][rng.integers(7)]
            r = rng.uniform(0.7, 1.3)
            reciprocal = strained.lattice.reciprocal_lattice_crystallographic.matrix
            g_axis = np.asarray(axis, dtype=float) @ reciprocal
            g_axis /= np.linalg.norm(g_axis)
            for k, families in enumerate(pattern.hkls):
                factors = []
                for family in families:
                    planes = _equivalent_planes(
                        structure,
                        family['hkl'][:3]
                        if len(family['hkl']) == 3
                        else (family['hkl'][0], family['hkl'][1], family['hkl'][3]),
                        cache,
                    )
                    g = planes @ reciprocal
                    cos = np.abs(g @ g_axis) / np.linalg.norm(g, axis=1)
                    factors.append(np.mean((r**2 * cos**2 + (1 - cos**2) / r) ** -1.5) * family['multiplicity'])
                total = sum(f['multiplicity'] for f in families)
                intensity[k] *= sum(factors) / total
        two_theta = np.asarray(pattern.x, dtype=float) + zero
        sin2 = np.sin(np.radians(np.asarray(pattern.x)) / 2) * LAMBDA2 / LAMBDA1
        ok = sin2 < 1
        two_theta2 = np.degrees(2 * np.arcsin(sin2[ok])) + zero
        centres = np.concatenate([two_theta, two_theta2])
        heights = np.concatenate([intensity, 0.5 * intensity[ok]])
        theta = np.radians(centres) / 2
        fwhm = np.sqrt(u * np.tan(theta) ** 2 + w)
        x = GRID[None, :] - centres[:, None]
        h = fwhm[:, None]
        gauss = math.sqrt(4 * math.log(2) / math.pi) / h * np.exp(-4 * math.log(2) * x**2 / h**2)
        lorentz = 2 / (math.pi * h) / (1 + 4 * x**2 / h**2)
        signal += heights @ (eta * lorentz + (1 - eta) * gauss)
    top = rng.uniform(2000, 20000)
    signal *= top / signal.max()
    t = (GRID - GRID[0]) / (GRID[-1] - GRID[0])
    background = top * rng.uniform(0.02, 0.1) * (1 + rng.uniform(0, 2) * np.exp(-t * 6) + rng.uniform(-0.3, 0.3) * t)
    counts = rng.poisson(np.maximum(signal + background, 0)).astype(float)
    return counts


def route_learned(model, patterns, candidate_vectors):
    """Nearest candidates by cosine of the patterns' XRD embeddings to the candidates' structure embeddings."""
    model_grid = model.two_theta_grid
    resampled = np.stack([np.interp(model_grid, GRID, p) for p in patterns])
    resampled /= resampled.max(axis=1, keepdims=True)
    q = model.embed_patterns(resampled)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    return np.argsort(-(q @ candidate_vectors.T), axis=1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--n-single', type=int, default=60)
    parser.add_argument('--n-mixtures', type=int, default=40)
    parser.add_argument('--n-decorated', type=int, default=600)
    parser.add_argument('--speed-candidates', type=int, default=10000)
    parser.add_argument('--no-learned', action='store_true')
    parser.add_argument('--all-cores', action='store_true')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--targets', choices=('real', 'prototypes'), default='real',
        help="structures the patterns are made of: 'real' (the benchmark) or 'prototypes' (development set)",
    )  # fmt: skip
    args = parser.parse_args()
    from aiida_matembed.core.search.identify import ReferencePeaks, identify_phases
    from aiida_matembed.core.xrd import XrdSimulator

    print(
        f'machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, '
        f'python {platform.python_version()}'
    )
    t0 = time.perf_counter()
    real = real_structures()
    candidates = candidate_structures(real, args.n_decorated)
    print(
        f'{len(real)} real structures (CIF files of installed packages), {len(candidates)} candidates '
        f'({time.perf_counter() - t0:.1f} s to load)'
    )
    t0 = time.perf_counter()
    simulator = XrdSimulator('CuKa', (5.0, 120.0))
    peaks = simulator.peaks_many(candidates, errors='record')
    t_peaks = time.perf_counter() - t0
    refs = ReferencePeaks.from_peaks(
        peaks, wavelength='CuKa', two_theta_range=(5.0, 120.0),
        formulas=[s.composition.reduced_formula for s in candidates], structures=candidates,
    )  # fmt: skip
    print(f'candidate peaks: {t_peaks:.1f} s for {len(candidates)} ({sum(p.error is not None for p in peaks)} failed)')
    rng = np.random.default_rng(args.seed)
    targets = target_indices(candidates, real, args.targets)
    n_targets = len(targets)
    truth = equivalents(candidates, targets)
    print(f'patterns made of {n_targets} {args.targets} structures')

    # ---------------------------------------------------------------- single phase
    singles = [targets[int(i)] for i in rng.integers(n_targets, size=args.n_single)]
    from pymatgen.analysis.structure_matcher import StructureMatcher

    patterns, hits, hits5, times, type_hits = [], 0, 0, [], 0
    for target in singles:
        counts = measured_pattern([candidates[target]], [1.0], rng)
        patterns.append(counts)
        start = time.perf_counter()
        result = identify_phases(GRID, counts, refs, wavelength='CuKa', max_phases=3)
        times.append(time.perf_counter() - start)
        ranked = [m.index for m in result.matches]
        hit = bool(ranked) and ranked[0] in truth[target]
        hits += hit
        hits5 += bool(truth[target] & set(ranked[:5]))
        if not hit and ranked:
            type_hits += StructureMatcher().fit_anonymous(candidates[target], candidates[ranked[0]])
        if not hit:
            print(
                f'  miss: {real[target][0] if target < len(real) else target} '
                f'({candidates[target].composition.reduced_formula}) -> '
                f'{[(m.formula, round(m.score, 3)) for m in result.matches[:3]]}'
            )
    top1 = hits / len(singles)
    print(
        f'  of the misses, {type_hits} ranked first a candidate of the same structure type (StructureMatcher '
        'fit_anonymous: isostructural, other elements), which positions alone cannot tell apart'
    )
    print(
        f'single phase ({len(singles)} patterns, {len(candidates)} candidates): top-1 {top1:.3f}, top-5 '
        f'{hits5 / len(singles):.3f}; {np.median(times) * 1e3:.0f} ms median per identification (target top-1 >= 0.97)'
    )

    # ---------------------------------------------------------------- two phases
    both, weight_error, mixture_patterns, mixture_targets, type_both = 0, [], [], [], 0
    for _ in range(args.n_mixtures):
        a, b = (targets[int(i)] for i in rng.choice(n_targets, size=2, replace=False))
        fraction = rng.uniform(0.2, 0.8)
        counts = measured_pattern([candidates[a], candidates[b]], [fraction, 1 - fraction], rng)
        mixture_patterns.append(counts)
        mixture_targets.append((a, b))
        result = identify_phases(GRID, counts, refs, wavelength='CuKa', max_phases=3)
        found = {p.match.index: p.weight_fraction for p in result.phases}
        in_a, in_b = truth[a] & set(found), truth[b] & set(found)
        ok = bool(in_a and in_b)
        both += ok
        if ok:
            weight_error.append(abs(found[min(in_a)] - fraction))
        else:
            matcher = StructureMatcher()
            alike = [any(matcher.fit_anonymous(candidates[t], candidates[i]) for i in found) for t in (a, b)]
            type_both += all(alike)
            print(
                f'  mixture miss: {candidates[a].composition.reduced_formula} {fraction:.2f} + '
                f'{candidates[b].composition.reduced_formula} -> '
                f'{[(p.match.formula, round(p.weight_fraction, 2)) for p in result.phases]}'
            )
    rate = both / max(args.n_mixtures, 1)
    print(
        f'  of the mixture misses, {type_both} reported both phases or an isostructural substitute (same structure '
        'type, other elements: StructureMatcher fit_anonymous)'
    )
    error = float(np.mean(weight_error)) if weight_error else float('nan')
    print(
        f'two-phase mixtures ({args.n_mixtures}, each phase >= 20 wt%): both phases reported {rate:.3f} '
        '(target >= 0.9);'
        f' mean |weight fraction error| {error:.3f} where both found'
    )

    # ---------------------------------------------------------------- learned embeddings alone
    if not args.no_learned:
        from aiida_matembed.core.models import load_model

        model = load_model('matembed.cmml', device='cpu')
        vectors = model.embed_structures(candidates, errors='record')
        vectors = np.nan_to_num(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), nan=0.0)
        ranked = route_learned(model, patterns, vectors)
        learned_top1 = float(np.mean([r[0] in truth[t] for r, t in zip(ranked, singles, strict=True)]))
        learned_top5 = float(np.mean([bool(truth[t] & set(r[:5])) for r, t in zip(ranked, singles, strict=True)]))
        ranked_mix = route_learned(model, mixture_patterns, vectors)
        learned_both = (
            float(np.mean([bool(truth[a] & set(r[:3])) and bool(truth[b] & set(r[:3]))
                           for r, (a, b) in zip(ranked_mix, mixture_targets, strict=True)]))
            if mixture_targets else float('nan')
        )  # fmt: skip
        print(
            f'learned embeddings alone (matembed.cmml, pattern -> structure): top-1 {learned_top1:.3f}, top-5 '
            f'{learned_top5:.3f}; mixtures both in top-3 {learned_both:.3f}'
        )
        print(f'ratio classical / learned top-1: {top1 / max(learned_top1, 1e-9):.1f}x')

    # ---------------------------------------------------------------- speed among 10,000 candidates
    if args.speed_candidates:
        repeat = math.ceil(args.speed_candidates / len(candidates))
        big = ReferencePeaks.from_peaks(peaks * repeat, wavelength='CuKa', two_theta_range=(5.0, 120.0))
        end = int(big.ptr[args.speed_candidates])
        big = ReferencePeaks(big.d_spacing[:end], big.intensity[:end], big.ptr[: args.speed_candidates + 1],
                             big.wavelength, big.d_min, big.d_max, big.keys[: args.speed_candidates],
                             big.formulas[: args.speed_candidates],
                             hkls=list(big.hkls or [])[: args.speed_candidates])  # fmt: skip
        identify_phases(GRID, patterns[0], big, wavelength='CuKa')  # warm-up: screening arrays are prepared once
        times = []
        for counts in patterns[:10]:
            start = time.perf_counter()
            identify_phases(GRID, counts, big, wavelength='CuKa')
            times.append(time.perf_counter() - start)
        print(
            f'one identification among {len(big)} candidates (peaks precomputed, one core): median '
            f'{np.median(times):.3f} s, max {np.max(times):.3f} s (target <= 1 s)'
        )


if __name__ == '__main__':
    main()
