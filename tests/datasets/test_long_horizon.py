"""Long-horizon protocol (DESIGN.md §5): borders, back-shift, scaler, windows; synthetic data."""

from __future__ import annotations

import gzip
import hashlib
import pathlib

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from titans_ts.datasets import (
    LONG_HORIZON_DATASETS,
    LongHorizonSplits,
    WindowDataset,
    count_windows,
    load_long_horizon,
    load_or_synthesize,
    make_synthetic,
    split_borders,
    splits_from_frame,
    to_long,
    to_wide,
)

L = 96

# --------------------------------------------------------------------------- borders


@pytest.mark.parametrize(
    ("protocol", "n_rows", "expected"),
    [
        ("ett_hour", 17420, {"train": (0, 8640), "val": (8544, 11520), "test": (11424, 14400)}),
        (
            "ett_minute",
            69680,
            {"train": (0, 34560), "val": (34464, 46080), "test": (45984, 57600)},
        ),
        # Weather: int(0.7 N) = 36887, int(0.2 N) = 10539, val = 5270
        ("ratio", 52696, {"train": (0, 36887), "val": (36791, 42157), "test": (42061, 52696)}),
    ],
)
def test_split_borders(protocol: str, n_rows: int, expected: dict) -> None:
    assert split_borders(n_rows, protocol, L) == expected


def test_split_borders_errors() -> None:
    with pytest.raises(ValueError, match="needs at least 14400 rows"):
        split_borders(14399, "ett_hour", L)
    with pytest.raises(ValueError, match="unknown protocol 'monthly'"):
        split_borders(1000, "monthly", L)
    with pytest.raises(ValueError, match="longer than the train slice"):
        split_borders(100, "ratio", 80)


def test_count_windows() -> None:
    assert count_windows(8640, 96, 96) == 8449
    assert count_windows(2976, 96, 720) == 2161
    assert count_windows(100, 60, 41) == 0


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def etth1(require_file) -> LongHorizonSplits:
    require_file("ETT-small/ETTh1.csv")
    return load_long_horizon("ETTh1", lookback=L, horizon=96)


def test_etth1_sizes_and_windows(etth1: LongHorizonSplits) -> None:
    assert etth1.columns == ("HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT")
    assert etth1.train.shape == (8640, 7)
    assert etth1.val.shape == (2880 + L, 7)
    assert etth1.test.shape == (2880 + L, 7)
    assert etth1.train.dtype == np.float32
    assert [etth1.n_windows(s) for s in ("train", "val", "test")] == [8449, 2785, 2785]
    assert [len(etth1.windows(s)) for s in ("train", "val", "test")] == [8449, 2785, 2785]
    assert etth1.n_windows("test", horizon=720) == 2161


def test_etth1_timestamps(etth1: LongHorizonSplits) -> None:
    start = pd.Timestamp("2016-07-01 00:00:00")
    hour = pd.Timedelta(hours=1)
    assert etth1.train_time[0] == start
    assert etth1.train_time[-1] == start + 8639 * hour
    assert etth1.val_time[L] == start + 8640 * hour  # first val target row
    assert etth1.test_time[-1] == start + 14399 * hour  # rows after 14400 are unused
    assert len(etth1.timestamps("val")) == len(etth1.val)


def test_back_shift_context_is_previous_split(etth1: LongHorizonSplits) -> None:
    np.testing.assert_array_equal(etth1.val[:L], etth1.train[-L:])
    np.testing.assert_array_equal(etth1.test[:L], etth1.val[-L:])
    x, y = etth1.windows("val")[0]
    np.testing.assert_array_equal(x.numpy(), etth1.train[-L:])
    np.testing.assert_array_equal(y.numpy(), etth1.val[L : 2 * L])


def test_scaler_fit_on_train_only(etth1: LongHorizonSplits, require_file) -> None:
    train = etth1.train.astype(np.float64)
    np.testing.assert_allclose(train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(train.std(axis=0), 1.0, atol=1e-5)
    # val/test are on the train scale, not re-standardised: OT drifts down over time
    assert np.abs(etth1.val[L:].mean(axis=0)).max() > 0.3
    assert np.abs(etth1.test[L:].std(axis=0) - 1.0).max() > 0.1
    raw = pd.read_csv(require_file("ETT-small/ETTh1.csv"))
    values = raw.iloc[:, 1:].to_numpy()
    np.testing.assert_allclose(etth1.mean, values[:8640].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(etth1.std, values[:8640].std(axis=0), rtol=1e-12)
    np.testing.assert_allclose(etth1.inverse_transform(etth1.test), values[11424:14400],
                               rtol=1e-5, atol=1e-4)


def test_ettm1_sizes(require_file) -> None:
    require_file("ETT-small/ETTm1.csv")
    s = load_long_horizon("ettm1", lookback=L, horizon=96)  # case-insensitive
    assert s.name == "ETTm1"
    assert (len(s.train), len(s.val), len(s.test)) == (34560, 11520 + L, 11520 + L)
    assert [s.n_windows(k) for k in ("train", "val", "test")] == [34369, 11425, 11425]
    assert s.train_time[1] - s.train_time[0] == pd.Timedelta(minutes=15)


def test_weather_sizes_and_columns(require_file) -> None:
    require_file("weather/weather.csv", "weather/weather.csv.gz")
    s = load_long_horizon("Weather", lookback=L, horizon=96)
    assert s.n_channels == 21 and s.columns[0] == "p (mbar)" and s.columns[-1] == "OT"
    assert "SWDR (W/m\ufffd)" in s.columns  # names kept as distributed (U+FFFD)
    assert (len(s.train), len(s.val), len(s.test)) == (36887, 5270 + L, 10539 + L)
    assert [s.n_windows(k) for k in ("train", "val", "test")] == [36696, 5175, 10444]
    assert [s.n_windows("test", h) for h in (192, 336, 720)] == [10348, 10204, 9820]


def test_explicit_path_without_env(
    require_file, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    file = require_file("ETT-small/ETTh2.csv")
    monkeypatch.delenv("TITANS_TS_DATA_DIR")
    monkeypatch.setenv("TITANS_TS_CACHE_DIR", str(tmp_path / "cache"))
    s = load_long_horizon("ETTh2", path=file.parent.parent, download=False)
    assert s.source == str(file) and s.name == "ETTh2" and len(s.train) == 8640
    with pytest.raises(FileNotFoundError, match="TITANS_TS_DATA_DIR"):
        load_long_horizon("ETTh2", download=False)


def test_canonical_checksums_match_shared_files(data_root: pathlib.Path) -> None:
    for spec in LONG_HORIZON_DATASETS.values():
        plain = data_root / spec.relative
        if plain.is_file():
            digest = hashlib.sha256(plain.read_bytes()).hexdigest()
        elif spec.alternatives and (data_root / spec.alternatives[0]).is_file():
            digest = hashlib.sha256(gzip.decompress(
                (data_root / spec.alternatives[0]).read_bytes())).hexdigest()
        else:
            continue
        assert digest == spec.sha256, spec.name


# --------------------------------------------------------------------------- windows


def test_window_dataset_items_batches_and_views() -> None:
    array = np.arange(60, dtype=np.float32).reshape(20, 3)
    ds = WindowDataset(array, lookback=5, horizon=3)
    assert len(ds) == 13 and ds.n_channels == 3
    x, y = ds[4]
    assert x.shape == (5, 3) and y.shape == (3, 3) and x.dtype == torch.float32
    np.testing.assert_array_equal(x.numpy(), array[4:9])
    np.testing.assert_array_equal(y.numpy(), array[9:12])
    np.testing.assert_array_equal(ds[-1][1].numpy(), array[17:20])
    assert ds.data.data_ptr() == array.ctypes.data  # float32 input is not copied
    xb, yb = ds.batch(2, 7)
    assert xb.shape == (5, 5, 3) and yb.shape == (5, 3, 3)
    for k in range(5):
        assert torch.equal(xb[k], ds[2 + k][0]) and torch.equal(yb[k], ds[2 + k][1])
    assert ds.batch()[0].shape == (13, 5, 3)
    with pytest.raises(IndexError, match="out of range for 13"):
        ds[13]


def test_window_dataset_loader_keeps_every_window() -> None:
    ds = WindowDataset(np.random.default_rng(0).normal(size=(50, 2)), 8, 4)
    seen = sum(len(x) for x, _ in DataLoader(ds, batch_size=7, shuffle=False))
    assert seen == len(ds) == 39


def test_window_dataset_errors() -> None:
    with pytest.raises(ValueError, match=r"shape \(T, C\)"):
        WindowDataset(np.zeros(10), 2, 2)
    with pytest.raises(ValueError, match="no window"):
        WindowDataset(np.zeros((10, 1)), 8, 3)
    with pytest.raises(ValueError, match="lookback must be >= 1"):
        WindowDataset(np.zeros((10, 1)), 0, 3)


# --------------------------------------------------------------------------- custom files


def _frame(n: int = 400, channels: int = 3) -> pd.DataFrame:
    return make_synthetic(n, channels, seed=1)


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_custom_csv_ratio_protocol(tmp_path: pathlib.Path, suffix: str) -> None:
    file = tmp_path / f"mine{suffix}"
    _frame().to_csv(file, index=False)
    s = load_long_horizon(file, lookback=24, horizon=12)
    assert s.name == "mine" and s.protocol == "ratio" and s.columns == ("x0", "x1", "OT")
    # int(0.7*400)=280, int(0.2*400)=80, val=40
    assert (len(s.train), len(s.val), len(s.test)) == (280, 40 + 24, 80 + 24)
    assert s.n_windows("val") == 40 - 12 + 1


def test_dataframe_input_and_date_column() -> None:
    frame = _frame().rename(columns={"date": "when"})[["x0", "when", "OT"]]
    s = load_long_horizon(frame, lookback=24, horizon=12, date_column="when")
    assert s.columns == ("x0", "OT") and s.train_time[0] == pd.Timestamp("2020-01-01")


def test_unknown_name_lists_known() -> None:
    with pytest.raises(ValueError) as info:
        load_long_horizon("ETTh3")
    assert all(n in str(info.value) for n in ("ETTh1", "ETTh2", "ETTm1", "ETTm2", "Weather"))


def test_missing_custom_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such data file"):
        load_long_horizon(tmp_path / "nope.csv")


def test_bad_tables_raise_clear_errors() -> None:
    frame = _frame()
    with pytest.raises(ValueError, match=r"columns \['label'\] are not numeric"):
        splits_from_frame(frame.assign(label="a"))
    with_nan = frame.copy()
    with_nan.loc[5, "x1"] = np.nan
    with pytest.raises(ValueError, match=r"columns \['x1'\] contain NaN"):
        splits_from_frame(with_nan)
    with pytest.raises(ValueError, match="increasing time order"):
        splits_from_frame(frame.iloc[::-1])
    with pytest.raises(ValueError, match="split 'val' has 136 rows"):
        splits_from_frame(frame, lookback=96, horizon=48)
    s = splits_from_frame(frame, lookback=24, horizon=12)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        s.array("dev")
    with pytest.raises(ValueError, match="channel axis of size 3"):
        s.inverse_transform(np.zeros((4, 2)))


def test_repeated_timestamps_are_kept_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    frame = _frame()
    frame.loc[10, "date"] = frame.loc[9, "date"]
    with caplog.at_level("WARNING", logger="titans_ts.datasets.long_horizon"):
        s = splits_from_frame(frame, lookback=24, horizon=12)
    assert len(s.train) == 280 and "1 repeated timestamp" in caplog.text


def test_constant_column_gets_unit_std() -> None:
    s = splits_from_frame(_frame().assign(x1=5.0), lookback=24, horizon=12)
    assert s.std[1] == 1.0 and np.all(s.train[:, 1] == 0.0)


# --------------------------------------------------------------------------- synthetic


def test_synthetic_is_seeded_wide_and_long() -> None:
    a = make_synthetic(300, 4, seed=3)
    b = make_synthetic(300, 4, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(make_synthetic(300, 4, seed=4))
    assert list(a.columns) == ["date", "x0", "x1", "x2", "OT"]
    assert pd.api.types.is_datetime64_any_dtype(a["date"]) and a["date"].is_monotonic_increasing
    long = make_synthetic(300, 4, seed=3, layout="long")
    assert list(long.columns) == ["unique_id", "ds", "y"] and len(long) == 1200
    assert list(long["unique_id"].unique()) == ["x0", "x1", "x2", "OT"]
    pd.testing.assert_frame_equal(to_wide(long), a)
    pd.testing.assert_frame_equal(to_long(a), long)


def test_synthetic_has_a_regime_change() -> None:
    frame = make_synthetic(4000, 3, noise_scale=0.0, regime_change=0.5, seed=0)
    values = frame.iloc[:, 1:].to_numpy()
    # with no noise the series is exactly periodic (period 168) inside each regime, up to
    # the linear trend; compare the one-week difference before and after the change
    weekly = values[168:] - values[:-168]
    before, after = weekly[: 2000 - 168], weekly[2000:]
    assert np.ptp(before, axis=0).max() < 1e-6 and np.ptp(after, axis=0).max() < 1e-6
    across = weekly[2000 - 168 : 2000]
    assert np.abs(across - before[:1]).max() > 0.1


def test_synthetic_errors() -> None:
    with pytest.raises(ValueError, match="regime_change must be a fraction"):
        make_synthetic(100, regime_change=1.5)
    with pytest.raises(ValueError, match="layout must be 'wide' or 'long'"):
        make_synthetic(100, layout="tall")


def test_load_or_synthesize_falls_back_and_says_so(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TITANS_TS_DATA_DIR", raising=False)
    monkeypatch.setenv("TITANS_TS_CACHE_DIR", str(tmp_path / "cache"))
    s = load_or_synthesize("ETTh1", lookback=96, horizon=720)
    assert s.name == "synthetic" and "ETTh1 was not found" in s.source
    assert s.n_channels == 7 and min(s.n_windows(k) for k in ("train", "val", "test")) > 500
    with pytest.raises(ValueError, match="unknown dataset"):
        load_or_synthesize("nonsense")
