"""``benchmarks/genomics_threshold_probe.py``: the three MCCs it reports, on hand-made files."""

from __future__ import annotations

import numpy as np
import pytest
from _scripts import load_benchmark
from sklearn.metrics import matthews_corrcoef

bench = load_benchmark("genomics_threshold_probe.py")


def _write(path, p1, y) -> None:
    classes = np.array(["neg", "pos"])
    np.savez(path, classes=classes, proba=np.c_[1 - p1, p1], y=classes[y])


def test_probe_reports_argmax_dev_choice_and_test_ceiling(tmp_path) -> None:
    # negatives scored 0.30-0.60, positives 0.60-0.90: argmax calls the negatives above 0.5
    # positive; the dev split (the same scores here) puts the threshold at ~0.6, right on test
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    p = np.clip(np.where(y == 1, 0.75, 0.45) + rng.uniform(-0.15, 0.15, 400), 0.01, 0.99)
    dev, test = tmp_path / "f_dev_proba.npz", tmp_path / "f_test_proba.npz"
    _write(dev, p, y)
    _write(test, p, y)
    r = bench.probe(dev, test)
    assert r["argmax"] == pytest.approx(100 * matthews_corrcoef(y, p >= 0.5))
    assert r["argmax"] < 80  # a third of the negatives lie above 0.5
    assert r["dev_choice"] == pytest.approx(100.0) and 0.59 < r["dev_threshold"] <= 0.62
    assert r["test_ceiling"] == pytest.approx(100.0) and r["test_ceiling_at"] in (0.6, 0.61)
    alone = bench.probe(None, test)  # no dev file: the argmax and the ceiling only
    assert alone["dev_choice"] is None and alone["test_ceiling"] == r["test_ceiling"]
