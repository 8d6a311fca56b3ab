"""Matplotlib plots of forecasts (history, point forecast, prediction interval).

Matplotlib is imported lazily. With ``ax=None`` a new figure is made through
``matplotlib.pyplot``, which picks a non-interactive backend (Agg) on headless machines;
nothing here selects a backend or calls ``show``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["plot_forecast", "plot_loss_history"]


def plot_forecast(
    history_time: Sequence[Any] | np.ndarray,
    history: Sequence[float] | np.ndarray,
    forecast_time: Sequence[Any] | np.ndarray,
    forecast: Sequence[float] | np.ndarray,
    *,
    lower: Sequence[float] | np.ndarray | None = None,
    upper: Sequence[float] | np.ndarray | None = None,
    interval_label: str | None = None,
    actual: Sequence[float] | np.ndarray | None = None,
    title: str | None = None,
    ax: Any = None,
) -> Any:
    """Plot one series: its history, a forecast, an optional interval and actual values.

    Args:
        history_time, history: ``(T,)`` time stamps and observed values.
        forecast_time, forecast: ``(h,)`` future time stamps and point forecast.
        lower, upper: ``(h,)`` interval bounds (both or neither).
        interval_label: legend entry of the interval (e.g. ``"q0.1-q0.9"``).
        actual: ``(h,)`` observed values over the forecast period, if known.
        title: axes title.
        ax: matplotlib Axes to draw on; a new figure when ``None``.

    Returns:
        The matplotlib ``Axes``.
    """
    if (lower is None) != (upper is None):
        raise ValueError("pass both lower and upper interval bounds, or neither")
    history = np.asarray(history, dtype=np.float64)
    forecast = np.asarray(forecast, dtype=np.float64)
    if len(history_time) != len(history):
        raise ValueError(
            f"history_time has {len(history_time)} entries but history has {len(history)}"
        )
    if len(forecast_time) != len(forecast):
        raise ValueError(
            f"forecast_time has {len(forecast_time)} entries but forecast has {len(forecast)}"
        )
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(9, 3.5))
    ax.plot(history_time, history, color="0.25", lw=1.0, label="history")
    if actual is not None:
        ax.plot(forecast_time, np.asarray(actual, np.float64), color="0.25", lw=1.0, ls="--",
                label="actual")
    ax.plot(forecast_time, forecast, color="C0", lw=1.5, label="forecast")
    if lower is not None and upper is not None:
        ax.fill_between(
            forecast_time,
            np.asarray(lower, np.float64),
            np.asarray(upper, np.float64),
            color="C0",
            alpha=0.25,
            label=interval_label or "interval",
        )
    if title:
        ax.set_title(title)
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_loss_history(history: Sequence[dict[str, Any]], *, ax: Any = None) -> Any:
    """Plot per-epoch ``train_loss`` / ``val_loss`` records (an estimator's ``history_``).

    Returns:
        The matplotlib ``Axes``.
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 3.5))
    epochs = [r["epoch"] for r in history]
    for key, style in (("train_loss", "-"), ("val_loss", "--")):
        values = [r.get(key) for r in history]
        if any(v is not None for v in values):
            ax.plot(epochs, [np.nan if v is None else v for v in values], style, label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(loc="best", fontsize="small")
    return ax
