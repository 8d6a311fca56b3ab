"""The linear skip path: a closed-form ridge start that training must beat on validation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from titans_ts.baselines.linear import LastValueRidge, NormalEquations, fit_ridge_blocks
from titans_ts.datasets import make_synthetic
from titans_ts.training.data import SeriesWindows
from titans_ts.training.forecasting import (
    ForecastModelConfig,
    TitansForecastModel,
    build_backbone_config,
)


def _config(mixing: bool = False, quantiles=None, lookback: int = 24) -> ForecastModelConfig:
    backbone = build_backbone_config(
        variant="mag", d_model=8, n_layers=1, n_heads=2, n_tokens=4, n_persistent=2,
        memory_depth=2, memory_chunk_size=8, dropout=0.0,
    )
    return ForecastModelConfig(lookback=lookback, horizon=6, n_channels=3, patch_len=8,
                               stride=8, channel_mixing=mixing, quantiles=quantiles,
                               linear_skip=True, backbone=backbone)


def test_iter_blocks_yields_every_window_in_order():
    rng = np.random.default_rng(0)
    series = [rng.normal(size=(40, 2)), rng.normal(size=(25, 2)), rng.normal(size=(9, 2))]
    windows = SeriesWindows(series, 5, 3, starts=[(2, 30), (0, 17), (0, -1)], stride=2)
    xs, ys = zip(*windows.iter_blocks(block=4))
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert x.shape == (len(windows), 5, 2) and y.shape == (len(windows), 3, 2)
    for i in range(len(windows)):
        xi, yi = windows[i]
        np.testing.assert_array_equal(x[i], xi.numpy())
        np.testing.assert_array_equal(y[i], yi.numpy())


@pytest.mark.parametrize("mixing", [False, True], ids=["independent", "mixing"])
def test_untrained_model_is_exactly_the_ridge_forecast(mixing):
    """Zero-initialised Titans head + skip loaded from the ridge fit == LastValueRidge."""
    data = make_synthetic(n_steps=300, n_channels=3, seed=4).drop(columns="date").to_numpy()
    train, val = data[:200], data[176:]
    ridge = LastValueRidge(24, 6).fit(train, val)
    torch.manual_seed(0)
    model = TitansForecastModel(_config(mixing, quantiles=(0.2, 0.8))).eval()
    model.set_linear_skip(ridge.coef_, ridge.intercept_)
    x = np.stack([val[i : i + 24] for i in range(0, 70, 7)])
    with torch.no_grad():
        out = model(torch.as_tensor(x, dtype=torch.float32))
    expected = ridge.predict(x)
    np.testing.assert_allclose(out.point.numpy(), expected, rtol=1e-4, atol=1e-4)
    # the quantile head starts as the same linear forecast at every level
    np.testing.assert_allclose(out.quantiles[..., 0].numpy(), expected, rtol=1e-4, atol=1e-4)


def test_ridge_from_blocks_equals_the_baseline_fit():
    data = make_synthetic(n_steps=260, n_channels=2, seed=2).drop(columns="date").to_numpy()
    train, val = data[:180], data[150:]
    ridge = LastValueRidge(24, 6).fit(train, val)
    windows = SeriesWindows([train], 24, 6)
    val_windows = SeriesWindows([val], 24, 6)
    eq = NormalEquations.zeros(24, 6)
    for x, y in windows.iter_blocks(block=17):
        eq.add(x, y)
    coef, intercept, alpha, _ = fit_ridge_blocks(eq, val_windows.iter_blocks)
    assert alpha == ridge.alpha_
    np.testing.assert_allclose(coef, ridge.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(intercept, ridge.intercept_, rtol=1e-6, atol=1e-8)


def test_set_linear_skip_checks_shapes_and_mode():
    model = TitansForecastModel(_config())
    with pytest.raises(ValueError, match=r"coef must be \(23, 6\)"):
        model.set_linear_skip(np.zeros((24, 6)), np.zeros(6))
    plain = TitansForecastModel(dataclasses.replace(_config(), linear_skip=False))
    with pytest.raises(ValueError, match="linear_skip=False"):
        plain.set_linear_skip(np.zeros((23, 6)), np.zeros(6))
    with pytest.raises(ValueError, match="lookback >= 2"):
        _config(lookback=1)


def test_training_that_only_hurts_keeps_the_linear_start(make_tiny, wide_df):
    """A learning rate that wrecks the network: early stopping restores the ridge start,
    so the fitted forecaster is never worse than the linear one on validation."""
    est = make_tiny(learning_rate=5.0, gradient_clip_val=None, max_epochs=2).fit(wide_df)
    assert est.linear_skip_alpha_ is not None
    assert est.best_epoch_ == -1
    assert min(r["val_loss"] for r in est.history_) >= est.linear_val_loss_
    # the restored weights are the closed-form start: zero Titans head
    assert est.model_.head.linear.weight.abs().max() == 0


def test_linear_skip_off_builds_no_skip(make_tiny, wide_df):
    est = make_tiny(linear_skip=False, max_epochs=1).fit(wide_df)
    assert est.model_.skip is None and est.linear_skip_alpha_ is None


def test_linear_skip_is_frozen_unless_asked(make_tiny, wide_df):
    """Default: training moves the Titans path only; the ridge map stays at its closed form."""
    # a wrecking learning rate keeps the linear start (best_epoch_ -1): the closed-form map
    start = make_tiny(learning_rate=5.0, gradient_clip_val=None, max_epochs=2).fit(wide_df)
    assert start.best_epoch_ == -1
    closed_form = start.model_.skip.weight.detach()
    frozen = make_tiny(max_epochs=3, learning_rate=3e-3).fit(wide_df)
    trained = make_tiny(max_epochs=3, learning_rate=3e-3, train_linear_skip=True).fit(wide_df)
    assert frozen.best_epoch_ >= 0 and trained.best_epoch_ >= 0, "nothing was trained"
    assert not frozen.model_.skip.weight.requires_grad
    torch.testing.assert_close(frozen.model_.skip.weight, closed_form, rtol=0, atol=0)
    assert frozen.model_.head.linear.weight.abs().max() > 0  # the Titans path did learn
    assert (trained.model_.skip.weight - closed_form).abs().max() > 1e-4
