"""Long-horizon benchmark recipe (DESIGN.md §5): Titans next to in-run baselines.

Example::

    python recipes/long_horizon.py --dataset ETTh1 --horizons 96 192 336 720

For each dataset and horizon ``H`` this

1. loads the §5 splits with :func:`titans_ts.datasets.load_long_horizon` (12/4/4-month or
   0.7/0.1/0.2 borders, ``L``-row back-shift of val/test, scaler fitted on train, stride-1
   windows);
2. fits a :class:`titans_ts.estimators.TitansForecaster` (its :data:`DEFAULTS` unless flags
   override them) on the scaled train + val rows with ``validation_size`` = the val rows, so
   its training windows are exactly the train-split windows and its early-stopping windows
   are the val-split windows (asserted below);
3. fits the in-run baselines on the same splits: repeat-last-value and the last-value
   centred ridge map of :mod:`titans_ts.baselines.linear` (ridge penalty chosen on val),
   and reports the estimator's own linear start (the same ridge map on windows with the
   daily cycle removed, whether and how chosen on val: ``seasonality``) as a third
   baseline, so the gain of the cycle and that of the Titans network are told apart;
4. scores them all with one harness, :func:`evaluate`, over **all** test windows (no
   ``drop_last``; MSE/MAE on the standardised scale, float64 accumulation);
5. writes ``<out>/<dataset>_results.csv``, ``<out>/<dataset>_results.md`` (per-horizon and
   average MSE/MAE beside the published numbers of DESIGN §5) and ``<out>/<dataset>_mse.png``.

The files name the hardware, the exact command and, when ``--max-train-windows`` or
``--quick`` made the run cheaper than the protocol, say so.

Data are found as in :mod:`titans_ts.datasets.discovery` (``--data-path``, then
``TITANS_TS_DATA_DIR``, then the user cache, then a verified download).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import pathlib
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from titans_ts.backbone import VARIANTS
from titans_ts.baselines.linear import LastValueRidge, repeat_last_value
from titans_ts.datasets.long_horizon import (
    HORIZONS,
    LONG_HORIZON_DATASETS,
    LongHorizonSplits,
    WindowDataset,
    load_long_horizon,
)
from titans_ts.encoders.seasonal import season_slices
from titans_ts.estimators import TitansForecaster
from titans_ts.estimators._base import resolve_device
from titans_ts.estimators.forecaster import DEFAULTS
from titans_ts.metrics import RegressionAccumulator
from titans_ts.provenance import _cpu_model, hardware_description  # noqa: F401 (re-exported)

__all__ = [
    "PUBLISHED",
    "build_parser",
    "evaluate",
    "fit_titans",
    "hardware_description",
    "main",
    "markdown_table",
    "run_dataset",
    "titans_predictor",
]

#: Published 4-horizon averages (L = 96), MSE/MAE, copied from DESIGN.md §5.
PUBLISHED: dict[str, dict[str, tuple[float, float]]] = {
    "Titans (paper, Table 3)": {
        "ETTh1": (0.420, 0.421), "ETTh2": (0.336, 0.382), "ETTm1": (0.358, 0.387),
        "ETTm2": (0.261, 0.309), "Weather": (0.231, 0.265),
    },
    "iTransformer (published)": {
        "ETTh1": (0.454, 0.447), "ETTh2": (0.383, 0.407), "ETTm1": (0.407, 0.410),
        "ETTm2": (0.288, 0.332), "Weather": (0.258, 0.278),
    },
    "PatchTST (published)": {
        "ETTh1": (0.469, 0.454), "ETTh2": (0.387, 0.407), "ETTm1": (0.387, 0.400),
        "ETTm2": (0.281, 0.326), "Weather": (0.259, 0.281),
    },
    "DLinear (published)": {
        "ETTh1": (0.456, 0.452), "ETTh2": (0.559, 0.515), "ETTm1": (0.403, 0.407),
        "ETTm2": (0.350, 0.401), "Weather": (0.265, 0.317),
    },
}

TITANS = "Titans (this run)"
RIDGE = "Ridge, last-value centred (this run)"
CYCLE = "Ridge + seasonal cycle, Titans' linear start (this run)"
LAST = "Repeat last value (this run)"
_IN_RUN = (TITANS, RIDGE, CYCLE, LAST)

#: Settings of ``--quick`` (smoke tests): a tiny network, one short epoch.
QUICK = {
    "d_model": 16, "n_layers": 1, "n_heads": 2, "n_persistent": 2, "memory_depth": 1,
    "epochs": 1, "max_train_windows": 64, "batch_size": 16,
}

#: ``predict(x (B, L, C), first)``: ``first`` is the index (in the split) of the batch's
#: first window, which fixes the time steps, hence the seasonal phase, of every window.
Predictor = Callable[[torch.Tensor, int], Any]


# --------------------------------------------------------------------------- hardware
# hardware_description (and its _cpu_model helper) live in titans_ts.provenance; imported
# above and kept in __all__ for existing callers.


# --------------------------------------------------------------------------- evaluation


def evaluate(predict: Predictor, windows: WindowDataset, batch_size: int = 512) -> dict[str, Any]:
    """MSE/MAE of ``predict(x (B, L, C), first) -> (B, H, C)`` over **every** window of
    ``windows`` (``first``: index of the batch's first window).

    The last batch may be short (no ``drop_last``) and sums are accumulated in float64, so
    the result does not depend on ``batch_size`` beyond float rounding.

    Returns:
        ``{"mse", "mae", "n_windows", "n_values"}``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    acc = RegressionAccumulator()
    n = len(windows)
    for start in range(0, n, batch_size):
        x, y = windows.batch(start, start + batch_size)
        acc.update(predict(x, start), y)
    expected = n * windows.horizon * windows.n_channels
    if acc.count != expected:  # a guard for the "all windows" promise of the protocol
        raise RuntimeError(f"scored {acc.count} values, expected {expected}")
    return {**acc.compute(), "n_windows": n, "n_values": acc.count}


def titans_predictor(
    est: TitansForecaster,
    device: torch.device | None = None,
    first_step: int = 0,
    *,
    linear_start: bool = False,
) -> Predictor:
    """``(x (B, L, C), first) -> (B, H, C)`` on the protocol's scale through a fitted
    estimator.

    The estimator fitted its own per-series scaler on the (already standardised) train rows;
    inputs are mapped into that scale and forecasts back, as ``TitansForecaster.predict``
    does, so nothing depends on it being the identity. ``first_step`` is the estimator's
    time step (the frame's integer ``step``) of the split's row 0: window ``i`` starts at
    step ``first_step + i``, which places the seasonal cycle. ``linear_start=True`` forecasts
    with the closed-form linear start alone (``est.linear_start_``).
    """
    device = device or torch.device("cpu")
    model = est.model_.to(device).eval()
    mean = torch.as_tensor(np.asarray(est.scaler_mean_, dtype=np.float64))
    std = torch.as_tensor(np.asarray(est.scaler_std_, dtype=np.float64))
    width = est.lookback_ + est.horizon_
    profile = None
    if est.seasonal_profile_ is not None:  # (units, P, C) -> (P, C) over the frame's columns
        prof = est.seasonal_profile_
        profile = prof[0] if est.channel_mixing else prof[:, :, 0].T
    start_map = est.linear_start_
    if linear_start and start_map is None:
        raise ValueError("this estimator has no closed-form linear start (linear_skip=False)")

    @torch.no_grad()
    def predict(x: torch.Tensor, first: int) -> torch.Tensor:
        z = (x.to(torch.float64) - mean) / std
        season = None if profile is None else torch.as_tensor(
            season_slices(profile, first_step + first + np.arange(len(x)), width)
        )
        if linear_start:
            assert start_map is not None
            s = None if season is None else season.double().numpy()
            point = torch.as_tensor(start_map.predict(z.numpy(), s))
        else:
            point = model(
                z.to(device=device, dtype=torch.float32),
                None if season is None else season.to(device),
            ).point.to("cpu", torch.float64)
        return point * std + mean

    return predict


# --------------------------------------------------------------------------- Titans


def _estimator_params(
    args: argparse.Namespace, horizon: int, n_channels: int, period: int | None = None
) -> dict[str, Any]:
    """TitansForecaster keyword arguments; batch and epoch sizes are given in protocol
    windows and converted to (window, channel) series in the channel-independent mode.
    ``period``: the seasonal period when ``--seasonal-period`` is not given (the estimator
    sees integer steps, which carry no natural period)."""
    per_window = 1 if args.channel_mixing else n_channels
    params: dict[str, Any] = {
        "horizon": horizon,
        "lookback": args.lookback,
        "channel_mixing": bool(args.channel_mixing),
        "variant": args.variant,
        "d_model": args.d_model,
        "n_layers": args.n_layers,
        "n_heads": args.n_heads,
        "n_persistent": args.n_persistent,
        "memory_depth": args.memory_depth,
        "memory_chunk_size": args.memory_chunk_size,
        "patch_len": args.patch_len,
        "stride": args.stride,
        "dropout": args.dropout,
        "linear_skip": bool(args.linear_skip),
        "train_linear_skip": bool(args.train_linear_skip),
        "seasonality": args.seasonality,
        "seasonal_period": args.seasonal_period if args.seasonal_period else period,
        "max_epochs": args.epochs,
        "max_time": args.max_time,
        "batch_size": args.batch_size * per_window,
        "windows_per_epoch": (
            None if args.max_train_windows is None else args.max_train_windows * per_window
        ),
        "learning_rate": args.lr,
        "weight_decay": args.weight_decay,
        "patience": args.patience,
        "significance": args.significance,
        "min_train_horizons": args.min_train_horizons,
        "accelerator": args.device,
        "random_state": args.seed,
        "verbose": bool(args.verbose),
    }
    return params


def fit_titans(
    splits: LongHorizonSplits, params: dict[str, Any]
) -> tuple[TitansForecaster, float]:
    """Fit a TitansForecaster on the train split with early stopping on the val split.

    The frame handed to the estimator is the scaled rows ``[0, val_end)`` with an integer
    time column (so repeated timestamps in a file, like Weather's, cannot matter), and
    ``validation_size`` is the number of val rows: the estimator's training windows are then
    the train-split windows and its validation windows the val-split windows.

    Returns:
        The fitted estimator and the fit time in seconds.
    """
    lookback = splits.lookback
    rows = np.concatenate([splits.train, splits.val[lookback:]], axis=0)
    names = [f"v{i}" for i in range(splits.n_channels)]
    frame = pd.DataFrame(rows.astype(np.float64), columns=names)
    frame.insert(0, "step", np.arange(len(rows), dtype=np.int64))
    est = TitansForecaster(
        **params, time_col="step", freq=1, early_stopping=True,
        validation_size=len(splits.val) - lookback,
    )
    started = time.perf_counter()
    est.fit(frame)
    seconds = time.perf_counter() - started
    per_window = 1 if est.channel_mixing else splits.n_channels
    want = (splits.n_windows("train") * per_window, splits.n_windows("val") * per_window)
    got = (est.n_train_windows_, est.n_val_windows_)
    if got != want or est.series_names_ != names:
        raise RuntimeError(
            f"estimator windows (train, val) = {got} differ from the protocol's {want}"
        )
    return est, seconds


# --------------------------------------------------------------------------- one dataset


def run_dataset(args: argparse.Namespace, dataset: str) -> dict[str, Any]:
    """Fit and score Titans and the baselines at every horizon of ``args.horizons``.

    Returns:
        ``{"dataset", "records", "estimators", "windows"}``: one record per (model, horizon),
        the fitted estimators by horizon, and ``{horizon: (train, val, test)}`` window counts.
    """
    device = resolve_device(args.device, 1)
    records: list[dict[str, Any]] = []
    estimators: dict[int, TitansForecaster] = {}
    windows: dict[int, tuple[int, int, int]] = {}
    name = dataset
    for horizon in args.horizons:
        splits = load_long_horizon(
            dataset, lookback=args.lookback, horizon=horizon, path=args.data_path
        )
        name = splits.name
        test = splits.windows("test")
        counts = (splits.n_windows("train"), splits.n_windows("val"), splits.n_windows("test"))
        windows[horizon] = counts
        base = {"dataset": name, "horizon": horizon, "n_test_windows": counts[2]}

        params = _estimator_params(args, horizon, splits.n_channels, splits.steps_per_day())
        est, fit_seconds = fit_titans(splits, params)
        estimators[horizon] = est
        # the estimator's step 0 is the train split's first row
        test_step = splits.borders["test"][0] - splits.borders["train"][0]
        started = time.perf_counter()
        scores = evaluate(titans_predictor(est, device, test_step), test, args.eval_batch_size)
        epochs_run = len(est.history_)
        records.append({
            **base, "model": TITANS, **scores,
            "fit_seconds": fit_seconds, "eval_seconds": time.perf_counter() - started,
            "epochs_run": epochs_run,
            # 1-based; 0 = no epoch beat the closed-form linear start (linear_skip)
            "best_epoch": None if est.best_epoch_ is None else est.best_epoch_ + 1,
            "best_val_loss": _best_val(est.history_, est.linear_val_loss_),
            "linear_val_loss": est.linear_val_loss_,
            "n_parameters": sum(p.numel() for p in est.model_.parameters()),
            "seasonality": est.seasonality_,
            "seasonal_period": est.seasonal_period_,
            "seasonal_scores": json.dumps(
                {k: round(v, 6) for k, v in est.seasonal_scores_.items()}
            ),
            "network_test": "" if est.network_test_ is None else json.dumps(est.network_test_),
            "network_trained": est.network_trained_,
        })
        test_note = "" if est.network_trained_ else ", not trained: min_train_horizons"
        test_note += "" if est.network_test_ is None else (
            f", val gain p {est.network_test_['p']:.3f}: "
            + ("network kept" if est.network_test_["kept"] else "linear start kept")
        )
        _log(args, f"{name} H={horizon} Titans: mse {scores['mse']:.4f} mae "
             f"{scores['mae']:.4f} ({epochs_run} epochs, best {records[-1]['best_epoch']}, "
             f"fit {fit_seconds:.0f} s{test_note})")

        started = time.perf_counter()
        ridge = LastValueRidge(splits.lookback, horizon).fit(splits.train, splits.val)
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        scores = evaluate(
            lambda x, _first, m=ridge: m.predict(x.numpy()), test, args.eval_batch_size
        )
        records.append({
            **base, "model": RIDGE, **scores, "fit_seconds": fit_seconds,
            "eval_seconds": time.perf_counter() - started, "alpha": ridge.alpha_,
        })
        ridge_mse = scores["mse"]
        if est.linear_start_ is not None:
            started = time.perf_counter()
            scores = evaluate(
                titans_predictor(est, device, test_step, linear_start=True), test,
                args.eval_batch_size,
            )
            records.append({
                **base, "model": CYCLE, **scores, "fit_seconds": None,
                "eval_seconds": time.perf_counter() - started,
                "alpha": est.linear_start_.alpha, "seasonality": est.linear_start_.mode,
                "seasonal_period": est.seasonal_period_,
            })
            _log(args, f"{name} H={horizon} ridge + cycle ({est.linear_start_.mode}): mse "
                 f"{scores['mse']:.4f}")
        started = time.perf_counter()
        scores = evaluate(
            lambda x, _first, h=horizon: repeat_last_value(x.numpy(), h), test,
            args.eval_batch_size,
        )
        records.append({
            **base, "model": LAST, **scores, "fit_seconds": 0.0,
            "eval_seconds": time.perf_counter() - started,
        })
        _log(args, f"{name} H={horizon} ridge: mse {ridge_mse:.4f}; "
             f"repeat-last: mse {records[-1]['mse']:.4f}")
    return {"dataset": name, "records": records, "estimators": estimators, "windows": windows}


def _best_val(history: list[dict[str, Any]], start: float | None = None) -> float | None:
    values = [r["val_loss"] for r in history if r.get("val_loss") is not None]
    values += [] if start is None else [start]
    return min(values) if values else None


def _log(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text, flush=True)


# --------------------------------------------------------------------------- outputs


def _averages(records: Sequence[dict[str, Any]], model: str) -> tuple[float, float]:
    rows = [r for r in records if r["model"] == model]
    return float(np.mean([r["mse"] for r in rows])), float(np.mean([r["mae"] for r in rows]))


def _fmt(value: float | None) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else (
        f"{value:.3f}"
    )


def markdown_table(
    dataset: str, records: Sequence[dict[str, Any]], horizons: Sequence[int]
) -> str:
    """Per-horizon and average MSE/MAE of the in-run models, then the published rows of
    DESIGN §5 (4-horizon averages only) for ``dataset``."""
    head = ["Model"]
    for h in horizons:
        head += [f"{h} MSE", f"{h} MAE"]
    head += ["Avg MSE", "Avg MAE"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model in _IN_RUN:
        by_h = {r["horizon"]: r for r in records if r["model"] == model}
        if not by_h:
            continue
        cells = [model]
        for h in horizons:
            row = by_h.get(h)
            cells += [_fmt(row["mse"]), _fmt(row["mae"])] if row else ["–", "–"]
        cells += [_fmt(v) for v in _averages(records, model)]
        lines.append("| " + " | ".join(cells) + " |")
    for model, table in PUBLISHED.items():
        if dataset not in table:
            continue
        mse, mae = table[dataset]
        lines.append(
            "| " + " | ".join([model] + ["–"] * (2 * len(horizons)) + [_fmt(mse), _fmt(mae)])
            + " |"
        )
    return "\n".join(lines)


def _verdict(mse: float, reference: float) -> str:
    """"beats" / "ties" / "does not beat"; within half a unit of the printed precision is a
    tie, not a win."""
    if abs(mse - reference) < 5e-4:
        return "ties"
    return "beats" if mse < reference else "does **not** beat"


def _report(
    args: argparse.Namespace, result: dict[str, Any], hardware: str, command: str,
    wall_seconds: float,
) -> str:
    dataset, records = result["dataset"], result["records"]
    horizons = list(args.horizons)
    full = sorted(horizons) == sorted(HORIZONS)
    windows = result["windows"]
    any_est = next(iter(result["estimators"].values()))
    cfg = any_est.config_
    bb = cfg.backbone
    mem = bb.memory
    lines = [
        f"# Long-horizon benchmark: {dataset} (L = {args.lookback})",
        "",
        f"- Command: `{command}`",
        f"- Hardware: {hardware}",
        f"- Wall time: {wall_seconds / 60:.1f} min for {len(horizons)} horizon(s)",
        "- Protocol: DESIGN.md §5 — splits with the L-row back-shift, scaler fitted on train, "
        "stride-1 windows, MSE/MAE on the standardised scale over **all** test windows "
        "(test windows per horizon: "
        + ", ".join(f"{h}: {windows[h][2]:,}" for h in horizons) + ").",
        f"- Titans: variant={bb.variant}, d_model={bb.d_model}, n_layers={bb.n_layers}, "
        f"n_heads={bb.n_heads}, n_persistent={bb.n_persistent}, memory_depth="
        f"{mem.depth if mem else '–'}, memory_chunk_size={mem.chunk_size if mem else '–'}, "
        f"patch_len={cfg.patch_len}, stride={cfg.stride}, channel_mixing={cfg.channel_mixing}, "
        f"linear_skip={cfg.linear_skip} (trained: {any_est.train_linear_skip}), "
        f"seasonality={any_est.seasonality} (period {any_est.seasonal_period_}; chosen per "
        "horizon: " + ", ".join(
            f"{h}: {e.seasonality_}" for h, e in result["estimators"].items()
        ) + "), "
        f"dropout={bb.dropout}, lr={any_est.learning_rate}, batch={args.batch_size} windows, "
        f"max_epochs={args.epochs}, patience={any_est.patience}, seed={args.seed}"
        + ("." if args.max_time is None else f", max_time={args.max_time:g} s per horizon."),
    ]
    if args.max_train_windows is None:
        lines.append(
            "- Training: every train window each epoch (train windows per horizon: "
            + ", ".join(f"{h}: {windows[h][0]:,}" for h in horizons) + ")."
        )
    else:
        lines.append(
            f"- **Reduced budget**: each epoch samples {args.max_train_windows:,} windows' "
            "worth of training series (without replacement, channel by channel) out of "
            + ", ".join(f"{windows[h][0]:,} (H={h})" for h in horizons)
            + " train windows; the published models train on all of them every epoch."
        )
    lines.append(
        f"- Early stopping: on the val split (at most {DEFAULTS.max_val_windows:,} evenly "
        "spaced val series per epoch, TitansForecaster's `max_val_windows`), best weights "
        "restored. Epochs run (best) per horizon: "
        + ", ".join(
            f"{r['horizon']}: {r['epochs_run']} ({r['best_epoch']})"
            for r in records if r["model"] == TITANS
        ) + "."
    )
    untrained = [r["horizon"] for r in records
                 if r["model"] == TITANS and r.get("network_trained") is False]
    if untrained:
        lines.append(
            f"- **Titans correction not trained at H = {', '.join(map(str, untrained))}**: "
            f"the train split spans fewer than {args.min_train_horizons} horizons "
            "(`min_train_horizons`), so the estimator ships its closed-form linear start "
            "(the ridge + cycle row) there."
        )
    if args.quick:
        lines.append("- **--quick smoke run**: tiny network, one short epoch; not a result.")
    lines += ["", markdown_table(dataset, records, horizons), ""]
    if not full:
        lines.append(
            f"The in-run averages cover H ∈ {horizons} only; the published rows are "
            "4-horizon averages (96/192/336/720), so the Avg columns are not comparable."
        )
    else:
        t_mse, _ = _averages(records, TITANS)
        r_mse, _ = _averages(records, RIDGE)
        lines.append(
            f"Titans' 4-horizon average MSE {t_mse:.4f} {_verdict(t_mse, r_mse)} the in-run "
            f"ridge baseline ({r_mse:.4f})."
        )
        if any(r["model"] == CYCLE for r in records):
            c_mse, _ = _averages(records, CYCLE)
            modes = ", ".join(
                f"{r['horizon']}: {r['seasonality']}" for r in records if r["model"] == CYCLE
            )
            lines.append(
                f"Against its own linear start, the ridge map with the seasonal cycle removed "
                f"(mode chosen on val per horizon: {modes}; average {c_mse:.4f}), it "
                f"{_verdict(t_mse, c_mse)} it (the difference is what the Titans network "
                "adds to it)."
            )
        for model, table in PUBLISHED.items():
            if dataset in table:
                ref = table[dataset][0]
                lines.append(
                    f"- vs {model}: {t_mse:.3f} vs {ref:.3f} "
                    f"({'better' if t_mse < ref else 'worse'} by {abs(t_mse - ref):.3f})"
                )
    lines.append(
        "\nPublished rows: 4-horizon averages from DESIGN.md §5 (per-horizon values not "
        "copied)."
    )
    return "\n".join(lines) + "\n"


_CSV_FIELDS = [
    "dataset", "model", "horizon", "mse", "mae", "n_test_windows", "n_values", "fit_seconds",
    "eval_seconds", "epochs_run", "best_epoch", "best_val_loss", "n_parameters", "alpha",
    "seasonality", "seasonal_period", "seasonal_scores", "network_trained", "network_test",
    "max_train_windows", "seed",
    "hardware", "command",
]


def _write_csv(
    path: pathlib.Path, args: argparse.Namespace, records: Sequence[dict[str, Any]],
    hardware: str, command: str,
) -> None:
    dataset = records[0]["dataset"]
    rows = [dict(r) for r in records]
    for model in _IN_RUN:
        if any(r["model"] == model for r in records):
            mse, mae = _averages(records, model)
            rows.append({"dataset": dataset, "model": model, "horizon": "avg", "mse": mse,
                         "mae": mae})
    for model, table in PUBLISHED.items():
        if dataset in table:
            rows.append({"dataset": dataset, "model": model, "horizon": "avg4",
                         "mse": table[dataset][0], "mae": table[dataset][1]})
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=_CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            if row["model"] in _IN_RUN:
                row.update(max_train_windows=args.max_train_windows, seed=args.seed,
                           hardware=hardware, command=command)
            writer.writerow(row)


def _plot(path: pathlib.Path, dataset: str, records: Sequence[dict[str, Any]],
          horizons: Sequence[int], hardware: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # repeat-last is far above the others (MSE ~1.3 on ETTh1): named in the title only
    shown = tuple(m for m in (TITANS, RIDGE, CYCLE) if any(r["model"] == m for r in records))
    last_mse = _averages(records, LAST)[0]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for model, marker in zip(shown, "osd", strict=False):
        rows = sorted((r for r in records if r["model"] == model), key=lambda r: r["horizon"])
        left.plot([r["horizon"] for r in rows], [r["mse"] for r in rows], marker=marker,
                  label=model)
    left.set_xlabel("horizon H")
    left.set_ylabel("test MSE (standardised)")
    left.set_xticks(sorted(horizons))
    left.set_title(f"{dataset}: per horizon (repeat-last avg MSE {last_mse:.3f}, not shown)",
                   fontsize=9)
    left.legend(fontsize=8)
    labels, values, colors = [], [], []
    for model in shown:
        labels.append(model.replace(" (this run)", "\n(this run)"))
        values.append(_averages(records, model)[0])
        colors.append("tab:blue")
    if sorted(horizons) == sorted(HORIZONS):
        for model, table in PUBLISHED.items():
            if dataset in table:
                labels.append(model.replace(" (", "\n("))
                values.append(table[dataset][0])
                colors.append("tab:gray")
    right.bar(range(len(values)), values, color=colors)
    right.set_xticks(range(len(values)), labels, fontsize=6, rotation=45, ha="right")
    right.set_ylim(min(values) * 0.9, max(values) * 1.05)
    right.set_ylabel("average MSE")
    right.set_title(f"average over H ∈ {list(horizons)}")
    fig.suptitle(hardware, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- command line


def _level_or_none(text: str) -> float | None:
    """``--significance`` values: a level in (0, 1) or ``none``."""
    if text.lower() == "none":
        return None
    try:
        level = float(text)
    except ValueError:
        level = -1.0
    if not 0.0 < level < 1.0:
        raise argparse.ArgumentTypeError(f"expected a level in (0, 1) or 'none', got {text!r}")
    return level


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (defaults come from TitansForecaster's DEFAULTS)."""
    p = argparse.ArgumentParser(
        prog="python recipes/long_horizon.py",
        description="Titans vs in-run baselines on the long-horizon protocol of DESIGN §5.",
    )
    p.add_argument("--dataset", nargs="+", default=["ETTh1"],
                   help=f"dataset name(s) ({', '.join(LONG_HORIZON_DATASETS)}) or wide CSV paths")
    p.add_argument("--horizons", type=int, nargs="+", default=list(HORIZONS))
    p.add_argument("--lookback", type=int, default=96, help="L (96 in the protocol)")
    p.add_argument("--data-path", default=None, help="explicit file or folder of the data")
    p.add_argument("--variant", choices=VARIANTS, default=DEFAULTS.variant)
    p.add_argument("--d-model", type=int, default=DEFAULTS.d_model)
    p.add_argument("--n-layers", type=int, default=DEFAULTS.n_layers)
    p.add_argument("--n-heads", type=int, default=DEFAULTS.n_heads)
    p.add_argument("--n-persistent", type=int, default=DEFAULTS.n_persistent)
    p.add_argument("--memory-depth", type=int, default=DEFAULTS.memory_depth)
    p.add_argument("--memory-chunk-size", type=int, default=DEFAULTS.memory_chunk_size)
    p.add_argument("--patch-len", type=int, default=None, help="default: TitansForecaster's")
    p.add_argument("--stride", type=int, default=None, help="default: patch_len // 2")
    p.add_argument("--dropout", type=float, default=DEFAULTS.dropout)
    p.add_argument("--linear-skip", action=argparse.BooleanOptionalAction,
                   default=DEFAULTS.linear_skip, help="RLinear path beside the Titans one")
    p.add_argument("--train-linear-skip", action=argparse.BooleanOptionalAction,
                   default=DEFAULTS.train_linear_skip,
                   help="let training move the ridge-initialised linear path")
    p.add_argument("--seasonality", choices=["auto", "none", "fixed", "adaptive"],
                   default=DEFAULTS.seasonality,
                   help="seasonal cycle removal (TitansForecaster's seasonality)")
    p.add_argument("--seasonal-period", type=int, default=None,
                   help="cycle length in rows (default: one day of the data's spacing)")
    p.add_argument("--channel-mixing", action="store_true",
                   help="mix channels per token instead of channel independence")
    p.add_argument("--epochs", type=int, default=DEFAULTS.max_epochs, help="max epochs")
    p.add_argument("--patience", type=int, default=DEFAULTS.patience)
    p.add_argument("--min-train-horizons", type=int, default=DEFAULTS.min_train_horizons,
                   help="train the Titans correction only when the train split spans at "
                   "least this many horizons, else ship its linear start "
                   "(TitansForecaster's min_train_horizons; 0: always train)")
    p.add_argument("--significance", type=_level_or_none, default=DEFAULTS.significance,
                   help="keep the trained correction only if it beats the linear start on "
                   "all val windows at this one-sided level (TitansForecaster's "
                   "significance); 'none': whenever early stopping preferred it")
    p.add_argument("--max-time", type=float, default=None,
                   help="training wall-clock limit per horizon, seconds (the best weights "
                   "so far are kept; noted in the table)")
    p.add_argument("--batch-size", type=int, default=32,
                   help="training batch in protocol windows (each holds all C channels)")
    p.add_argument("--lr", type=float, default=DEFAULTS.learning_rate)
    p.add_argument("--weight-decay", type=float, default=DEFAULTS.weight_decay)
    p.add_argument("--max-train-windows", type=int, default=None,
                   help="train windows' worth of series sampled per epoch (CPU budgets; "
                   "default: all windows every epoch); reported in the table")
    p.add_argument("--eval-batch-size", type=int, default=512,
                   help="test windows per evaluation batch (results do not depend on it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=["cpu", "gpu", "cuda", "auto"],
                   help="Lightning accelerator for training; evaluation uses the same device")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", default="results/long_horizon", help="output folder")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: tiny network, one epoch of a few batches (all test "
                   "windows are still scored)")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--verbose", action="store_true", help="Lightning progress bars")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def _apply_quick(args: argparse.Namespace, argv: Sequence[str]) -> None:
    """``--quick`` replaces the sizes the user did not set explicitly."""
    given = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
    for key, value in QUICK.items():
        if f"--{key.replace('_', '-')}" not in given:
            setattr(args, key, value)


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Run the recipe; returns ``{dataset: run_dataset(...) result}`` (also written to
    ``--out``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.quick:
        _apply_quick(args, argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    hardware = hardware_description(resolve_device(args.device, 1))
    command = "python recipes/long_horizon.py " + shlex.join(argv)
    _log(args, f"hardware: {hardware}")
    results: dict[str, dict[str, Any]] = {}
    for dataset in args.dataset:
        started = time.perf_counter()
        result = run_dataset(args, dataset)
        wall = time.perf_counter() - started
        name = result["dataset"]
        records = result["records"]
        _write_csv(out / f"{name}_results.csv", args, records, hardware, command)
        report = _report(args, result, hardware, command, wall)
        (out / f"{name}_results.md").write_text(report, encoding="utf-8")
        (out / f"{name}_results.json").write_text(
            json.dumps({"args": vars(args), "hardware": hardware, "records": records,
                        "titans_config": dataclasses.asdict(
                            next(iter(result["estimators"].values())).config_)},
                       indent=2, default=str),
            encoding="utf-8",
        )
        if not args.no_plot:
            _plot(out / f"{name}_mse.png", name, records, args.horizons, hardware)
        _log(args, "\n" + report)
        results[name] = result
    return results


if __name__ == "__main__":
    main()
