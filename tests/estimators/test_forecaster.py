"""TitansForecaster behaviour: formats, parity, rollout, quantiles, CV, persistence,
determinism, silence, and a tiny real fit on ETTh1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest
import torch

from titans_ts.estimators import FORMAT_VERSION, TitansForecaster

# ------------------------------------------------------------------ predict output


def test_predict_wide_format_and_future_timestamps(fitted_wide, wide_df):
    out = fitted_wide.predict()
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns[:3]) == ["date", "x0", "OT"]
    assert len(out) == fitted_wide.horizon_ == 6
    expected = pd.date_range(wide_df["date"].iloc[-1], periods=7, freq="h")[1:]
    assert (pd.DatetimeIndex(out["date"]) == expected).all()
    assert out["date"].dtype == wide_df["date"].dtype
    assert np.isfinite(out[["x0", "OT"]].to_numpy()).all()


def test_predict_long_format(fitted_long, long_df):
    out = fitted_long.predict()
    assert list(out.columns) == ["unique_id", "ds", "y", "y_q0.1", "y_q0.5", "y_q0.9"]
    assert list(out["unique_id"].unique()) == ["x0", "OT"]
    for name, group in out.groupby("unique_id", sort=False):
        last = long_df.loc[long_df.unique_id == name, "ds"].max()
        expected = pd.date_range(last, periods=7, freq="h")[1:]
        assert (pd.DatetimeIndex(group["ds"]) == expected).all()


def test_predict_from_given_history_equals_default(fitted_wide, wide_df):
    from_df = fitted_wide.predict(df=wide_df)
    default = fitted_wide.predict()
    np.testing.assert_allclose(
        from_df[["x0", "OT"]].to_numpy(), default[["x0", "OT"]].to_numpy(), rtol=1e-6
    )
    # an earlier history gives a different forecast starting after its own end
    earlier = fitted_wide.predict(df=wide_df.iloc[:100])
    assert earlier["date"].iloc[0] == wide_df["date"].iloc[100]


def test_recursive_rollout_shape_and_prefix(fitted_wide):
    short = fitted_wide.predict(h=4)
    long = fitted_wide.predict(h=15)  # 3 network calls of horizon 6
    assert len(short) == 4 and len(long) == 15
    pd.testing.assert_frame_equal(long.iloc[:4].reset_index(drop=True), short)
    assert (np.diff(pd.DatetimeIndex(long["date"]).asi8) == 3_600 * 10**9).all()
    assert np.isfinite(long.drop(columns="date").to_numpy()).all()


def test_rollout_feeds_predictions_back(fitted_wide):
    # steps 7..12 of a 12-step forecast equal a 6-step forecast from the extended history
    model = fitted_wide
    first = model.predict(h=12)
    hist = model.last_values_.T  # (L, K) in original units
    extended = np.concatenate([hist, first[["x0", "OT"]].to_numpy()[:6]])
    times = pd.date_range(end=first["date"].iloc[5], periods=len(extended), freq="h")
    df = pd.DataFrame({"date": times, "x0": extended[:, 0], "OT": extended[:, 1]})
    second = model.predict(h=6, df=df)
    np.testing.assert_allclose(
        first[["x0", "OT"]].to_numpy()[6:], second[["x0", "OT"]].to_numpy(), rtol=1e-4,
        atol=1e-5,
    )


def test_quantile_columns_are_monotone(fitted_wide):
    out = fitted_wide.predict(h=12)
    for var in ("x0", "OT"):
        q = out[[f"{var}_q0.1", f"{var}_q0.5", f"{var}_q0.9"]].to_numpy()
        assert (np.diff(q, axis=1) >= 0).all()


# ------------------------------------------------------------------ parity


def test_long_and_wide_fits_are_identical(fitted_wide, fitted_long):
    for (ka, va), (kb, vb) in zip(
        fitted_wide.model_.state_dict().items(), fitted_long.model_.state_dict().items(),
        strict=True,
    ):
        assert ka == kb
        assert torch.equal(va, vb), ka
    wide = fitted_wide.predict()
    long = fitted_long.predict()
    for var in ("x0", "OT"):
        np.testing.assert_array_equal(
            wide[var].to_numpy(), long.loc[long.unique_id == var, "y"].to_numpy()
        )


def test_pandas_and_polars_parity(make_tiny, wide_df, long_df, fitted_wide, fitted_long, helpers):
    pl = pytest.importorskip("polars")
    est = make_tiny(quantiles=[0.1, 0.5, 0.9]).fit(helpers.to_polars(wide_df))
    out = est.predict()
    assert isinstance(out, pl.DataFrame)
    assert out.schema["date"] == helpers.to_polars(wide_df).schema["date"]
    helpers.assert_frames_equal(helpers.polars_to_pandas(out), fitted_wide.predict())
    # a polars long frame given to a model fit on pandas gives a polars long forecast
    out_long = fitted_long.predict(df=helpers.to_polars(long_df))
    assert isinstance(out_long, pl.DataFrame)
    assert out_long.schema["unique_id"] == pl.String
    helpers.assert_frames_equal(helpers.polars_to_pandas(out_long), fitted_long.predict())


def test_integer_time_steps(make_tiny):
    n = 120
    df = pd.DataFrame({
        "unique_id": ["s"] * n, "ds": np.arange(0, 2 * n, 2), "y": np.sin(np.arange(n) / 3),
    })
    est = make_tiny(max_epochs=1, early_stopping=False).fit(df)
    assert est.freq_ == 2
    out = est.predict(h=8)
    np.testing.assert_array_equal(out["ds"].to_numpy(), 2 * n - 2 + 2 * np.arange(1, 9))
    assert out["ds"].dtype == df["ds"].dtype


def test_channel_mixing(make_tiny, wide_df):
    est = make_tiny(channel_mixing=True, max_epochs=1).fit(wide_df)
    assert est.config_.channel_mixing and est.config_.n_channels == 2
    out = est.predict(h=9)
    assert out.shape == (9, 3)
    cv = est.cross_validation(wide_df, n_windows=2)
    assert cv.shape == (12, 2 + 2 * 2)


# ------------------------------------------------------------------ evaluation


def test_cross_validation_shape_and_cutoffs(fitted_long, long_df):
    cv = fitted_long.cross_validation(long_df, n_windows=3, step=4)
    assert list(cv.columns) == [
        "unique_id", "ds", "cutoff", "y", "y_hat", "y_q0.1", "y_q0.5", "y_q0.9"
    ]
    assert len(cv) == 2 * 3 * 6
    assert cv.groupby("unique_id")["cutoff"].nunique().tolist() == [3, 3]
    assert (cv["ds"] > cv["cutoff"]).all()
    # actual values are the real observations
    merged = cv.merge(long_df, on=["unique_id", "ds"], suffixes=("", "_true"))
    np.testing.assert_allclose(merged["y"], merged["y_true"])
    # the last window equals predict() from the history before it
    last_cut = cv["cutoff"].max()
    hist = long_df[long_df.ds <= last_cut]
    direct = fitted_long.predict(df=hist)
    np.testing.assert_allclose(
        cv[cv.cutoff == last_cut]["y_hat"].to_numpy(), direct["y"].to_numpy(), rtol=1e-5,
        atol=1e-6,
    )


def test_cross_validation_wide_and_score(fitted_wide, wide_df):
    cv = fitted_wide.cross_validation(wide_df, n_windows=2)
    assert len(cv) == 12
    assert {"date", "cutoff", "x0", "OT", "x0_hat", "OT_hat"} <= set(cv.columns)
    truth = wide_df.set_index("date").loc[pd.DatetimeIndex(cv["date"])]
    for var in ("x0", "OT"):
        np.testing.assert_allclose(cv[var].to_numpy(), truth[var].to_numpy())
    last_cut = cv["cutoff"].max()
    direct = fitted_wide.predict(df=wide_df[wide_df.date <= last_cut])
    np.testing.assert_allclose(
        cv.loc[cv.cutoff == last_cut, ["x0_hat", "OT_hat"]].to_numpy(),
        direct[["x0", "OT"]].to_numpy(), rtol=1e-5, atol=1e-6,
    )
    score = fitted_wide.score(wide_df, n_windows=2)
    assert isinstance(score, float) and score < 0
    # score is minus the MSE on each series' standardised scale
    sq = 0.0
    for k, var in enumerate(fitted_wide.series_names_):
        err = (cv[var] - cv[f"{var}_hat"]) / fitted_wide.scaler_std_[k]
        sq += float((err**2).sum())
    assert score == pytest.approx(-sq / (2 * len(cv)), rel=1e-6)


def test_cross_validation_too_many_windows(fitted_wide, wide_df):
    with pytest.raises(ValueError, match=r"series 'x0' has 160 time steps; n_windows=100"):
        fitted_wide.cross_validation(wide_df, n_windows=100)


# ------------------------------------------------------------------ training behaviour


def test_determinism_and_no_lightning_logs(make_tiny, wide_df, fitted_wide, tmp_path,
                                           monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    again = make_tiny(quantiles=[0.1, 0.5, 0.9]).fit(wide_df)
    for (k, a), (_, b) in zip(
        again.model_.state_dict().items(), fitted_wide.model_.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), k
    pd.testing.assert_frame_equal(again.predict(), fitted_wide.predict())
    assert again.history_ == fitted_wide.history_
    assert list(tmp_path.iterdir()) == []  # no lightning_logs/ or checkpoints
    captured = capfd.readouterr()
    assert "GPU available" not in captured.out + captured.err
    assert "LOCAL_RANK" not in captured.out + captured.err
    assert not torch.are_deterministic_algorithms_enabled()  # global flag restored


def test_different_seed_gives_a_different_fit(make_tiny, wide_df, fitted_wide):
    other = make_tiny(quantiles=[0.1, 0.5, 0.9], random_state=1).fit(wide_df)
    assert not np.array_equal(other.predict()["x0"], fitted_wide.predict()["x0"])


def test_early_stopping_history(fitted_wide, make_tiny, wide_df):
    hist = fitted_wide.history_
    assert len(hist) >= 1 and all(r["val_loss"] is not None for r in hist)
    losses = [r["val_loss"] for r in hist]
    if fitted_wide.best_epoch_ == -1:  # no epoch beat the closed-form linear start
        assert min(losses) >= fitted_wide.linear_val_loss_
    else:
        assert fitted_wide.best_epoch_ == int(np.argmin(losses))
        assert min(losses) < fitted_wide.linear_val_loss_
    assert fitted_wide.n_val_windows_ == 2 * (12 - 6 + 1)
    no_val = make_tiny(early_stopping=False, max_epochs=1).fit(wide_df)
    assert no_val.best_epoch_ is None and no_val.n_val_windows_ == 0
    assert no_val.history_[0]["val_loss"] is None


def test_refit_forgets(make_tiny, wide_df, long_df):
    est = make_tiny(max_epochs=1, early_stopping=False).fit(wide_df)
    est.set_params(horizon=3).fit(long_df.assign(y=long_df.y * 10))
    assert est.horizon_ == 3 and est.frame_meta_.layout == "long"
    assert len(est.predict()) == 2 * 3


def test_no_argument_sizes_follow_short_data():
    df = pd.DataFrame({"ds": pd.date_range("2022", periods=60, freq="D"),
                       "v": np.sin(np.arange(60) / 4)})
    est = TitansForecaster(max_epochs=1, windows_per_epoch=32, d_model=8, accelerator="cpu",
                           random_state=0)
    with pytest.warns(UserWarning, match="no series is long enough to hold out"):
        est.fit(df)
    assert est.horizon_ == 15 and est.lookback_ == 45  # min(24, 60//4), min(96, 60-15)
    assert len(est.predict()) == 15


# ------------------------------------------------------------------ persistence


def test_save_load_round_trip(fitted_wide, wide_df, tmp_path):
    path = fitted_wide.save(tmp_path / "model")
    assert {p.name for p in path.iterdir()} == {"estimator.json", "weights.pt", "arrays.npz"}
    doc = json.loads((path / "estimator.json").read_text())
    assert doc["format_version"] == FORMAT_VERSION
    loaded = TitansForecaster.load(path)
    assert loaded.get_params() == fitted_wide.get_params()
    pd.testing.assert_frame_equal(loaded.predict(h=9), fitted_wide.predict(h=9))
    pd.testing.assert_frame_equal(
        loaded.cross_validation(wide_df, n_windows=2),
        fitted_wide.cross_validation(wide_df, n_windows=2),
    )


def test_load_in_a_new_process(fitted_long, tmp_path):
    path = fitted_long.save(tmp_path / "model")
    expected = fitted_long.predict(h=8)
    script = textwrap.dedent(
        f"""
        import sys
        from titans_ts.estimators import TitansForecaster
        out = TitansForecaster.load({str(path)!r}).predict(h=8)
        out.to_pickle({str(tmp_path / "out.pkl")!r})
        """
    )
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                   env=env, timeout=120, check=True)
    got = pd.read_pickle(tmp_path / "out.pkl")
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_load_rejects_other_format_version(fitted_wide, tmp_path):
    path = fitted_wide.save(tmp_path / "model")
    doc = json.loads((path / "estimator.json").read_text())
    doc["format_version"] = FORMAT_VERSION + 1
    (path / "estimator.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="format_version"):
        TitansForecaster.load(path)
    with pytest.raises(FileNotFoundError, match="no estimator.json"):
        TitansForecaster.load(tmp_path / "nothing")


# ------------------------------------------------------------------ plotting


def test_plot_is_agg_safe(fitted_wide, wide_df):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = fitted_wide.plot(series="OT", h=12)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["history", "forecast", "OT_q0.1 .. OT_q0.9"]
    assert len(ax.lines[1].get_xdata()) == 12
    ax2 = fitted_wide.plot(df=wide_df, n_history=50)
    assert len(ax2.lines[0].get_xdata()) == 50
    with pytest.raises(ValueError, match="series 'nope' is unknown"):
        fitted_wide.plot(series="nope")
    plt.close("all")


# ------------------------------------------------------------------ real data


def test_tiny_etth1_fit_beats_repeat_last_value(helpers):
    path = helpers.ett_path()
    if path is None:
        pytest.skip("ETTh1 not found: set TITANS_TS_DATA_DIR to the shared data folder")
    frame = pd.read_csv(path, parse_dates=["date"])
    train, test = frame.iloc[:2400], frame.iloc[2400 - 48 : 2400 + 240]
    est = TitansForecaster(
        horizon=24, lookback=48, d_model=16, patch_len=8, stride=8, memory_chunk_size=8,
        max_epochs=4, windows_per_epoch=512, batch_size=64, learning_rate=3e-3,
        accelerator="cpu", random_state=0,
    ).fit(train)
    cv = est.cross_validation(test, n_windows=10, step=24)
    variables = [c for c in frame.columns if c != "date"]
    last = test.set_index("date")
    model_se, naive_se = 0.0, 0.0
    for k, var in enumerate(variables):
        scale = est.scaler_std_[k]
        naive = last.loc[pd.DatetimeIndex(cv["cutoff"]), var].to_numpy()
        model_se += float((((cv[var] - cv[f"{var}_hat"]) / scale) ** 2).sum())
        naive_se += float((((cv[var] - naive) / scale) ** 2).sum())
    n = len(cv) * len(variables)
    model_mse, naive_mse = model_se / n, naive_se / n
    assert model_mse == pytest.approx(-est.score(test, n_windows=10, step=24), rel=1e-6)
    assert model_mse < naive_mse, (model_mse, naive_mse)
    print(f"ETTh1 slice: model MSE {model_mse:.4f} vs repeat-last {naive_mse:.4f}")


def test_max_time_stops_training(make_tiny, wide_df):
    start = time.perf_counter()
    est = make_tiny(max_epochs=1000, patience=1000, max_time=1.0).fit(wide_df)
    assert time.perf_counter() - start < 60
    assert 1 <= len(est.history_) < 1000  # the wall-clock limit, not max_epochs, stopped it
    assert est.history_[-1]["val_loss"] is not None
