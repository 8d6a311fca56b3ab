"""Bad input gets a clear error naming the series/column and the fix (issue item 3).

NaN/inf targets are an error (not masked): documented in titans_ts.estimators._frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from titans_ts.estimators import TitansForecaster
from titans_ts.estimators._frames import read_frame


def _long(n=60, ids=("a", "b"), freq="h"):
    rows = []
    for k, name in enumerate(ids):
        ds = pd.date_range("2021-01-01", periods=n, freq=freq)
        rows.append(pd.DataFrame({"unique_id": name, "ds": ds, "y": np.sin(np.arange(n)) + k}))
    return pd.concat(rows, ignore_index=True)


def _fit(df, **kw):
    return TitansForecaster(horizon=4, lookback=8, accelerator="cpu", **kw).fit(df)


def test_missing_long_column_names_it_and_the_fix():
    df = _long().rename(columns={"y": "value"})
    with pytest.raises(ValueError, match=r"missing column\(s\) \['y'\].*target_col="):
        _fit(df)


def test_configurable_column_names_are_used():
    df = _long().rename(columns={"unique_id": "sid", "ds": "when", "y": "value"})
    table = read_frame(df, id_col="sid", time_col="when", target_col="value", freq=None)
    assert table.names == ["a", "b"] and table.meta.freq == "h"


def test_non_numeric_long_target():
    df = _long()
    df["y"] = df["y"].astype(str)
    with pytest.raises(TypeError, match=r"target column 'y'.*non-numeric.*pd.to_numeric"):
        _fit(df)


def test_non_numeric_wide_column_is_named():
    df = pd.DataFrame({"ds": pd.date_range("2021", periods=40, freq="D"),
                       "a": np.arange(40.0), "label": ["x"] * 40})
    with pytest.raises(TypeError, match=r"'label'.*must be numeric.*drop those columns"):
        _fit(df)


def test_duplicate_timestamps_name_the_series():
    df = _long()
    df = pd.concat([df, df[df.unique_id == "b"].iloc[[5]]], ignore_index=True)
    with pytest.raises(ValueError, match=r"series 'b' has duplicate timestamps.*2021-01-01 05"):
        _fit(df)


def test_duplicate_timestamps_in_wide_frame():
    df = pd.DataFrame({"ds": pd.date_range("2021", periods=40, freq="D"), "a": np.arange(40.0)})
    df = pd.concat([df, df.iloc[[3]]], ignore_index=True)
    with pytest.raises(ValueError, match="duplicate timestamps"):
        _fit(df)


def test_unsorted_rows_are_sorted_not_rejected():
    df = _long()
    shuffled = df.sample(frac=1.0, random_state=0)
    a = read_frame(df, id_col="unique_id", time_col=None, target_col="y", freq=None)
    b = read_frame(shuffled, id_col="unique_id", time_col=None, target_col="y", freq=None)
    assert sorted(a.names) == sorted(b.names)
    for name in a.names:
        i, j = a.names.index(name), b.names.index(name)
        np.testing.assert_array_equal(a.values[i], b.values[j])
        assert (a.times[i] == b.times[j]).all()


def test_irregular_frequency_names_series_and_gap():
    df = _long()
    df = df.drop(index=df.index[(df.unique_id == "a") & (df.index % 60 == 10)])
    with pytest.raises(ValueError, match=r"series 'a' has irregular timestamps.*resample"):
        _fit(df)


def test_timestamps_must_follow_explicit_freq():
    with pytest.raises(ValueError, match=r"series 'a' does not follow freq='D'"):
        _fit(_long(), freq="D")


def test_mixed_frequencies_between_series():
    df = pd.concat([_long(ids=("a",)), _long(ids=("b",), freq="D")], ignore_index=True)
    with pytest.raises(ValueError, match=r"series 'b' has frequency 'D' but series 'a'"):
        _fit(df)


def test_too_short_series_is_named():
    df = pd.concat([_long(ids=("long",)), _long(n=10, ids=("short",))], ignore_index=True)
    with pytest.raises(ValueError, match=r"series 'short' has 10 time steps, fewer than lookback"):
        _fit(df)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_targets_are_errors(bad):
    df = _long()
    df.loc[(df.unique_id == "b") & (df.index % 60 == 7), "y"] = bad
    with pytest.raises(ValueError, match=r"series 'b' has 1 missing or infinite.*interpolate"):
        _fit(df)


def test_polars_null_target_is_an_error(helpers):
    pl = pytest.importorskip("polars")
    df = helpers.to_polars(_long()).with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("y")).alias("y")
    )
    with pytest.raises(ValueError, match="series 'a' has 1 missing or infinite"):
        _fit(df)


def test_not_a_dataframe():
    with pytest.raises(TypeError, match="pandas or polars DataFrame"):
        _fit(np.zeros((10, 2)))


def test_unparseable_time_column():
    df = pd.DataFrame({"ds": ["x"] * 30, "a": np.arange(30.0)})
    with pytest.raises(TypeError, match=r"time column 'ds'.*could not be parsed"):
        _fit(df)


def test_mismatched_wide_columns_at_predict(fitted_wide, wide_df):
    df = wide_df.rename(columns={"OT": "other"})
    with pytest.raises(ValueError, match=r"missing \['OT'\], unexpected \['other'\]"):
        fitted_wide.predict(df=df)


def test_long_frame_for_a_wide_model(fitted_wide, long_df):
    with pytest.raises(ValueError, match="fit on a wide-format frame.*is long-format"):
        fitted_wide.predict(df=long_df)


def test_unknown_series_at_predict(fitted_long, long_df):
    df = long_df.assign(unique_id=long_df["unique_id"].replace({"x0": "new"}))
    with pytest.raises(ValueError, match=r"series \['new'\] were not seen in fit"):
        fitted_long.predict(df=df)


def test_wrong_frequency_at_predict(fitted_wide, wide_df):
    df = wide_df.assign(date=pd.date_range("2020-01-01", periods=len(wide_df), freq="D"))
    with pytest.raises(ValueError, match="does not follow freq='h'"):
        fitted_wide.predict(df=df)


def test_short_history_at_predict(fitted_wide, wide_df):
    with pytest.raises(ValueError, match=r"series 'x0' has 5 time steps.*lookback=24"):
        fitted_wide.predict(df=wide_df.iloc[:5])


def test_bad_h(fitted_wide):
    with pytest.raises(ValueError, match="h must be a positive int"):
        fitted_wide.predict(h=0)
