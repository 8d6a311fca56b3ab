"""In-run linear baselines for the long-horizon recipe (DESIGN.md §5).

* :func:`repeat_last_value`: the forecast repeats the last observed value of each channel.
* :class:`LastValueRidge` (RLinear style): subtract the window's last value, map the
  ``L - 1`` remaining centred inputs to the ``H`` centred targets with one ridge regression
  shared by all channels, add the last value back. It is fitted in closed form on **all**
  stride-1 train windows of all channels through the normal equations ``XᵀX``, ``XᵀY``,
  accumulated block by block, so memory is ``O(L² + L·H)`` whatever the number of windows.
  The ridge penalty is chosen on the validation windows from a small grid.

:func:`fit_seasonal_ridge` fits the same map to windows with a seasonal cycle removed
(:mod:`titans_ts.encoders.seasonal`) and chooses, on validation, whether and how to remove
it; ``TitansForecaster`` starts its linear path there.

The centred last input is identically zero, so it is dropped from the features: ``X`` has
``L - 1`` columns and ``alpha = 0`` is ordinary least squares. An unpenalised intercept per
horizon step is fitted by default (RLinear's ``nn.Linear`` has a bias). The penalty is per
row: the system solved is ``(XᵀX / n + alpha·I) W = XᵀY / n`` (augmented with the intercept
column) with ``n`` the number of rows (windows × channels).

Run the benchmark with ``python -m titans_ts.baselines.linear --dataset ETTh1`` (or
``--dataset all``); data are found as described in :mod:`titans_ts.datasets.discovery`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from titans_ts.metrics import RegressionAccumulator

__all__ = [
    "DEFAULT_ALPHAS",
    "LastValueRidge",
    "NormalEquations",
    "SeasonalRidgeFit",
    "evaluate_forecaster",
    "fit_ridge_blocks",
    "fit_seasonal_ridge",
    "iter_windows",
    "main",
    "repeat_last_value",
    "residual_blocks",
    "run_long_horizon_baselines",
    "window_normal_equations",
]

DEFAULT_ALPHAS: tuple[float, ...] = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
"""Per-row ridge penalties tried on the validation split."""

_BLOCK_ELEMENTS = 1 << 22  # float64 values per block of windows (32 MiB)


def _check_series(array: np.ndarray, lookback: int, horizon: int) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"array must have shape (T, C), got {array.shape}")
    if lookback < 2:
        raise ValueError(f"lookback must be >= 2 (centring leaves L - 1 inputs), got {lookback}")
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if array.shape[0] < lookback + horizon:
        raise ValueError(
            f"a series of {array.shape[0]} rows has no window of lookback {lookback} + "
            f"horizon {horizon}"
        )
    return array


def iter_windows(
    array: np.ndarray, lookback: int, horizon: int, *, block: int | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield all stride-1 windows in blocks: ``x (b, L, C)`` and ``y (b, H, C)`` float64.

    Blocks are copies of at most ``block`` windows (default: about 32 MiB per block); the
    full set is never materialised.
    """
    array = _check_series(array, lookback, horizon)
    width = lookback + horizon
    if block is None:
        block = max(1, _BLOCK_ELEMENTS // (width * array.shape[1]))
    view = sliding_window_view(array, width, axis=0)  # (n, C, width), no copy
    for start in range(0, view.shape[0], block):
        chunk = np.ascontiguousarray(view[start : start + block].transpose(0, 2, 1), np.float64)
        yield chunk[:, :lookback], chunk[:, lookback:]


def repeat_last_value(x: np.ndarray, horizon: int) -> np.ndarray:
    """Forecast ``(B, H, C)`` that repeats the last row of ``x (B, L, C)``."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x must have shape (B, L, C), got {x.shape}")
    return np.repeat(x[:, -1:, :], horizon, axis=1)


def _centred_rows(x: np.ndarray, y: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(b, L, C) windows -> channel-independent centred rows ``(b·C, L-1)`` and ``(b·C, H)``."""
    last = x[:, -1:, :]
    features = (x[:, :-1, :] - last).transpose(0, 2, 1).reshape(-1, x.shape[1] - 1)
    if y is None:
        return features, None
    targets = (y - last).transpose(0, 2, 1).reshape(-1, y.shape[1])
    return features, targets


@dataclasses.dataclass
class NormalEquations:
    """Sufficient statistics of the centred regression (all float64).

    Attributes:
        xtx: ``XᵀX``, shape ``(L-1, L-1)``.
        xty: ``XᵀY``, shape ``(L-1, H)``.
        x_sum: column sums of ``X``, ``(L-1,)``.
        y_sum: column sums of ``Y``, ``(H,)``.
        n: number of rows (windows × channels).
    """

    xtx: np.ndarray
    xty: np.ndarray
    x_sum: np.ndarray
    y_sum: np.ndarray
    n: int

    @classmethod
    def zeros(cls, lookback: int, horizon: int) -> NormalEquations:
        """Empty statistics for windows of ``lookback`` inputs and ``horizon`` targets."""
        k = lookback - 1
        return cls(np.zeros((k, k)), np.zeros((k, horizon)), np.zeros(k), np.zeros(horizon), 0)

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        """Accumulate windows ``x (b, L, C)``, ``y (b, H, C)`` (every channel is a row)."""
        features, targets = _centred_rows(np.asarray(x, np.float64), np.asarray(y, np.float64))
        self.xtx += features.T @ features
        self.xty += features.T @ targets
        self.x_sum += features.sum(axis=0)
        self.y_sum += targets.sum(axis=0)
        self.n += features.shape[0]

    def solve(self, alpha: float, *, fit_intercept: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Ridge solution ``(coef (L-1, H), intercept (H,))``; the intercept is not penalised.

        Solves ``(XᵀX/n + alpha·I) W = XᵀY/n``, augmented with a column of ones when
        ``fit_intercept``; falls back to least squares if the system is singular.
        """
        k, horizon = self.xty.shape
        if fit_intercept:
            system = np.empty((k + 1, k + 1))
            system[:k, :k] = self.xtx / self.n + alpha * np.eye(k)
            system[:k, k] = system[k, :k] = self.x_sum / self.n
            system[k, k] = 1.0
            rhs = np.vstack([self.xty / self.n, self.y_sum[None, :] / self.n])
        else:
            system = self.xtx / self.n + alpha * np.eye(k)
            rhs = self.xty / self.n
        try:
            solution = np.linalg.solve(system, rhs)
        except np.linalg.LinAlgError:  # singular (alpha = 0 on degenerate data)
            solution = np.linalg.lstsq(system, rhs, rcond=None)[0]
        if fit_intercept:
            return solution[:k], solution[k]
        return solution, np.zeros(horizon)


def window_normal_equations(
    array: np.ndarray, lookback: int, horizon: int, *, block: int | None = None
) -> NormalEquations:
    """Normal equations of the last-value-centred regression over all windows and channels.

    Memory is ``O(L² + L·H)`` plus one block of windows, whatever the series length.

    Args:
        array: ``(T, C)`` series (one split, already scaled).
        lookback, horizon: ``L`` and ``H``.
        block: windows per block (default: about 32 MiB of windows).

    Returns:
        :class:`NormalEquations` with ``n = windows · C`` rows.
    """
    equations = NormalEquations.zeros(lookback, horizon)
    for x, y in iter_windows(array, lookback, horizon, block=block):
        equations.add(x, y)
    return equations


def fit_ridge_blocks(
    equations: NormalEquations,
    val_blocks: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]] | None,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    *,
    fit_intercept: bool = True,
) -> tuple[np.ndarray, np.ndarray, float, dict[float, float]]:
    """Solve the ridge map for every penalty and keep the one with the lowest val MSE.

    Args:
        equations: training statistics (:meth:`NormalEquations.add` over the train windows).
        val_blocks: a callable returning an iterable of validation blocks
            ``(x (b, L, C), y (b, H, C))``, read once; may be ``None`` for a single alpha.
        alphas: per-row penalties (>= 0).
        fit_intercept: fit an unpenalised bias per horizon step.

    Returns:
        ``(coef (L-1, H), intercept (H,), alpha, {alpha: val mse})`` (the dict is empty
        for a single alpha).
    """
    alphas = [float(a) for a in alphas]
    if not alphas or min(alphas) < 0:
        raise ValueError(f"alphas must be a non-empty list of values >= 0, got {alphas}")
    if len(alphas) > 1 and val_blocks is None:
        raise ValueError("validation windows are needed to choose among several alphas")
    candidates = {a: equations.solve(a, fit_intercept=fit_intercept) for a in alphas}
    if len(alphas) == 1:
        coef, intercept = candidates[alphas[0]]
        return coef, intercept, alphas[0], {}
    assert val_blocks is not None
    accumulators = {a: RegressionAccumulator() for a in candidates}
    for x, y in val_blocks():  # one pass over the val windows scores every candidate
        x = np.asarray(x, np.float64)
        features, _ = _centred_rows(x, None)
        for a, (coef, intercept) in candidates.items():
            accumulators[a].update(_uncentre(features @ coef + intercept, x), y)
    val_mse = {a: acc.compute()["mse"] for a, acc in accumulators.items()}
    best = min(val_mse, key=val_mse.__getitem__)
    coef, intercept = candidates[best]
    return coef, intercept, best, val_mse


@dataclasses.dataclass
class LastValueRidge:
    """RLinear-style ridge forecaster shared by all channels.

    Args:
        lookback: ``L`` (>= 2).
        horizon: ``H``.
        alphas: per-row ridge penalties tried on the validation split (a single value needs
            no validation data).
        fit_intercept: fit an unpenalised bias per horizon step.

    Fitted attributes (set by :meth:`fit`): ``coef_ (L-1, H)``, ``intercept_ (H,)``,
    ``alpha_``, ``val_mse_ {alpha: mse}`` (empty for a single alpha), ``n_train_rows_``.
    """

    lookback: int = 96
    horizon: int = 96
    alphas: Sequence[float] = DEFAULT_ALPHAS
    fit_intercept: bool = True

    def fit(self, train: np.ndarray, val: np.ndarray | None = None) -> LastValueRidge:
        """Fit on all train windows; pick ``alpha`` by MSE over all val windows.

        Args:
            train: ``(T_train, C)`` scaled series.
            val: ``(T_val, C)`` scaled series including its ``lookback`` context rows; needed
                when more than one alpha is given.
        """
        if len(self.alphas) > 1 and val is None:
            raise ValueError("val is needed to choose among several alphas; pass val=...")
        _check_series(train, self.lookback, self.horizon)
        equations = window_normal_equations(train, self.lookback, self.horizon)
        self.n_train_rows_ = equations.n
        val_blocks = None if val is None else (
            lambda: iter_windows(val, self.lookback, self.horizon)
        )
        self.coef_, self.intercept_, self.alpha_, self.val_mse_ = fit_ridge_blocks(
            equations, val_blocks, self.alphas, fit_intercept=self.fit_intercept
        )
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Forecast ``(B, H, C)`` (float64) from windows ``x (B, L, C)``."""
        if not hasattr(self, "coef_"):
            raise RuntimeError("LastValueRidge is not fitted yet; call fit(train, val) first")
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 3 or x.shape[1] != self.lookback:
            raise ValueError(f"x must have shape (B, {self.lookback}, C), got {x.shape}")
        return _predict(x, self.coef_, self.intercept_)


def residual_blocks(
    blocks: Iterable[tuple[np.ndarray, ...]], mode: str
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Windows ``(x, y[, s])`` -> ``(x - g·q_x, y - g·q_y)`` float64 for a seasonal ``mode``
    (:func:`titans_ts.encoders.seasonal.remove_cycle`); ``"none"`` passes ``(x, y)`` through.

    A forecast of the residual plus ``g·q_y`` has the residual's error, so a validation MSE
    on these blocks is the MSE of the re-seasonalised forecast.
    """
    from titans_ts.encoders.seasonal import remove_cycle

    for x, y, *rest in blocks:
        if mode == "none":
            yield x, y
            continue
        if not rest:
            raise ValueError(f"seasonal mode {mode!r} needs (x, y, season) blocks")
        season = torch.from_numpy(np.asarray(rest[0], np.float64))
        x_res, g = remove_cycle(torch.from_numpy(np.asarray(x, np.float64)), season, mode)
        yield x_res.numpy(), y - (g * season[:, x.shape[1] :]).numpy()


@dataclasses.dataclass
class SeasonalRidgeFit:
    """The ridge map on cycle-free windows chosen by :func:`fit_seasonal_ridge`.

    Attributes:
        mode: ``"none"``, ``"fixed"`` or ``"adaptive"`` (how the cycle is removed).
        coef, intercept: ``(L-1, H)`` and ``(H,)`` of the residual map.
        alpha: its ridge penalty.
        val_mse: ``{mode: best validation MSE}`` over the modes tried (empty without
            validation data).
    """

    mode: str
    coef: np.ndarray
    intercept: np.ndarray
    alpha: float
    val_mse: dict[str, float]

    def predict(self, x: np.ndarray, season: np.ndarray | None = None) -> np.ndarray:
        """Forecast ``(B, H, C)`` from ``x (B, L, C)`` and, unless ``mode == "none"``,
        ``season (B, L + H, C)``."""
        from titans_ts.encoders.seasonal import add_cycle, remove_cycle

        x = np.asarray(x, dtype=np.float64)
        if self.mode == "none":
            return _predict(x, self.coef, self.intercept)
        if season is None:
            raise ValueError(f"a {self.mode!r} seasonal ridge map needs season (B, L + H, C)")
        s = torch.from_numpy(np.asarray(season, np.float64))
        x_res, g = remove_cycle(torch.from_numpy(x), s, self.mode)
        residual = torch.from_numpy(_predict(x_res.numpy(), self.coef, self.intercept))
        return add_cycle(residual, s, g).numpy()


def fit_seasonal_ridge(
    train: Any,
    val: Any | None,
    modes: Sequence[str] = ("none",),
    alphas: Sequence[float] = DEFAULT_ALPHAS,
) -> SeasonalRidgeFit:
    """Last-value ridge on windows with the seasonal cycle removed, for each of ``modes``;
    keeps the mode (and penalty) with the lowest validation MSE.

    Args:
        train, val: window sets with ``iter_blocks()`` yielding ``(x, y)`` or, for modes
            other than ``"none"``, ``(x, y, season)`` blocks
            (:class:`titans_ts.training.data.SeriesWindows`). Without ``val`` only one mode
            can be given and the penalty is ``1e-3``.
        modes: seasonal modes to try (see :mod:`titans_ts.encoders.seasonal`).
        alphas: per-row ridge penalties tried on validation.
    """
    modes = list(modes)
    if not modes:
        raise ValueError("modes must name at least one seasonal mode")
    if val is None and len(modes) > 1:
        raise ValueError(f"validation windows are needed to choose among modes {modes}")
    fits: dict[str, tuple[np.ndarray, np.ndarray, float, dict[float, float]]] = {}
    for mode in modes:
        equations: NormalEquations | None = None
        for x, y in residual_blocks(train.iter_blocks(), mode):
            if equations is None:
                equations = NormalEquations.zeros(x.shape[1], y.shape[1])
            equations.add(x, y)
        if equations is None:
            raise ValueError("no training windows to fit the linear map on")
        if val is None:
            fits[mode] = fit_ridge_blocks(equations, None, (1e-3,))
        else:
            fits[mode] = fit_ridge_blocks(
                equations, lambda m=mode: residual_blocks(val.iter_blocks(), m), alphas
            )
    scores = {m: min(f[3].values()) for m, f in fits.items() if f[3]}
    best = min(scores, key=scores.__getitem__) if scores else modes[0]
    coef, intercept, alpha, _ = fits[best]
    return SeasonalRidgeFit(best, coef, intercept, alpha, scores)


def _uncentre(centred: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Centred channel-independent forecasts ``(b·C, H)`` -> ``(b, H, C)`` + last value."""
    batch, _, channels = x.shape
    return centred.reshape(batch, channels, -1).transpose(0, 2, 1) + x[:, -1:, :]


def _predict(x: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    features, _ = _centred_rows(x, None)
    return _uncentre(features @ coef + intercept, x)


def evaluate_forecaster(
    forecast, array: np.ndarray, lookback: int, horizon: int
) -> dict[str, float]:
    """MSE/MAE of ``forecast(x (b, L, C)) -> (b, H, C)`` over all stride-1 windows of ``array``."""
    acc = RegressionAccumulator()
    for x, y in iter_windows(array, lookback, horizon):
        acc.update(forecast(x), y)
    return acc.compute()


def run_long_horizon_baselines(
    dataset: str,
    *,
    lookback: int = 96,
    horizons: Sequence[int] = (96, 192, 336, 720),
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    fit_intercept: bool = True,
    path: str | None = None,
    seasonality: str = "none",
    seasonal_period: int | None = None,
) -> list[dict[str, object]]:
    """Fit and evaluate both baselines on one dataset for each horizon (DESIGN.md §5).

    With ``seasonality`` other than ``"none"`` the ridge map is fitted to windows with a
    seasonal cycle removed (:func:`fit_seasonal_ridge`; ``"auto"`` chooses none / fixed /
    adaptive on val), the cycle being the train split's mean per phase of
    ``seasonal_period`` rows (default: one day of the data's spacing), phases counted from
    the file's first row: ``TitansForecaster``'s linear start, without the network.

    Returns:
        One record per horizon: ``dataset, horizon, alpha, val_mse, test_mse, test_mae,
        last_mse, last_mae, n_test_windows, seconds`` (and ``seasonality``, the mode used).
    """
    from titans_ts.datasets.long_horizon import load_long_horizon

    records: list[dict[str, object]] = []
    for horizon in horizons:
        started = time.perf_counter()
        splits = load_long_horizon(dataset, lookback=lookback, horizon=horizon, path=path)
        mode = "none"
        if seasonality == "none":
            model = LastValueRidge(lookback, horizon, alphas, fit_intercept)
            model.fit(splits.train, splits.val)
            ridge = evaluate_forecaster(model.predict, splits.test, lookback, horizon)
            alpha, val_mse = model.alpha_, model.val_mse_.get(model.alpha_, float("nan"))
        else:
            fit, windows = _fit_cycle_ridge(splits, seasonality, seasonal_period, alphas)
            acc = RegressionAccumulator()
            for x, y, season in windows["test"].iter_blocks():
                acc.update(fit.predict(x, season), y)
            ridge = acc.compute()
            mode, alpha, val_mse = fit.mode, fit.alpha, fit.val_mse.get(fit.mode, float("nan"))
        last = evaluate_forecaster(lambda x, h=horizon: repeat_last_value(x, h), splits.test,
                                   lookback, horizon)
        records.append({
            "dataset": splits.name,
            "horizon": int(horizon),
            "seasonality": mode,
            "alpha": alpha,
            "val_mse": val_mse,
            "test_mse": ridge["mse"],
            "test_mae": ridge["mae"],
            "last_mse": last["mse"],
            "last_mae": last["mae"],
            "n_test_windows": splits.n_windows("test"),
            "seconds": time.perf_counter() - started,
        })
    return records


def _fit_cycle_ridge(
    splits: Any, seasonality: str, period: int | None, alphas: Sequence[float]
) -> tuple[SeasonalRidgeFit, dict[str, Any]]:
    """The cycle-ridge map of :func:`run_long_horizon_baselines` and the split windows."""
    from titans_ts.encoders.seasonal import fit_profile, season_slices
    from titans_ts.training.data import SeriesWindows

    period = period or splits.steps_per_day()
    if period is None:
        raise ValueError(
            f"{splits.name}: no daily period in its time stamps; pass seasonal_period="
        )
    origin = splits.borders["train"][0]
    profile = fit_profile(splits.train, 0, period)
    windows = {}
    for split in ("train", "val", "test"):
        array = splits.array(split)
        season = season_slices(profile, [splits.borders[split][0] - origin], len(array))[0]
        windows[split] = SeriesWindows([array], splits.lookback, splits.horizon,
                                       season=[season])
    modes = ("none", "fixed", "adaptive") if seasonality == "auto" else (seasonality,)
    return fit_seasonal_ridge(windows["train"], windows["val"], modes, alphas), windows


def _format(records: list[dict[str, object]]) -> str:
    lines = [
        f"{'dataset':8} {'H':>4} {'cycle':>8} {'alpha':>7} {'val_mse':>8} {'MSE':>7} {'MAE':>7} "
        f"{'last_MSE':>8} {'last_MAE':>8} {'windows':>7} {'sec':>5}"
    ]
    for r in records:
        lines.append(
            f"{r['dataset']:8} {r['horizon']:>4} {r['seasonality']:>8} {r['alpha']:>7g} "
            f"{r['val_mse']:>8.4f} {r['test_mse']:>7.4f} {r['test_mae']:>7.4f} "
            f"{r['last_mse']:>8.4f} {r['last_mae']:>8.4f} {r['n_test_windows']:>7} "
            f"{r['seconds']:>5.1f}"
        )
    by_dataset: dict[str, list[dict[str, object]]] = {}
    for r in records:
        by_dataset.setdefault(str(r["dataset"]), []).append(r)
    for name, rows in by_dataset.items():
        lines.append(
            f"{name:8} {'avg':>4} {'':>8} {'':>7} {'':>8} "
            f"{np.mean([r['test_mse'] for r in rows]):>7.4f} "
            f"{np.mean([r['test_mae'] for r in rows]):>7.4f} "
            f"{np.mean([r['last_mse'] for r in rows]):>8.4f} "
            f"{np.mean([r['last_mae'] for r in rows]):>8.4f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m titans_ts.baselines.linear --dataset ETTh1``."""
    from titans_ts.datasets.long_horizon import LONG_HORIZON_DATASETS

    parser = argparse.ArgumentParser(
        prog="python -m titans_ts.baselines.linear",
        description="Repeat-last-value and last-value-centred ridge baselines, long-horizon "
        "protocol (all test windows, standardised scale).",
    )
    parser.add_argument(
        "--dataset", action="append",
        help=f"dataset name ({', '.join(LONG_HORIZON_DATASETS)}), 'all', or a wide CSV path; "
        "repeatable (default: ETTh1)",
    )
    parser.add_argument("--lookback", type=int, default=96)
    parser.add_argument("--horizons", type=int, nargs="+", default=[96, 192, 336, 720])
    parser.add_argument("--alphas", type=float, nargs="+", default=list(DEFAULT_ALPHAS))
    parser.add_argument("--no-intercept", action="store_true", help="fit without a bias")
    parser.add_argument("--path", default=None, help="explicit file or folder for the dataset")
    parser.add_argument("--seasonality", choices=["none", "fixed", "adaptive", "auto"],
                        default="none",
                        help="remove a seasonal cycle before the ridge map (auto: chosen on "
                        "val); TitansForecaster's linear start")
    parser.add_argument("--seasonal-period", type=int, default=None,
                        help="cycle length in rows (default: one day)")
    parser.add_argument("--json", action="store_true", help="print JSON records instead")
    args = parser.parse_args(argv)
    names = args.dataset or ["ETTh1"]
    if any(n.lower() == "all" for n in names):
        names = list(LONG_HORIZON_DATASETS)
    records: list[dict[str, object]] = []
    for name in names:
        records += run_long_horizon_baselines(
            name, lookback=args.lookback, horizons=args.horizons, alphas=args.alphas,
            fit_intercept=not args.no_intercept, path=args.path,
            seasonality=args.seasonality, seasonal_period=args.seasonal_period,
        )
    print(json.dumps(records, indent=2) if args.json else _format(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
