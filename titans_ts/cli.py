"""Command line: ``python -m titans_ts forecast`` (the README's main job).

Fits a :class:`~titans_ts.estimators.TitansForecaster` with its defaults on a real
long-horizon dataset found locally (``--path``, then ``$TITANS_TS_DATA_DIR``, then the user
cache; no download unless ``--download``), or on the built-in synthetic series when none is
found, and says which it used. It holds out the end of every series, reports the rolling
forecast error there next to the repeat-last-value forecast, and prints the forecast.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _load_frame(args: argparse.Namespace):
    from titans_ts.datasets import (
        LONG_HORIZON_DATASETS,
        make_synthetic,
        read_wide_csv,
        resolve_data_path,
    )

    spec = LONG_HORIZON_DATASETS.get(args.dataset)
    if spec is None:
        known = ", ".join(LONG_HORIZON_DATASETS)
        raise SystemExit(f"unknown --dataset {args.dataset!r}: expected one of {known}")
    try:
        path = resolve_data_path(
            spec.relative, path=args.path, url=spec.url, sha256=spec.sha256,
            download=args.download, alternatives=spec.alternatives,
        )
    except FileNotFoundError as exc:
        if args.path is not None:
            raise SystemExit(str(exc)) from None
        print(f"data: {args.dataset} not found locally ({exc})".splitlines()[0])
        print("data: using the built-in synthetic series (seasonal + trend + noise, regime change)")
        return make_synthetic(n_steps=args.synthetic_steps, seed=args.seed), "synthetic"
    frame = read_wide_csv(path)
    if args.rows:
        frame = frame.iloc[: args.rows]
    print(f"data: {args.dataset} from {path} ({len(frame)} rows, {frame.shape[1] - 1} series)")
    return frame, args.dataset


def _repeat_last_mse(values: np.ndarray, mean: np.ndarray, std: np.ndarray, h: int,
                     n_windows: int) -> float:
    """MSE of repeating the last observed value over the same rolling windows as
    :meth:`TitansForecaster.score` (standardised per series). values: (T, C)."""
    z = (values - mean) / std
    T = len(z)
    errors = []
    for j in range(n_windows):
        stop = T - j * h  # windows end at the last row, ``h`` apart
        cut = stop - h
        errors.append((z[cut:stop] - z[cut - 1]) ** 2)
    return float(np.mean(errors))


def forecast(args: argparse.Namespace) -> int:
    from titans_ts.estimators import TitansForecaster

    frame, source = _load_frame(args)
    h = args.horizon
    holdout = args.eval_windows * h
    train = frame.iloc[:-holdout]
    model = TitansForecaster(
        horizon=h, random_state=args.seed, verbose=args.verbose,
        **({"max_epochs": args.max_epochs} if args.max_epochs else {}),
    )
    t0 = time.perf_counter()
    model.fit(train)
    fit_s = time.perf_counter() - t0
    mse = -model.score(frame, n_windows=args.eval_windows, step=h)
    values = frame[list(model.series_names_)].to_numpy(dtype=np.float64)
    naive = _repeat_last_mse(values, np.asarray(model.scaler_mean_), np.asarray(model.scaler_std_),
                             h, args.eval_windows)
    print(f"fit: {fit_s:.1f} s on {len(train)} rows; best epoch {model.best_epoch_}")
    print(f"held-out last {holdout} rows ({args.eval_windows} windows of h={h}), "
          f"standardised MSE: Titans {mse:.4f} | repeat-last {naive:.4f}")
    forecast_frame = model.predict(df=frame)  # from the end of the full data
    print(f"forecast of the next {h} steps after the data ({source}):")
    print(forecast_frame.head(args.show).to_string())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m titans_ts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("forecast", help="fit TitansForecaster on local data (or synthetic)")
    p.add_argument("--dataset", default="ETTh1", help="ETTh1, ETTh2, ETTm1, ETTm2 or Weather")
    p.add_argument("--path", default=None, help="explicit file or data folder")
    p.add_argument("--download", action="store_true", help="allow a checksum-verified download")
    p.add_argument("--rows", type=int, default=None, help="use only the first N rows")
    p.add_argument("--horizon", type=int, default=24)
    p.add_argument("--eval-windows", type=int, default=10)
    p.add_argument("--max-epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--show", type=int, default=5, help="forecast rows to print")
    p.add_argument("--synthetic-steps", type=int, default=4000)
    p.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    return forecast(args)


if __name__ == "__main__":
    sys.exit(main())
