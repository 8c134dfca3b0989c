r"""Property regression on stored feature vectors: a Gaussian process with a calibrated uncertainty.

The labels that sit in an AiiDA graph next to DFT calculations are few (tens to thousands), so the head
trained on them is a Gaussian process (Rasmussen & Williams, *Gaussian Processes for Machine Learning*,
MIT Press 2006, Algorithm 2.1) rather than a network: it needs no tuning by hand, is deterministic, and its
predictive standard deviation is the uncertainty that screening loops select on.

Model, on standardised features ``x`` (columns constant or non-finite in the training data are dropped) and
standardised targets ``y``:

.. math:: k(x, x') = s^2 \exp(-|x - x'|^2 / (2 \ell^2 d)), \qquad y = f(x) + \varepsilon,\;
   \varepsilon \sim N(0, s^2 \lambda)

with ``d`` the number of columns kept. The length scale ``l`` and the noise ratio ``λ`` are chosen on a
log grid, refined around its best point, by the log marginal likelihood, with the signal variance ``s²`` at
its closed-form optimum ``yᵀ(K̃ + λI)⁻¹y / n`` for each pair (a profile likelihood). Predictions are the
posterior mean and the posterior standard deviation of ``f`` (epistemic: it does not include the noise
``s²λ``), in target units.

:func:`cross_validate` reports the K-fold mean absolute error, hyper-parameters re-chosen inside each fold,
next to the error of the mean predictor on the same folds (the baseline a model must beat).

The fitted model is a :class:`FeatureRegressor` (model kind ``'regressor'``): its tensors (training
vectors, ``alpha = (K + sigma²I)⁻¹y`` and the Cholesky factor) are the safetensors "weights" and the card names
the feature source (representation or embedding model, version and parameter hash), so predictions are
refused on vectors of another kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .base import TrainedModel
from .checkpoint import ModelCard

__all__ = (
    'CrossValidation',
    'FeatureRegressor',
    'GaussianProcessFit',
    'cross_validate',
    'fit_gaussian_process',
    'train_regressor',
)

LENGTH_SCALES = np.geomspace(0.1, 10.0, 7)
"""Coarse grid of ``l`` (in units of ``sqrt(d)`` standardised feature units)."""

NOISE_RATIOS = np.geomspace(1e-6, 1.0, 7)
"""Coarse grid of ``λ = sigma_noise² / s²``."""

REFINE_SCALES = (0.6, 0.8, 1.0, 1.25, 1.6)
REFINE_RATIOS = (0.1, 0.3, 1.0, 3.0, 10.0)
"""Factors of the finer grid around the best coarse point (at most 49 + 24 Cholesky factorisations)."""

_JITTER = 1e-10


@dataclass
class GaussianProcessFit:
    """Everything a fitted Gaussian process needs to predict (numpy, float64)."""

    x_train: np.ndarray  # (n, d) standardised training vectors
    alpha: np.ndarray  # (n,) (K̃ + λI)^-1 y (standardised y)
    cholesky: np.ndarray  # (n, n) lower factor of K̃ + λI
    columns: np.ndarray  # (d,) indices of the input columns kept
    x_mean: np.ndarray  # (d,)
    x_scale: np.ndarray  # (d,)
    y_mean: float
    y_scale: float
    length_scale: float  # l (absolute, in standardised units: already multiplied by sqrt(d))
    signal_variance: float  # s² (standardised units)
    noise_ratio: float  # λ
    log_marginal_likelihood: float

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of ``f`` at the rows of ``x`` (raw features), in target units."""
        z = (np.asarray(x, dtype=np.float64)[:, self.columns] - self.x_mean) / self.x_scale
        k_star = _rbf(z, self.x_train, self.length_scale)
        mean = k_star @ self.alpha
        v = _solve_lower(self.cholesky, k_star.T)
        variance = self.signal_variance * np.clip(1.0 - np.einsum('ij,ij->j', v, v), 0.0, None)
        return mean * self.y_scale + self.y_mean, np.sqrt(variance) * self.y_scale


def _rbf(a: np.ndarray, b: np.ndarray, length_scale: float) -> np.ndarray:
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.exp(-np.clip(sq, 0.0, None) / (2.0 * length_scale**2))


def _solve_lower(lower: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    from scipy.linalg import solve_triangular

    return solve_triangular(lower, rhs, lower=True, check_finite=False)


def _check_xy(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f'features must be a 2D (N, F) array, got shape {x.shape}')
    if y.shape != (len(x),):
        raise ValueError(f'targets must be a vector of {len(x)} values, got shape {y.shape}')
    if len(x) < 2:
        raise ValueError(f'a regression needs at least 2 labelled structures, got {len(x)}')
    if not np.isfinite(y).all():
        raise ValueError('targets contain NaN or infinite values; drop those rows first')
    return x, y


def fit_gaussian_process(x: Any, y: Any) -> GaussianProcessFit:
    """Fit the Gaussian process of the module docstring to features ``x`` (N, F) and targets ``y`` (N,).

    :raises ValueError: for fewer than 2 rows, non-finite targets, or no usable feature column.
    """
    from scipy.linalg import cho_solve, cholesky

    x, y = _check_xy(x, y)
    finite = np.isfinite(x).all(axis=0)
    filled = np.where(np.isfinite(x), x, 0.0)
    spread = np.where(finite, filled.std(axis=0), 0.0)
    columns = np.flatnonzero(finite & (spread > 1e-12 * (1.0 + np.abs(filled.mean(axis=0)))))
    if len(columns) == 0:
        raise ValueError('no feature column varies over the training structures: nothing to learn from')
    x_mean, x_scale = x[:, columns].mean(0), x[:, columns].std(0)
    z = (x[:, columns] - x_mean) / x_scale
    y_mean, y_scale = float(y.mean()), float(y.std()) or 1.0
    t = (y - y_mean) / y_scale
    n, d = z.shape
    sq = (z * z).sum(1)[:, None] + (z * z).sum(1)[None, :] - 2.0 * z @ z.T
    sq = np.clip(sq, 0.0, None)
    scores: dict[tuple[float, float], float] = {}

    def score(scale: float, ratio: float) -> None:
        if (scale, ratio) in scores:
            return
        kernel = np.exp(-sq / (2.0 * scale**2)) + (ratio + _JITTER) * np.eye(n)
        try:
            lower = cholesky(kernel, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            return
        signal = max(float(t @ cho_solve((lower, True), t, check_finite=False)) / n, 1e-12)
        # log p(y) with s² at its optimum, less the constant n/2 (1 + log 2π): -n/2 log s² - sum(log diag L)
        scores[(scale, ratio)] = -0.5 * n * np.log(signal) - np.log(np.diag(lower)).sum()

    for scale in LENGTH_SCALES * np.sqrt(d):  # coarse grid, then a finer one around its best point
        for ratio in NOISE_RATIOS:
            score(float(scale), float(ratio))
    coarse_scale, coarse_ratio = max(scores, key=scores.__getitem__)
    for step_scale in REFINE_SCALES:
        for step_ratio in REFINE_RATIOS:
            score(coarse_scale * step_scale, min(coarse_ratio * step_ratio, 1.0))
    scale, ratio = max(scores, key=scores.__getitem__)
    base = np.exp(-sq / (2.0 * scale**2))
    lower = cholesky(base + (ratio + _JITTER) * np.eye(n), lower=True, check_finite=False)
    alpha = cho_solve((lower, True), t, check_finite=False)
    signal = max(float(t @ alpha) / n, 1e-12)
    lml = scores[(scale, ratio)] - 0.5 * n * (1.0 + np.log(2 * np.pi))
    return GaussianProcessFit(z, alpha, lower, columns, x_mean, x_scale, y_mean, y_scale, scale, signal, ratio, lml)


@dataclass
class CrossValidation:
    """K-fold results: out-of-fold predictions and errors of the model and of the mean predictor."""

    folds: int
    predictions: np.ndarray  # (N,) out-of-fold posterior means
    std: np.ndarray  # (N,) out-of-fold posterior standard deviations
    mae: float
    rmse: float
    baseline_mae: float  # mean of the training folds predicting the held-out fold

    def as_metrics(self) -> dict[str, float]:
        return {
            'cv_folds': self.folds,
            'cv_mae': self.mae,
            'cv_rmse': self.rmse,
            'baseline_mae': self.baseline_mae,
        }


def cross_validate(x: Any, y: Any, *, folds: int = 5, seed: int = 0) -> CrossValidation:
    """K-fold cross-validation (``min(folds, N)`` folds, shuffled with ``seed``) of :func:`fit_gaussian_process`."""
    x, y = _check_xy(x, y)
    if folds < 2:
        raise ValueError(f'folds must be >= 2, got {folds}')
    n = len(y)
    k = min(folds, n)
    order = np.random.default_rng(seed).permutation(n)
    predictions, std, baseline = np.empty(n), np.empty(n), np.empty(n)
    for fold in np.array_split(order, k):
        train = np.setdiff1d(order, fold)
        try:
            fit = fit_gaussian_process(x[train], y[train])
        except ValueError:  # one training row, or all training rows share one vector (polymorphs, for Magpie)
            predictions[fold], std[fold] = y[train].mean(), np.nan
        else:
            predictions[fold], std[fold] = fit.predict(x[fold])
        baseline[fold] = y[train].mean()
    errors = predictions - y
    return CrossValidation(
        k,
        predictions,
        std,
        float(np.abs(errors).mean()),
        float(np.sqrt((errors**2).mean())),
        float(np.abs(baseline - y).mean()),
    )


class GaussianProcessNet(nn.Module):
    """Holder of a fitted Gaussian process's tensors, so the model is stored as safetensors like any other."""

    x_train: torch.Tensor
    alpha: torch.Tensor
    cholesky: torch.Tensor
    columns: torch.Tensor
    x_mean: torch.Tensor
    x_scale: torch.Tensor
    scalars: torch.Tensor

    def __init__(self, *, n_train: int, n_columns: int, n_inputs: int) -> None:
        super().__init__()
        self.n_inputs = n_inputs
        self.register_buffer('x_train', torch.zeros(n_train, n_columns, dtype=torch.float64))
        self.register_buffer('alpha', torch.zeros(n_train, dtype=torch.float64))
        self.register_buffer('cholesky', torch.zeros(n_train, n_train, dtype=torch.float64))
        self.register_buffer('columns', torch.zeros(n_columns, dtype=torch.int64))
        self.register_buffer('x_mean', torch.zeros(n_columns, dtype=torch.float64))
        self.register_buffer('x_scale', torch.ones(n_columns, dtype=torch.float64))
        # y_mean, y_scale, length_scale, signal_variance, noise_ratio, log_marginal_likelihood
        self.register_buffer('scalars', torch.zeros(6, dtype=torch.float64))

    @classmethod
    def from_fit(cls, fit: GaussianProcessFit, n_inputs: int) -> GaussianProcessNet:
        net = cls(n_train=len(fit.x_train), n_columns=len(fit.columns), n_inputs=n_inputs)
        for name in ('x_train', 'alpha', 'cholesky', 'columns', 'x_mean', 'x_scale'):
            getattr(net, name).copy_(torch.as_tensor(getattr(fit, name)))
        scalars = (fit.y_mean, fit.y_scale, fit.length_scale, fit.signal_variance, fit.noise_ratio,
                   fit.log_marginal_likelihood)  # fmt: skip
        net.scalars.copy_(torch.tensor(scalars, dtype=torch.float64))
        return net

    def to_fit(self) -> GaussianProcessFit:
        arrays = {name: getattr(self, name).cpu().numpy() for name in
                  ('x_train', 'alpha', 'cholesky', 'columns', 'x_mean', 'x_scale')}  # fmt: skip
        y_mean, y_scale, scale, signal, ratio, lml = (float(v) for v in self.scalars.cpu())
        return GaussianProcessFit(**arrays, y_mean=y_mean, y_scale=y_scale, length_scale=scale,
                                  signal_variance=signal, noise_ratio=ratio, log_marginal_likelihood=lml)  # fmt: skip


class FeatureRegressor(TrainedModel):
    """A Gaussian-process property model on the vectors of one feature source (model kind ``'regressor'``).

    ``card.inputs['features']`` names the source: ``representation`` (a representation or an embedding
    model's name, as in the ``representation`` attribute of its ``FeaturesData``), ``version``, ``params``
    and ``params_hash``, and ``n_features``. ``card.training['targets']`` is ``[target]``.
    """

    kind = 'regressor'
    network_class = GaussianProcessNet
    network: GaussianProcessNet

    def __init__(self, card: ModelCard, network: nn.Module | None = None, device: str | None = 'auto') -> None:
        super().__init__(card, network, device='cpu')  # tiny linear algebra: always on the CPU
        self._fit = self.network.to_fit()

    @property
    def targets(self) -> list[str]:
        return list(self.card.training['targets'])

    @property
    def source(self) -> dict[str, Any]:
        """The feature source the model reads (see the class docstring)."""
        return dict(self.card.inputs['features'])

    def predict_features(self, features: Any) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation (target units) for the rows of ``features`` (N, F).

        Rows with a non-finite value in a column the model uses are NaN in both outputs.

        :raises ValueError: for a matrix with another number of columns than the model was trained on.
        """
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.network.n_inputs:
            raise ValueError(
                f'{self.name} reads {self.network.n_inputs} features of {self.source.get("representation")}, '
                f'got shape {x.shape}'
            )
        mean, std = np.full(len(x), np.nan), np.full(len(x), np.nan)
        good = np.isfinite(x[:, self._fit.columns]).all(axis=1)
        if good.any():
            mean[good], std[good] = self._fit.predict(x[good])
        return mean, std

    def predict_structures(self, structures: Sequence[Any], *, errors: str = 'raise') -> np.ndarray:
        """``(N, 2)`` prediction and standard deviation, featurising the structures with the model's representation.

        :raises ValueError: when the model reads an embedding model's vectors (those come from the graph).
        """
        from ..representations import load_representation_class

        source = self.source
        try:
            cls = load_representation_class(source['representation'])
        except (ValueError, TypeError):
            raise ValueError(
                f'{self.name} reads vectors of {source["representation"]!r}, which is not a representation: '
                'predict from stored vectors (verdi data matembed predict)'
            ) from None
        if source.get('version') is not None and cls.version != source['version']:
            raise ValueError(
                f'{self.name} was trained on version {source["version"]} of {source["representation"]}; '
                f'version {cls.version} is installed: retrain it'
            )
        rep = cls.from_params(source.get('params') or {})
        result = rep.featurize_many(list(structures), errors=errors)  # type: ignore[arg-type]
        self.failures = list(result.failures)
        mean, std = self.predict_features(result.features)
        return np.stack([mean, std], axis=1)


def train_regressor(
    features: Any,
    targets: Any,
    *,
    name: str,
    target: str,
    source: dict[str, Any],
    data: dict[str, Any] | None = None,
    folds: int = 5,
    seed: int = 0,
    description: str = '',
) -> tuple[FeatureRegressor, CrossValidation]:
    """Fit a :class:`FeatureRegressor` on all rows and cross-validate it; the card holds the CV figures.

    :param features: ``(N, F)`` vectors of the feature ``source``; rows with non-finite values must be dropped
        by the caller (they are refused here).
    :param targets: ``(N,)`` labels in their units (e.g. eV/atom).
    :param source: the feature source recorded in the card (``representation``, ``version``, ``params``,
        ``params_hash``).
    :param data: description of the training data for the card (e.g. the DFT processes it came from).
    """
    from ... import __version__

    x, y = _check_xy(features, targets)
    if not np.isfinite(x).all():
        raise ValueError('features contain NaN or infinite values (failed rows); drop those rows first')
    fit = fit_gaussian_process(x, y)
    validation = cross_validate(x, y, folds=folds, seed=seed)
    card = ModelCard(
        name=name,
        kind=FeatureRegressor.kind,
        architecture={'n_train': len(fit.x_train), 'n_columns': len(fit.columns), 'n_inputs': x.shape[1]},
        inputs={'features': {**source, 'n_features': int(x.shape[1])}},
        training={
            'targets': [target],
            'method': 'gaussian_process',
            'kernel': 'rbf',
            'length_scale': fit.length_scale,
            'signal_variance': fit.signal_variance * fit.y_scale**2,
            'noise_variance': fit.signal_variance * fit.noise_ratio * fit.y_scale**2,
            'log_marginal_likelihood': fit.log_marginal_likelihood,
            'folds': validation.folds,
            'seed': seed,
        },
        data={'n_structures': len(y), 'target_mean': float(y.mean()), 'target_std': float(y.std()), **(data or {})},
        metrics={**validation.as_metrics(), 'n_train': len(y)},
        description=description or f'Gaussian-process regression of {target} on {source.get("representation")}',
        package_version=__version__,
    )
    model = FeatureRegressor(card, GaussianProcessNet.from_fit(fit, n_inputs=x.shape[1]))
    return model, validation
