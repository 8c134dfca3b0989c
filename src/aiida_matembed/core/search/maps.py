"""2-D maps of materials from their vectors: UMAP, t-SNE or PCA, drawn as PNG (matplotlib) and HTML (plotly).

* UMAP: McInnes, Healy & Melville, arXiv:1802.03426 (2018), ``umap-learn`` (cosine metric, 15 neighbours);
* t-SNE: van der Maaten & Hinton, JMLR 9, 2579 (2008), scikit-learn (PCA initialisation, perplexity 30 or less);
* PCA: scikit-learn, on standardised columns.

Vectors are standardised column-wise first (constant columns dropped), as the scales of hand-built features differ;
for UMAP and t-SNE more than 50 columns are first reduced to 50 principal components (the usual preprocessing,
which keeps the neighbourhoods and makes the neighbour search several times cheaper).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ('MAP_METHODS', 'plot_map', 'project_2d', 'umap_module', 'write_map_html')

MAP_METHODS = ('umap', 'tsne', 'pca')


def project_2d(vectors: Any, method: str = 'umap', *, seed: int = 0) -> np.ndarray:
    """``(N, 2)`` map coordinates of ``(N, F)`` finite vectors (N >= 3)."""
    if method not in MAP_METHODS:
        raise ValueError(f'method must be one of {MAP_METHODS}, got {method!r}')
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or len(x) < 3:
        raise ValueError(f'a map needs at least 3 vectors as an (N, F) array, got shape {x.shape}')
    if not np.isfinite(x).all():
        raise ValueError('the vectors have NaN or infinite values (drop failed rows first)')
    std = x.std(axis=0)
    varying = std > 1e-12
    if not varying.any():
        raise ValueError('all vectors are equal: nothing to map')
    x = (x[:, varying] - x[:, varying].mean(axis=0)) / std[varying]
    if method == 'pca' or x.shape[1] < 2:
        from sklearn.decomposition import PCA

        coords = PCA(n_components=min(2, x.shape[1]), random_state=seed).fit_transform(x)
        return np.column_stack([coords, np.zeros(len(x))])[:, :2] if coords.shape[1] < 2 else coords
    if x.shape[1] > 50:
        from sklearn.decomposition import PCA

        x = PCA(n_components=50, random_state=seed).fit_transform(x)
    if method == 'tsne':
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(1.0, (len(x) - 1) / 3)))
        return TSNE(n_components=2, init='pca', perplexity=perplexity, random_state=seed).fit_transform(x)
    umap = umap_module()
    n_neighbors = int(min(15, len(x) - 1))
    reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, metric='cosine', random_state=seed, n_jobs=1)
    return np.asarray(reducer.fit_transform(x))


_UMAP_MODULES = ('umap.umap_', 'umap.layouts', 'umap.distances', 'umap.utils', 'umap.sparse')


@cache
def umap_module() -> Any:
    """``umap`` (umap-learn), with numba's on-disk cache switched on for its compiled functions.

    umap-learn compiles its functions (fuzzy simplicial set, layout optimisation, distances) with numba but
    without ``cache=True``, so every new process compiles them again: ~24 s on a quiet 2-core machine, the
    cost of a cold ``map --method umap``. Switching the cache on (numba's ``Dispatcher.enable_caching``) before
    their first call keeps the machine code on disk like this package's own kernels (next to umap's sources, or
    under ``NUMBA_CACHE_DIR``; keyed by source file, numba and Python versions); later processes load it. With a
    numba or umap-learn whose internals differ, or no writable cache place, they compile as before.
    """
    import importlib

    import umap

    try:
        from numba.core.caching import NullCache
        from numba.core.registry import CPUDispatcher
    except ImportError:  # pragma: no cover - numba internals moved
        return umap
    for name in _UMAP_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for value in vars(module).values():
            if isinstance(value, CPUDispatcher) and isinstance(getattr(value, '_cache', None), NullCache):
                try:
                    value.enable_caching()
                except Exception:  # e.g. no writable cache location: compile in memory as before
                    continue
    return umap


def _is_numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in values)


def plot_map(
    coords: np.ndarray, colors: Sequence[Any], *, title: str = '', color_label: str = '', path: str | Path | None = None
) -> Figure:
    """Scatter plot of map coordinates, coloured by a category (legend) or a number (colour bar)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 6), layout='constrained')
    ax = figure.add_subplot()
    values = list(colors)
    if _is_numeric(values):
        numbers = np.asarray(values, dtype=float)
        points = ax.scatter(coords[:, 0], coords[:, 1], c=numbers, s=12, cmap='viridis')
        figure.colorbar(points, ax=ax, label=color_label)
    else:
        names = [str(v) for v in values]
        categories = sorted(set(names))
        import matplotlib

        cmap = matplotlib.colormaps['tab20']
        for k, category in enumerate(categories[:20]):
            mask = np.array([n == category for n in names])
            ax.scatter(coords[mask, 0], coords[mask, 1], s=12, color=cmap(k % 20), label=category)
        if len(categories) > 20:
            mask = np.array([n not in set(categories[:20]) for n in names])
            ax.scatter(coords[mask, 0], coords[mask, 1], s=12, color='lightgrey', label='other')
        ax.legend(loc='best', fontsize=7, frameon=False, title=color_label or None, markerscale=1.5)
    ax.set_xlabel('map 1')
    ax.set_ylabel('map 2')
    if title:
        ax.set_title(title)
    if path is not None:
        figure.savefig(Path(path), dpi=150)
    return figure


def write_map_html(
    coords: np.ndarray,
    hover: Sequence[str],
    colors: Sequence[Any],
    path: str | Path,
    *,
    title: str = '',
    color_label: str = '',
) -> Path:
    """An interactive plotly scatter (self-contained HTML) whose points show ``hover`` text."""
    import plotly.graph_objects as go

    values = list(colors)
    figure = go.Figure()
    if _is_numeric(values):
        figure.add_trace(go.Scattergl(
            x=coords[:, 0], y=coords[:, 1], mode='markers', text=list(hover), hoverinfo='text',
            marker={'color': values, 'colorscale': 'Viridis', 'showscale': True, 'size': 6,
                    'colorbar': {'title': color_label}},
        ))  # fmt: skip
    else:
        names = [str(v) for v in values]
        for category in sorted(set(names)):
            mask = np.array([n == category for n in names])
            figure.add_trace(go.Scattergl(
                x=coords[mask, 0], y=coords[mask, 1], mode='markers', name=category, hoverinfo='text',
                text=[h for h, m in zip(hover, mask, strict=True) if m], marker={'size': 6},
            ))  # fmt: skip
    figure.update_layout(title=title, xaxis_title='map 1', yaxis_title='map 2', legend_title=color_label)
    path = Path(path)
    figure.write_html(path, include_plotlyjs=True, full_html=True)
    return path
