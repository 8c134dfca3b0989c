"""The nearest-neighbour index against brute-force numpy (and scikit-learn) search."""

import numpy as np
import pytest

from aiida_matembed.core.search import IndexMismatchError, VectorIndex, exact_search


def clustered(n, d, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, d))
    return (centres[rng.integers(50, size=n)] + 0.3 * rng.standard_normal((n, d))).astype(np.float32)


@pytest.mark.parametrize('metric', ['cosine', 'euclidean'])
def test_exact_search_agrees_with_scikit_learn(metric):
    from sklearn.neighbors import NearestNeighbors

    x, q = clustered(500, 16), clustered(20, 16, seed=1)
    distances, rows = exact_search(x, q, 7, metric)
    reference = NearestNeighbors(n_neighbors=7, metric=metric, algorithm='brute').fit(x)
    ref_distances, ref_rows = reference.kneighbors(q)
    np.testing.assert_allclose(distances, ref_distances, atol=2e-5)
    assert (rows == ref_rows).mean() > 0.99  # ties in float32 may swap neighbours of equal distance


@pytest.mark.parametrize('metric', ['cosine', 'euclidean'])
def test_hnsw_recall_against_exact_search(metric):
    x, q = clustered(3000, 32), clustered(100, 32, seed=2)
    index = VectorIndex.build(x, [f'k{i}' for i in range(len(x))], metric=metric, method='hnsw')
    assert index.method == 'hnsw'
    distances, keys = index.search(q, 10)
    _, exact_rows = exact_search(x, q, 10, metric)
    recall = np.mean([len({f'k{r}' for r in e} & set(k)) / 10 for e, k in zip(exact_rows, keys, strict=True)])
    assert recall >= 0.95
    exact_distances, _ = exact_search(x, q, 1, metric)
    assert np.isclose(distances[:, 0], exact_distances[:, 0], atol=1e-4).mean() >= 0.95  # same nearest distance
    assert (np.diff(distances, axis=1) >= -1e-6).all()


def test_small_index_is_exact_and_k_larger_than_n():
    x = clustered(5, 4)
    index = VectorIndex.build(x, list('abcde'))
    assert index.method == 'exact' and len(index) == 5
    distances, keys = index.search(x[2], 10)
    assert keys[0][0] == 'c' and len(keys[0]) == 5 and distances[0, 0] == pytest.approx(0, abs=1e-6)


def test_save_and_load_round_trip(tmp_path):
    x, q = clustered(400, 8), clustered(5, 8, seed=3)
    index = VectorIndex.build(
        x, list(range(400)), metric='euclidean', method='hnsw', representation='r', fingerprint='f'
    )
    loaded = VectorIndex.load(index.save(tmp_path / 'idx'))
    assert loaded.fingerprint == 'f' and loaded.representation == 'r' and loaded.method == 'hnsw'
    a, ka = index.search(q, 3)
    b, kb = loaded.search(q, 3)
    np.testing.assert_allclose(a, b)
    assert ka == kb


def test_bad_queries_and_vectors_are_refused():
    index = VectorIndex.build(clustered(10, 4), representation='matembed.magpie')
    with pytest.raises(IndexMismatchError, match='3 features but the index holds 4-d vectors of matembed.magpie'):
        index.search(np.ones(3))
    with pytest.raises(IndexMismatchError, match='is a matembed.cmml vector but the index holds matembed.magpie'):
        index.search(np.ones(4), representation='matembed.cmml')
    with pytest.raises(ValueError, match='NaN'):
        VectorIndex.build(np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match='no vectors'):
        VectorIndex.build(np.zeros((0, 2)))
    with pytest.raises(ValueError, match='metric must be one of'):
        VectorIndex.build(np.ones((2, 2)), metric='manhattan')
