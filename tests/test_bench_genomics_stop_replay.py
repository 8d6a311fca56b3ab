"""``benchmarks/genomics_stop_replay.py``: Lightning's early-stopping rule replayed on a
recorded history, with and without ``min_delta``."""

from __future__ import annotations

import csv
import json

import pytest
from _scripts import load_benchmark

bench = load_benchmark("genomics_stop_replay.py")

# improves strongly to epoch 4, then creeps by 3e-4 per epoch (epochs 5-7), then stalls
CREEP = [0.50, 0.44, 0.41, 0.400, 0.3997, 0.3994, 0.3991, 0.3995, 0.3993, 0.3999]


def test_replay_without_min_delta_runs_until_patience_and_keeps_the_lowest() -> None:
    assert bench.replay(CREEP, 0.0) == (10, 7)
    assert bench.replay([0.5, 0.6, 0.7, 0.8, 0.4], 0.0) == (4, 1)  # stopped before the 0.4


def test_replay_with_min_delta_stops_on_the_creep_and_keeps_the_best_seen() -> None:
    # 3e-4 steps (9e-4 in all) are not improvements at 1e-3: epochs 5, 6, 7 wait; it stops
    # at 7 and keeps 7, the lowest loss seen
    assert bench.replay(CREEP, 1e-3) == (7, 7)
    # the best is updated on improvements only, so a creep that adds up to more counts
    assert bench.replay([0.5, 0.4995, 0.499, 0.4985, 0.6, 0.6, 0.6], 1e-3) == (7, 4)
    assert bench.replay(CREEP, 1e-3, patience=2) == (6, 6)
    assert bench.replay(CREEP, 0.05) == (5, 5)  # only epoch 2 improves by more than 0.05
    with pytest.raises(ValueError, match="empty"):
        bench.replay([], 1e-3)


def test_main_reads_recipe_folders_and_skips_auto_fits(tmp_path, capsys) -> None:
    path = tmp_path / "r.csv"
    history = [[i + 1, 0.0, v, 3e-4] for i, v in enumerate(CREEP)]
    rows = [
        {"model": "Titans (ours)", "task": "t", "seed": 0, "fit_seconds": 1000.0, "mcc": 60.0,
         "resolved": json.dumps({"lr_decay": 0.5, "kmer_k_dev_loss": None}),
         "history": json.dumps(history)},
        {"model": "Titans (ours)", "task": "auto", "seed": 0, "fit_seconds": 9.0, "mcc": 1.0,
         "resolved": json.dumps({"lr_decay": 0.5, "kmer_k_dev_loss": {"4": 0.4, "6": 0.5}}),
         "history": json.dumps(history)},
        {"model": "Titans (ours)", "task": "auto positions", "seed": 0, "fit_seconds": 9.0,
         "mcc": 1.0, "resolved": json.dumps({"lr_decay": 0.5, "kmer_k_dev_loss": None,
                                             "position_dev_loss": {"false": 0.4, "true": 0.5}}),
         "history": json.dumps(history)},
        {"model": "k-mer LR", "task": "t", "seed": 0, "fit_seconds": 5.0, "mcc": 50.0,
         "resolved": "", "history": ""},
    ]
    rows = [{"tag": "a", **row} for row in rows]  # the recipe's per-run CSV columns
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    bench.main([str(tmp_path), "--min-delta", "0.05"])
    out = capsys.readouterr().out
    assert "epochs 10 ->  5, best  7  keeps 5 not 7: dev 0.3997 vs 0.3991 (+0.0006)" in out
    assert "1 fits: 0.3 h -> 0.1 h (50 % saved); kept epoch changed in 1" in out
