"""2-D maps: PCA pinned against scikit-learn; UMAP keeps clusters apart; PNG and HTML written."""

import numpy as np
import pytest

from aiida_matembed.core.search.maps import plot_map, project_2d, write_map_html


def blobs(n=60, d=12, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(3, size=n)
    return rng.standard_normal((3, d))[labels] * 5 + rng.standard_normal((n, d)), labels


def test_pca_agrees_with_scikit_learn_up_to_sign():
    from sklearn.decomposition import PCA

    x, _ = blobs()
    coords = project_2d(x, 'pca')
    scaled = (x - x.mean(0)) / x.std(0)
    reference = PCA(n_components=2).fit_transform(scaled)
    for k in range(2):
        assert abs(np.corrcoef(coords[:, k], reference[:, k])[0, 1]) > 0.9999


@pytest.mark.parametrize('method', ['tsne'])  # UMAP: numba compiles ~60 s on first use; see bench_search.py
def test_nonlinear_maps_keep_clusters_apart(method):
    x, labels = blobs()
    coords = project_2d(x, method, seed=0)
    centres = np.stack([coords[labels == k].mean(0) for k in range(3)])
    spread = max(np.linalg.norm(coords[labels == k] - centres[k], axis=1).mean() for k in range(3))
    gaps = [np.linalg.norm(centres[i] - centres[j]) for i in range(3) for j in range(i + 1, 3)]
    assert min(gaps) > 2 * spread


def test_png_and_html(tmp_path):
    x, labels = blobs()
    coords = project_2d(x, 'pca')
    plot_map(coords, [f'c{k}' for k in labels], path=tmp_path / 'm.png')
    plot_map(coords, labels.astype(float), path=tmp_path / 'n.png')
    html = write_map_html(coords, [f'point {i}' for i in range(len(x))], labels.astype(float), tmp_path / 'm.html')
    assert (tmp_path / 'm.png').read_bytes()[:4] == b'\x89PNG' and (tmp_path / 'n.png').stat().st_size > 0
    assert 'point 17' in html.read_text()
    with pytest.raises(ValueError, match='at least 3'):
        project_2d(x[:2], 'pca')
    with pytest.raises(ValueError, match='NaN'):
        project_2d(np.full((5, 2), np.nan), 'pca')


def test_umap_kernels_are_cached_on_disk(tmp_path):
    # a fresh process (numba reads NUMBA_CACHE_DIR once): one of umap's compiled functions, called after
    # umap_module(), leaves its machine code in the cache folder for the next process to load
    import subprocess
    import sys

    script = (
        'import numpy as np\n'
        'from aiida_matembed.core.search.maps import umap_module\n'
        'umap = umap_module()\n'
        'distances = np.sort(np.random.default_rng(0).random((20, 5)), axis=1).astype(np.float32)\n'
        'umap.umap_.smooth_knn_dist(distances, 5.0)\n'
    )
    env = {**__import__('os').environ, 'NUMBA_CACHE_DIR': str(tmp_path)}
    subprocess.run([sys.executable, '-c', script], check=True, env=env, timeout=600)
    cached = [p.name for p in tmp_path.rglob('*.nbi')]
    assert any(name.startswith('umap_.smooth_knn_dist') for name in cached), cached
