"""What would a ``min_delta`` on early stopping have saved? (a replay, not a method)

The classifier stops after ``patience`` epochs whose validation loss is not lower than the
best so far (Lightning's ``EarlyStopping``, ``min_delta=0``) and keeps the best epoch's
weights. On the large GUE sets, with the learning rate halving after every epoch without
an improvement, fits creep on for several epochs at tiny rates, each improving by ~1e-3.
With ``min_delta=d`` an epoch counts as an improvement only when it is lower by more than
``d`` (Lightning's rule). The rate schedule does not depend on ``min_delta``, so every
epoch up to the new stopping point is the one recorded: this replays the per-epoch
validation losses in ``recipes/genomics.py`` result folders exactly and reports, per fit,
the epoch it would stop at, the epoch it would keep and that epoch's validation loss.
Test scores of an earlier epoch were not recorded, so where the kept epoch changes only the
dev loss is known::

    python benchmarks/genomics_stop_replay.py results/s39 results/s4* --min-delta 1e-3 2e-3 5e-3

Rows of ``"auto"`` fits (several networks, one history) and fits without the rate decay are
skipped; seconds saved are ``fit_seconds`` scaled by the fraction of epochs not run.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from collections.abc import Sequence

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "recipes"))
from genomics import read_run_csvs  # noqa: E402  (the per-run CSVs of recipes/genomics.py)


def replay(val_losses: Sequence[float], min_delta: float, patience: int = 3) -> tuple[int, int]:
    """``(epochs run, epoch kept)`` (1-based) under early stopping with ``min_delta``:
    an epoch improves when its loss is below the best improving epoch's minus ``min_delta``;
    ``patience`` epochs in a row without one stop the fit; the lowest loss seen is kept."""
    if not val_losses:
        raise ValueError("val_losses is empty: a fit records at least one epoch")
    best, wait, run = float("inf"), 0, len(val_losses)
    for epoch, loss in enumerate(val_losses, start=1):
        if loss < best - min_delta:
            best, wait = loss, 0
        else:
            wait += 1
            if wait >= patience:
                run = epoch
                break
    kept = min(range(run), key=lambda i: val_losses[i]) + 1
    return run, kept


def _fits(folders: Sequence[str]) -> list[dict]:
    fits = []
    for folder in folders:
        for row in read_run_csvs(folder)[0]:
            if "itans" not in row.get("model", "") or not row.get("resolved"):
                continue
            resolved = json.loads(row["resolved"])
            several = resolved.get("kmer_k_dev_loss") or resolved.get("position_dev_loss")
            if not resolved.get("lr_decay") or several:
                continue  # no decay, or an "auto" fit: one history for several networks
            history = json.loads(row["history"])  # [epoch, train loss, val loss, lr]
            fits.append(
                {
                    "name": f"{folder}/{row['tag']}:{row['task']}:seed{row['seed']}",
                    "val": [h[2] for h in history],
                    "seconds": float(row["fit_seconds"]),
                    "mcc": float(row["mcc"]),
                }
            )
    return fits


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", help="recipes/genomics.py --out folders")
    parser.add_argument("--min-delta", type=float, nargs="+", default=[1e-3, 2e-3, 5e-3])
    parser.add_argument("--patience", type=int, default=3)
    args = parser.parse_args(argv)
    fits = _fits(args.folders)
    if not fits:
        raise SystemExit("no single-network fit with the rate decay in these folders")
    for delta in args.min_delta:
        print(f"== min_delta {delta:g}")
        total = saved = 0.0
        changed = 0
        for fit in fits:
            n0 = len(fit["val"])  # what ran (stopped by patience, max_epochs or max_time)
            k0 = min(range(n0), key=lambda i: fit["val"][i]) + 1
            n1, k1 = replay(fit["val"], delta, args.patience)
            total += fit["seconds"]
            saved += fit["seconds"] * (n0 - n1) / n0
            note = ""
            if k1 != k0:
                changed += 1
                v0, v1 = fit["val"][k0 - 1], fit["val"][k1 - 1]
                note = f"  keeps {k1} not {k0}: dev {v1:.4f} vs {v0:.4f} (+{v1 - v0:.4f})"
            print(f"{fit['name']:70s} epochs {n0:2d} -> {n1:2d}, best {k0:2d}{note}")
        print(
            f"{len(fits)} fits: {total / 3600:.1f} h -> {(total - saved) / 3600:.1f} h "
            f"({100 * saved / total:.0f} % saved); kept epoch changed in {changed}"
        )


if __name__ == "__main__":
    main()
