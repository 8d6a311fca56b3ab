"""Seasonal cycle removal: phases, profiles, amplitudes, and the ridge choice on validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from titans_ts.baselines.linear import fit_seasonal_ridge
from titans_ts.encoders.seasonal import (
    MAX_SCALE,
    add_cycle,
    cycle_scale,
    default_period,
    fit_profile,
    remove_cycle,
    season_slices,
    step_index,
)
from titans_ts.training.data import SeriesWindows


def test_step_index_counts_steps_from_a_common_origin():
    hours = pd.date_range("2020-01-01 05:00", periods=3, freq="h")
    got = step_index(hours, "h")
    assert np.all(np.diff(got) == 1) and got[0] % 24 == 5  # 1970-01-01 starts at phase 0
    quarter = pd.date_range("2020-01-01 00:45", periods=2, freq="15min")
    assert step_index(quarter, "15min")[0] % 96 == 3
    assert list(step_index(np.array([10, 12, 14]), 2)) == [5, 6, 7]
    months = pd.date_range("2021-03-01", periods=2, freq="MS")
    assert list(np.diff(step_index(months, "MS"))) == [1]
    assert step_index(months, "MS")[0] % 12 == 2  # March


@pytest.mark.parametrize(
    ("freq", "period"),
    [("h", 24), ("15min", 96), ("10min", 144), ("D", 7), ("MS", 12), ("W-SUN", 52),
     ("QS", 4), ("7min", None), (1, None)],
)
def test_default_period(freq, period):
    assert default_period(freq) == period


def test_fit_profile_is_the_mean_per_phase():
    values = np.arange(10, dtype=float)[:, None]  # steps 3..12, period 4
    profile = fit_profile(values, first_step=3, period=4)
    # phase 3: values at t=0,4,8 -> 4; phase 0: t=1,5,9 -> 5; phase 1: 2,6 -> 4; phase 2: 3,7 -> 5
    np.testing.assert_allclose(profile[:, 0], [5.0, 4.0, 5.0, 4.0])
    sparse = fit_profile(np.ones((2, 1)), first_step=0, period=4)
    np.testing.assert_allclose(sparse[:, 0], [1, 1, 0, 0])  # unseen phases are 0
    with pytest.raises(ValueError, match="period"):
        fit_profile(values, 0, 1)
    with pytest.raises(ValueError, match="shape"):
        fit_profile(np.ones(5), 0, 2)


def test_season_slices_follow_the_phase():
    profile = np.arange(6, dtype=float).reshape(3, 2)  # P = 3, C = 2
    got = season_slices(profile, [1, 5], 4)
    assert got.shape == (2, 4, 2) and got.dtype == np.float32
    np.testing.assert_array_equal(got[0, :, 0], [2, 4, 0, 2])
    np.testing.assert_array_equal(got[1, :, 1], [5, 1, 3, 5])


def test_adaptive_amplitude_recovers_the_scale_and_is_clipped():
    torch.manual_seed(0)
    q = torch.randn(3, 10, 2, dtype=torch.float64)
    x = 0.7 * q[:, :6] + 2.5  # amplitude 0.7 plus a level: g ignores the level
    g = cycle_scale(x, q, "adaptive")
    torch.testing.assert_close(g, torch.full((3, 1, 2), 0.7, dtype=torch.float64))
    assert torch.all(cycle_scale(5 * q[:, :6], q, "adaptive") == MAX_SCALE)
    assert torch.all(cycle_scale(-q[:, :6], q, "adaptive") == 0)
    assert torch.all(cycle_scale(x, q, "fixed") == 1)
    with pytest.raises(ValueError, match="mode"):
        cycle_scale(x, q, "none")


@pytest.mark.parametrize("mode", ["fixed", "adaptive"])
def test_remove_then_add_restores_the_cycle(mode):
    torch.manual_seed(1)
    season = torch.randn(4, 9, 3)
    x = torch.randn(4, 6, 3) + season[:, :6]
    residual, g = remove_cycle(x, season, mode)
    torch.testing.assert_close(residual + g * season[:, :6], x)
    y = torch.randn(4, 3, 3)
    torch.testing.assert_close(add_cycle(y, season, g) - y, g * season[:, 6:])
    quantiles = torch.randn(4, 3, 3, 5)
    torch.testing.assert_close(
        add_cycle(quantiles, season, g) - quantiles, (g * season[:, 6:]).unsqueeze(-1).expand(
            -1, -1, -1, 5)
    )
    with pytest.raises(ValueError, match="season must have shape"):
        remove_cycle(x, season[:, :6], mode)


def _cyclic_series(n: int, period: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """AR(1) noise plus a random (non-sinusoidal) cycle: ``(values (n, 1), profile)``."""
    rng = np.random.default_rng(seed)
    profile = rng.normal(size=period) * 2
    noise = np.zeros(n)
    for t in range(1, n):
        noise[t] = 0.7 * noise[t - 1] + rng.normal()
    return (profile[np.arange(n) % period] + noise)[:, None], profile


def test_ridge_choice_on_validation_prefers_the_cycle_when_it_helps():
    # lookback 8 < period 24: the lags cannot know the phase, the cycle can
    values, _ = _cyclic_series(24 * 40, 24, seed=0)
    train_end = 24 * 32
    profile = fit_profile(values[:train_end], 0, 24)
    season = season_slices(profile, [0], len(values))[0]
    ranges = ([(0, train_end - 8 - 6)], [(train_end - 8, len(values) - 14)])
    train = SeriesWindows([values], 8, 6, ranges[0], season=[season])
    val = SeriesWindows([values], 8, 6, ranges[1], season=[season])
    fit = fit_seasonal_ridge(train, val, ("none", "fixed", "adaptive"))
    assert set(fit.val_mse) == {"none", "fixed", "adaptive"}
    assert fit.mode in ("fixed", "adaptive")
    assert fit.val_mse[fit.mode] < 0.8 * fit.val_mse["none"]
    # the reported val MSE is that of the re-seasonalised forecast
    x, y, s = (np.concatenate(parts) for parts in zip(*val.iter_blocks(), strict=True))
    pred = fit.predict(x, s)
    assert float(np.mean((pred - y) ** 2)) == pytest.approx(fit.val_mse[fit.mode], rel=1e-9)
    with pytest.raises(ValueError, match="validation"):
        fit_seasonal_ridge(train, None, ("none", "fixed"))
    with pytest.raises(ValueError, match="season"):
        fit.predict(x)
