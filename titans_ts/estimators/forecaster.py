"""``TitansForecaster``: scikit-learn style forecasting on pandas and polars frames.

Quick start::

    from titans_ts.estimators import TitansForecaster
    model = TitansForecaster(random_state=0).fit(df)   # long (unique_id, ds, y) or wide
    forecast = model.predict()                         # same library and layout as df

Data handling (see :mod:`titans_ts.estimators._frames` for the reading rules):

* **Long** layout (``id_col`` present): each id is a series; series may have different
  lengths and start dates but share one frequency. **Wide** layout: a time column plus one
  numeric column per variable, each a series.
* Rows are sorted by time (unsorted input is fine); duplicate time stamps, irregular
  frequencies, non-numeric targets and **NaN/inf targets raise** a ``ValueError`` /
  ``TypeError`` naming the series and the fix (missing values are not masked).
* Each series is standardised with the mean/std of its training part (``scaler_mean_``,
  ``scaler_std_``); the network sees standardised values (and RevIN normalises every
  window again); forecasts are mapped back to the original units.
* Channel-independent by default: every series is a separate univariate input to one
  shared network, so long and wide frames with the same series give the same model.
  ``channel_mixing=True`` feeds all series of a time step jointly (they must share their
  time stamps).
* Training windows are cut lazily (index arithmetic, memory flat in the number of windows);
  the last ``validation_size`` of every series long enough is held out for early stopping,
  and the best weights are restored.

All defaults live in :data:`DEFAULTS` (:class:`ForecasterDefaults`).
"""

from __future__ import annotations

import copy
import json
import os
import pathlib
import warnings
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from titans_ts.backbone import VARIANTS
from titans_ts.baselines.linear import SeasonalRidgeFit, fit_seasonal_ridge
from titans_ts.encoders.seasonal import (
    default_period,
    fit_profile,
    season_slices,
    step_index,
)
from titans_ts.estimators._base import Interval, Options, TitansBaseEstimator
from titans_ts.estimators._frames import (
    FrameMeta,
    SeriesTable,
    build_frame,
    future_times,
    read_frame,
)
from titans_ts.heads.forecast import check_quantiles
from titans_ts.metrics import blocked_paired_test
from titans_ts.training.data import ForecastDataModule, SeriesWindows, split_window_ranges
from titans_ts.training.forecasting import (
    ForecastModelConfig,
    TitansForecastModel,
    build_backbone_config,
    quantile_column_suffixes,
)
from titans_ts.training.lightning import LossModule

__all__ = ["DEFAULTS", "FORMAT_VERSION", "ForecasterDefaults", "TitansForecaster"]

#: Version of the :meth:`TitansForecaster.save` directory layout.
FORMAT_VERSION = 1
_FORMAT_NAME = "titans_ts.TitansForecaster"


@dataclass(frozen=True)
class ForecasterDefaults:
    """The one place where :class:`TitansForecaster` defaults are set.

    Sizes chosen from the data when the parameter is ``None``:

    * ``horizon``: ``min(horizon, shortest series // 4)`` (at least 1).
    * ``lookback``: ``min(lookback, shortest series - horizon)``.
    * ``patch_len``: ``min(patch_len, lookback)``; ``stride``: ``max(1, patch_len // 2)``.

    The network and training defaults are small so that a fit takes about a minute on a
    2-core CPU (at most ``max_epochs * windows_per_epoch`` training windows); they are
    placeholders until a benchmark tunes them. ``memory_chunk_size=16`` covers the 12 patch
    tokens of the default lookback in one memory chunk (every inner gradient of a window is
    taken at the same weights); a chunk of 4 was ~3x slower per step on CPU.
    """

    horizon: int = 24
    lookback: int = 96
    patch_len: int = 16
    variant: str = "mag"
    d_model: int = 32
    n_layers: int = 1
    n_heads: int = 2
    n_persistent: int = 4
    memory_depth: int = 2
    memory_chunk_size: int = 16
    dropout: float = 0.0
    linear_skip: bool = True
    train_linear_skip: bool = False
    seasonality: str = "auto"
    max_epochs: int = 10
    batch_size: int = 64
    windows_per_epoch: int | None = 2048
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    validation_size: float = 0.1
    patience: int = 3
    gradient_clip_val: float | None = 1.0
    max_val_windows: int = 1024
    significance: float | None = None
    min_train_horizons: int = 32
    predict_batch_size: int = 1024


#: Defaults of :class:`TitansForecaster` (see :class:`ForecasterDefaults`).
DEFAULTS = ForecasterDefaults()


@torch.no_grad()
def _mean_loss(model: TitansForecastModel, batches: Any) -> float:
    """Sample-weighted mean of ``model.loss`` over ``batches`` (as Lightning logs it)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for x, y, *season in batches:
        total += float(model.loss(x, y, *season)) * len(x)
        count += len(x)
    model.train(was_training)
    return total / max(count, 1)


@torch.no_grad()
def _window_mse(model: TitansForecastModel, windows: SeriesWindows, batch_size: int) -> np.ndarray:
    """Point-forecast MSE of every window of ``windows`` (in its order), float64 ``(n,)``;
    evaluated on the device of ``model``'s parameters."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for x, y, *season in DataLoader(windows, batch_size=batch_size, shuffle=False):
        season_t = season[0].to(device) if season else None
        point = model(x.to(device), season_t).point
        out.append(((point - y.to(device)) ** 2).mean(dim=(1, 2)).double().cpu().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros(0)


def _window_blocks(windows: SeriesWindows, size: int) -> np.ndarray:
    """Block label of every window: each series' windows in order, cut into ``count //
    size`` (at least 1) runs of near-equal length; windows of different series at the
    same relative position share a label."""
    labels = []
    for count in (int(c) for c in windows.counts):
        n_blocks = max(1, count // size)
        labels.append(np.arange(count) * n_blocks // max(count, 1))
    return np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)


def _jsonable(value: Any) -> Any:
    """Python scalars for numpy ones; ISO strings for timestamps."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


class TitansForecaster(TitansBaseEstimator):
    """Titans forecaster with a scikit-learn interface, for pandas or polars frames.

    Parameters (all optional; ``None`` sizes are chosen from the data, see
    :class:`ForecasterDefaults`):
        horizon: steps ``H`` the network predicts at once; ``predict(h)`` with ``h > H``
            rolls out recursively.
        lookback: context length ``L``.
        quantiles: levels in ``(0, 1)`` for prediction intervals, e.g. ``[0.1, 0.5, 0.9]``;
            adds a quantile head trained with the pinball loss and ``<name>_q<level>``
            columns to forecasts.
        freq: pandas frequency (``"h"``, ``"D"``...) or integer step; ``None`` infers it.
            Time stamps must follow it exactly (gaps are errors).
        id_col, time_col, target_col: long-layout column names; ``time_col=None`` uses
            ``"ds"``, else ``"date"``, else the only datetime column.
        channel_mixing: mix all series per time step instead of channel independence.
        variant: Titans backbone, one of ``"lmm"``, ``"mac"``, ``"mag"``, ``"mal"``,
            ``"swa"``.
        d_model, n_layers, n_heads, n_persistent: backbone width, depth, heads and
            persistent-memory tokens.
        memory_depth, memory_chunk_size: layers of the neural memory MLP and tokens per
            memory chunk.
        patch_len, stride: patching of the lookback window.
        dropout: dropout in the backbone and heads.
        revin: reversible instance normalisation of every window.
        linear_skip: add a linear lookback -> horizon map (RLinear) beside the Titans path;
            the network learns a correction to a linear forecast. The map starts at the
            closed-form ridge solution over all training windows (penalty chosen on
            validation), and training must beat that start on validation.
        train_linear_skip: let the optimiser move the linear map too. Off by default: the
            ridge map is already the training optimum of a linear forecaster, its gradient
            starts near zero, and Adam turns such gradients into lr-sized steps that only
            add noise. Measured evidence is mixed (docs/results.md): frozen was better on
            ETTm1 and ETTm2 (4-horizon averages) and on ETTh1 H=96/336, worse on ETTh1
            H=720 and the ETTh2 average, where any trained Titans correction hurt the test.
        seasonality: how a seasonal cycle (the per-series mean of the standardised training
            values at each phase of ``seasonal_period``) is taken out of every window and
            put back on the forecast: ``"none"``; ``"fixed"``; ``"adaptive"`` (the cycle
            scaled by its least-squares amplitude in the window's lookback); ``"auto"``
            (default): whichever of the three gives the closed-form ridge map the lowest
            validation MSE (``"none"`` when there is no validation data or no period). See
            :mod:`titans_ts.encoders.seasonal`.
        seasonal_period: cycle length in steps; ``None`` takes the natural one of the
            frequency (a day for sub-daily data: 24 for ``"h"``; a week for daily data...;
            none for integer time steps, so pass it there). When a series' training part is
            shorter than two periods, ``"auto"`` uses no cycle and an explicit mode raises.
        min_train_horizons: train the Titans correction only when the longest series'
            training part spans at least this many horizons (``horizon`` steps each);
            below it the closed-form linear start is fitted and shipped untrained (with a
            warning; ``network_trained_`` is False). Needs ``linear_skip``; 0 always trains.
            Default 32: on ETTh1/ETTh2 (8,640 training hours) the correction made the test
            error worse at H = 336 and 720 (25.7 and 12 horizons) in every one of three
            seeds, while on ETTm1/ETTm2/Weather (>= 48 horizons at H = 720) it helped at
            every horizon where it trained; the threshold was set after seeing those test
            results (docs/results.md).
        significance: ``None`` (default): keep the trained Titans correction whenever early
            stopping preferred it to the linear start; a level in (0, 1): keep it only if
            its gain over the start on **all** validation windows passes a one-sided test
            at that level (``network_test_``), else restore the start's weights. The test
            is a paired t-test of the per-window MSE gains averaged over runs of about
            ``horizon`` consecutive windows (which share most of their targets), so that
            overlapping windows do not count as independent evidence. Off by default: on
            the benchmarks its p-values did not tell the gains that carried to the test
            period (ETTm2) from those that did not (ETTh1/ETTh2) (docs/results.md).
        max_epochs, batch_size, windows_per_epoch, learning_rate, weight_decay,
        gradient_clip_val: optimisation (AdamW; ``windows_per_epoch=None`` uses every
            window each epoch).
        max_time: wall-clock limit of training in seconds (``None``: none); training stops
            at the first batch past it, validates once more and keeps the best weights.
            Fits that stop on time are not reproducible run to run.
        early_stopping: hold out the end of each series and stop when the validation loss
            stops improving (``patience`` epochs); the best weights are kept.
        validation_size: held-out fraction (float in (0, 1)) or number of steps (int) at
            the end of each series (at least ``horizon``; series too short for it are
            used for training only).
        accelerator, devices: as in Lightning (``"cpu"``, ``"gpu"``, ``"auto"``...),
            used for fit and predict.
        random_state: seed; with an int two fits on CPU are bit-identical.
        verbose: progress bar and model summary during fit.

    Fitted attributes:
        model_ (the network, eval mode), config_ (:class:`ForecastModelConfig`),
        horizon_, lookback_, freq_, series_names_, n_series_, scaler_mean_, scaler_std_,
        history_ (per-epoch losses), best_epoch_ (``-1``: no epoch beat the closed-form
        linear start, or the gain failed the ``significance`` test, and the start's weights
        were kept), network_test_ (``{"mse_start", "mse_network", "t", "p", "n_blocks",
        "kept"}``: the trained network against the linear start on all validation
        windows, computed whenever early stopping kept a trained epoch; else ``None``),
        network_trained_ (False when ``min_train_horizons`` skipped training),
        n_train_windows_, n_val_windows_,
        linear_skip_alpha_ / linear_val_loss_ (ridge penalty and validation loss of the
        linear start; ``None`` without ``linear_skip``), seasonality_ (the mode used),
        seasonal_period_, seasonal_profile_ (``(n_units, period, C)`` or ``None``; a unit
        is a series, or all of them with channel mixing), seasonal_scores_ (``{mode:
        validation MSE of the ridge map}`` of the modes tried), linear_start_ (the
        closed-form map the linear path started from, or with ``linear_skip=False`` the one
        that chose the seasonality; :class:`titans_ts.baselines.linear.SeasonalRidgeFit`,
        or ``None`` when neither was needed), frame_meta_,
        last_values_ / last_times_ (the context ``predict()`` starts from), seed_.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "horizon": [Interval(Integral, 1, None), None],
        "lookback": [Interval(Integral, 1, None), None],
        "quantiles": [list, tuple, np.ndarray, None],
        "freq": [str, Interval(Integral, 1, None), None],
        "id_col": [str],
        "time_col": [str, None],
        "target_col": [str],
        "channel_mixing": ["boolean"],
        "variant": [Options(tuple(VARIANTS))],
        "d_model": [Interval(Integral, 2, None)],
        "n_layers": [Interval(Integral, 1, None)],
        "n_heads": [Interval(Integral, 1, None)],
        "n_persistent": [Interval(Integral, 0, None)],
        "memory_depth": [Interval(Integral, 1, None)],
        "memory_chunk_size": [Interval(Integral, 1, None)],
        "patch_len": [Interval(Integral, 1, None), None],
        "stride": [Interval(Integral, 1, None), None],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "revin": ["boolean"],
        "linear_skip": ["boolean"],
        "train_linear_skip": ["boolean"],
        "seasonality": [Options(("auto", "none", "fixed", "adaptive"))],
        "seasonal_period": [Interval(Integral, 2, None), None],
        "max_epochs": [Interval(Integral, 1, None)],
        "max_time": [Interval(Real, 0, None, closed="neither"), None],
        "batch_size": [Interval(Integral, 1, None)],
        "windows_per_epoch": [Interval(Integral, 1, None), None],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "gradient_clip_val": [Interval(Real, 0, None, closed="neither"), None],
        "early_stopping": ["boolean"],
        "validation_size": [Interval(Real, 0, 1, closed="neither"), Interval(Integral, 1, None)],
        "patience": [Interval(Integral, 1, None)],
        "significance": [Interval(Real, 0, 1, closed="neither"), None],
        "min_train_horizons": [Interval(Integral, 0, None)],
        "accelerator": [Options(("auto", "cpu", "gpu", "cuda", "mps"))],
        "devices": [Interval(Integral, 1, None), Options(("auto",)), list],
        "random_state": [Interval(Integral, 0, 2**32 - 1), np.random.Generator, None],
        "verbose": ["boolean"],
    }

    def __init__(
        self,
        horizon: int | None = None,
        lookback: int | None = None,
        *,
        quantiles: list[float] | tuple[float, ...] | None = None,
        freq: str | int | None = None,
        id_col: str = "unique_id",
        time_col: str | None = None,
        target_col: str = "y",
        channel_mixing: bool = False,
        variant: str = DEFAULTS.variant,
        d_model: int = DEFAULTS.d_model,
        n_layers: int = DEFAULTS.n_layers,
        n_heads: int = DEFAULTS.n_heads,
        n_persistent: int = DEFAULTS.n_persistent,
        memory_depth: int = DEFAULTS.memory_depth,
        memory_chunk_size: int = DEFAULTS.memory_chunk_size,
        patch_len: int | None = None,
        stride: int | None = None,
        dropout: float = DEFAULTS.dropout,
        revin: bool = True,
        linear_skip: bool = DEFAULTS.linear_skip,
        train_linear_skip: bool = DEFAULTS.train_linear_skip,
        seasonality: str = DEFAULTS.seasonality,
        seasonal_period: int | None = None,
        max_epochs: int = DEFAULTS.max_epochs,
        max_time: float | None = None,
        batch_size: int = DEFAULTS.batch_size,
        windows_per_epoch: int | None = DEFAULTS.windows_per_epoch,
        learning_rate: float = DEFAULTS.learning_rate,
        weight_decay: float = DEFAULTS.weight_decay,
        gradient_clip_val: float | None = DEFAULTS.gradient_clip_val,
        early_stopping: bool = True,
        validation_size: float | int = DEFAULTS.validation_size,
        patience: int = DEFAULTS.patience,
        significance: float | None = DEFAULTS.significance,
        min_train_horizons: int = DEFAULTS.min_train_horizons,
        accelerator: str = "auto",
        devices: int | str | list[int] = 1,
        random_state: int | np.random.Generator | None = None,
        verbose: bool = False,
    ) -> None:
        self.horizon = horizon
        self.lookback = lookback
        self.quantiles = quantiles
        self.freq = freq
        self.id_col = id_col
        self.time_col = time_col
        self.target_col = target_col
        self.channel_mixing = channel_mixing
        self.variant = variant
        self.d_model = d_model
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.n_persistent = n_persistent
        self.memory_depth = memory_depth
        self.memory_chunk_size = memory_chunk_size
        self.patch_len = patch_len
        self.stride = stride
        self.dropout = dropout
        self.revin = revin
        self.linear_skip = linear_skip
        self.train_linear_skip = train_linear_skip
        self.seasonality = seasonality
        self.seasonal_period = seasonal_period
        self.max_epochs = max_epochs
        self.max_time = max_time
        self.batch_size = batch_size
        self.windows_per_epoch = windows_per_epoch
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.gradient_clip_val = gradient_clip_val
        self.early_stopping = early_stopping
        self.validation_size = validation_size
        self.patience = patience
        self.significance = significance
        self.min_train_horizons = min_train_horizons
        self.accelerator = accelerator
        self.devices = devices
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ validation

    def _check_settings(self) -> tuple[float, ...] | None:
        """Cross-parameter checks that a per-parameter constraint cannot express."""
        self._validate_params()
        name = type(self).__name__
        quantiles = None
        if self.quantiles is not None:
            try:
                quantiles = check_quantiles(list(np.asarray(self.quantiles, dtype=float)))
            except ValueError as err:
                raise ValueError(f"{name}: {err}") from err
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ValueError(
                f"{name}: d_model={self.d_model} must be divisible by n_heads={self.n_heads} "
                "with an even per-head width (rotary embeddings); e.g. d_model=32, n_heads=2"
            )
        return quantiles

    def _read(self, df: Any, *, fit: bool) -> SeriesTable:
        if fit:
            return read_frame(
                df, id_col=self.id_col, time_col=self.time_col, target_col=self.target_col,
                freq=self.freq,
            )
        meta = self.frame_meta_
        if meta.layout == "wide" and self.id_col in list(getattr(df, "columns", [])):
            raise ValueError(
                f"{type(self).__name__} was fit on a wide-format frame (time column "
                f"{meta.time_col!r} + columns {list(self.series_names_)[:10]}) but this frame "
                f"is long-format (it has {self.id_col!r}); pass a wide frame with those columns"
            )
        table = read_frame(
            df, id_col=self.id_col, time_col=self.time_col, target_col=self.target_col,
            freq=self.freq if self.freq is not None else meta.freq, layout=meta.layout,
        )
        if table.meta.time_kind != meta.time_kind:
            raise TypeError(
                f"the model was fit on {meta.time_kind} time stamps but column "
                f"{table.meta.time_col!r} holds {table.meta.time_kind} ones; use the same kind"
            )
        known = {n: i for i, n in enumerate(self.series_names_)}
        if meta.layout == "wide":
            got, want = list(table.names), list(self.series_names_)
            if set(got) != set(want):
                missing = [c for c in want if c not in got]
                extra = [c for c in got if c not in want]
                raise ValueError(
                    f"columns differ from those seen in fit: missing {missing}, unexpected "
                    f"{extra}; {type(self).__name__} was fit on {want} (plus time column "
                    f"{meta.time_col!r}); pass a frame with the same columns"
                )
            order = [got.index(c) for c in want]
            table = SeriesTable(
                table.meta, want, [table.times[i] for i in order],
                [table.values[i] for i in order],
            )
        else:
            unknown = [n for n in table.names if n not in known]
            if unknown:
                raise ValueError(
                    f"series {unknown[:5]} were not seen in fit (their scaling is unknown); "
                    f"the model knows {len(known)} series, e.g. {list(known)[:5]}; refit "
                    "with them included"
                )
            if self.channel_mixing and len(table.names) != len(known):
                absent = [n for n in known if n not in set(table.names)]
                raise ValueError(
                    f"channel_mixing=True forecasts all series jointly, but series "
                    f"{absent[:5]} are missing from this frame; pass every series seen in fit"
                )
        return table

    def _resolve_sizes(self, table: SeriesTable) -> tuple[int, int, int, int]:
        lengths = table.lengths
        n_min = min(lengths)
        horizon = self.horizon if self.horizon is not None else min(
            DEFAULTS.horizon, max(1, n_min // 4)
        )
        lookback = self.lookback if self.lookback is not None else min(
            DEFAULTS.lookback, n_min - horizon
        )
        need = max(lookback, 1) + horizon
        for name, length in zip(table.names, lengths, strict=True):
            if length < need or lookback < 1:
                raise ValueError(
                    f"series {name!r} has {length} time steps, fewer than lookback "
                    f"({lookback}) + horizon ({horizon}) = {need}; pass a shorter "
                    "lookback=/horizon=, or drop the short series"
                )
        patch_len = self.patch_len if self.patch_len is not None else min(
            DEFAULTS.patch_len, lookback
        )
        stride = self.stride if self.stride is not None else max(1, patch_len // 2)
        if patch_len > lookback:
            raise ValueError(
                f"patch_len={patch_len} is longer than lookback={lookback}; pass a shorter "
                "patch_len= (or a longer lookback=)"
            )
        return horizon, lookback, patch_len, stride

    def _panel(self, table: SeriesTable) -> np.ndarray:
        """Channel mixing: the series as one ``(T, K)`` array (they must share times)."""
        first = table.times[0]
        for name, t in zip(table.names, table.times, strict=True):
            if len(t) != len(first) or not np.array_equal(np.asarray(t), np.asarray(first)):
                raise ValueError(
                    f"channel_mixing=True needs all series on the same time stamps, but "
                    f"series {name!r} differs from series {table.names[0]!r}; align them "
                    "or use channel_mixing=False"
                )
        return np.stack(table.values, axis=1)

    def _seasonal_modes(
        self, period: int | None, freq: str | int, train_lengths: list[int], has_val: bool
    ) -> tuple[str, ...]:
        """Seasonal modes to try in fit (one, or the three of ``"auto"``)."""
        name = type(self).__name__
        if self.seasonality == "none":
            return ("none",)
        explicit = self.seasonality != "auto"
        if period is None:
            if explicit:
                raise ValueError(
                    f"{name}: seasonality={self.seasonality!r} needs a cycle length, and "
                    f"frequency {freq!r} has no natural one; pass "
                    "seasonal_period= (steps per cycle, e.g. 24 for a daily cycle of hourly "
                    "data)"
                )
            return ("none",)
        if min(train_lengths) < 2 * period:
            if explicit:
                raise ValueError(
                    f"{name}: seasonal_period={period} needs at least two cycles "
                    f"({2 * period} steps) of training data per series, but the shortest "
                    f"has {min(train_lengths)}; pass a shorter seasonal_period= or "
                    "seasonality='none'"
                )
            return ("none",)
        if explicit:
            return (self.seasonality,)
        return ("none", "fixed", "adaptive") if has_val else ("none",)

    # ------------------------------------------------------------------ fit

    def fit(self, df: Any, y: None = None) -> TitansForecaster:
        """Fit on a pandas or polars frame (long or wide layout); returns ``self``.

        Args:
            df: the training frame.
            y: ignored (scikit-learn compatibility; targets are columns of ``df``).
        """
        quantiles = self._check_settings()
        table = self._read(df, fit=True)
        horizon, lookback, patch_len, stride = self._resolve_sizes(table)
        lengths = table.lengths
        val_sizes = []
        for length in lengths:
            if not self.early_stopping:
                val_sizes.append(0)
                continue
            v = (
                int(round(self.validation_size * length))
                if isinstance(self.validation_size, float)
                else int(self.validation_size)
            )
            v = max(v, horizon)
            val_sizes.append(v if length - v >= lookback + horizon else 0)
        mean = np.array([v[: len(v) - s].mean() for v, s in zip(table.values, val_sizes,
                                                                strict=True)])
        std = np.array([v[: len(v) - s].std() for v, s in zip(table.values, val_sizes,
                                                              strict=True)])
        std = np.where(std > 0, std, 1.0)
        scaled = [
            ((v - m) / s).astype(np.float32)
            for v, m, s in zip(table.values, mean, std, strict=True)
        ]
        if self.channel_mixing:
            panel = self._panel(SeriesTable(table.meta, table.names, table.times, scaled))
            units = [panel]
            unit_val = [min(val_sizes)]
            n_channels = panel.shape[1]
        else:
            units = [s[:, None] for s in scaled]
            unit_val = val_sizes
            n_channels = 1
        train_ranges, val_ranges = split_window_ranges(
            [len(u) for u in units], lookback, horizon, unit_val
        )
        has_val = any(last >= first for first, last in val_ranges)
        if self.early_stopping and not has_val:
            warnings.warn(
                f"{type(self).__name__}: no series is long enough to hold out "
                f"validation_size={self.validation_size!r} (at least horizon={horizon} steps) "
                f"after lookback + horizon = {lookback + horizon} training steps; training "
                "for max_epochs without early stopping",
                UserWarning,
                stacklevel=2,
            )
        freq = table.meta.freq
        period = self.seasonal_period if self.seasonal_period is not None else (
            default_period(freq)
        )
        modes = self._seasonal_modes(
            period, freq, [len(u) - v for u, v in zip(units, unit_val, strict=True)], has_val
        )
        profiles = season = None
        if modes != ("none",):
            assert period is not None
            first_steps = [int(step_index(t[:1], freq)[0]) for t in table.times]
            unit_steps = first_steps[:1] if self.channel_mixing else first_steps
            profiles = np.stack([
                fit_profile(u[: len(u) - v], s0, period)
                for u, v, s0 in zip(units, unit_val, unit_steps, strict=True)
            ])  # (U, P, C)
            season = [
                season_slices(p, [s0], len(u))[0]
                for p, u, s0 in zip(profiles, units, unit_steps, strict=True)
            ]
        train = SeriesWindows(units, lookback, horizon, train_ranges, season=season)
        val = SeriesWindows(units, lookback, horizon, val_ranges, season=season)
        start = None
        if (self.linear_skip and lookback >= 2) or len(modes) > 1:
            # the closed-form linear start: last-value-centred ridge over all training
            # windows per seasonal mode; penalty and mode chosen on all validation windows
            start = fit_seasonal_ridge(train, val if has_val else None, modes)
        mode = modes[0] if start is None else start.mode
        if mode == "none" and season is not None:  # windows without the unused season
            profiles = season = None
            train = SeriesWindows(units, lookback, horizon, train_ranges)
            val = SeriesWindows(units, lookback, horizon, val_ranges)
        n_tokens = (lookback + stride - patch_len) // stride + 1
        config = ForecastModelConfig(
            lookback=lookback,
            horizon=horizon,
            n_channels=n_channels,
            patch_len=patch_len,
            stride=stride,
            channel_mixing=bool(self.channel_mixing),
            revin=bool(self.revin),
            quantiles=quantiles,
            head_dropout=float(self.dropout),
            linear_skip=bool(self.linear_skip) and lookback >= 2,
            seasonality=mode,
            backbone=build_backbone_config(
                variant=self.variant,
                d_model=self.d_model,
                n_layers=self.n_layers,
                n_heads=self.n_heads,
                n_tokens=n_tokens,
                n_persistent=self.n_persistent,
                memory_depth=self.memory_depth,
                memory_chunk_size=self.memory_chunk_size,
                dropout=float(self.dropout),
            ),
        )
        train_steps = max(len(u) - v for u, v in zip(units, unit_val, strict=True))
        train_network = not config.linear_skip or (
            train_steps >= int(self.min_train_horizons) * horizon
        )
        if not train_network:
            warnings.warn(
                f"{type(self).__name__}: the training part ({train_steps} steps) spans "
                f"{train_steps / horizon:.1f} horizons of {horizon} steps, fewer than "
                f"min_train_horizons={self.min_train_horizons}; shipping the closed-form "
                "linear start without training the Titans correction (pass "
                "min_train_horizons=0 to train it anyway)",
                UserWarning,
                stacklevel=2,
            )
        with self._fit_context() as (seed, root):
            model = TitansForecastModel(config)
            module = LossModule(model, self.learning_rate, self.weight_decay)
            data = ForecastDataModule(
                train,
                val if has_val else None,
                batch_size=self.batch_size,
                windows_per_epoch=self.windows_per_epoch,
                max_val_windows=DEFAULTS.max_val_windows,
                seed=seed,
            )
            trainer, history, best = self._make_fit_trainer(root, has_val, self.max_time)
            self.linear_skip_alpha_ = self.linear_val_loss_ = None
            start_state = start_errors = None
            if config.linear_skip:
                assert start is not None
                model.set_linear_skip(start.coef, start.intercept)
                self.linear_skip_alpha_ = start.alpha
                model.skip.requires_grad_(bool(self.train_linear_skip))
                if best is not None:  # the linear forecast alone is the score to beat
                    self.linear_val_loss_ = _mean_loss(model, data.val_dataloader())
                    best.offer(self.linear_val_loss_, module, epoch=-1)
                    if train_network:  # to test the trained network against
                        start_state = copy.deepcopy(model.state_dict())
                        start_errors = _window_mse(model, val, DEFAULTS.predict_batch_size)
            if train_network:
                trainer.fit(module, datamodule=data)
        model = module.model.to("cpu").eval()
        best_epoch = None if best is None else best.best_epoch
        if not train_network:
            best_epoch = -1
        self.network_test_ = None
        if start_errors is not None and best_epoch is not None and best_epoch >= 0:
            network_errors = _window_mse(model, val, DEFAULTS.predict_batch_size)
            test = blocked_paired_test(
                start_errors, network_errors, _window_blocks(val, horizon)
            )
            kept = self.significance is None or test.p <= float(self.significance)
            self.network_test_ = {
                "mse_start": float(start_errors.mean()),
                "mse_network": float(network_errors.mean()),
                "t": test.t,
                "p": test.p,
                "n_blocks": test.n_blocks,
                "kept": bool(kept),
            }
            if not kept:  # not shown to beat the start: ship the start
                model.load_state_dict(start_state)
                best_epoch = -1

        self.config_ = config
        self.model_ = model
        self.horizon_ = horizon
        self.lookback_ = lookback
        self.freq_ = table.meta.freq
        self.frame_meta_ = table.meta
        self.series_names_ = list(table.names)
        self.n_series_ = len(table.names)
        self.scaler_mean_ = mean
        self.scaler_std_ = std
        self.seasonality_ = mode
        self.seasonal_period_ = None if profiles is None else int(period)
        self.seasonal_profile_ = profiles
        self.seasonal_scores_ = {} if start is None else dict(start.val_mse)
        self.linear_start_ = start
        self.history_ = history.records
        self.best_epoch_ = best_epoch
        self.network_trained_ = train_network
        self.n_train_windows_ = len(train)
        self.n_val_windows_ = len(val)
        self.last_values_ = np.stack([v[-lookback:] for v in table.values])
        self.last_times_ = [t[-1] for t in table.times]
        return self

    # ------------------------------------------------------------------ forecasting core

    @torch.no_grad()
    def _rollout(
        self, contexts: np.ndarray, h: int, seasons: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Forecast ``h`` steps from scaled ``contexts (N, L, C)``.

        ``seasons (N, L + ceil(h / H)·H, C)``: the cycle profile from each context's first
        step (models with a seasonal cycle). Returns scaled ``point (N, h, C)`` and
        ``quantiles (N, h, C, Q)`` (or ``None``). For ``h > horizon`` the point forecast is
        appended to the context and the network is applied again (recursive rollout);
        later quantiles are conditioned on the point path.
        """
        model = self.model_
        device = self._device()
        model.to(device).eval()
        horizon, lookback = self.horizon_, self.lookback_
        points, quants = [], []
        size = DEFAULTS.predict_batch_size
        for start in range(0, len(contexts), size):
            ctx = torch.as_tensor(contexts[start : start + size], dtype=torch.float32,
                                  device=device)
            season = None if seasons is None else torch.as_tensor(
                seasons[start : start + size], dtype=torch.float32, device=device
            )
            p_parts, q_parts = [], []
            done = 0
            while done < h:
                window = None if season is None else season[:, done : done + lookback + horizon]
                out = model(ctx, window)
                p_parts.append(out.point)
                if out.quantiles is not None:
                    q_parts.append(out.quantiles)
                done += horizon
                if done < h:
                    ctx = torch.cat([ctx, out.point], dim=1)[:, -lookback:]
            points.append(torch.cat(p_parts, dim=1)[:, :h].cpu().numpy())
            if q_parts:
                quants.append(torch.cat(q_parts, dim=1)[:, :h].cpu().numpy())
        point = np.concatenate(points).astype(np.float64)
        quant = np.concatenate(quants).astype(np.float64) if quants else None
        return point, quant

    def _unit_contexts(
        self, table: SeriesTable, scaled: list[np.ndarray], ends: list[np.ndarray], h: int
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Contexts ``(N, L, C)`` ending (exclusive) at ``ends[u]`` positions of each unit of
        ``table`` (scaled values ``scaled``), and their seasons for an ``h``-step rollout
        (``None`` without a seasonal cycle)."""
        lookback = self.lookback_
        out = []
        for values, stops in zip(scaled, ends, strict=True):
            for stop in stops:
                out.append(values[stop - lookback : stop])
        contexts = np.stack(out).astype(np.float32)
        if self.seasonal_profile_ is None:
            return contexts, None
        index = {n: i for i, n in enumerate(self.series_names_)}
        # absolute step of each series' first row (regular series: last step - (n - 1))
        firsts = [
            int(step_index(t[-1:], self.freq_)[0]) - (len(v) - 1)
            for t, v in zip(table.times, table.values, strict=True)
        ]
        if self.channel_mixing:
            profiles, firsts = [self.seasonal_profile_[0]], firsts[:1]
        else:
            profiles = [self.seasonal_profile_[index[n]] for n in table.names]
        length = lookback + -(-h // self.horizon_) * self.horizon_
        seasons = np.concatenate([
            season_slices(p, first + np.asarray(stops) - lookback, length)
            for p, first, stops in zip(profiles, firsts, ends, strict=True)
        ])
        return contexts, seasons

    def _scaled_units(self, table: SeriesTable) -> list[np.ndarray]:
        index = {n: i for i, n in enumerate(self.series_names_)}
        scaled = []
        for name, values in zip(table.names, table.values, strict=True):
            i = index[name]
            scaled.append((values - self.scaler_mean_[i]) / self.scaler_std_[i])
        if self.channel_mixing:
            return [self._panel(SeriesTable(table.meta, table.names, table.times, scaled))]
        return [s[:, None] for s in scaled]

    def _unscale(self, table_names: list[Any], values: np.ndarray) -> np.ndarray:
        """``values (N_units, ..., C)`` scaled -> ``(K, ...)`` per series in original units."""
        index = {n: i for i, n in enumerate(self.series_names_)}
        if self.channel_mixing:  # one unit, C = K channels
            per_series = np.moveaxis(values[0], 1, 0)  # (K, h[, Q]) when values (1, h, K[, Q])
        else:
            per_series = values[:, :, 0]  # (K, h[, Q])
        mean = np.array([self.scaler_mean_[index[n]] for n in table_names])
        std = np.array([self.scaler_std_[index[n]] for n in table_names])
        shape = (-1,) + (1,) * (per_series.ndim - 1)
        return per_series * std.reshape(shape) + mean.reshape(shape)

    def _check_h(self, h: int | None) -> int:
        if h is None:
            return self.horizon_
        if isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1:
            raise ValueError(f"h must be a positive int (forecast steps), got {h!r}")
        return int(h)

    def _quantile_names(self, base: str) -> list[str]:
        levels = self.config_.quantiles or ()
        return [f"{base}_{s}" for s in quantile_column_suffixes(levels)]

    # ------------------------------------------------------------------ predict

    def predict(self, h: int | None = None, df: Any = None) -> Any:
        """Forecast the next ``h`` steps (default ``horizon_``) of every series.

        Args:
            h: number of future steps; ``h > horizon_`` rolls out recursively.
            df: history to forecast from (same columns as in fit; the last ``lookback_``
                steps of each series are used); ``None`` continues the training frame.

        Returns:
            A frame in the library and layout of ``df`` (or of the training frame): long
            ``[id, time, target, target_q<level>...]`` sorted by series then time, or wide
            ``[time, var..., var_q<level>...]``, with the real future time stamps.
        """
        self._check_fitted()
        h = self._check_h(h)
        if df is None:
            meta = self.frame_meta_
            names = list(self.series_names_)
            last_times = list(self.last_times_)
            table = SeriesTable(
                meta, names,
                [self._times_of(t) for t in last_times],
                [v for v in self.last_values_],
            )
        else:
            table = self._read(df, fit=False)
            meta = table.meta
            names = list(table.names)
            for name, length in zip(names, table.lengths, strict=True):
                if length < self.lookback_:
                    raise ValueError(
                        f"series {name!r} has {length} time steps but the model needs the "
                        f"last lookback={self.lookback_} to forecast; pass a longer history"
                    )
            last_times = [t[-1] for t in table.times]
        units = self._scaled_units(table)
        contexts, seasons = self._unit_contexts(
            table, units, [np.array([len(u)]) for u in units], h
        )
        point, quant = self._rollout(contexts, h, seasons)
        point = self._unscale(names, point)  # (K, h)
        quant = None if quant is None else self._unscale(names, quant)  # (K, h, Q)
        return self._forecast_frame(meta, names, last_times, point, quant, h)

    def _times_of(self, last: Any) -> Any:
        # a one-element time index ending at ``last`` (predict() without a frame)
        if self.frame_meta_.time_kind == "int":
            return np.array([int(last)], dtype=np.int64)
        return pd.DatetimeIndex([last])

    def _forecast_frame(
        self,
        meta: FrameMeta,
        names: list[Any],
        last_times: list[Any],
        point: np.ndarray,
        quant: np.ndarray | None,
        h: int,
    ) -> Any:
        freq = self.freq_
        if meta.layout == "long":
            target = meta.target_col or self.target_col
            times = [future_times(t, h, freq) for t in last_times]
            cols: dict[str, Any] = {
                meta.id_col: [n for n in names for _ in range(h)],
                meta.time_col: _concat_times(times, meta),
                target: point.reshape(-1),
            }
            if quant is not None:
                for j, col in enumerate(self._quantile_names(target)):
                    cols[col] = quant[:, :, j].reshape(-1)
            return build_frame(cols, meta)
        times = future_times(last_times[0], h, freq)
        cols = {meta.time_col: _concat_times([times], meta)}
        for k, name in enumerate(names):
            cols[str(name)] = point[k]
        if quant is not None:
            for k, name in enumerate(names):
                for j, col in enumerate(self._quantile_names(str(name))):
                    cols[col] = quant[k, :, j]
        return build_frame(cols, meta)

    # ------------------------------------------------------------------ evaluation

    def _cv_arrays(
        self, df: Any, h: int | None, n_windows: int, step: int | None
    ) -> tuple[SeriesTable, list[np.ndarray], np.ndarray, np.ndarray | None, np.ndarray]:
        """Batched rolling-origin forecasts.

        Returns ``(table, cutoffs, point, quantiles, actual)`` with ``cutoffs[k]`` the
        ``n_windows`` context end positions (exclusive) of series ``k`` and scaled
        ``point``/``actual`` ``(K, n_windows, h)``, ``quantiles (K, n_windows, h, Q)``.
        """
        self._check_fitted()
        h = self._check_h(h)
        if isinstance(n_windows, bool) or not isinstance(n_windows, (int, np.integer)) or (
            n_windows < 1
        ):
            raise ValueError(f"n_windows must be a positive int, got {n_windows!r}")
        step = h if step is None else step
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
            raise ValueError(f"step must be a positive int, got {step!r}")
        table = self._read(df, fit=False)
        need = self.lookback_ + h + (n_windows - 1) * step
        for name, length in zip(table.names, table.lengths, strict=True):
            if length < need:
                raise ValueError(
                    f"series {name!r} has {length} time steps; n_windows={n_windows} "
                    f"windows of h={h} every step={step} after lookback={self.lookback_} need "
                    f"{need}; use fewer windows, a smaller step or h"
                )
        units = self._scaled_units(table)
        ends = [
            np.array([len(u) - h - (n_windows - 1 - j) * step for j in range(n_windows)])
            for u in units
        ]
        contexts, seasons = self._unit_contexts(table, units, ends, h)
        point, quant = self._rollout(contexts, h, seasons)  # (U·W, h, C)
        actual = np.stack(
            [u[e : e + h] for u, stops in zip(units, ends, strict=True) for e in stops]
        )  # (U·W, h, C)

        def per_series(a: np.ndarray) -> np.ndarray:
            # (U·W, h, C[, Q]) -> (K, W, h[, Q])
            a = a.reshape(len(units), n_windows, *a.shape[1:])  # (U, W, h, C[, Q])
            if self.channel_mixing:  # U = 1, C = K
                return np.moveaxis(a[0], 2, 0)
            return a[:, :, :, 0]  # C = 1, U = K

        cutoffs = [ends[0]] * len(table.names) if self.channel_mixing else ends
        return (
            table,
            cutoffs,
            per_series(point),
            None if quant is None else per_series(quant),
            per_series(actual),
        )

    def cross_validation(
        self, df: Any, n_windows: int = 1, step: int | None = None, h: int | None = None
    ) -> Any:
        """Rolling-origin evaluation without refitting: every window of every series goes
        through the network in one batched pass.

        The windows end at the last time stamp of each series: window ``j`` (0-based,
        ``n_windows`` of them, ``step`` apart, default ``step = h``) forecasts ``h`` steps
        (default ``horizon_``) from the ``lookback_`` steps before its cutoff.

        Returns:
            A frame in ``df``'s library and layout. Long: ``[id, time, "cutoff", target,
            target_hat, target_q<level>...]``; wide: ``[time, "cutoff", var...,
            var_hat..., var_q<level>...]``; ``target``/``var`` hold the actual values and
            ``cutoff`` is the last time stamp of each window's context.
        """
        table, cutoffs, point, quant, actual = self._cv_arrays(df, h, n_windows, step)
        meta = table.meta
        h_ = point.shape[2]
        index = {n: i for i, n in enumerate(self.series_names_)}
        mean = np.array([self.scaler_mean_[index[n]] for n in table.names])[:, None, None]
        std = np.array([self.scaler_std_[index[n]] for n in table.names])[:, None, None]
        point = point * std + mean
        actual = actual * std + mean
        if quant is not None:
            quant = quant * std[..., None] + mean[..., None]
        if meta.layout == "long":
            target = meta.target_col or self.target_col
            times, cuts, ids = [], [], []
            for k, name in enumerate(table.names):
                t = table.times[k]
                for stop in cutoffs[k]:
                    times.append(_slice_times(t, stop, h_))
                    cuts.append(_repeat_time(t, stop - 1, h_))
                    ids.extend([name] * h_)
            cols: dict[str, Any] = {
                meta.id_col: ids,
                meta.time_col: _concat_times(times, meta),
                "cutoff": _concat_times(cuts, meta),
                target: actual.reshape(-1),
                f"{target}_hat": point.reshape(-1),
            }
            if quant is not None:
                for j, col in enumerate(self._quantile_names(target)):
                    cols[col] = quant[..., j].reshape(-1)
            return build_frame(cols, meta, extra_time_cols=("cutoff",))
        t = table.times[0]
        stops = cutoffs[0]
        cols = {
            meta.time_col: _concat_times([_slice_times(t, s, h_) for s in stops], meta),
            "cutoff": _concat_times([_repeat_time(t, s - 1, h_) for s in stops], meta),
        }
        for k, name in enumerate(table.names):
            cols[str(name)] = actual[k].reshape(-1)
        for k, name in enumerate(table.names):
            cols[f"{name}_hat"] = point[k].reshape(-1)
        if quant is not None:
            for k, name in enumerate(table.names):
                for j, col in enumerate(self._quantile_names(str(name))):
                    cols[col] = quant[k, ..., j].reshape(-1)
        return build_frame(cols, meta, extra_time_cols=("cutoff",))

    def score(
        self, df: Any, h: int | None = None, n_windows: int = 1, step: int | None = None
    ) -> float:
        """Negative mean squared error (greater is better, like scikit-learn scores) of the
        rolling-origin forecasts of :meth:`cross_validation`, on the standardised scale of
        each series (so series of different units weigh equally)."""
        _, _, point, _, actual = self._cv_arrays(df, h, n_windows, step)
        return -float(np.mean((point - actual) ** 2))

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike) -> pathlib.Path:
        """Write a versioned directory: ``estimator.json`` (format version, parameters,
        model config, fitted metadata), ``weights.pt`` (state dict) and ``arrays.npz``
        (scalers, last context). Returns the directory path.
        """
        self._check_fitted()
        folder = pathlib.Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        params = self.get_params(deep=False)
        if params["random_state"] is not None and not isinstance(params["random_state"], int):
            params["random_state"] = self.seed_
        if isinstance(params["quantiles"], np.ndarray):
            params["quantiles"] = params["quantiles"].tolist()
        elif isinstance(params["quantiles"], tuple):
            params["quantiles"] = list(params["quantiles"])
        meta = self.frame_meta_
        document = {
            "format": _FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "titans_ts_version": _package_version(),
            "params": params,
            "model_config": self.config_.to_dict(),
            "fitted": {
                "horizon_": self.horizon_,
                "lookback_": self.lookback_,
                "freq_": _jsonable(self.freq_),
                "series_names_": [_jsonable(n) for n in self.series_names_],
                "frame_meta_": {k: _jsonable(v) for k, v in meta.to_dict().items()},
                "history_": self.history_,
                "best_epoch_": self.best_epoch_,
                "network_test_": self.network_test_,
                "network_trained_": self.network_trained_,
                "linear_skip_alpha_": self.linear_skip_alpha_,
                "linear_val_loss_": self.linear_val_loss_,
                "seasonality_": self.seasonality_,
                "seasonal_period_": self.seasonal_period_,
                "seasonal_scores_": self.seasonal_scores_,
                "linear_start_": None if self.linear_start_ is None else {
                    "mode": self.linear_start_.mode,
                    "alpha": self.linear_start_.alpha,
                    "val_mse": self.linear_start_.val_mse,
                },
                "n_train_windows_": self.n_train_windows_,
                "n_val_windows_": self.n_val_windows_,
                "seed_": self.seed_,
                "last_times_": [
                    int(t) if meta.time_kind == "int" else pd.Timestamp(t).isoformat()
                    for t in self.last_times_
                ],
            },
        }
        try:
            text = json.dumps(document, indent=2)
        except TypeError as err:
            raise TypeError(
                f"cannot save: a parameter is not JSON-serialisable ({err}); use plain "
                "Python values (str, int, float, list) for the estimator's parameters"
            ) from err
        (folder / "estimator.json").write_text(text)
        torch.save(self.model_.state_dict(), folder / "weights.pt")
        np.savez(
            folder / "arrays.npz",
            scaler_mean=self.scaler_mean_,
            scaler_std=self.scaler_std_,
            last_values=self.last_values_,
            **({} if self.seasonal_profile_ is None else {
                "seasonal_profile": self.seasonal_profile_
            }),
            **({} if self.linear_start_ is None else {
                "linear_start_coef": self.linear_start_.coef,
                "linear_start_intercept": self.linear_start_.intercept,
            }),
        )
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike) -> TitansForecaster:
        """Load a directory written by :meth:`save` (works in a fresh process)."""
        folder = pathlib.Path(path)
        file = folder / "estimator.json"
        if not file.is_file():
            raise FileNotFoundError(
                f"{str(folder)!r} is not a saved {cls.__name__} (no estimator.json)"
            )
        document = json.loads(file.read_text())
        if document.get("format") != _FORMAT_NAME:
            raise ValueError(f"{file} holds {document.get('format')!r}, not {_FORMAT_NAME!r}")
        version = document.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"{file} has format_version {version}; this titans_ts reads version "
                f"{FORMAT_VERSION}; load it with the titans_ts version that wrote it "
                f"({document.get('titans_ts_version')})"
            )
        est = cls(**document["params"])
        fitted = document["fitted"]
        config = ForecastModelConfig.from_dict(document["model_config"])
        model = TitansForecastModel(config)
        state = torch.load(folder / "weights.pt", map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        arrays = np.load(folder / "arrays.npz")
        meta = FrameMeta(**fitted["frame_meta_"])
        est.config_ = config
        est.model_ = model.eval()
        est.horizon_ = int(fitted["horizon_"])
        est.lookback_ = int(fitted["lookback_"])
        est.freq_ = fitted["freq_"]
        est.frame_meta_ = meta
        est.series_names_ = list(fitted["series_names_"])
        est.n_series_ = len(est.series_names_)
        est.scaler_mean_ = arrays["scaler_mean"]
        est.scaler_std_ = arrays["scaler_std"]
        est.last_values_ = arrays["last_values"]
        est.history_ = fitted["history_"]
        est.best_epoch_ = fitted["best_epoch_"]
        est.network_test_ = fitted.get("network_test_")
        est.network_trained_ = fitted.get("network_trained_", True)
        est.linear_skip_alpha_ = fitted.get("linear_skip_alpha_")
        est.linear_val_loss_ = fitted.get("linear_val_loss_")
        est.seasonality_ = fitted.get("seasonality_", "none")
        est.seasonal_period_ = fitted.get("seasonal_period_")
        est.seasonal_scores_ = fitted.get("seasonal_scores_", {})
        est.seasonal_profile_ = (
            arrays["seasonal_profile"] if "seasonal_profile" in arrays.files else None
        )
        start = fitted.get("linear_start_")
        est.linear_start_ = None if start is None else SeasonalRidgeFit(
            start["mode"], arrays["linear_start_coef"], arrays["linear_start_intercept"],
            start["alpha"], start["val_mse"],
        )
        est.n_train_windows_ = fitted["n_train_windows_"]
        est.n_val_windows_ = fitted["n_val_windows_"]
        est.seed_ = fitted["seed_"]
        est.last_times_ = [
            int(t) if meta.time_kind == "int" else _restore_timestamp(t, meta)
            for t in fitted["last_times_"]
        ]
        return est

    # ------------------------------------------------------------------ plotting

    def plot(
        self,
        df: Any = None,
        series: Any = None,
        h: int | None = None,
        *,
        n_history: int | None = None,
        ax: Any = None,
    ) -> Any:
        """Plot one series' recent history, its forecast and (with quantiles) the widest
        interval, with matplotlib.

        Args:
            df: history frame as in :meth:`predict` (``None``: the end of the training data).
            series: series name (id or column); default the first.
            h: forecast steps (default ``horizon_``).
            n_history: history steps shown (default ``2 * lookback_``, all when shorter).
            ax: matplotlib Axes to draw on.

        Returns:
            The matplotlib ``Axes``.
        """
        from titans_ts.plotting import plot_forecast

        self._check_fitted()
        h = self._check_h(h)
        name = self.series_names_[0] if series is None else series
        if name not in self.series_names_:
            raise ValueError(
                f"series {name!r} is unknown; choose one of {self.series_names_[:10]}"
            )
        if df is None:
            k = self.series_names_.index(name)
            hist_values = self.last_values_[k]
            hist_times = _history_times(self.last_times_[k], len(hist_values), self.freq_)
        else:
            table = self._read(df, fit=False)
            if name not in table.names:
                raise ValueError(f"series {name!r} is not in this frame")
            k = table.names.index(name)
            hist_values, hist_times = table.values[k], table.times[k]
        n_history = 2 * self.lookback_ if n_history is None else int(n_history)
        hist_values, hist_times = hist_values[-n_history:], hist_times[-n_history:]
        forecast = self.predict(h=h, df=df)
        point, lower, upper, label, times = _series_forecast(self, forecast, name)
        return plot_forecast(
            np.asarray(hist_times), hist_values, times, point,
            lower=lower, upper=upper, interval_label=label, title=str(name), ax=ax,
        )


# --------------------------------------------------------------------------- helpers


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("titans_ts")
    except Exception:  # not installed (e.g. running from a source tree)
        return "unknown"


def _restore_timestamp(text: str, meta: FrameMeta) -> pd.Timestamp:
    stamp = pd.Timestamp(text)
    return stamp.tz_convert(meta.tz) if meta.tz and stamp.tz is not None else stamp


def _concat_times(times: list[Any], meta: FrameMeta) -> Any:
    if meta.time_kind == "int":
        return np.concatenate([np.asarray(t, dtype=np.int64) for t in times])
    parts = [pd.DatetimeIndex(t) for t in times]
    out = parts[0].append(parts[1:]) if len(parts) > 1 else parts[0]
    return out


def _slice_times(t: Any, start: int, h: int) -> Any:
    return t[start : start + h]


def _repeat_time(t: Any, i: int, h: int) -> Any:
    if isinstance(t, pd.DatetimeIndex):
        return pd.DatetimeIndex([t[i]] * h)
    return np.full(h, int(t[i]), dtype=np.int64)


def _history_times(last: Any, n: int, freq: str | int) -> Any:
    if isinstance(freq, (int, np.integer)):
        return int(last) - int(freq) * np.arange(n - 1, -1, -1, dtype=np.int64)
    return pd.date_range(end=last, periods=n, freq=freq)


def _series_forecast(
    est: TitansForecaster, forecast: Any, name: Any
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, str | None, np.ndarray]:
    """Point, lower, upper, interval label and times of one series from a predict frame."""
    meta = est.frame_meta_
    columns = list(forecast.columns)
    levels = est.config_.quantiles or ()

    def col(frame: Any, c: str) -> np.ndarray:
        return np.asarray(frame[c].to_numpy())

    if meta.layout == "long":
        ids = np.asarray(forecast[meta.id_col].to_numpy(), dtype=object)
        rows = np.flatnonzero(ids == name)
        base = meta.target_col or est.target_col
        get = lambda c: col(forecast, c)[rows]  # noqa: E731
        times = get(meta.time_col)
    else:
        base = str(name)
        get = lambda c: col(forecast, c)  # noqa: E731
        times = get(meta.time_col)
    point = get(base if base in columns else base)
    if len(levels) >= 2:
        names = est._quantile_names(base)
        lo, hi = names[0], names[-1]
        return point, get(lo), get(hi), f"{lo} .. {hi}", times
    return point, None, None, None, times
