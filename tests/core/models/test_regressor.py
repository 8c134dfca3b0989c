"""The Gaussian-process property model against scikit-learn's GaussianProcessRegressor and by hand."""

import numpy as np
import pytest

from aiida_matembed.core.models import MODEL_KINDS, FeatureRegressor, model_from_checkpoint
from aiida_matembed.core.models.regressor import (
    LENGTH_SCALES,
    NOISE_RATIOS,
    cross_validate,
    fit_gaussian_process,
    train_regressor,
)


def _data(n=40, d=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = np.sin(x[:, 0]) + 0.5 * x[:, 1] ** 2 + 0.05 * rng.normal(size=n)
    return x, y


def test_posterior_equals_scikit_learn_with_the_same_hyper_parameters():
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    x, y = _data()
    fit = fit_gaussian_process(x, y)
    z = (x[:, fit.columns] - fit.x_mean) / fit.x_scale
    t = (y - fit.y_mean) / fit.y_scale
    kernel = ConstantKernel(fit.signal_variance, 'fixed') * RBF(fit.length_scale, 'fixed') + WhiteKernel(
        fit.signal_variance * (fit.noise_ratio + 1e-10), 'fixed'
    )
    reference = GaussianProcessRegressor(kernel, optimizer=None, normalize_y=False).fit(z, t)
    x_new, _ = _data(n=15, seed=1)
    z_new = (x_new[:, fit.columns] - fit.x_mean) / fit.x_scale
    mean_ref, std_ref = reference.predict(z_new, return_std=True)
    # scikit-learn's std includes the white noise; ours is the latent f's
    std_ref = np.sqrt(np.clip(std_ref**2 - fit.signal_variance * (fit.noise_ratio + 1e-10), 0, None))
    mean, std = fit.predict(x_new)
    np.testing.assert_allclose(mean, mean_ref * fit.y_scale + fit.y_mean, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(std, std_ref * fit.y_scale, rtol=1e-6, atol=1e-8)


def test_hyper_parameters_maximise_the_marginal_likelihood_of_scikit_learn():
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    x, y = _data()
    fit = fit_gaussian_process(x, y)
    z = (x[:, fit.columns] - fit.x_mean) / fit.x_scale
    t = (y - fit.y_mean) / fit.y_scale

    def lml(scale, ratio, signal):
        kernel = ConstantKernel(signal, 'fixed') * RBF(scale, 'fixed') + WhiteKernel(signal * (ratio + 1e-10), 'fixed')
        return GaussianProcessRegressor(kernel, optimizer=None).fit(z, t).log_marginal_likelihood_value_

    best = lml(fit.length_scale, fit.noise_ratio, fit.signal_variance)
    assert best == pytest.approx(fit.log_marginal_likelihood, rel=1e-6)
    for scale in (fit.length_scale * 0.5, fit.length_scale * 2):
        assert lml(scale, fit.noise_ratio, fit.signal_variance) < best
    assert lml(fit.length_scale, fit.noise_ratio, fit.signal_variance * 2) < best  # s² at its optimum


def test_learns_a_smooth_function_better_than_the_mean():
    x, y = _data(n=60)
    validation = cross_validate(x, y, folds=5)
    assert validation.folds == 5
    assert validation.mae < 0.5 * validation.baseline_mae
    # the baseline is the mean of the training folds, computed by hand
    order = np.random.default_rng(0).permutation(len(y))
    errors = [np.abs(y[f] - y[np.setdiff1d(order, f)].mean()) for f in np.array_split(order, 5)]
    assert validation.baseline_mae == pytest.approx(np.concatenate(errors).mean())


def test_constant_and_nan_columns_are_dropped_and_nan_rows_predict_nan():
    x, y = _data(n=20, d=3)
    x = np.hstack([x, np.ones((20, 1)), np.full((20, 1), np.nan)])
    fit = fit_gaussian_process(x, y)
    assert list(fit.columns) == [0, 1, 2]
    model, _ = train_regressor(x[:, :4], y, name='t', target='y', source={'representation': 'r'})
    probe = x[:3, :4].copy()
    probe[1, 0] = np.nan
    mean, std = model.predict_features(probe)
    assert np.isnan(mean[1]) and np.isnan(std[1])
    assert np.isfinite(mean[[0, 2]]).all()


def test_uncertainty_grows_away_from_the_data():
    x, y = _data(n=30, d=2)
    fit = fit_gaussian_process(x, y)
    _, near = fit.predict(x[:1])
    _, far = fit.predict(np.array([[30.0, -30.0]]))
    assert far[0] > 5 * near[0]


@pytest.mark.parametrize(
    ('x', 'y', 'match'),
    [
        (np.zeros((1, 3)), np.zeros(1), 'at least 2'),
        (np.zeros((3, 3)), np.array([1.0, np.nan, 2.0]), 'NaN'),
        (np.ones((4, 3)), np.arange(4.0), 'no feature column varies'),
        (np.zeros(3), np.zeros(3), '2D'),
        (np.zeros((3, 2)), np.zeros(4), 'vector of 3'),
    ],
)
def test_bad_input(x, y, match):
    with pytest.raises(ValueError, match=match):
        fit_gaussian_process(x, y)


def test_checkpoint_round_trip_is_safetensors_with_checksum(tmp_path):
    x, y = _data(n=25)
    model, validation = train_regressor(
        x, y, name='user.y', target='y', source={'representation': 'matembed.magpie', 'version': 1, 'params': {}}
    )
    assert MODEL_KINDS['regressor'] is FeatureRegressor
    assert model.card.metrics['cv_mae'] == validation.mae
    weights, _ = model.save(tmp_path / 'model')
    assert weights.read_bytes()[:8] != b'\x80\x04\x95'  # not a pickle
    loaded = model_from_checkpoint(tmp_path / 'model', device='cpu')
    np.testing.assert_array_equal(loaded.predict_features(x[:5])[0], model.predict_features(x[:5])[0])
    with pytest.raises(ValueError, match='reads 5 features'):
        loaded.predict_features(x[:5, :3])


def test_cross_validation_survives_folds_whose_training_rows_share_one_vector():
    x = np.array([[1.0, 2.0]] * 4 + [[3.0, 1.0]])  # polymorphs: one composition vector for four structures
    y = np.array([-5.0, -5.1, -4.9, -5.05, -3.0])
    validation = cross_validate(x, y, folds=5, seed=0)
    assert np.isfinite(validation.predictions).all()
    fit_gaussian_process(x, y)  # the whole set has a varying column


def test_chosen_hyper_parameters_beat_every_coarse_grid_point():
    from scipy.linalg import cho_solve, cholesky

    x, y = _data(n=30)
    fit = fit_gaussian_process(x, y)
    z = (x[:, fit.columns] - fit.x_mean) / fit.x_scale
    t = (y - fit.y_mean) / fit.y_scale
    sq = ((z[:, None, :] - z[None]) ** 2).sum(-1)
    constant = 0.5 * len(t) * (1 + np.log(2 * np.pi))
    for scale in LENGTH_SCALES * np.sqrt(z.shape[1]):
        for ratio in NOISE_RATIOS:
            lower = cholesky(np.exp(-sq / (2 * scale**2)) + (ratio + 1e-10) * np.eye(len(t)), lower=True)
            signal = t @ cho_solve((lower, True), t) / len(t)
            lml = -0.5 * len(t) * np.log(signal) - np.log(np.diag(lower)).sum() - constant
            assert lml <= fit.log_marginal_likelihood + 1e-9
