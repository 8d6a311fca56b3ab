"""Built-in multivariate series generator, the no-data fallback of DESIGN.md §6.

Each channel is ``level + trend·t + Σ seasonal sinusoids + AR(1) noise``; at the regime change
the level jumps, the trend slope and the seasonal amplitudes change, so a model has to adapt
(the situation test-time memorisation is meant for). Everything is drawn from one seeded
``numpy.random.Generator``: the same arguments give the same frame on every machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["make_synthetic", "to_long", "to_wide"]


def make_synthetic(
    n_steps: int = 4000,
    n_channels: int = 7,
    *,
    freq: str = "h",
    start: str = "2020-01-01",
    periods: Sequence[float] = (24.0, 168.0),
    trend_scale: float = 1.0,
    noise_scale: float = 0.3,
    noise_ar: float = 0.7,
    regime_change: float | None = 0.6,
    seed: int = 0,
    layout: Literal["wide", "long"] = "wide",
) -> pd.DataFrame:
    """Generate a seasonal + trend + noise multivariate series with a regime change.

    Args:
        n_steps: number of time steps ``T`` (rows in wide layout).
        n_channels: number of variables ``C``; columns are named ``x0 .. x{C-1}``, the last
            one is also called ``OT`` to mirror the ETT target.
        freq: pandas frequency of the timestamps (``"h"`` hourly by default).
        start: first timestamp.
        periods: seasonal periods in steps (24 and 168 = daily and weekly at hourly freq).
        trend_scale: total drift over the series, in units of the seasonal amplitude.
        noise_scale: standard deviation of the AR(1) noise innovations' stationary law.
        noise_ar: AR(1) coefficient of the noise, in ``[0, 1)``.
        regime_change: fraction of the series at which the regime changes, in ``(0, 1)``, or
            ``None`` for no change.
        seed: seed of the random generator.
        layout: ``"wide"`` (``date`` + one column per channel) or ``"long"``
            (``unique_id, ds, y``, sorted by ``unique_id`` then ``ds``).

    Returns:
        A DataFrame. Wide: ``T`` rows, columns ``date`` (datetime64) then ``C`` float64
        columns. Long: ``T·C`` rows.
    """
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 2:
        raise ValueError(f"n_steps must be an int >= 2, got {n_steps!r}")
    if (
        isinstance(n_channels, bool)
        or not isinstance(n_channels, (int, np.integer))
        or n_channels < 1
    ):
        raise ValueError(f"n_channels must be an int >= 1, got {n_channels!r}")
    if not 0.0 <= noise_ar < 1.0:
        raise ValueError(f"noise_ar must be in [0, 1) for a stationary noise, got {noise_ar}")
    if noise_scale < 0:
        raise ValueError(f"noise_scale must be >= 0, got {noise_scale}")
    if regime_change is not None and not 0.0 < regime_change < 1.0:
        raise ValueError(
            f"regime_change must be a fraction in (0, 1) or None, got {regime_change}"
        )
    if layout not in ("wide", "long"):
        raise ValueError(f"layout must be 'wide' or 'long', got {layout!r}")
    periods_arr = np.asarray(periods, dtype=np.float64)
    if periods_arr.ndim != 1 or (periods_arr <= 0).any():
        raise ValueError(f"periods must be a sequence of positive numbers, got {periods!r}")

    rng = np.random.default_rng(seed)
    t = np.arange(n_steps, dtype=np.float64)[:, None]  # (T, 1)
    n_seasons = len(periods_arr)

    def regime() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        level = rng.normal(0.0, 1.0, size=n_channels)
        slope = rng.normal(0.0, trend_scale, size=n_channels) / n_steps
        amplitude = rng.uniform(0.5, 1.5, size=(n_seasons, n_channels))
        phase = rng.uniform(0.0, 2 * np.pi, size=(n_seasons, n_channels))
        return level, slope, amplitude, phase

    def signal(level, slope, amplitude, phase) -> np.ndarray:  # -> (T, C)
        angles = 2 * np.pi * t[:, None, :] / periods_arr[None, :, None] + phase[None]
        seasonal = (amplitude[None] * np.sin(angles)).sum(axis=1)
        return level + slope * t + seasonal

    clean = signal(*regime())
    if regime_change is not None:
        cut = int(round(regime_change * n_steps))
        clean_after = signal(*regime())
        # from the cut on, a second regime (new level, slope, amplitudes and phases) holds
        clean = np.where(t >= cut, clean_after, clean)

    innovations = rng.normal(0.0, noise_scale * np.sqrt(1 - noise_ar**2), (n_steps, n_channels))
    noise = np.empty_like(innovations)
    noise[0] = rng.normal(0.0, noise_scale, size=n_channels)
    for i in range(1, n_steps):  # AR(1) recursion over time, vectorised over channels
        noise[i] = noise_ar * noise[i - 1] + innovations[i]
    values = clean + noise

    names = [f"x{i}" for i in range(n_channels - 1)] + ["OT"]
    frame = pd.DataFrame(values, columns=names)
    frame.insert(0, "date", pd.date_range(start=start, periods=n_steps, freq=freq))
    return to_long(frame) if layout == "long" else frame


def to_long(frame: pd.DataFrame, *, date_column: str = "date") -> pd.DataFrame:
    """Wide (``date`` + one column per series) to long ``unique_id, ds, y`` layout.

    Rows are sorted by ``unique_id`` (in the wide column order) then ``ds``.
    """
    if date_column not in frame.columns:
        raise ValueError(
            f"date_column={date_column!r} is not a column; columns are {list(frame.columns)}"
        )
    value_cols = [c for c in frame.columns if c != date_column]
    long = frame.melt(
        id_vars=date_column, value_vars=value_cols, var_name="unique_id", value_name="y"
    )
    long = long.rename(columns={date_column: "ds"})[["unique_id", "ds", "y"]]
    # melt stacks column after column, so rows are already grouped by series in wide order;
    # a stable sort on ds within each series keeps that grouping
    rank = long["unique_id"].map({name: i for i, name in enumerate(value_cols)})
    long = long.iloc[np.lexsort((long["ds"].to_numpy(), rank.to_numpy()))]
    return long.reset_index(drop=True)


def to_wide(frame: pd.DataFrame) -> pd.DataFrame:
    """Long ``unique_id, ds, y`` to wide ``date`` + one column per ``unique_id``.

    Raises:
        ValueError: missing columns, or series that do not share the same timestamps.
    """
    missing = {"unique_id", "ds", "y"} - set(frame.columns)
    if missing:
        raise ValueError(f"long layout needs columns unique_id, ds, y; missing {sorted(missing)}")
    order = list(dict.fromkeys(frame["unique_id"]))
    wide = frame.pivot(index="ds", columns="unique_id", values="y")
    if wide.isna().any().any():
        raise ValueError(
            "series do not share the same timestamps; align them (or fill gaps) before "
            "converting to the wide layout"
        )
    wide = wide[order]
    wide.columns.name = None
    return wide.rename_axis("date").reset_index()
