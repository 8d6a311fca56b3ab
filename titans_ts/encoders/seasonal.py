"""Seasonal cycle removal for forecasting windows (residual cycle forecasting).

A series with a strong daily (or weekly...) cycle is forecast as ``cycle + residual``: a
per-series **profile** ``q`` of one period ``P`` (the mean of the training values at each
phase, i.e. at each position modulo ``P`` of the absolute time step) is subtracted from the
inputs, the network forecasts the residual, and the profile at the future phases is added
back (the additive cycle of CycleNet, Lin et al., NeurIPS 2024, estimated in closed form).

Two modes, applied per window and channel:

* ``"fixed"``: ``x - q_x`` and ``forecast + q_y``.
* ``"adaptive"``: the cycle is scaled by ``g``, the least-squares amplitude of the profile in
  the window's own lookback (``g = cov(x, q_x) / var(q_x)`` over the lookback, clipped to
  ``[0, MAX_SCALE]``): ``x - g·q_x`` and ``forecast + g·q_y``. It follows a daily amplitude
  that changes with the season (Weather: the fixed profile of the spring/summer training
  months hurts the autumn/winter test, the adaptive one helps; docs/results.md).

Shapes: windows ``x (B, L, C)``, season slices ``s (B, L + H, C)`` (the profile at the
window's ``L + H`` phases; ``s[:, :L]`` pairs with ``x``, ``s[:, L:]`` with the forecast).
The functions here are the one definition used by the network, the closed-form linear start
and the in-run baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

__all__ = [
    "MAX_SCALE",
    "SEASONAL_MODES",
    "SeasonalMode",
    "add_cycle",
    "cycle_scale",
    "default_period",
    "fit_profile",
    "remove_cycle",
    "season_slices",
    "step_index",
]

SeasonalMode = Literal["none", "fixed", "adaptive"]
SEASONAL_MODES: tuple[str, ...] = ("none", "fixed", "adaptive")

MAX_SCALE = 1.5
"""Upper clip of the adaptive amplitude ``g`` (a larger bound let noisy lookbacks inflate the
cycle: ETTh1 ridge average MSE 0.4245 at 1.5, 0.4450 at 3)."""

_DAY_NS = 86_400 * 10**9


def step_index(times: Any, freq: str | int) -> np.ndarray:
    """Absolute step number of each time stamp (``int64``), the phase origin of a cycle.

    Integer time stamps with integer step ``s``: ``t // s``. Datetimes with a fixed
    frequency (``"h"``, ``"15min"``, ``"D"``...): nanoseconds since 1970-01-01 divided by
    the step, so the phase of a time of day is the same in every series. Calendar
    frequencies: weeks since 1970-01-01 (``"W-..."``), months, quarters or years since year
    0 (``"MS"``, ``"QS"``...), business days (``"B"``); others raise a ``ValueError``.
    """
    if isinstance(freq, (int, np.integer)) and not isinstance(freq, bool):
        return np.asarray(times, dtype=np.int64) // int(freq)
    index = pd.DatetimeIndex(times)
    offset = pd.tseries.frequencies.to_offset(freq)
    if isinstance(offset, pd.offsets.Tick):
        return index.asi8 // int(offset.nanos)
    name, n = offset.name, max(1, int(offset.n))
    if name.startswith("W"):
        steps = index.asi8 // (7 * _DAY_NS)
    elif name in {"M", "MS", "ME", "BM", "BMS", "BME"}:
        steps = index.year.to_numpy() * 12 + index.month.to_numpy() - 1
    elif name.startswith(("Q", "BQ")):
        steps = index.year.to_numpy() * 4 + (index.month.to_numpy() - 1) // 3
    elif name.startswith(("Y", "A", "BY", "BA")):
        steps = index.year.to_numpy()
    elif name == "B":
        steps = np.busday_count(np.datetime64("1970-01-01"), index.to_numpy().astype("M8[D]"))
    else:
        raise ValueError(
            f"cannot place frequency {freq!r} on a seasonal cycle; pass seasonality='none'"
        )
    return np.asarray(steps, dtype=np.int64) // n


def default_period(freq: str | int) -> int | None:
    """The natural cycle, in steps, of data at ``freq``: a day for sub-daily steps that
    divide it (24 for ``"h"``, 96 for ``"15min"``, 144 for ``"10min"``), a week for daily data,
    a year for weekly (52), monthly (12) and quarterly (4) data; ``None`` for integer steps
    (unknown units) and anything else.
    """
    if isinstance(freq, (int, np.integer)) or not freq:
        return None
    offset = pd.tseries.frequencies.to_offset(freq)
    if isinstance(offset, pd.offsets.Tick):
        nanos = int(offset.nanos)
        if nanos < _DAY_NS and _DAY_NS % nanos == 0:
            return _DAY_NS // nanos
        if nanos == _DAY_NS:
            return 7
        return None
    name = offset.name  # e.g. "W-SUN", "MS", "QS-JAN", "B"
    if name.startswith("W"):
        return 52
    if name in {"M", "MS", "ME", "BM", "BMS", "BME"}:
        return 12
    if name.startswith(("Q", "BQ")):
        return 4
    if name in {"B", "C"}:
        return 5
    return None


def fit_profile(values: np.ndarray, first_step: int, period: int) -> np.ndarray:
    """Mean of ``values (T, C)`` at each phase ``(first_step + t) mod period``: ``(period, C)``.

    Phases with no observation get 0 (the series' standardised mean).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"values must have shape (T, C), got {values.shape}")
    if isinstance(period, bool) or not isinstance(period, (int, np.integer)) or period < 2:
        raise ValueError(f"period must be an int >= 2 (steps per cycle), got {period!r}")
    phase = (int(first_step) + np.arange(len(values))) % period
    sums = np.zeros((period, values.shape[1]))
    np.add.at(sums, phase, values)
    counts = np.bincount(phase, minlength=period)[:, None]
    return np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)


def season_slices(
    profile: np.ndarray, first_steps: Sequence[int] | np.ndarray, length: int
) -> np.ndarray:
    """The profile ``(P, C)`` over ``length`` steps from each absolute step in ``first_steps``:
    ``(N, length, C)`` float32 (the ``s`` input of a window starting at that step)."""
    profile = np.asarray(profile)
    starts = np.asarray(first_steps, dtype=np.int64)
    phase = (starts[:, None] + np.arange(length)[None, :]) % profile.shape[0]
    return profile[phase].astype(np.float32)


def cycle_scale(x: torch.Tensor, season: torch.Tensor, mode: str) -> torch.Tensor:
    """Amplitude ``g (B, 1, C)`` of the cycle in each window (ones for ``"fixed"``).

    Args:
        x: ``(B, L, C)`` lookback.
        season: ``(B, L + H, C)`` profile slices.
        mode: ``"fixed"`` or ``"adaptive"``.
    """
    if mode == "fixed":
        return torch.ones_like(x[:, :1])
    if mode != "adaptive":
        raise ValueError(f"mode must be 'fixed' or 'adaptive', got {mode!r}")
    q = season[:, : x.shape[1]]
    xc = x - x.mean(dim=1, keepdim=True)
    qc = q - q.mean(dim=1, keepdim=True)
    var = (qc * qc).sum(dim=1, keepdim=True)
    g = (xc * qc).sum(dim=1, keepdim=True) / var.clamp_min(1e-8)
    return g.clamp(0.0, MAX_SCALE)


def remove_cycle(
    x: torch.Tensor, season: torch.Tensor, mode: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Residual lookback ``x - g·q_x`` and the amplitude ``g (B, 1, C)``.

    Args:
        x: ``(B, L, C)``; season: ``(B, L + H, C)`` with ``L + H > L``; mode as in
            :func:`cycle_scale`.
    """
    if season.ndim != 3 or season.shape[0] != x.shape[0] or season.shape[2] != x.shape[2] or (
        season.shape[1] <= x.shape[1]
    ):
        raise ValueError(
            f"season must have shape (B, L + H, C) = ({x.shape[0]}, >{x.shape[1]}, "
            f"{x.shape[2]}) for x of shape {tuple(x.shape)}, got {tuple(season.shape)}"
        )
    g = cycle_scale(x, season, mode)
    return x - g * season[:, : x.shape[1]], g


def add_cycle(y: torch.Tensor, season: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Put the cycle back on a forecast ``y (B, H, C[, Q])``: ``y + g·q_y``."""
    horizon = y.shape[1]
    q = g * season[:, season.shape[1] - horizon :]
    return y + (q.unsqueeze(-1) if y.ndim == 4 else q)
