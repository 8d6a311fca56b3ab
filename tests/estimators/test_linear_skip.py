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


def test_significance_test_decides_between_the_trained_network_and_the_start(
    make_tiny, wide_df
):
    """The same trained network (same seed) is kept or replaced by the linear start
    depending only on the level; the recorded test is the blocked paired test of the
    per-window validation errors."""
    # 30 held-out steps: 25 windows per series, 4 blocks of about one horizon; 4 epochs
    # at 3e-3 so that training beats the start on validation
    setup = {"validation_size": 30, "max_epochs": 4, "learning_rate": 3e-3}
    off = make_tiny(**setup).fit(wide_df)  # significance=None: tested, always kept
    assert off.best_epoch_ >= 0 and off.network_test_["kept"]
    strict = make_tiny(**setup, significance=1e-9).fit(wide_df)
    loose = make_tiny(**setup, significance=0.999999).fit(wide_df)
    assert strict.network_test_ is not None
    assert loose.network_test_ == off.network_test_
    assert {k: v for k, v in strict.network_test_.items() if k != "kept"} == {
        k: v for k, v in loose.network_test_.items() if k != "kept"
    }
    p = strict.network_test_["p"]
    assert 1e-9 < p < 0.999999
    assert not strict.network_test_["kept"] and loose.network_test_["kept"]
    assert strict.best_epoch_ == -1 and loose.best_epoch_ == off.best_epoch_
    assert strict.model_.head.linear.weight.abs().max() == 0  # the closed-form start
    np.testing.assert_array_equal(loose.predict()["x0"], off.predict()["x0"])
    assert not np.array_equal(strict.predict()["x0"], off.predict()["x0"])
    # the start's errors are those of the linear forecast on all validation windows
    # (here fewer than max_val_windows, so the same windows as linear_val_loss_)
    assert strict.network_test_["mse_start"] == pytest.approx(strict.linear_val_loss_)
    assert strict.n_val_windows_ == 2 * (30 - strict.horizon_ + 1)


def test_network_test_survives_save_and_load(make_tiny, wide_df, tmp_path):
    from titans_ts.estimators import TitansForecaster

    est = make_tiny(validation_size=30, max_epochs=4, learning_rate=3e-3,
                    significance=1e-9).fit(wide_df)
    loaded = TitansForecaster.load(est.save(tmp_path / "m"))
    assert loaded.network_test_ == est.network_test_ and loaded.best_epoch_ == -1
    np.testing.assert_array_equal(loaded.predict()["x0"], est.predict()["x0"])


def test_significance_blocks_are_horizon_long_runs_of_each_series(make_tiny, wide_df,
                                                                   monkeypatch):
    from titans_ts.estimators import forecaster

    seen = {}
    real = forecaster.blocked_paired_test

    def spy(base, new, blocks):
        seen.update(base=base, new=new, blocks=blocks)
        return real(base, new, blocks)

    monkeypatch.setattr(forecaster, "blocked_paired_test", spy)
    est = make_tiny(significance=0.5, validation_size=30, max_epochs=4,
                    learning_rate=3e-3).fit(wide_df)
    # 2 series x (30 - 6 + 1) = 25 windows each, cut into 25 // 6 = 4 runs of 6-7
    assert len(seen["base"]) == len(seen["new"]) == est.n_val_windows_ == 50
    np.testing.assert_array_equal(seen["blocks"], np.tile(np.arange(25) * 4 // 25, 2))
    assert est.network_test_["n_blocks"] == 4
    assert est.network_test_["mse_network"] == pytest.approx(np.mean(seen["new"]))


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


def test_min_train_horizons_ships_the_untrained_linear_start_on_short_series(
    make_tiny, wide_df
):
    # TINY: 160 rows, 12 held out -> 148 training steps = 24.7 horizons of 6
    with pytest.warns(UserWarning, match="24.7 horizons of 6 steps, fewer than "
                      "min_train_horizons=25"):
        short = make_tiny(min_train_horizons=25).fit(wide_df)
    assert not short.network_trained_ and short.best_epoch_ == -1
    assert short.history_ == [] and short.network_test_ is None
    assert short.model_.head.linear.weight.abs().max() == 0  # the closed-form start
    trained = make_tiny(min_train_horizons=24).fit(wide_df)  # 24 * 6 = 144 <= 148
    assert trained.network_trained_ and len(trained.history_) >= 1
    # the same closed-form start underneath: equal before training, so equal validation
    assert short.linear_val_loss_ == trained.linear_val_loss_
    # without the linear path there is nothing else to ship: the network trains
    alone = make_tiny(min_train_horizons=1000, linear_skip=False, max_epochs=1).fit(wide_df)
    assert alone.network_trained_ and len(alone.history_) == 1
