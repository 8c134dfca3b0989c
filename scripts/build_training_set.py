"""Build the training set of the shipped models (reproducible from the seed): data/train_*.npz.

    python scripts/build_training_set.py decorated --n 10000 --seed 0
    python scripts/build_training_set.py synthetic --n 1000 --seed 0
    python scripts/build_training_set.py synthetic --n 6000 --seed 1   # -> data/train_synthetic_seed1.npz
    python scripts/build_training_set.py join   # -> data/train.npz (decorated + every synthetic part)
    python scripts/build_training_set.py join --synthetic-seeds 0 --output train_seed0.npz

Decorated prototypes of the training split (round robin over the training structure types) and pyxtal
synthetic crystals (Materials Project space-group frequencies, charge-balanced, held-out structure types
rejected); both at most 48 atoms in the primitive cell.
"""

import argparse
import time
from pathlib import Path

from aiida_matembed.core.datasets.heldout import heldout_prototypes
from aiida_matembed.core.datasets.prototypes import decorate_prototypes
from aiida_matembed.core.datasets.store import StructureSet
from aiida_matembed.core.datasets.synthetic import synthetic_crystals

DATA = Path(__file__).resolve().parent.parent / 'data'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('part', choices=['decorated', 'synthetic', 'join'])
    parser.add_argument('--n', type=int, default=1000)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--jobs', type=int, default=1)
    parser.add_argument('--synthetic-seeds', help='join: comma-separated seeds of the synthetic parts (default: all)')
    parser.add_argument('--output', help='join: file name under data/ (default train.npz)')
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    if args.part == 'decorated':
        result = decorate_prototypes(args.n, args.seed, split='train', max_atoms=48)
    elif args.part == 'synthetic':
        held_out = heldout_prototypes()
        result = synthetic_crystals(args.n, args.seed, max_atoms=48, n_jobs=args.jobs, exclude_keys=held_out)
    else:
        synthetic = sorted(DATA.glob('train_synthetic*.npz'))
        if args.synthetic_seeds is not None:
            seeds = [int(seed) for seed in args.synthetic_seeds.split(',')]
            synthetic = [DATA / ('train_synthetic.npz' if s == 0 else f'train_synthetic_seed{s}.npz') for s in seeds]
        paths = [DATA / 'train_decorated.npz', *synthetic]
        parts = [StructureSet.load(path) for path in paths]
        result = StructureSet.concatenate(parts, metadata={'parts': [p.metadata for p in parts]})
    if args.part == 'join':
        path = DATA / (args.output or 'train.npz')
    elif args.part == 'synthetic' and args.seed != 0:  # further synthetic parts sit beside the first
        path = DATA / f'train_synthetic_seed{args.seed}.npz'
    else:
        path = DATA / f'train_{args.part}.npz'
    result.save(path)
    print(f'{path}: {len(result)} structures, sha256 {result.sha256()}, {time.perf_counter() - t0:.0f} s')


if __name__ == '__main__':
    main()
