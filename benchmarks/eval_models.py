"""Evaluate the shipped learned models on held-out structure types (issue #5's goals).

    python benchmarks/eval_models.py [--n 2400] [--seed 1] [--models DIR] [--update-cards] [--plot PATH]

The evaluation set is ``decorate_prototypes(n, seed, split='heldout', include_originals=True)``: pymatgen's
real held-out prototypes and chemically similar decorations of every held-out structure type (30% of the
types, listed in ``resources/heldout_prototypes.txt``); no type of it was seen in training in any
decoration. Figures (goals in brackets):

- ``matembed.xrd_symmetry``: crystal system [>= 95%], space group top-1 [>= 85%] and top-5 [>= 97%], on
  clean simulated patterns and on measured-like perturbed ones;
- ``matembed.cmml``: XRD -> structure retrieval among 1,000 candidates, top-1 [>= 95%] and top-10
  [>= 99.5%] with clean query patterns, top-5 [>= 90%] with perturbed ones (noise, ±0.1° zero shift,
  broadening, preferred orientation, background); "materials concepts": precision of the 10 nearest
  structure embeddings sharing the prototype label [>= 0.9]; nearest pymatgen prototypes of known materials;
- ``matembed.xrd_vae``: 5-nearest-neighbour crystal-system accuracy in the 2D latent [>= 0.8] and a PNG map.

Prints a table and writes ``benchmarks/results/models_eval.json``; ``--update-cards`` stores the figures
under ``metrics['heldout']`` in the model cards (the weights and their sha256 do not change).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from aiida_matembed.core.datasets import load_aflow_prototypes, load_example_structures
from aiida_matembed.core.datasets.prototypes import decorate_prototypes
from aiida_matembed.core.models import CRYSTAL_SYSTEMS, load_model, model_from_checkpoint, read_card
from aiida_matembed.core.models.training import knn_accuracy
from aiida_matembed.core.xrd import XrdAugmentation

PERTURBATION = XrdAugmentation(
    noise=0.02, background=0.1, zero_shift=0.1, broadening=0.5, preferred_orientation=(0.7, 1.3)
)
GOALS = {
    'crystal_system_acc': 0.95,
    'space_group_top1': 0.85,
    'space_group_top5': 0.97,
    'retrieval_top1': 0.95,
    'retrieval_top10': 0.995,
    'retrieval_perturbed_top5': 0.90,
    'concept_precision_at_10': 0.90,
    'vae_knn5_crystal_system_acc': 0.80,
}


def _load(name: str, models_dir: Path | None):
    """The checkpoint of ``name`` in ``models_dir`` where there is one, else the registered (shipped) model."""
    path = None if models_dir is None else models_dir / f'{name.replace(".", "_")}.safetensors'
    if path is None or not path.exists():
        return load_model(name, device='cpu')
    print(f'{name}: {path}')
    return model_from_checkpoint(path, device='cpu')


def _symmetry(model, patterns: dict[str, np.ndarray], space_groups: np.ndarray) -> dict[str, float]:
    systems = np.array([CRYSTAL_SYSTEMS.index(_system(g)) for g in space_groups])
    out = {}
    for tag, x in patterns.items():
        p = model.predict(x)
        predicted = np.array([CRYSTAL_SYSTEMS.index(s) for s in p.crystal_system])
        suffix = '' if tag == 'clean' else f'_{tag}'
        out[f'crystal_system_acc{suffix}'] = float((predicted == systems).mean())
        out[f'space_group_top1{suffix}'] = float((p.space_group == space_groups).mean())
        out[f'space_group_top5{suffix}'] = float((p.space_group_topk == space_groups[:, None]).any(1).mean())
        if tag == 'clean':
            out['crystal_system_recall'] = _recall(systems, predicted)
    return out


def _recall(true: np.ndarray, predicted: np.ndarray) -> dict[str, dict]:
    """Per true crystal system: how many, the share predicted right and the most frequent wrong answer."""
    out = {}
    for i, name in enumerate(CRYSTAL_SYSTEMS):
        mine = predicted[true == i]
        if len(mine) == 0:
            continue
        wrong = Counter(mine[mine != i].tolist()).most_common(1)
        out[name] = {
            'n': len(mine),
            'recall': float((mine == i).mean()),
            'most_confused_with': CRYSTAL_SYSTEMS[wrong[0][0]] if wrong else None,
            'confused_count': wrong[0][1] if wrong else 0,
        }
    return out


def _system(space_group: int) -> str:
    from aiida_matembed.core.models import crystal_system_of

    return crystal_system_of(int(space_group))


def _ranks(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Rank (0 = best) of the true candidate ``i`` for query ``i`` by cosine similarity."""
    similarity = queries @ candidates.T
    return (similarity > similarity.diagonal()[:, None]).sum(axis=1)


def _concepts(embeddings: np.ndarray, labels: np.ndarray, k: int = 10) -> dict[str, float]:
    similarity = embeddings @ embeddings.T
    np.fill_diagonal(similarity, -np.inf)
    neighbours = np.argsort(-similarity, axis=1)[:, :k]
    same = labels[neighbours] == labels[:, None]
    counts = Counter(labels.tolist())
    full = np.array([counts[label] > k for label in labels])
    return {
        'concept_precision_at_10': float(same[full].mean()) if full.any() else float('nan'),
        'concept_precision_at_10_all': float(same.mean()),
        'concept_structures': int(full.sum()),
        'concept_types': len({label for label in labels if counts[label] > k}),
    }


def _neighbours_of_known(model) -> dict[str, list[str]]:
    pool = load_aflow_prototypes()
    pool_embeddings = model.embed_structures([p.structure for p in pool], errors='record')
    ok = np.isfinite(pool_embeddings).all(axis=1)
    names = np.array([f'{p.label} ({p.structure.composition.reduced_formula})' for p in pool])[ok]
    pool_embeddings = pool_embeddings[ok]
    examples = [e for e in load_example_structures() if e.structure.is_ordered]
    embeddings = model.embed_structures([e.structure for e in examples])
    out = {}
    for example, vector in zip(examples, embeddings, strict=True):
        order = np.argsort(-(pool_embeddings @ vector))[:5]
        out[example.label] = [f'{names[i]} {float(pool_embeddings[i] @ vector):.3f}' for i in order]
    return out


def _plot_map(latent: np.ndarray, space_groups: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 5.5), dpi=120)
    systems = np.array([_system(g) for g in space_groups])
    for name in CRYSTAL_SYSTEMS:
        mask = systems == name
        if mask.any():
            ax.scatter(latent[mask, 0], latent[mask, 1], s=5, alpha=0.6, label=f'{name} ({mask.sum()})')
    ax.set_xlabel('latent 1')
    ax.set_ylabel('latent 2')
    ax.set_title('matembed.xrd_vae: held-out structure types, Cu K-alpha patterns')
    ax.legend(markerscale=3, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--n', type=int, default=2400, help='held-out structures (decorations + originals)')
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--candidates', type=int, default=1000)
    parser.add_argument('--max-atoms', type=int, default=48)
    parser.add_argument(
        '--models', type=Path, help='folder of checkpoints; models missing from it are the registered ones'
    )
    parser.add_argument('--update-cards', action='store_true')
    parser.add_argument('--plot', type=Path, default=Path(__file__).parent / 'results' / 'xrd_vae_map.png')
    parser.add_argument('--output', type=Path, default=Path(__file__).parent / 'results' / 'models_eval.json')
    args = parser.parse_args()

    t0 = time.perf_counter()
    heldout = decorate_prototypes(args.n, args.seed, split='heldout', max_atoms=args.max_atoms, include_originals=True)
    structures = heldout.structures()
    space_groups = np.asarray(heldout.labels['space_group'], dtype=int)
    prototypes = np.asarray(heldout.labels['prototype'])
    print(f'held-out set: {len(heldout)} structures, {len(set(prototypes))} structure types, '
          f'sha256 {heldout.sha256()[:16]} ({time.perf_counter() - t0:.1f} s)')  # fmt: skip

    results: dict[str, dict] = {'data': {'n': len(heldout), 'types': len(set(prototypes)), 'seed': args.seed,
                                         'sha256': heldout.sha256(), 'max_atoms': args.max_atoms}}  # fmt: skip
    symmetry = _load('matembed.xrd_symmetry', args.models)
    xrd = symmetry.xrd_input
    clean, failures = xrd.profiles(structures, errors='record')
    perturbed, _ = xrd.profiles(structures, augment=PERTURBATION, seed=args.seed, errors='record')
    good = np.isfinite(clean).all(1) & np.isfinite(perturbed).all(1)
    print(f'patterns: {good.sum()} of {len(good)} simulated ({len(failures)} failed)')
    clean, perturbed = clean[good], perturbed[good]
    sg, protos = space_groups[good], prototypes[good]
    kept = [s for s, ok in zip(structures, good, strict=True) if ok]

    t = time.perf_counter()
    results['matembed.xrd_symmetry'] = _symmetry(symmetry, {'clean': clean, 'perturbed': perturbed}, sg)
    results['matembed.xrd_symmetry']['seconds'] = round(time.perf_counter() - t, 1)

    cmml = _load('matembed.cmml', args.models)
    t = time.perf_counter()
    embeddings = cmml.embed_structures(kept, errors='record')
    from_clean = cmml.embed_patterns(clean)
    from_perturbed = cmml.embed_patterns(perturbed)
    ok = np.isfinite(embeddings).all(1)
    rng = np.random.default_rng(args.seed)
    pick = rng.choice(np.flatnonzero(ok), size=min(args.candidates, int(ok.sum())), replace=False)
    ranks_clean = _ranks(from_clean[pick], embeddings[pick])
    ranks_perturbed = _ranks(from_perturbed[pick], embeddings[pick])
    results['matembed.cmml'] = {
        'candidates': len(pick),
        'retrieval_top1': float((ranks_clean < 1).mean()),
        'retrieval_top10': float((ranks_clean < 10).mean()),
        'retrieval_perturbed_top1': float((ranks_perturbed < 1).mean()),
        'retrieval_perturbed_top5': float((ranks_perturbed < 5).mean()),
        **_concepts(embeddings[ok], protos[ok]),
        'xrd_concept_precision_at_10': _concepts(from_clean[ok], protos[ok])['concept_precision_at_10'],
        'neighbours_of_known_materials': _neighbours_of_known(cmml),
        'seconds': round(time.perf_counter() - t, 1),
    }

    vae = _load('matembed.xrd_vae', args.models)
    latent = vae.encode(clean)
    systems = np.array([CRYSTAL_SYSTEMS.index(_system(g)) for g in sg])
    results['matembed.xrd_vae'] = {'vae_knn5_crystal_system_acc': knn_accuracy(latent, systems, k=5)}
    _plot_map(latent, sg, args.plot)
    results['matembed.xrd_vae']['map'] = str(args.plot)

    print(f'\n{"model":<24}{"figure":<36}{"value":>9}{"goal":>8}')
    for model_name in ('matembed.xrd_symmetry', 'matembed.cmml', 'matembed.xrd_vae'):
        for key, value in results[model_name].items():
            if isinstance(value, float):
                goal = GOALS.get(key)
                mark = '' if goal is None else ('  met' if value >= goal else '  MISSED')
                goal_text = '' if goal is None else f'{goal:.3f}'
                print(f'{model_name:<24}{key:<36}{value:>9.4f}{goal_text:>8}{mark}')
    print('\ncrystal-system recall of matembed.xrd_symmetry (clean patterns):')
    for name, row in results['matembed.xrd_symmetry']['crystal_system_recall'].items():
        wrong = f'{row["most_confused_with"]} ({row["confused_count"]})'
        print(f'  {name:<13} n={row["n"]:<5} recall {row["recall"]:.3f}  most often taken for {wrong}')
    print('\nnearest pymatgen prototypes (cosine) of known materials, structure embeddings of matembed.cmml:')
    for name, neighbours in results['matembed.cmml']['neighbours_of_known_materials'].items():
        print(f'  {name}: {"; ".join(neighbours[:3])}')
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + '\n')
    print(f'\nwrote {args.output} and {args.plot} ({time.perf_counter() - t0:.0f} s)')

    if args.update_cards:
        for model in (symmetry, cmml, vae):
            path = Path(model.card.name.replace('.', '_'))
            source = args.models / path if args.models else None
            from aiida_matembed.core.models import model_path

            shipped = source is None or not source.with_suffix('.safetensors').exists()
            stem = (model_path(model.card.name) if shipped else source).with_suffix('.json')
            card = read_card(stem)
            figures = {k: v for k, v in results[model.card.name].items() if isinstance(v, (int, float))}
            card.metrics['heldout'] = {**figures, 'data': results['data'],
                                       'command': 'python benchmarks/eval_models.py --update-cards'}  # fmt: skip
            stem.write_text(json.dumps(card.as_dict(), indent=2, sort_keys=True) + '\n')
            print(f'updated {stem}')


if __name__ == '__main__':
    main()
