"""Is a binary GUE task's MCC gap a decision-threshold problem? (a probe, not a method)

``recipes/genomics.py --save-proba`` writes each fit's dev and test probabilities. For one
binary fit this prints the test MCC at the argmax (what ``predict`` returns, threshold 0.5),
at the threshold that maximises the *dev* MCC (a legitimate choice: the dev split is the one
early stopping already uses), and the *test* ceiling: the best MCC over thresholds 0.20-0.80
chosen on test itself, which no method can reach and which bounds what any threshold could
do::

    python benchmarks/genomics_threshold_probe.py results/s41/*_test_proba.npz

Each argument is a ``..._test_proba.npz`` (or its ``..._dev_proba.npz``); the other file of
the pair is found by name. Without a dev file (written since session 41) only the argmax and
the ceiling are reported.
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np
from sklearn.metrics import matthews_corrcoef


def _load(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return data["classes"], data["proba"], data["y"]


def mcc_at(classes: np.ndarray, proba: np.ndarray, y: np.ndarray, threshold: float) -> float:
    """Test MCC x 100 predicting ``classes[1]`` where its probability is >= ``threshold``."""
    return 100.0 * float(matthews_corrcoef(y, np.where(proba[:, 1] >= threshold, *classes[::-1])))


def probe(dev_path: pathlib.Path | None, test_path: pathlib.Path) -> dict[str, float | None]:
    """``{"argmax", "dev_threshold", "dev_choice", "test_ceiling", "test_ceiling_at"}``
    (the two dev entries ``None`` without ``dev_path``)."""
    classes, test_proba, test_y = _load(test_path)
    if len(classes) != 2:
        raise ValueError(f"{test_path} holds {len(classes)} classes; the probe needs two")
    grid = np.round(np.linspace(0.2, 0.8, 61), 2)
    test_mcc = [mcc_at(classes, test_proba, test_y, t) for t in grid]
    best = int(np.argmax(test_mcc))
    result: dict[str, float | None] = {
        "argmax": mcc_at(classes, test_proba, test_y, 0.5),
        "dev_threshold": None,
        "dev_choice": None,
        "test_ceiling": test_mcc[best],
        "test_ceiling_at": float(grid[best]),
    }
    if dev_path is not None:
        dev_classes, dev_proba, dev_y = _load(dev_path)
        if not np.array_equal(classes, dev_classes):
            raise ValueError(f"{dev_path} and {test_path} must hold the same two classes")
        candidates = np.unique(np.round(dev_proba[:, 1], 4))
        dev_mcc = [mcc_at(classes, dev_proba, dev_y, t) for t in candidates]
        chosen = float(candidates[int(np.argmax(dev_mcc))])
        result["dev_threshold"] = chosen
        result["dev_choice"] = mcc_at(classes, test_proba, test_y, chosen)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "files", nargs="+", type=pathlib.Path, help="--save-proba files (test or dev)"
    )
    for path in parser.parse_args().files:
        test = path.with_name(path.name.replace("_dev_proba", "_test_proba"))
        dev = test.with_name(test.name.replace("_test_proba", "_dev_proba"))
        r = probe(dev if dev.is_file() else None, test)
        at_dev = (
            "no dev file" if r["dev_choice"] is None
            else f"{r['dev_choice']:.2f} at the dev-chosen {r['dev_threshold']:.4f}"
        )
        print(
            f"{test.name}: test MCC {r['argmax']:.2f} at 0.5; {at_dev}; ceiling "
            f"{r['test_ceiling']:.2f} (threshold {r['test_ceiling_at']:.2f}, chosen on test)"
        )


if __name__ == "__main__":
    main()
