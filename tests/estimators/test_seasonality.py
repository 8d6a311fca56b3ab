"""TitansForecaster's seasonal cycle: the choice on validation, phase placement at predict
time, persistence and the errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

# lookback 12 < the daily period 24: the lags alone cannot tell the phase
CYCLIC = {"lookback": 12, "horizon": 6, "patch_len": 4, "stride": 4, "validation_size": 48}


@pytest.fixture(scope="module")
def cyclic_df() -> pd.DataFrame:
    """Hourly wide frame, 2 series: AR(1) noise + a random daily profile (20 days)."""
    rng = np.random.default_rng(3)
    n = 24 * 20
    profile = rng.normal(size=24) * 2
    cycle = profile[np.arange(n) % 24]
    noise = np.zeros((n, 2))
    for t in range(1, n):
        noise[t] = 0.6 * noise[t - 1] + rng.normal(size=2)
    return pd.DataFrame({
        "date": pd.date_range("2022-03-01", periods=n, freq="h"),
        "a": cycle + noise[:, 0],
        "b": 10 + 0.5 * cycle + noise[:, 1],
    })


@pytest.fixture(scope="module")
def fitted(make_tiny, cyclic_df):
    return make_tiny(**CYCLIC).fit(cyclic_df)


def test_auto_removes_the_cycle_when_validation_says_so(fitted, make_tiny, cyclic_df):
    est = fitted
    assert est.seasonal_period_ == 24
    assert set(est.seasonal_scores_) == {"none", "fixed", "adaptive"}
    assert est.seasonality_ in ("fixed", "adaptive") and est.config_.seasonality == est.seasonality_
    assert est.seasonal_scores_[est.seasonality_] < 0.8 * est.seasonal_scores_["none"]
    # the network's validation loss at its linear start is the ridge's validation MSE:
    # the model removes and restores the cycle exactly as the closed-form fit did
    assert est.linear_val_loss_ == pytest.approx(est.seasonal_scores_[est.seasonality_], rel=1e-4)
    assert est.seasonal_profile_.shape == (2, 24, 1)
    plain = make_tiny(**CYCLIC, seasonality="none").fit(cyclic_df)
    assert plain.seasonality_ == "none" and plain.seasonal_profile_ is None
    assert plain.seasonal_scores_.keys() == {"none"}
    tail = cyclic_df.iloc[-200:]
    assert -est.score(tail, n_windows=20) < 0.85 * -plain.score(tail, n_windows=20)


def test_predict_places_the_cycle_by_time_stamp(fitted, cyclic_df):
    est = fitted
    history = cyclic_df.iloc[:400]
    h = 15  # > horizon: a recursive rollout over three network calls
    forecast = est.predict(h=h, df=history)
    # the same windows through cross_validation (contexts cut from a longer frame)
    cv = est.cross_validation(cyclic_df.iloc[: 400 + h], n_windows=1, h=h)
    np.testing.assert_allclose(forecast["a"], cv["a_hat"], rtol=1e-5, atol=1e-6)
    # a whole period later: same phase, same forecast; half a period: a different one
    for shift, same in ((24, True), (12, False)):
        moved = history.assign(date=history["date"] + pd.Timedelta(hours=shift))
        other = est.predict(h=h, df=moved)
        assert np.allclose(other["b"], forecast["b"], atol=1e-5) is same, shift
    # predict() without a frame continues the training data at the right phase too
    np.testing.assert_allclose(
        est.predict(h=h)["a"], est.predict(h=h, df=cyclic_df)["a"], rtol=1e-6
    )


def test_save_load_keeps_the_cycle(fitted, cyclic_df, tmp_path):
    from titans_ts.estimators import TitansForecaster

    fitted.save(tmp_path / "m")
    loaded = TitansForecaster.load(tmp_path / "m")
    assert loaded.seasonality_ == fitted.seasonality_
    assert loaded.seasonal_period_ == 24 and loaded.seasonal_scores_ == fitted.seasonal_scores_
    np.testing.assert_array_equal(loaded.seasonal_profile_, fitted.seasonal_profile_)
    assert loaded.linear_start_.mode == fitted.linear_start_.mode
    np.testing.assert_array_equal(loaded.linear_start_.coef, fitted.linear_start_.coef)
    history = cyclic_df.iloc[:300]
    np.testing.assert_array_equal(
        loaded.predict(h=8, df=history)["a"], fitted.predict(h=8, df=history)["a"]
    )


def test_channel_mixing_with_a_cycle(make_tiny, cyclic_df):
    est = make_tiny(**CYCLIC, channel_mixing=True, seasonality="fixed").fit(cyclic_df)
    assert est.seasonal_profile_.shape == (1, 24, 2)
    out = est.predict(h=9)
    assert out.shape == (9, 3) and np.isfinite(out[["a", "b"]].to_numpy()).all()


def test_integer_steps_need_an_explicit_period(make_tiny, cyclic_df):
    frame = cyclic_df.assign(date=np.arange(len(cyclic_df)))
    auto = make_tiny(**CYCLIC).fit(frame)
    assert auto.seasonality_ == "none" and auto.seasonal_period_ is None
    with pytest.raises(ValueError, match="seasonal_period="):
        make_tiny(**CYCLIC, seasonality="fixed").fit(frame)
    given = make_tiny(**CYCLIC, seasonal_period=24).fit(frame)
    assert given.seasonal_period_ == 24 and given.seasonality_ != "none"
    with pytest.raises(ValueError, match="two cycles"):
        make_tiny(**CYCLIC, seasonality="adaptive", seasonal_period=300).fit(frame)
    # too long a period for "auto": silently no cycle
    assert make_tiny(**CYCLIC, seasonal_period=300).fit(frame).seasonality_ == "none"
