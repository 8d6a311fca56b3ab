"""Reading and writing forecasting frames (pandas or polars, long or wide layout).

Long layout: one row per (series, time step), columns ``id_col, time_col, target_col``
(other columns are ignored). Wide layout: a time column plus one numeric column per
variable; each variable is a series. Both become a :class:`SeriesTable`: ``K`` univariate
series, each sorted by time, checked for duplicates, missing values and a regular
frequency. Polars frames are read column by column through NumPy (no pyarrow needed).

Missing values: a NaN, null or infinite target is an **error** (naming the series and the
first bad timestamp); nothing is masked or filled silently.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = ["FrameMeta", "SeriesTable", "build_frame", "future_times", "read_frame"]

Library = Literal["pandas", "polars"]
Layout = Literal["long", "wide"]


@dataclass
class FrameMeta:
    """How to write frames back in the input's library, layout and dtypes (JSON-able).

    Attributes:
        library: ``"pandas"`` or ``"polars"``.
        layout: ``"long"`` or ``"wide"``.
        time_col: name of the time column.
        id_col, target_col: long layout column names (``None`` for wide).
        time_kind: ``"datetime"`` or ``"int"``.
        time_unit: datetime resolution of the input (``"ns"``, ``"us"``, ...).
        tz: time zone name or ``None``.
        time_dtype: polars dtype name of the time column (``"Datetime"``, ``"Date"``,
            ``"Int64"``...), or the pandas dtype string.
        id_dtype: dtype name of the id column (long layout).
        freq: pandas offset alias, or the integer step of integer time stamps.
    """

    library: Library
    layout: Layout
    time_col: str
    id_col: str | None
    target_col: str | None
    time_kind: Literal["datetime", "int"]
    time_unit: str | None
    tz: str | None
    time_dtype: str
    id_dtype: str | None
    freq: str | int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class SeriesTable:
    """``K`` univariate series read from one frame.

    Attributes:
        meta: :class:`FrameMeta`.
        names: series names (ids in long layout, column names in wide layout).
        times: per series, sorted time stamps (``pd.DatetimeIndex`` or int64 array).
        values: per series, float64 ``(T_k,)`` targets (finite).
    """

    meta: FrameMeta
    names: list[Any]
    times: list[Any] = field(repr=False)
    values: list[np.ndarray] = field(repr=False)

    @property
    def lengths(self) -> list[int]:
        return [len(v) for v in self.values]


# --------------------------------------------------------------------------- helpers


def _library(df: Any) -> Library:
    if isinstance(df, pd.DataFrame):
        return "pandas"
    module = type(df).__module__
    if module.startswith("polars"):
        if type(df).__name__ == "LazyFrame":
            raise TypeError(
                "got a polars LazyFrame; call .collect() on it and pass the DataFrame"
            )
        if type(df).__name__ == "DataFrame":
            return "polars"
    raise TypeError(
        f"expected a pandas or polars DataFrame, got {type(df).__module__}."
        f"{type(df).__name__}; wrap your data in pd.DataFrame(...) first"
    )


def _dtype(df: Any, col: str) -> Any:
    return df[col].dtype if isinstance(df, pd.DataFrame) else df.schema[col]


def _is_numeric(df: Any, col: str) -> bool:
    dtype = _dtype(df, col)
    if isinstance(df, pd.DataFrame):
        return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    return bool(dtype.is_numeric())


def _is_datetime(df: Any, col: str) -> bool:
    dtype = _dtype(df, col)
    if isinstance(df, pd.DataFrame):
        return pd.api.types.is_datetime64_any_dtype(dtype)
    return dtype.base_type().__name__ in ("Datetime", "Date")


def _is_integer(df: Any, col: str) -> bool:
    dtype = _dtype(df, col)
    if isinstance(df, pd.DataFrame):
        return pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    return bool(dtype.is_integer())


def _values(df: Any, col: str, series: str) -> np.ndarray:
    if not _is_numeric(df, col):
        column = df[col]
        sample = next(
            (v for v in (column.tolist() if hasattr(column, "tolist") else list(column))
             if v is not None),
            None,
        )
        raise TypeError(
            f"target column {col!r} ({series}) has non-numeric dtype {_dtype(df, col)} "
            f"(e.g. value {sample!r}); convert it to numbers (pd.to_numeric / "
            ".cast(pl.Float64)) or drop the column"
        )
    return np.asarray(df[col].to_numpy(), dtype=np.float64)


def _time_column(df: Any, col: str) -> tuple[pd.DatetimeIndex | np.ndarray, FrameMeta]:
    """Times of every row, plus the time part of the metadata (other fields filled later)."""
    lib = _library(df)
    dtype = _dtype(df, col)
    if _is_datetime(df, col):
        if lib == "pandas":
            idx = pd.DatetimeIndex(df[col])
            time_dtype = str(dtype)
        else:
            base = dtype.base_type().__name__
            tz = getattr(dtype, "time_zone", None)
            arr = df[col].to_numpy() if tz is None else df[col].dt.convert_time_zone(
                "UTC"
            ).dt.replace_time_zone(None).to_numpy()
            idx = pd.DatetimeIndex(arr)
            if tz is not None:
                idx = idx.tz_localize("UTC").tz_convert(tz)
            time_dtype = base
        kind: Literal["datetime", "int"] = "datetime"
        tz_name = None if idx.tz is None else str(idx.tz)
        unit = getattr(dtype, "time_unit", None) or getattr(idx, "unit", "ns")
    elif _is_integer(df, col):
        idx = np.asarray(df[col].to_numpy(), dtype=np.int64)
        kind, tz_name, unit = "int", None, None
        time_dtype = str(dtype) if lib == "pandas" else dtype.base_type().__name__
    else:
        raw = df[col].to_numpy()
        try:
            with warnings.catch_warnings():  # "could not infer format": we report failures
                warnings.simplefilter("ignore", UserWarning)
                idx = pd.DatetimeIndex(pd.to_datetime(raw))
        except (ValueError, TypeError) as err:
            raise TypeError(
                f"time column {col!r} has dtype {dtype} and could not be parsed as dates "
                f"({err}); convert it with pd.to_datetime (or .str.to_datetime in polars), "
                "or use integer time steps"
            ) from err
        kind, tz_name, unit = "datetime", None if idx.tz is None else str(idx.tz), "ns"
        time_dtype = "datetime64[ns]" if lib == "pandas" else "Datetime"
    if kind == "datetime" and idx.isna().any():
        row = int(np.flatnonzero(idx.isna())[0])
        raise ValueError(
            f"time column {col!r} has a missing timestamp at row {row}; drop or fill the "
            "rows with missing times"
        )
    meta = FrameMeta(
        library=lib, layout="long", time_col=col, id_col=None, target_col=None,
        time_kind=kind, time_unit=unit, tz=tz_name, time_dtype=time_dtype, id_dtype=None,
        freq="",
    )
    return idx, meta


def _as_int(times: pd.DatetimeIndex | np.ndarray) -> np.ndarray:
    return times.asi8 if isinstance(times, pd.DatetimeIndex) else np.asarray(times, np.int64)


def _fmt(times: pd.DatetimeIndex | np.ndarray, i: int) -> str:
    value = times[i]
    return str(value)


def _check_frequency(
    times: pd.DatetimeIndex | np.ndarray, freq: str | int | None, series: str
) -> str | int:
    """The series' frequency (checked against ``freq`` when given); raises when irregular."""
    n = len(times)
    if isinstance(times, pd.DatetimeIndex):
        if freq is not None:
            if isinstance(freq, int):
                raise ValueError(
                    f"freq={freq!r} is an integer step but {series} has datetime timestamps; "
                    "pass a pandas frequency string such as 'h' or 'D'"
                )
            try:
                expected = pd.date_range(start=times[0], periods=n, freq=freq)
            except ValueError as err:
                raise ValueError(f"freq={freq!r} is not a pandas frequency: {err}") from err
            bad = np.flatnonzero(expected.asi8 != times.asi8)
            if bad.size:
                i = int(bad[0])
                raise ValueError(
                    f"{series} does not follow freq={freq!r}: timestamp {_fmt(times, i)} "
                    f"(row {i}) should be {expected[i]}; fill the missing timestamps or "
                    "resample the series to a regular grid"
                )
            return freq
        inferred = pd.infer_freq(times) if n >= 3 else None
        if inferred is None:
            steps = np.diff(times.asi8)
            values, counts = np.unique(steps, return_counts=True)
            usual = values[np.argmax(counts)] if len(values) else 0
            odd = np.flatnonzero(steps != usual)
            where = (
                f"the step before {_fmt(times, int(odd[0]) + 1)} is "
                f"{pd.Timedelta(int(steps[odd[0]]))} while the usual step is "
                f"{pd.Timedelta(int(usual))}"
                if odd.size
                else "pandas could not infer a frequency"
            )
            raise ValueError(
                f"{series} has irregular timestamps ({where}); resample it to a regular "
                "frequency (e.g. df.resample('h')), fill the missing timestamps, or pass "
                "freq= explicitly"
            )
        return inferred
    steps = np.diff(np.asarray(times, dtype=np.int64))
    if freq is not None and not isinstance(freq, int):
        raise ValueError(
            f"freq={freq!r} is a pandas frequency but {series} has integer time steps; "
            "pass an integer step (e.g. freq=1)"
        )
    step = int(freq) if freq is not None else (int(steps[0]) if steps.size else 1)
    odd = np.flatnonzero(steps != step)
    if odd.size:
        i = int(odd[0]) + 1
        raise ValueError(
            f"{series} has irregular integer time steps (from {times[i - 1]} to {times[i]} "
            f"is {int(steps[odd[0]])}, expected {step}); fill the missing steps or pass the "
            "right freq="
        )
    return step


def _check_finite(values: np.ndarray, times: Any, series: str, col: str) -> None:
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{series} has {bad.size} missing or infinite value(s) in column {col!r} "
            f"(first at {_fmt(times, i)}: {values[i]}); NaN/inf targets are not masked: "
            "fill them (e.g. df.interpolate() / .fill_null()) or drop those rows"
        )


def _sort_check(
    times: pd.DatetimeIndex | np.ndarray, series: str
) -> np.ndarray:
    """Stable order that sorts ``times``; raises on duplicate time stamps."""
    ints = _as_int(times)
    order = np.argsort(ints, kind="stable")
    sorted_ints = ints[order]
    dup = np.flatnonzero(np.diff(sorted_ints) == 0)
    if dup.size:
        i = int(order[dup[0]])
        n = int(np.sum(sorted_ints == sorted_ints[dup[0]]))
        raise ValueError(
            f"{series} has duplicate timestamps ({_fmt(times, i)} appears {n} times); "
            "aggregate them (e.g. df.groupby([id, time]).mean()) or drop duplicates"
        )
    return order


# --------------------------------------------------------------------------- reading


def detect_time_col(df: Any, time_col: str | None) -> str:
    """``time_col`` if given, else ``"ds"``, ``"date"``, or the only datetime column."""
    columns = list(df.columns)
    if time_col is not None:
        if time_col not in columns:
            raise ValueError(
                f"time column {time_col!r} not found; the frame has columns {columns}. "
                "Pass time_col= with the name of your time column"
            )
        return time_col
    for name in ("ds", "date"):
        if name in columns:
            return name
    dates = [c for c in columns if _is_datetime(df, c)]
    if len(dates) == 1:
        return dates[0]
    raise ValueError(
        f"could not tell which column holds the time stamps among {columns} "
        f"({len(dates)} datetime columns); pass time_col='...'"
    )


def read_frame(
    df: Any,
    *,
    id_col: str,
    time_col: str | None,
    target_col: str,
    freq: str | int | None,
    layout: Layout | None = None,
) -> SeriesTable:
    """Parse ``df`` into a :class:`SeriesTable` (see the module docstring).

    Args:
        df: a pandas or polars DataFrame.
        id_col, time_col, target_col: long-layout column names (``time_col=None``:
            detected, see :func:`detect_time_col`).
        freq: expected frequency, or ``None`` to infer it.
        layout: force ``"long"``/``"wide"``; default: long iff ``id_col`` is a column.

    Raises:
        TypeError: not a DataFrame, non-numeric targets, unparseable time column.
        ValueError: missing columns, duplicate or irregular timestamps, NaN/inf targets.
    """
    _library(df)
    columns = list(df.columns)
    if len(columns) != len(set(columns)):
        raise ValueError(f"the frame has repeated column names: {columns}")
    if layout is None:
        layout = "long" if id_col in columns else "wide"
    if layout == "long":
        missing = [c for c in (id_col, target_col) if c not in columns]
        if time_col is not None and time_col not in columns:
            missing.append(time_col)
        if time_col is None and "ds" not in columns:
            missing.append("ds")
        if missing:
            raise ValueError(
                f"long-format frame is missing column(s) {missing}; it has {columns}. "
                "Rename them or pass id_col=, time_col=, target_col= to match your frame"
            )
        tcol = time_col or "ds"
        return _read_long(df, id_col=id_col, time_col=tcol, target_col=target_col, freq=freq)
    tcol = detect_time_col(df, time_col)
    return _read_wide(df, time_col=tcol, freq=freq)


def _read_long(
    df: Any, *, id_col: str, time_col: str, target_col: str, freq: str | int | None
) -> SeriesTable:
    times, meta = _time_column(df, time_col)
    meta.layout, meta.id_col, meta.target_col = "long", id_col, target_col
    ids = np.asarray(df[id_col].to_numpy(), dtype=object)
    meta.id_dtype = (
        str(_dtype(df, id_col)) if meta.library == "pandas"
        else _dtype(df, id_col).base_type().__name__
    )
    if len(ids) == 0:
        raise ValueError("the frame has no rows")
    codes, uniques = pd.factorize(ids, use_na_sentinel=True)
    if (codes < 0).any():
        row = int(np.flatnonzero(codes < 0)[0])
        raise ValueError(
            f"id column {id_col!r} has a missing value at row {row}; drop those rows or "
            "give them an id"
        )
    values = _values(df, target_col, "the target of the long frame")
    ints = _as_int(times)
    order = np.lexsort((ints, codes))
    counts = np.bincount(codes, minlength=len(uniques))
    bounds = np.concatenate([[0], np.cumsum(counts)])
    names = [u.item() if hasattr(u, "item") else u for u in uniques]
    out_times, out_values = [], []
    found_freq: str | int | None = None
    first_name = None
    for k, name in enumerate(names):
        rows = order[bounds[k] : bounds[k + 1]]
        t = times[rows]
        label = f"series {name!r}"
        dup = np.flatnonzero(np.diff(_as_int(t)) == 0)
        if dup.size:
            n = int(np.sum(_as_int(t) == _as_int(t)[dup[0]]))
            raise ValueError(
                f"{label} has duplicate timestamps ({_fmt(t, int(dup[0]))} appears {n} "
                "times); aggregate them (e.g. df.groupby([id, time]).mean()) or drop "
                "duplicates"
            )
        v = values[rows]
        _check_finite(v, t, label, target_col)
        f = _check_frequency(t, freq, label)
        if found_freq is None:
            found_freq, first_name = f, name
        elif f != found_freq:
            raise ValueError(
                f"{label} has frequency {f!r} but series {first_name!r} has "
                f"{found_freq!r}; all series of one fit must share a frequency (resample "
                "them, or fit one model per frequency)"
            )
        out_times.append(t)
        out_values.append(v)
    meta.freq = found_freq if found_freq is not None else ""
    return SeriesTable(meta, names, out_times, out_values)


def _read_wide(df: Any, *, time_col: str, freq: str | int | None) -> SeriesTable:
    variables = [c for c in df.columns if c != time_col]
    if not variables:
        raise ValueError(
            f"wide-format frame has only the time column {time_col!r}; add one column per "
            "variable, or use the long format (unique_id, ds, y)"
        )
    bad = [c for c in variables if not _is_numeric(df, c)]
    if bad:
        dtypes = {c: str(_dtype(df, c)) for c in bad}
        raise TypeError(
            f"column(s) {dtypes} must be numeric: in a wide-format frame every column except "
            f"the time column {time_col!r} is a target series; drop those columns or convert "
            "them to numbers (if this is a long-format frame, pass id_col=)"
        )
    if len(df) == 0:
        raise ValueError("the frame has no rows")
    times, meta = _time_column(df, time_col)
    meta.layout = "wide"
    order = _sort_check(times, f"the wide frame (column {time_col!r})")
    times = times[order]
    meta.freq = _check_frequency(times, freq, "the wide frame")
    values = []
    for c in variables:
        v = _values(df, c, f"series {c!r}")[order]
        _check_finite(v, times, f"series {c!r}", c)
        values.append(v)
    return SeriesTable(meta, list(variables), [times] * len(variables), values)


# --------------------------------------------------------------------------- writing


def future_times(last: Any, h: int, freq: str | int) -> pd.DatetimeIndex | np.ndarray:
    """The ``h`` time stamps after ``last`` at frequency ``freq``."""
    if isinstance(freq, (int, np.integer)):
        return int(last) + int(freq) * np.arange(1, h + 1, dtype=np.int64)
    return pd.date_range(start=last, periods=h + 1, freq=freq)[1:]


def _time_array(times: Sequence[Any], meta: FrameMeta) -> Any:
    """Concatenate per-series time stamps into one column (pandas Index or int array)."""
    if meta.time_kind == "int":
        return np.concatenate([np.asarray(t, dtype=np.int64) for t in times])
    idx = pd.DatetimeIndex(np.concatenate([pd.DatetimeIndex(t).asi8 for t in times]))
    idx = idx.tz_localize("UTC").tz_convert(meta.tz) if meta.tz else idx
    return idx


def _pandas_time(values: Any, meta: FrameMeta) -> Any:
    if meta.time_kind == "int":
        return pd.Series(values).astype(meta.time_dtype).to_numpy()
    idx = pd.DatetimeIndex(values)
    if meta.time_unit in ("s", "ms", "us", "ns"):
        idx = idx.as_unit(meta.time_unit)
    return idx


def _polars_series(
    name: str, values: Any, dtype_name: str | None, meta: FrameMeta, is_time: bool = False
) -> Any:
    import polars as pl

    if is_time and meta.time_kind == "datetime":
        idx = pd.DatetimeIndex(values)
        naive = idx.tz_convert("UTC").tz_localize(None) if idx.tz is not None else idx
        s = pl.Series(name, naive.to_numpy())
        if meta.time_dtype == "Date":
            return s.cast(pl.Date)
        s = s.cast(pl.Datetime(meta.time_unit or "us"))
        if meta.tz:
            s = s.dt.replace_time_zone("UTC").dt.convert_time_zone(meta.tz)
        return s
    s = pl.Series(name, list(values) if dtype_name is not None else values)
    if dtype_name is not None:
        dtype = getattr(pl, dtype_name, None)
        if dtype is not None:
            try:
                s = s.cast(dtype)
            except Exception:  # keep the inferred dtype if the cast is impossible
                pass
    return s


def build_frame(
    columns: dict[str, Any], meta: FrameMeta, extra_time_cols: Sequence[str] = ()
) -> Any:
    """A frame in ``meta.library`` from ``{name: values}``.

    The time column ``meta.time_col`` and ``extra_time_cols`` get the input's time dtype;
    the id column (long layout) is restored to the input's dtype; other columns are float64.
    """
    time_cols = {meta.time_col, *extra_time_cols}
    if meta.library == "pandas":
        data: dict[str, Any] = {}
        for name, values in columns.items():
            if name in time_cols:
                data[name] = _pandas_time(values, meta)
            elif meta.layout == "long" and name == meta.id_col:
                series = pd.Series(np.asarray(values, dtype=object))
                try:
                    series = series.astype(meta.id_dtype or "object")
                except (TypeError, ValueError):
                    pass
                data[name] = series.to_numpy() if meta.id_dtype != "category" else series
            else:
                data[name] = np.asarray(values, dtype=np.float64)
        frame = pd.DataFrame(data)
        if meta.layout == "long" and meta.id_col in frame and meta.id_dtype == "category":
            frame[meta.id_col] = frame[meta.id_col].astype("category")
        return frame
    import polars as pl

    series = []
    for name, values in columns.items():
        if name in time_cols:
            if meta.time_kind == "int":
                s = pl.Series(name, np.asarray(values, dtype=np.int64))
                dtype = getattr(pl, meta.time_dtype, None)
                series.append(s.cast(dtype) if dtype is not None else s)
            else:
                series.append(_polars_series(name, values, None, meta, is_time=True))
        elif meta.layout == "long" and name == meta.id_col:
            series.append(_polars_series(name, values, meta.id_dtype, meta))
        else:
            series.append(pl.Series(name, np.asarray(values, dtype=np.float64)))
    return pl.DataFrame(series)
