"""Probe: supervised pretraining on other GUE tasks' labels, then fine-tuning on the target.

Trains one :class:`~titans_ts.estimators.TitansSequenceClassifier` on the union of the
``train`` splits of ``--source-tasks`` with labels ``"<task>:<label>"`` (one softmax over all
source classes, e.g. 4 classes for tf/1 + tf/2), drops every source sequence that also
occurs in the target task's ``dev`` or ``test`` split, and saves it. The target task is then
fine-tuned from its embedding and backbone with the recipe (a new head):

    export TITANS_TS_DATA_DIR=/work/shared/data
    python benchmarks/genomics_transfer_probe.py --source-tasks tf/1 tf/2 --target tf/0 \\
        --kmer-k 6 --max-time 1800 --seed 0 --threads 1 --out results/sup21/pre_s0
    python recipes/genomics.py --device cpu --threads 1 --no-baseline --tasks tf/0 \\
        --set pretrained=results/sup21/pre_s0 --set position_embedding=False \\
        --set max_time=1500 --seeds 0 --save-proba --out results/sup21 --tag tf0_sup_s0

Not a library option: measured in ``docs/results.md`` (session 24). Writes ``--out`` (the
saved classifier) and ``--out``/``transfer_report.json`` (corpus, overlap dropped, seconds,
the fit's per-epoch history).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time

import torch

from titans_ts.datasets.genomics import GUE_TASKS, load_gue
from titans_ts.estimators import TitansSequenceClassifier


def source_corpus(
    sources: list[str], target: str, data_dir: str | None = None
) -> tuple[list[str], list[str], int]:
    """Sequences and ``"<task>:<label>"`` labels of the sources' train splits, without any
    sequence of the target's dev/test splits; also how many were dropped for that."""
    held: set[str] = set()
    for split in ("dev", "test"):
        held.update(load_gue(target, path=data_dir, splits=(split,))[split].sequences)
    X: list[str] = []
    y: list[str] = []
    dropped = 0
    for task in sources:
        train = load_gue(task, path=data_dir, splits=("train",))["train"]
        for seq, label in zip(train.sequences, train.labels):
            if seq in held:
                dropped += 1
                continue
            X.append(seq)
            y.append(f"{task}:{label}")
    return X, y, dropped


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source-tasks", nargs="+", required=True, choices=GUE_TASKS)
    p.add_argument("--target", required=True, choices=GUE_TASKS)
    p.add_argument("--kmer-k", type=int, default=6)
    p.add_argument("--max-time", type=float, default=1800.0, help="training seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    if a.target in a.source_tasks:
        p.error(f"--target {a.target} is also a source task: its train labels would leak")
    if a.threads:
        torch.set_num_threads(a.threads)
    X, y, dropped = source_corpus(a.source_tasks, a.target, a.data_dir)
    print(f"corpus {len(X)} sequences, {dropped} dropped (in {a.target} dev/test)", flush=True)
    clf = TitansSequenceClassifier(
        kmer_k=a.kmer_k,
        position_embedding=False,
        max_time=a.max_time,
        max_epochs=100,
        accelerator="cpu",
        random_state=a.seed,
    )
    start = time.perf_counter()
    clf.fit(X, y)
    seconds = time.perf_counter() - start
    clf.save(a.out)
    report = {
        "sources": a.source_tasks,
        "target": a.target,
        "n_sequences": len(X),
        "dropped_overlap": dropped,
        "classes": [str(c) for c in clf.classes_],
        "seconds": round(seconds, 1),
        "threads": torch.get_num_threads(),
        "history": getattr(clf, "history_", None),
        "machine": platform.processor() or platform.machine(),
    }
    text = json.dumps(report, indent=2, default=str)
    pathlib.Path(a.out, "transfer_report.json").write_text(text)
    print(json.dumps({k: report[k] for k in ("n_sequences", "dropped_overlap", "seconds")}))


if __name__ == "__main__":
    main()
