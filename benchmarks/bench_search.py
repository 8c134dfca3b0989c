"""Nearest-neighbour search: faiss HNSW (the package's VectorIndex) vs exact numpy search, and 2-D maps.

Run:  python benchmarks/bench_search.py [--n 1000000] [--dim 256] [--queries 200] [--build-threads 2] [--map 10000]

Targets: 1,000,000 vectors of 256 dimensions, recall@10 >= 0.95 against exact search, <= 2 ms per query on one
core; index build for 100,000 vectors <= 30 s (one core); a map of 10,000 structures <= 60 s.
The vectors are clustered (2,000 centres in a 64-d subspace plus isotropic noise, unit length), like learned
embeddings; uniformly random 256-d vectors have no neighbourhood structure and are not what the index is for.
Queries are perturbed copies of stored vectors. The peer (exact search) is timed on the same queries, one core.
"""

import argparse
import os
import sys

if '--all-cores' not in sys.argv:
    for _variable in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS', 'NUMBA_NUM_THREADS'):
        os.environ.setdefault(_variable, '1')

import platform
import time

import numpy as np


def clustered(n, dim, seed, chunk=100_000):
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((64, dim)).astype(np.float32) / 8
    centres = rng.standard_normal((2000, 64)).astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        latent = centres[rng.integers(2000, size=m)] + 0.5 * rng.standard_normal((m, 64)).astype(np.float32)
        block = latent @ basis + 0.05 * rng.standard_normal((m, dim)).astype(np.float32)
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--n', type=int, default=1_000_000)
    parser.add_argument('--dim', type=int, default=256)
    parser.add_argument('--queries', type=int, default=200)
    parser.add_argument('--build-threads', type=int, default=2)
    parser.add_argument('--map', type=int, default=10_000)
    parser.add_argument('--all-cores', action='store_true')
    args = parser.parse_args()
    import faiss

    from aiida_matembed.core.search import VectorIndex, exact_search

    print(
        f'machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, '
        f'faiss {faiss.__version__}'
    )
    rng = np.random.default_rng(1)

    if not args.n:
        run_maps(args)
        return
    # ------------------------------------------------------------ build of 100,000 vectors, one core
    x100 = clustered(100_000, args.dim, 0)
    faiss.omp_set_num_threads(1)
    start = time.perf_counter()
    VectorIndex.build(x100, method='hnsw')
    print(f'build 100,000 x {args.dim} HNSW (M 16, efConstruction 100), one core: {time.perf_counter() - start:.1f} s '
          '(target <= 30 s)')  # fmt: skip
    del x100

    # ------------------------------------------------------------ 1M vectors
    start = time.perf_counter()
    x = clustered(args.n, args.dim, 0)
    print(
        f'{args.n:,} x {args.dim} float32 vectors ({x.nbytes / 2**30:.2f} GiB) made in '
        f'{time.perf_counter() - start:.0f} s'
    )
    picked = rng.choice(args.n, args.queries, replace=False)
    q = x[picked] + 0.05 * rng.standard_normal((args.queries, args.dim)).astype(np.float32) / np.sqrt(args.dim)
    faiss.omp_set_num_threads(args.build_threads)
    start = time.perf_counter()
    index = VectorIndex.build(x, method='hnsw')
    print(f'build {args.n:,} HNSW on {args.build_threads} thread(s): {time.perf_counter() - start:.0f} s')
    faiss.omp_set_num_threads(1)
    start = time.perf_counter()
    _, exact_rows = exact_search(x, q, 10, 'cosine')
    t_exact = (time.perf_counter() - start) / args.queries
    for ef in (32, 64, 128):
        index.ef_search = ef
        index.search(q[:5], 10)
        start = time.perf_counter()
        keys = [index.search(row, 10)[1][0] for row in q]
        t_ann = (time.perf_counter() - start) / args.queries
        recall = np.mean([len(set(k) & set(e.tolist())) / 10 for k, e in zip(keys, exact_rows, strict=True)])
        print(
            f'efSearch {ef:>3}: recall@10 {recall:.3f}, {t_ann * 1e3:.3f} ms per query (one core); exact numpy '
            f'{t_exact * 1e3:.1f} ms per query; speed-up {t_exact / t_ann:.0f}x'
        )
    del index, x

    run_maps(args)


def run_maps(args):
    """UMAP (the package's default) vs t-SNE (the peer) vs PCA on ``args.map`` clustered vectors, one core."""
    if not args.map:
        return
    from aiida_matembed.core.search.maps import project_2d

    start = time.perf_counter()
    project_2d(clustered(300, args.dim, 3), 'umap', seed=0)
    print(f'UMAP first call in a process (numba compilation, 300 vectors): {time.perf_counter() - start:.1f} s')
    vectors = clustered(args.map, args.dim, 2)
    times = {}
    for method in ('umap', 'tsne', 'pca'):
        start = time.perf_counter()
        project_2d(vectors, method, seed=0)
        times[method] = time.perf_counter() - start
        print(f'map of {args.map:,} x {args.dim} vectors by {method}: {times[method]:.1f} s')
    print(f'ratio t-SNE / UMAP: {times["tsne"] / times["umap"]:.1f}x (target: map of 10,000 <= 60 s)')


if __name__ == '__main__':
    main()
