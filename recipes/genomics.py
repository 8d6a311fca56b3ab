"""Genomics benchmark recipe (DESIGN.md §5): Titans on GUE and Genomic Benchmarks.

Examples::

    export TITANS_TS_DATA_DIR=/work/shared/data
    python recipes/genomics.py                                # the 9 GUE tasks below
    python recipes/genomics.py --tasks prom_core_all tf/0 --seeds 0 1 2
    python recipes/genomics.py --tasks --genomic-benchmarks human_nontata_promoters
    python recipes/genomics.py --tasks mouse/0 --set d_model=64 --set variant=mac
    python recipes/genomics.py --quick --tasks mouse/0        # smoke test (seconds)
    python recipes/genomics.py --report-from results/genomics # merge per-run CSVs
    python recipes/genomics.py --tasks tf/0 --seeds 1 --save-proba  # + test probabilities
    python recipes/genomics.py --average-proba a.npz b.npz    # a seed ensemble, MCC ± SE

**GUE** (DNABERT-2's benchmark; the tasks with a train split in the shared data:
``prom_core_all, prom_core_notata, prom_core_tata, prom_300_tata, tf/0, tf/1, tf/2, mouse/0,
mouse/2``). For each task and seed this

1. loads the official train/dev/test splits with :func:`titans_ts.datasets.load_gue`;
2. fits a :class:`~titans_ts.estimators.TitansSequenceClassifier` (its defaults,
   :data:`~titans_ts.estimators.CLASSIFIER_DEFAULTS`, plus ``--set`` overrides) on train with
   early stopping on the dev split (``validation_data``), best weights restored;
3. scores the test split: MCC ×100 (the GUE metric) and accuracy ×100;
4. fits the in-run baseline on the same splits: k-mer counts (k = 3–6) + logistic regression,
   ``C`` chosen by dev MCC (:func:`titans_ts.baselines.kmer.run_kmer_baseline`);
5. puts both beside the published MCC of DNABERT-2 (and NT-2500M-multi and the GUE paper's
   CNN in a second table), :data:`PUBLISHED`.

**Genomic Benchmarks** (``--genomic-benchmarks NAME ...``): with a full copy of a dataset in
the upstream folder layout (``--gb-root``, default ``~/.genomic_benchmarks``) the protocol is
official train/test with a stratified 10% of train held out for early stopping (the same
hold-out selects the baseline's ``C``), top-1 accuracy. The shared data folder holds only the
official *test* splits of three datasets (``dna/genomic_benchmarks_test/``); for those the
recipe runs **stratified 5-fold cross-validation on the official test split** (10% of each
training fold held out for early stopping; folds and hold-outs fixed with seed 0, so seeds
vary only the network) and labels every row so: those numbers are not comparable with the
published ones, which train on the official train split.

Outputs (``--out``, default ``results/genomics``): ``<tag>.csv`` (one row per model × task ×
seed × fold, with hardware, exact command, resolved classifier parameters and the per-epoch
``[epoch, train_loss, val_loss, lr]`` history as JSON) and
``<tag>.md`` (the table, also printed to stdout), rewritten after every task. ``--tag``
defaults to a name derived from the tasks, so several processes (e.g. one per task on one
GPU) can write into the same folder; ``--report-from DIR`` then merges every per-run CSV in
``DIR`` into ``DIR/genomics_results.{md,csv}``. ``--save-proba`` also writes each fit's test
probabilities (``<tag>_<task>_seed<k>_test_proba.npz``; its dev-split probabilities as
``..._seed<k>_dev_proba.npz``, for choices made on dev; the k-mer baseline's as
``<tag>_<task>_kmer_test_proba.npz``); ``--average-proba`` scores such files one by one and
averaged (a seed ensemble, or Titans blended with the baseline: a different model from any
one fit), each MCC with its bootstrap standard error over the test split, and each test log
loss with its paired difference from the first file's.
``--save-model`` saves each fitted classifier (``..._seed<k>_model/``, for
:meth:`TitansSequenceClassifier.load`).
Progress lines (one per epoch, with losses
and seconds) go to stderr, flushed.

Runs cheaper than the protocol say so in the table's notes: ``--max-train`` (stratified
subsample of train), ``--max-epochs``, ``--quick`` (tiny subsamples, one epoch: not a
result), cross-validation on a test split.

Only torch, lightning, numpy, pandas and scikit-learn are needed (no polars, gluonts or
biopython).
"""

from __future__ import annotations

import argparse
import ast
import csv
import hashlib
import json
import math
import os
import pathlib
import re
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, matthews_corrcoef
from sklearn.model_selection import StratifiedKFold, train_test_split

from titans_ts.baselines.kmer import run_kmer_baseline
from titans_ts.datasets.genomics import (
    GENOMIC_BENCHMARKS,
    GENOMIC_BENCHMARKS_TEST,
    GUE_TASKS,
    SequenceSplit,
    load_genomic_benchmark,
    load_genomic_benchmark_test,
    load_gue,
)
from titans_ts.estimators._base import resolve_device
from titans_ts.estimators.classifier import CLASSIFIER_DEFAULTS, TitansSequenceClassifier
from titans_ts.provenance import command_line, hardware_description

__all__ = [
    "CV_FOLDS",
    "DEFAULT_TASKS",
    "PUBLISHED",
    "PUBLISHED_METRIC",
    "average_proba",
    "build_parser",
    "cross_validate",
    "default_tag",
    "main",
    "markdown_table",
    "parse_args",
    "parse_set",
    "read_run_csvs",
    "report_from",
    "render_report",
    "resolve_task",
    "run_genomic_benchmark",
    "run_gue_task",
    "stratified_subsample",
    "summarise",
]

PROGRAM = "recipes/genomics.py"

#: GUE tasks run by default, as named in DESIGN §5 (``prom/`` dropped).
DEFAULT_TASKS: tuple[str, ...] = tuple(t.removeprefix("prom/") for t in GUE_TASKS)

#: Published numbers, copied from DESIGN.md §5: GUE test MCC ×100 (DNABERT-2 paper) and
#: Genomic Benchmarks top-1 accuracy ×100 (Titans paper, LMM; HyenaDNA). Keys: task names as
#: in :data:`DEFAULT_TASKS` and :data:`~titans_ts.datasets.genomics.GENOMIC_BENCHMARKS`.
PUBLISHED: dict[str, dict[str, float]] = {
    "DNABERT-2": {
        "prom_core_all": 69.37,
        "prom_core_notata": 68.04,
        "prom_core_tata": 74.17,
        "prom_300_tata": 71.59,
        "tf/0": 71.99,
        "tf/1": 76.06,
        "tf/2": 66.52,
        "mouse/0": 56.76,
        "mouse/2": 79.32,
    },
    "NT-2500M-multi": {
        "prom_core_all": 70.33,
        "prom_core_notata": 71.58,
        "prom_core_tata": 72.97,
        "prom_300_tata": 79.43,
        "tf/0": 66.64,
        "mouse/0": 63.31,
        "mouse/2": 71.52,
    },
    "CNN": {
        "prom_core_all": 58.07,
        "prom_core_notata": 60.09,
        "prom_core_tata": 69.33,
        "prom_300_tata": 70.30,
        "tf/0": 53.95,
        "tf/1": 63.20,
        "tf/2": 45.22,
        "mouse/0": 31.14,
        "mouse/2": 63.15,
    },
    "Titans (paper, LMM)": {
        "human_enhancers_cohn": 75.2,
        "human_enhancers_ensembl": 89.6,
        "human_ensembl_regulatory": 89.3,
        "human_nontata_promoters": 96.6,
        "human_ocr_ensembl": 79.9,
    },
    "HyenaDNA": {
        "human_enhancers_cohn": 74.2,
        "human_enhancers_ensembl": 89.2,
        "human_ensembl_regulatory": 93.8,
        "human_nontata_promoters": 96.6,
        "human_ocr_ensembl": 80.9,
    },
}

#: The metric of each :data:`PUBLISHED` entry.
PUBLISHED_METRIC: dict[str, str] = {
    "DNABERT-2": "mcc",
    "NT-2500M-multi": "mcc",
    "CNN": "mcc",
    "Titans (paper, LMM)": "accuracy",
    "HyenaDNA": "accuracy",
}

TITANS = "Titans"
KMER = "k-mer LR"
GUE = "GUE"
GB = "Genomic Benchmarks"
PROTOCOL_GUE = "official train/dev/test, early stopping on dev"
PROTOCOL_GB = "official train/test, 10% of train held out for early stopping"
PROTOCOL_CV = "5-fold CV on official test split"
CV_FOLDS = 5
#: ``--average-proba``: resamples of the test split behind each MCC's bootstrap SE.
BOOTSTRAP_RESAMPLES = 2000
#: Seed of every data split the recipe makes (subsamples, CV folds, hold-outs): fixed, so
#: all seeds and both models see the same data.
SPLIT_SEED = 0
#: ``--quick``: training sequences, dev/test (or CV pool) sequences, epochs.
QUICK_TRAIN = 256
QUICK_EVAL = 256
QUICK_CV_POOL = 300
QUICK_EPOCHS = 1
#: File stem written by ``--report-from`` (never read as a per-run CSV).
COMBINED = "genomics_results"

CSV_FIELDS = [
    "tag",
    "task",
    "benchmark",
    "protocol",
    "model",
    "seed",
    "fold",
    "mcc",
    "accuracy",
    "n_train",
    "n_train_available",
    "n_val",
    "n_test",
    "max_train",
    "quick",
    "max_epochs",
    "epochs_run",
    "best_epoch",
    "fit_seconds",
    "predict_seconds",
    "C",
    "params",
    "resolved",
    "history",
    "hardware",
    "command",
    "data_source",
]

SUMMARY_FIELDS = [
    "task",
    "benchmark",
    "protocol",
    "metric",
    "titans_mcc",
    "titans_mcc_std",
    "titans_accuracy",
    "titans_accuracy_std",
    "titans_dev_loss",
    "settings",
    "n_seeds",
    "kmer_mcc",
    "kmer_accuracy",
    "dnabert2_mcc",
    "titans_minus_kmer",
    "epochs_run",
    "fit_seconds",
    "n_train",
    "n_test",
    "notes",
    "tag",
    "hardware",
    "command",
]


# --------------------------------------------------------------------------- helpers


def _progress(text: str) -> None:
    """A progress line on stderr, flushed (also when stderr is a pipe to a log file)."""
    print(text, file=sys.stderr, flush=True)


def resolve_task(name: str) -> str:
    """The GUE task folder (``prom/prom_core_all``) of a name given as in DESIGN §5
    (``prom_core_all``, ``tf/0``) or as the folder itself.

    Raises:
        ValueError: ``name`` is not one of the GUE tasks with a train split.
    """
    for task in GUE_TASKS:
        if name in (task, task.removeprefix("prom/")):
            return task
    raise ValueError(
        f"unknown GUE task {name!r}; tasks with train/dev/test splits in the shared data: "
        f"{', '.join(DEFAULT_TASKS)}"
    )


def _short(task: str) -> str:
    return task.removeprefix("prom/")


def parse_set(
    items: Sequence[str],
    estimator: type = TitansSequenceClassifier,
    reserved: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``["key=value", ...]`` -> ``{key: value}`` for ``estimator``'s constructor (default
    :class:`TitansSequenceClassifier`; ``recipes/genomics_pretrain.py`` passes ``TitansDNALM``).

    Values are read with :func:`ast.literal_eval` (``64`` -> int, ``1e-3`` -> float, ``None``,
    ``True``, ``{"0": 2.0}``) and kept as strings otherwise (``variant=mac``).

    Raises:
        ValueError: an item without ``=``, a key that is not a constructor parameter (the
            message lists the valid ones), or a ``reserved`` key (default ``random_state``
            and ``accelerator``, set by ``--seeds``/``--device``).
    """
    valid = sorted(estimator().get_params(deep=False))
    if reserved is None:
        reserved = {"random_state": "--seeds", "accelerator": "--device"}
    name = estimator.__name__
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {item!r} (e.g. --set d_model=64)")
        if key in reserved:
            raise ValueError(f"--set {key}=...: use {reserved[key]} instead")
        if key not in valid:
            raise ValueError(
                f"--set {item!r}: {key!r} is not a {name} parameter; valid "
                f"keys: {', '.join(k for k in valid if k not in reserved)}"
            )
        text = text.strip()
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            value = text
        out[key] = value
    return out


def stratified_subsample(
    split: SequenceSplit, n: int | None, seed: int = SPLIT_SEED
) -> SequenceSplit:
    """At most ``n`` rows of ``split``, stratified by label (plain random when a class is too
    small to stratify), in their original order; ``split`` itself when it has ``<= n`` rows."""
    if n is None or len(split) <= n:
        return split
    if n < 1:
        raise ValueError(f"subsample size must be >= 1, got {n}")
    index = np.arange(len(split))
    labels = split.labels
    try:
        keep, _ = train_test_split(index, train_size=n, stratify=labels, random_state=seed)
    except ValueError:  # a class with one member, or n smaller than the number of classes
        keep, _ = train_test_split(index, train_size=n, random_state=seed)
    return _subset(split, np.sort(keep), split.split)


def _subset(split: SequenceSplit, index: np.ndarray, name: str) -> SequenceSplit:
    frame = split.frame.iloc[np.asarray(index)].reset_index(drop=True)
    return SequenceSplit(frame, split.classes, split.name, name, split.source)


def _holdout(split: SequenceSplit, fraction: float = 0.1) -> tuple[SequenceSplit, SequenceSplit]:
    """Stratified ``(1 - fraction, fraction)`` split of ``split`` (seed :data:`SPLIT_SEED`)."""
    index = np.arange(len(split))
    fit_idx, val_idx = train_test_split(
        index, test_size=fraction, stratify=split.labels, random_state=SPLIT_SEED
    )
    return _subset(split, np.sort(fit_idx), "train"), _subset(split, np.sort(val_idx), "dev")


def _round(value: Any, digits: int = 5) -> float | None:
    return None if value is None else round(float(value), digits)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


# --------------------------------------------------------------------------- one split


def _epoch_progress(label: str, max_epochs: int) -> Any:
    """A Lightning callback printing one stderr line per finished epoch (defined here so
    importing the recipe does not import Lightning)."""
    import lightning.pytorch as pl

    class EpochProgress(pl.Callback):
        def __init__(self) -> None:
            self.started = time.perf_counter()

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            metrics = trainer.callback_metrics
            parts = [f"{label}: epoch {trainer.current_epoch + 1}/{max_epochs}"]
            for key in ("train_loss", "val_loss"):
                if metrics.get(key) is not None:
                    parts.append(f"{key} {float(metrics[key]):.4f}")
            if trainer.optimizers:
                parts.append(f"lr {trainer.optimizers[0].param_groups[0]['lr']:.3g}")
            parts.append(f"{time.perf_counter() - self.started:.0f} s")
            _progress(", ".join(parts))

    return EpochProgress()


class _Classifier(TitansSequenceClassifier):
    """:class:`TitansSequenceClassifier` that prints a progress line per epoch (same
    parameters, same training; only a callback is added to its trainer)."""

    progress_label = ""

    def _make_trainer(self, *, callbacks: Sequence[Any] = (), **kwargs: Any) -> Any:
        extra = _epoch_progress(self.progress_label, kwargs.get("max_epochs", self.max_epochs))
        return super()._make_trainer(callbacks=[*callbacks, extra], **kwargs)


def _titans_params(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    params = dict(args.set_params)
    if args.max_epochs is not None:
        params["max_epochs"] = args.max_epochs
    elif args.quick and "max_epochs" not in params:
        params["max_epochs"] = QUICK_EPOCHS
    params["accelerator"] = args.device
    params["random_state"] = seed
    return params


def _fit_titans(
    args: argparse.Namespace,
    label: str,
    seed: int,
    train: SequenceSplit,
    dev: SequenceSplit,
    test: SequenceSplit,
) -> dict[str, Any]:
    """Fit on ``train`` (early stopping on ``dev``), score ``test``; one CSV row's fields."""
    clf = _Classifier(**_titans_params(args, seed))
    clf.progress_label = f"{label} seed {seed}"
    _progress(f"{label} seed {seed}: Titans fitting on {len(train):,} sequences ...")
    started = time.perf_counter()
    clf.fit(train.sequences, train.labels, validation_data=(dev.sequences, dev.labels))
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    proba = clf.predict_proba(test.sequences)
    pred = clf.classes_[np.argmax(proba, axis=1)]  # what predict() returns
    predict_seconds = time.perf_counter() - started
    y = test.labels
    if args.save_proba:
        _save_proba(args, label, f"seed{seed}", clf.classes_, proba, y)
        dev_proba = clf.predict_proba(dev.sequences)
        _save_proba(args, label, f"seed{seed}", clf.classes_, dev_proba, dev.labels, split="dev")
    if args.save_model:
        path = clf.save(_artifact_path(args, label, f"seed{seed}_model"))
        _progress(f"{label} seed {seed}: fitted classifier saved to {path}")
    bb = clf.config_.backbone
    resolved = {
        "d_model": bb.d_model,
        "learning_rate": clf.learning_rate_,
        "lr_decay": clf.lr_decay_,
        "window": bb.window,
        "memory_chunk_size": bb.memory.chunk_size if bb.memory is not None else None,
        "vocab_size": clf.config_.vocab_size,
        "kmer_k": clf.kmer_k_,
        "kmer_k_dev_loss": None if clf.kmer_k_scores_ is None else {
            str(k): _round(v) for k, v in clf.kmer_k_scores_.items()
        },
        "position_embedding": clf.position_embedding_,
        "position_dev_loss": None if clf.position_scores_ is None else {
            str(k).lower(): _round(v) for k, v in clf.position_scores_.items()
        },
        # each candidate's dev loss minus the lowest, and that paired difference's SE
        "kmer_k_margin": None if clf.kmer_k_margins_ is None else {
            str(k): [_round(m["difference"]), _round(m["se"])]
            for k, m in clf.kmer_k_margins_.items()
        },
        "position_margin": None if clf.position_margins_ is None else {
            str(k).lower(): [_round(m["difference"]), _round(m["se"])]
            for k, m in clf.position_margins_.items()
        },
        # every network the "auto" search trained, in order: [k, positions, dev loss]
        "search": [
            [f["kmer_k"], f["position_embedding"], _round(f["val_loss"])]
            for f in clf.search_path_
        ],
        "n_parameters": int(sum(p.numel() for p in clf.model_.parameters())),
        "device": str(resolve_device(clf.accelerator, clf.devices)),
    }
    params = {k: _jsonable(v) for k, v in clf.get_params(deep=False).items()}
    row = {
        "model": TITANS,
        "seed": seed,
        "mcc": 100.0 * float(matthews_corrcoef(y, pred)),
        "accuracy": 100.0 * float(accuracy_score(y, pred)),
        "n_train": clf.n_train_samples_,
        "n_val": clf.n_val_samples_,
        "n_test": len(test),
        "max_epochs": clf.max_epochs,
        "epochs_run": len(clf.history_),
        "best_epoch": None if clf.best_epoch_ is None else clf.best_epoch_ + 1,
        "fit_seconds": round(fit_seconds, 2),
        "predict_seconds": round(predict_seconds, 2),
        "params": json.dumps(params, sort_keys=True, default=str),
        "resolved": json.dumps(resolved, sort_keys=True),
        "history": json.dumps(
            [
                [
                    r["epoch"] + 1, _round(r.get("train_loss")), _round(r.get("val_loss")),
                    r.get("lr"),
                ]
                for r in clf.history_
            ]
        ),
    }
    _progress(
        f"{label} seed {seed}: Titans {row['epochs_run']} epoch(s) (best {row['best_epoch']}), "
        f"fit {fit_seconds:.0f} s, predict {predict_seconds:.0f} s: MCC {row['mcc']:.2f}, "
        f"acc {row['accuracy']:.2f}"
    )
    return row


def _artifact_path(args: argparse.Namespace, label: str, name: str) -> pathlib.Path:
    """``<out>/<tag>_<task slug>_<name>`` (the folder created): where a fit's files go."""
    slug = re.sub(r"[^A-Za-z0-9_.+-]", "_", label)
    path = pathlib.Path(args.out) / f"{args.tag}_{slug}_{name}"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _save_proba(
    args: argparse.Namespace, label: str, model: str, classes: np.ndarray, proba: np.ndarray,
    y: np.ndarray, *, split: str = "test",
) -> None:
    """Write one model's ``split`` probabilities (``--save-proba``) for ``--average-proba``."""
    path = _artifact_path(args, label, f"{model}_{split}_proba.npz")
    np.savez(path, classes=classes, proba=proba, y=np.asarray(y))
    _progress(f"{label} {model}: {split} probabilities written to {path}")


def _fit_kmer(
    args: argparse.Namespace,
    label: str,
    train: SequenceSplit,
    dev: SequenceSplit,
    test: SequenceSplit,
) -> dict[str, Any]:
    _progress(f"{label}: k-mer baseline fitting on {len(train):,} sequences ...")
    result = run_kmer_baseline(train, test, dev)
    if args.save_proba:
        _save_proba(args, label, "kmer", result.classes, result.test_proba, test.labels)
    _progress(
        f"{label}: k-mer MCC {result.mcc:.2f}, acc {result.accuracy:.2f} "
        f"(C={result.C:g} chosen on dev, {result.seconds:.0f} s)"
    )
    return {
        "model": KMER,
        "mcc": result.mcc,
        "accuracy": result.accuracy,
        "n_train": result.n_train,
        "n_val": len(dev),
        "n_test": result.n_test,
        "fit_seconds": round(result.seconds, 2),
        "C": result.C,
        "params": json.dumps(
            {
                "k_min": result.k_min,
                "k_max": result.k_max,
                "transform": result.transform,
                "dev_mcc_by_C": {str(c): v for c, v in result.val_mcc.items()},
            },
            sort_keys=True,
        ),
    }


def _run_split(
    args: argparse.Namespace,
    label: str,
    train: SequenceSplit,
    dev: SequenceSplit,
    test: SequenceSplit,
    common: dict[str, Any],
) -> list[dict[str, Any]]:
    """Titans for every seed and (unless ``--no-baseline``) the k-mer baseline, on one
    (train, dev, test) triple; ``common`` fields are added to every row."""
    rows = []
    for seed in () if args.baseline_only else args.seeds:
        rows.append({**common, **_fit_titans(args, label, seed, train, dev, test)})
    if not args.no_baseline:
        rows.append({**common, **_fit_kmer(args, label, train, dev, test)})
    return rows


def _common(
    args: argparse.Namespace,
    task: str,
    benchmark: str,
    protocol: str,
    n_available: int,
    source: str,
) -> dict[str, Any]:
    return {
        "tag": args.tag,
        "task": task,
        "benchmark": benchmark,
        "protocol": protocol,
        "n_train_available": n_available,
        "max_train": args.max_train,
        "quick": bool(args.quick),
        "hardware": args.hardware,
        "command": args.command,
        "data_source": source,
    }


def _shrink(
    args: argparse.Namespace, train: SequenceSplit, dev: SequenceSplit, test: SequenceSplit
) -> tuple[SequenceSplit, SequenceSplit, SequenceSplit]:
    """``--max-train`` subsample of train; with ``--quick`` also small dev/test."""
    train = stratified_subsample(train, args.max_train)
    if args.quick:
        dev = stratified_subsample(dev, QUICK_EVAL)
        test = stratified_subsample(test, QUICK_EVAL)
    return train, dev, test


def run_gue_task(args: argparse.Namespace, name: str) -> list[dict[str, Any]]:
    """All rows (Titans per seed, k-mer baseline) of one GUE task."""
    task = resolve_task(name)
    short = _short(task)
    splits = load_gue(task, path=args.data_dir)
    train, dev, test = splits["train"], splits["dev"], splits["test"]
    n_available = len(train)
    train, dev, test = _shrink(args, train, dev, test)
    _progress(
        f"{short}: train {len(train):,} (of {n_available:,}), dev {len(dev):,}, "
        f"test {len(test):,} ({pathlib.Path(train.source).parent})"
    )
    common = _common(
        args, short, GUE, PROTOCOL_GUE, n_available, str(pathlib.Path(train.source).parent)
    )
    return _run_split(args, short, train, dev, test, common)


def cross_validate(
    args: argparse.Namespace, split: SequenceSplit, folds: int = CV_FOLDS
) -> list[dict[str, Any]]:
    """Stratified ``folds``-fold CV on one labelled split (an official test split).

    Each fold trains on the other folds minus a stratified 10% held out for early stopping
    (the same hold-out selects the k-mer baseline's ``C``) and scores its own fold. Folds and
    hold-outs use seed :data:`SPLIT_SEED`; ``--max-train`` caps each training part;
    ``--cv-folds`` (1-based) runs only those folds, the same folds as in a full run.

    Returns:
        One row per (model, seed, fold run), ``fold`` in ``0..folds-1``.
    """
    name = split.name
    pool = stratified_subsample(split, QUICK_CV_POOL) if args.quick else split
    kfold = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SPLIT_SEED)
    chosen = getattr(args, "cv_folds", None)
    rows: list[dict[str, Any]] = []
    for fold, (train_idx, test_idx) in enumerate(kfold.split(np.zeros(len(pool)), pool.labels)):
        if chosen is not None and fold + 1 not in chosen:
            continue
        rest = _subset(pool, train_idx, "train")
        test = _subset(pool, test_idx, "test")
        train, dev = _holdout(rest)
        n_available = len(train)
        train = stratified_subsample(train, args.max_train)
        label = f"{name} fold {fold + 1}/{folds}"
        _progress(
            f"{label}: train {len(train):,} (of {n_available:,}), early-stopping hold-out "
            f"{len(dev):,}, test fold {len(test):,}"
        )
        common = _common(args, name, GB, PROTOCOL_CV, n_available, split.source)
        for row in _run_split(args, label, train, dev, test, common):
            rows.append({**row, "fold": fold})
    return rows


def _gb_full_copy(name: str, root: str | None) -> tuple[SequenceSplit, SequenceSplit] | None:
    try:
        return (
            load_genomic_benchmark(name, "train", root=root),
            load_genomic_benchmark(name, "test", root=root),
        )
    except FileNotFoundError:
        return None


def run_genomic_benchmark(args: argparse.Namespace, name: str) -> list[dict[str, Any]]:
    """Official train/test when a full copy is found, else 5-fold CV on the shared test
    split (labelled :data:`PROTOCOL_CV`)."""
    full = _gb_full_copy(name, args.gb_root)
    if full is None:
        split = load_genomic_benchmark_test(name, path=args.gb_test_path)
        _progress(
            f"{name}: no full copy (train split) found; {CV_FOLDS}-fold CV on the official "
            f"test split ({len(split):,} sequences, {split.source})"
        )
        return cross_validate(args, split)
    train_all, test = full
    train, dev = _holdout(train_all)
    n_available = len(train)
    train, dev, test = _shrink(args, train, dev, test)
    _progress(
        f"{name}: train {len(train):,} (of {n_available:,}), hold-out {len(dev):,}, "
        f"test {len(test):,} ({train_all.source})"
    )
    common = _common(args, name, GB, PROTOCOL_GB, n_available, train_all.source)
    return _run_split(args, name, train, dev, test, common)


# --------------------------------------------------------------------------- summary


def _num(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def _seed_means(rows: Sequence[dict[str, Any]], key: str) -> list[float]:
    """Per seed, the mean of ``key`` over folds (one value per seed)."""
    by_seed: dict[str, list[float]] = {}
    for row in rows:
        value = _num(row.get(key))
        if value is not None:
            by_seed.setdefault(str(row.get("seed", "")), []).append(value)
    return [float(np.mean(v)) for _, v in sorted(by_seed.items())]


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    std = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return float(np.mean(values)), std


def _subsampled(row: dict[str, Any]) -> bool:
    n, available = _num(row.get("n_train")), _num(row.get("n_train_available"))
    return n is not None and available is not None and n < available


def _is_true(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


def _data_key(task: str, rows: Sequence[dict[str, Any]]) -> tuple[str, str, str]:
    """(task, protocol, training-set size) of a run's rows: what a baseline depends on."""
    first = rows[0]
    n_train = max((int(v) for v in (_num(r.get("n_train")) for r in rows) if v is not None),
                  default=-1)
    return task, str(first.get("protocol", "")), str(n_train)


def summarise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary per (tag, task): means (± std over seeds when > 1 seed; CV rows are first
    averaged over folds) of Titans and the k-mer baseline, DNABERT-2's MCC and the notes."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((str(row.get("tag", "")), str(row["task"])), []).append(row)
    # the k-mer baseline depends only on the data: a run without one (--no-baseline) borrows
    # it from a run on the same task, protocol and training-set size (e.g. --baseline-only)
    baselines: dict[tuple[str, str, str], tuple[str, list[dict[str, Any]]]] = {}
    for (tag, task), group in groups.items():
        kmer = [r for r in group if r["model"] == KMER]
        if kmer:
            baselines.setdefault(_data_key(task, kmer), (tag, kmer))
    lent: set[tuple[str, str]] = set()
    for (_, task), group in groups.items():
        titans = [r for r in group if r["model"] == TITANS]
        if titans and not any(r["model"] == KMER for r in group):
            source = baselines.get(_data_key(task, titans))
            if source is not None:
                group.extend(dict(r, borrowed_from=source[0]) for r in source[1])
                lent.add((source[0], task))
    groups = {
        key: group
        for key, group in groups.items()
        if any(r["model"] == TITANS for r in group) or key not in lent
    }
    tasks_seen: dict[str, int] = {}
    for _, task in groups:
        tasks_seen[task] = tasks_seen.get(task, 0) + 1
    out = []
    for (tag, task), group in groups.items():
        titans = [r for r in group if r["model"] == TITANS]
        kmer = [r for r in group if r["model"] == KMER]
        first = group[0]
        benchmark, protocol = first.get("benchmark", ""), first.get("protocol", "")
        metric = "accuracy" if benchmark == GB else "mcc"
        t_dev, _ = _mean_std(_seed_means(
            [dict(r, dev_loss=_min_dev_loss(r)) for r in titans], "dev_loss"
        ))
        t_mcc, t_mcc_sd = _mean_std(_seed_means(titans, "mcc"))
        t_acc, t_acc_sd = _mean_std(_seed_means(titans, "accuracy"))
        k_mcc, _ = _mean_std(_seed_means(kmer, "mcc"))
        k_acc, _ = _mean_std(_seed_means(kmer, "accuracy"))
        t_main, k_main = (t_acc, k_acc) if metric == "accuracy" else (t_mcc, k_mcc)
        delta = None if t_main is None or k_main is None else t_main - k_main
        seeds = sorted({str(r.get("seed")) for r in titans})
        epochs = [int(v) for v in (_num(r.get("epochs_run")) for r in titans) if v is not None]
        best = [int(v) for v in (_num(r.get("best_epoch")) for r in titans) if v is not None]
        fit = [v for v in (_num(r.get("fit_seconds")) for r in titans) if v is not None]
        n_train = [int(v) for v in (_num(r.get("n_train")) for r in group) if v is not None]
        n_avail = [
            int(v) for v in (_num(r.get("n_train_available")) for r in group) if v is not None
        ]
        n_test = [int(v) for v in (_num(r.get("n_test")) for r in group) if v is not None]
        folds = sorted({str(r.get("fold")) for r in group if str(r.get("fold", "")) != ""})
        settings = ""

        notes = []
        if _is_true(first.get("quick")):
            notes.append("**--quick smoke run: tiny subsamples, 1 epoch; not a result**")
        if protocol == PROTOCOL_CV:
            notes.append(
                f"**{PROTOCOL_CV}** (mean of {len(folds)} folds; not comparable with "
                "published numbers, which train on the official train split)"
            )
        elif protocol == PROTOCOL_GB:
            notes.append(PROTOCOL_GB)
        if n_train and n_avail and max(n_train) < max(n_avail):
            notes.append(
                f"**train subsampled** to {max(n_train):,} of {max(n_avail):,} (stratified)"
            )
        if titans:
            max_epochs = sorted({str(r.get("max_epochs")) for r in titans})
            params = {}
            try:
                params = json.loads(titans[0].get("params") or "{}")
            except json.JSONDecodeError:
                pass
            if max_epochs != [str(CLASSIFIER_DEFAULTS.max_epochs)]:
                notes.append(f"max_epochs={'/'.join(max_epochs)}")
            if epochs:
                text = (
                    f"epochs run {min(epochs)}–{max(epochs)}"
                    if len(set(epochs)) > 1
                    else (f"epochs run {epochs[0]}")
                )
                if best:
                    text += f" (best {'/'.join(str(b) for b in sorted(set(best)))})"
                notes.append(text)
            if len(seeds) > 1:
                notes.append(f"{len(seeds)} seeds, ± = std over seeds")
            overrides = _overrides(params)
            settings = ", ".join(f"{k}={v}" for k, v in overrides.items())
            if overrides:
                notes.append("set: " + settings)
        if not kmer:
            notes.append("no baseline (--no-baseline)")
        elif "borrowed_from" in kmer[0]:
            notes.append(f"k-mer baseline from run {kmer[0]['borrowed_from']} (same data)")
        if not titans:
            notes.append("baseline only (--baseline-only)")
        if metric == "accuracy":
            pub = [
                f"{model} {PUBLISHED[model][task]:.1f}"
                for model in ("Titans (paper, LMM)", "HyenaDNA")
                if task in PUBLISHED[model]
            ]
            notes.append("Δ in accuracy" + (f"; published acc: {', '.join(pub)}" if pub else ""))
        if tasks_seen[task] > 1:
            notes.append(f"run {tag}")
        out.append(
            {
                "task": task,
                "benchmark": benchmark,
                "protocol": protocol,
                "metric": metric,
                "titans_mcc": t_mcc,
                "titans_mcc_std": t_mcc_sd,
                "titans_accuracy": t_acc,
                "titans_accuracy_std": t_acc_sd,
                "titans_dev_loss": t_dev,
                "settings": settings or "defaults",
                "n_seeds": len(seeds),
                "kmer_mcc": k_mcc,
                "kmer_accuracy": k_acc,
                "dnabert2_mcc": PUBLISHED["DNABERT-2"].get(task),
                "titans_minus_kmer": delta,
                "epochs_run": "/".join(str(e) for e in epochs),
                "fit_seconds": float(np.sum(fit)) if fit else None,
                "n_train": max(n_train) if n_train else None,
                "n_test": max(n_test) if n_test else None,
                "notes": "; ".join(notes),
                "tag": tag,
                "hardware": first.get("hardware", ""),
                "command": first.get("command", ""),
            }
        )
    order = {t: i for i, t in enumerate(DEFAULT_TASKS + tuple(GENOMIC_BENCHMARKS))}
    out.sort(key=lambda s: (order.get(s["task"], len(order)), s["task"], s["tag"]))
    return out


def _min_dev_loss(row: dict[str, Any]) -> float | None:
    """The lowest validation loss of a Titans run's history (the restored weights' dev loss;
    the ``history`` column holds ``[[epoch, train_loss, val_loss, lr], ...]``)."""
    try:
        history = json.loads(row.get("history") or "[]")
    except (TypeError, json.JSONDecodeError):
        return None
    losses = [_num(h[2]) for h in history if len(h) > 2]
    losses = [v for v in losses if v is not None]
    return min(losses) if losses else None


def select_on_dev(summaries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per task and training set with several Titans runs (configurations), the run with
    the lowest dev loss (cross-entropy of its restored weights on the dev split; the test
    split plays no part in the choice), with the candidates beside it.

    Returns one dict per such task: the chosen summary's fields plus ``candidates`` (the
    number of runs compared) and ``others`` (``tag dev-loss/MCC`` of the rest, best first).
    """
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for s in summaries:
        if s.get("titans_dev_loss") is None or s.get("titans_mcc") is None:
            continue
        key = (s["task"], str(s.get("protocol", "")), str(s.get("n_train")))
        groups.setdefault(key, []).append(s)
    out = []
    for group in groups.values():
        if len(group) < 2:
            continue
        ranked = sorted(group, key=lambda s: s["titans_dev_loss"])
        others = ", ".join(
            f"{s['tag']} {s['titans_dev_loss']:.4f}/{_fmt(s['titans_mcc'])}" for s in ranked[1:]
        )
        out.append(dict(ranked[0], candidates=len(group), others=others))
    order = {t: i for i, t in enumerate(DEFAULT_TASKS + tuple(GENOMIC_BENCHMARKS))}
    out.sort(key=lambda s: (order.get(s["task"], len(order)), s["task"]))
    return out


def dev_selection_table(selected: Sequence[dict[str, Any]]) -> str:
    """Markdown table of :func:`select_on_dev`'s choices."""
    head = ["task", "chosen run", "settings", "dev loss", "Titans MCC", "k-mer MCC",
            "DNABERT-2 MCC", "Titans − k-mer", "other candidates (dev loss/MCC)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in selected:
        cells = [s["task"], s["tag"], s["settings"], f"{s['titans_dev_loss']:.4f}",
                 _fmt(s["titans_mcc"], s["titans_mcc_std"]), _fmt(s["kmer_mcc"]),
                 _fmt(s["dnabert2_mcc"]), _signed(s["titans_minus_kmer"]), s["others"]]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def _overrides(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters that differ from a default-constructed classifier (besides the seed,
    device and max_epochs, reported elsewhere)."""
    defaults = TitansSequenceClassifier().get_params(deep=False)
    skip = {"random_state", "accelerator", "max_epochs"}
    return {
        k: v
        for k, v in params.items()
        if k not in skip and k in defaults and _jsonable(defaults[k]) != v
    }


def _fmt(value: float | None, std: float | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.2f}" if std is None else f"{value:.2f} ± {std:.2f}"


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f}"


def markdown_table(summaries: Sequence[dict[str, Any]]) -> str:
    """The results table: task, Titans MCC, Titans acc, k-mer MCC, k-mer acc, DNABERT-2 MCC,
    Titans − k-mer (MCC for GUE, accuracy for Genomic Benchmarks), notes."""
    head = [
        "task",
        "Titans MCC",
        "Titans acc",
        "k-mer MCC",
        "k-mer acc",
        "DNABERT-2 MCC",
        "Titans − k-mer",
        "notes",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        cells = [
            s["task"],
            _fmt(s["titans_mcc"], s["titans_mcc_std"]),
            _fmt(s["titans_accuracy"], s["titans_accuracy_std"]),
            _fmt(s["kmer_mcc"]),
            _fmt(s["kmer_accuracy"]),
            _fmt(s["dnabert2_mcc"]),
            _signed(s["titans_minus_kmer"]),
            s["notes"] or "",
        ]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def _published_table(tasks: Sequence[str]) -> str:
    gue = [t for t in dict.fromkeys(tasks) if t in PUBLISHED["DNABERT-2"]]  # unique, in order
    if not gue:
        return ""
    models = [m for m, metric in PUBLISHED_METRIC.items() if metric == "mcc"]
    lines = [
        "| task | " + " | ".join(f"{m} MCC" for m in models) + " |",
        "|" + "---|" * (len(models) + 1),
    ]
    for task in gue:
        cells = [_fmt(PUBLISHED[m].get(task)) for m in models]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_report(
    rows: Sequence[dict[str, Any]], title: str, wall_seconds: float | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """Markdown report of ``rows`` (per-run rows, possibly from several files) and the
    summaries it tabulates."""
    summaries = summarise(rows)
    hardware = sorted({str(r.get("hardware", "")) for r in rows if r.get("hardware")})
    commands = sorted({str(r.get("command", "")) for r in rows if r.get("command")})
    lines = [f"# {title}", ""]
    for cmd in commands:
        lines.append(f"- Command: `{cmd}`")
    for hw in hardware:
        lines.append(f"- Hardware: {hw}")
    if wall_seconds is not None:
        wall = f"{wall_seconds:.0f} s" if wall_seconds < 120 else f"{wall_seconds / 60:.1f} min"
        lines.append(f"- Wall time: {wall}")
    benchmarks = {r.get("benchmark") for r in rows}
    if GUE in benchmarks:
        lines.append(
            f"- GUE protocol: {PROTOCOL_GUE}; metric MCC ×100 on the test split (accuracy ×100 "
            "beside it)."
        )
    if GB in benchmarks:
        lines.append(
            "- Genomic Benchmarks: top-1 accuracy ×100 (MCC ×100 beside it); protocol in the notes."
        )
    lines += [
        "- Titans: TitansSequenceClassifier defaults (CLASSIFIER_DEFAULTS) unless `set:` in "
        "the notes; best weights (lowest dev loss) restored. Per-run parameters (resolved "
        "d_model/window included) are in the CSV's `params`/`resolved` columns.",
        "- k-mer LR: overlapping k-mer counts, k = 3–6, + logistic regression (lbfgs), C from "
        "{1e-3, 1e-2, 0.1, 1} chosen by dev MCC; same splits as Titans.",
        "- Titans − k-mer: difference of the means, in MCC points for GUE and accuracy points "
        "for Genomic Benchmarks.",
    ]
    honesty = []
    if any(_is_true(r.get("quick")) for r in rows):
        honesty.append(
            f"**--quick rows are smoke tests** (train ≤ {QUICK_TRAIN}, dev/test ≤ "
            f"{QUICK_EVAL} sequences or a CV pool of ≤ {QUICK_CV_POOL}, {QUICK_EPOCHS} epoch): "
            "not results."
        )
    if any(r.get("protocol") == PROTOCOL_CV for r in rows):
        honesty.append(
            f"**{PROTOCOL_CV}** rows: only the official test split is available here, so "
            "models are trained and scored within it (stratified folds); published numbers "
            "train on the official train split and are not directly comparable."
        )
    if any(_subsampled(r) for r in rows):
        honesty.append(
            "**Subsampled training sets** (--max-train) are named in the notes; the "
            "published models train on all of train."
        )
    if honesty:
        lines += ["", *(f"- {h}" for h in honesty)]
    lines += ["", markdown_table(summaries), ""]
    selected = select_on_dev(summaries)
    if selected:
        lines += [
            "Chosen on the dev split: where a task has several Titans runs on the same "
            "training set, the one whose restored weights have the lowest dev loss (the "
            "test split plays no part in the choice).",
            "",
            dev_selection_table(selected),
            "",
        ]
    published = _published_table([s["task"] for s in summaries])
    if published:
        lines += ["Published GUE test MCC (DESIGN.md §5; – = not given):", "", published, ""]
    return "\n".join(lines) + "\n", summaries


# --------------------------------------------------------------------------- files


def _write_csv(path: pathlib.Path, rows: Sequence[dict[str, Any]], fields: Sequence[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in fields})
    os.replace(tmp, path)  # readers (--report-from) never see a half-written file


def read_run_csvs(folder: str | os.PathLike) -> tuple[list[dict[str, Any]], list[pathlib.Path]]:
    """Every per-run row of every per-run CSV in ``folder`` (not ``genomics_results.csv``;
    CSVs without this recipe's columns are skipped) and the files read."""
    rows: list[dict[str, Any]] = []
    files: list[pathlib.Path] = []
    for path in sorted(pathlib.Path(folder).glob("*.csv")):
        if path.stem == COMBINED:
            continue
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not {"tag", "task", "model", "mcc"} <= set(reader.fieldnames or ()):
                continue
            rows.extend(dict(r) for r in reader)
        files.append(path)
    return rows, files


def average_proba(paths: Sequence[str | os.PathLike]) -> list[dict[str, Any]]:
    """Score the test probabilities written by ``--save-proba`` one by one and averaged.

    Averaging the class probabilities of several seeds is a seed ensemble: a different
    model from any single fit, to be reported as such.

    Returns:
        One ``{"name", "mcc", "mcc_se", "accuracy", "log_loss", "log_loss_vs_first"}`` per
        file (MCC and accuracy x 100), then the same for ``"average"`` of all files.
        ``mcc_se`` is the test split's own sampling error: the standard deviation of the MCC
        over ``BOOTSTRAP_RESAMPLES`` resamples of the test sequences with replacement (the
        same resamples for every row, fixed seed), e.g. about 2.3 MCC at an MCC near 65 on
        1,000 sequences. ``log_loss`` is the mean test cross-entropy (nats per sequence,
        unweighted); ``log_loss_vs_first`` is ``(difference, se)`` of the paired
        per-sequence losses against the first file's (``None`` for the first): a comparison
        of two models on the same sequences that does not depend on a decision threshold.
    Raises:
        ValueError: fewer than two files, or files that disagree on classes or labels.
    """
    if len(paths) < 2:
        raise ValueError(f"--average-proba needs at least two .npz files, got {len(paths)}")
    loaded = []
    for path in paths:
        with np.load(path, allow_pickle=False) as data:
            loaded.append((pathlib.Path(path).name, data["classes"], data["proba"], data["y"]))
    _, classes, _, y = loaded[0]
    for name, c, _proba, yy in loaded[1:]:
        if not np.array_equal(c, classes) or not np.array_equal(yy, y):
            raise ValueError(
                f"{name} has other classes or test labels than {loaded[0][0]}: average only "
                "files written for the same task and test split"
            )
    rows = []
    named = [(n, p) for n, _, p, _ in loaded]
    named.append(("average", np.mean([p for _, p in named], axis=0)))
    resamples = np.random.default_rng(0).integers(0, len(y), (BOOTSTRAP_RESAMPLES, len(y)))
    index = {c: i for i, c in enumerate(classes.tolist())}
    y_code = np.array([index[c] for c in y.tolist()])
    first_losses = None
    for name, proba in named:
        pred_code = np.argmax(proba, axis=1)
        pred = classes[pred_code]
        boot = _mcc_of_resamples(y_code, pred_code, len(classes), resamples)
        losses = -np.log(np.clip(proba[np.arange(len(y)), y_code], 1e-12, None))
        versus = None
        if first_losses is None:
            first_losses = losses
        else:
            diff = losses - first_losses
            versus = (float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff))))
        rows.append({
            "name": name,
            "mcc": 100.0 * float(matthews_corrcoef(y, pred)),
            "mcc_se": 100.0 * float(np.std(boot, ddof=1)),
            "accuracy": 100.0 * float(accuracy_score(y, pred)),
            "log_loss": float(losses.mean()),
            "log_loss_vs_first": versus,
        })
    return rows


def _mcc_of_resamples(
    y: np.ndarray, pred: np.ndarray, n_classes: int, resamples: np.ndarray
) -> np.ndarray:
    """The (multi-class) MCC of ``pred`` against ``y`` (class codes ``0..n_classes-1``,
    shape ``(n,)``) on each row of ``resamples`` (indices, ``(R, n)``): ``(R,)``, as
    sklearn's ``matthews_corrcoef`` computes it (0 where it is undefined), in one pass."""
    cells = (y * n_classes + pred)[resamples]  # (R, n) confusion-matrix cell of each draw
    offsets = n_classes * n_classes * np.arange(len(resamples))[:, None]
    counts = np.bincount((cells + offsets).ravel(), minlength=len(resamples) * n_classes**2)
    conf = counts.reshape(len(resamples), n_classes, n_classes).astype(np.float64)
    true, predicted = conf.sum(axis=2), conf.sum(axis=1)
    total, correct = conf.sum(axis=(1, 2)), np.trace(conf, axis1=1, axis2=2)
    cov = correct * total - (true * predicted).sum(axis=1)
    denom = np.sqrt(
        (total**2 - (predicted**2).sum(axis=1)) * (total**2 - (true**2).sum(axis=1))
    )
    return np.divide(cov, denom, out=np.zeros_like(cov), where=denom > 0)


def report_from(folder: str | os.PathLike) -> tuple[str, list[dict[str, Any]]]:
    """Merge the per-run CSVs of ``folder`` into ``genomics_results.md`` and
    ``genomics_results.csv`` (one summary row per task and run) there.

    Raises:
        FileNotFoundError: no per-run CSV in ``folder``.
    """
    folder = pathlib.Path(folder)
    rows, files = read_run_csvs(folder)
    if not rows:
        raise FileNotFoundError(
            f"no per-run CSVs of recipes/genomics.py in {folder} (files with columns tag, "
            "task, model, mcc)"
        )
    report, summaries = render_report(rows, "Genomics benchmarks: GUE and Genomic Benchmarks")
    report += "\nMerged from: " + ", ".join(f"`{f.name}`" for f in files) + "\n"
    (folder / f"{COMBINED}.md").write_text(report, encoding="utf-8")
    _write_csv(folder / f"{COMBINED}.csv", summaries, SUMMARY_FIELDS)
    return report, summaries


def default_tag(
    tasks: Sequence[str], genomic_benchmarks: Sequence[str], seeds: Sequence[int], quick: bool
) -> str:
    """File stem naming what a run covers, so concurrent runs of different tasks (or seeds)
    in one ``--out`` folder do not overwrite each other."""
    short = [_short(resolve_task(t)) for t in tasks]
    if list(short) == list(DEFAULT_TASKS):
        parts = ["gue-all"]
    else:
        parts = ["gue-" + "-".join(s.replace("/", "") for s in short)] if short else []
    parts += [f"gb-{name}" for name in genomic_benchmarks]
    if list(seeds) != [0]:
        parts.append("seeds" + "-".join(str(s) for s in seeds))
    if quick:
        parts.append("quick")
    stem = "genomics_" + "_".join(parts)
    if len(stem) > 100:
        digest = hashlib.sha1(stem.encode()).hexdigest()[:10]
        stem = stem[:80] + "_" + digest
    return stem


# --------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(
        prog=f"python {PROGRAM}",
        description="Titans vs a k-mer baseline on GUE (MCC) and Genomic Benchmarks (accuracy)"
        " with the protocol of DESIGN §5.",
    )
    p.add_argument(
        "--tasks",
        nargs="*",
        default=None,
        help=f"GUE tasks (default: all of {', '.join(DEFAULT_TASKS)}; none when only "
        "--genomic-benchmarks is given; '--tasks' alone runs none)",
    )
    p.add_argument(
        "--genomic-benchmarks",
        nargs="+",
        default=[],
        metavar="NAME",
        help=f"Genomic Benchmarks datasets ({', '.join(GENOMIC_BENCHMARKS)}); without a full "
        f"copy (--gb-root) only {', '.join(GENOMIC_BENCHMARKS_TEST)}, by 5-fold CV on the "
        "official test split",
    )
    p.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="accelerator for training and prediction (auto: CUDA when available)",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="mean ± std when > 1")
    p.add_argument("--max-epochs", type=int, default=None, help="override max_epochs")
    p.add_argument(
        "--max-train",
        type=int,
        default=None,
        help="stratified subsample of train of at most this many sequences (noted in the table)",
    )
    p.add_argument(
        "--set",
        dest="set_items",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a TitansSequenceClassifier parameter (repeatable), e.g. --set d_model=64 "
        "--set variant=mac --set window=None",
    )
    p.add_argument("--no-baseline", action="store_true", help="skip the k-mer baseline")
    p.add_argument(
        "--cv-folds",
        type=int,
        nargs="+",
        default=None,
        metavar="K",
        help=f"with the {CV_FOLDS}-fold CV fallback, run only these folds (1-based; the same "
        "folds as a full run; the table says how many folds its mean covers), e.g. to probe "
        "a setting on one fold",
    )
    p.add_argument(
        "--save-model", action="store_true",
        help="also save each fitted Titans classifier (TitansSequenceClassifier.save) to "
        "<out>/<tag>_<task>_seed<k>_model/, to score or probe it later without refitting",
    )
    p.add_argument(
        "--save-proba", action="store_true",
        help="also write each Titans fit's test-split class probabilities to "
        "<out>/<tag>_<task>_seed<k>_test_proba.npz (classes, proba, y), its dev split's to "
        "..._seed<k>_dev_proba.npz, and the k-mer "
        "baseline's to <out>/<tag>_<task>_kmer_test_proba.npz, e.g. to average seeds",
    )
    p.add_argument(
        "--baseline-only",
        action="store_true",
        help="only the k-mer baseline (CPU work; a report pairs it with the Titans rows of "
        "other runs on the same task and training set)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke test: train ≤ {QUICK_TRAIN}, dev/test ≤ {QUICK_EVAL} sequences (CV pool "
        f"≤ {QUICK_CV_POOL}), {QUICK_EPOCHS} epoch",
    )
    p.add_argument("--out", default="results/genomics", help="output folder")
    p.add_argument("--tag", default=None, help="output file stem (default: from the tasks)")
    p.add_argument(
        "--report-from",
        default=None,
        metavar="DIR",
        help="only merge the per-run CSVs in DIR into DIR/genomics_results.{md,csv}",
    )
    p.add_argument(
        "--average-proba",
        nargs="+",
        default=None,
        metavar="NPZ",
        help="only score --save-proba files one by one and with their probabilities averaged "
        "(a seed ensemble): MCC ± bootstrap SE, accuracy, log loss (paired against the first)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="data folder holding dna/gue/ (default: $TITANS_TS_DATA_DIR, then the cache)",
    )
    p.add_argument(
        "--gb-root",
        default=None,
        help="folder of full Genomic Benchmarks copies (<name>/{train,test}/<class>/*.txt; "
        "default ~/.genomic_benchmarks)",
    )
    p.add_argument(
        "--gb-test-path",
        default=None,
        help="folder or file of the official test splits (default: "
        "$TITANS_TS_DATA_DIR/dna/genomic_benchmarks_test/)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    return p


def _check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.tasks is None:
        args.tasks = [] if args.genomic_benchmarks else list(DEFAULT_TASKS)
    try:
        args.tasks = [_short(resolve_task(t)) for t in args.tasks]
        args.set_params = parse_set(args.set_items)
        probe = TitansSequenceClassifier(**_titans_params(args, 0))
        probe._validate_params()
    except (ValueError, TypeError) as err:
        p.error(str(err))
    for name in args.genomic_benchmarks:
        if name not in GENOMIC_BENCHMARKS:
            p.error(
                f"unknown Genomic Benchmarks dataset {name!r}; known: "
                f"{', '.join(GENOMIC_BENCHMARKS)}"
            )
        if name not in GENOMIC_BENCHMARKS_TEST and _gb_full_copy(name, args.gb_root) is None:
            p.error(
                f"{name}: no full copy under --gb-root "
                f"({args.gb_root or '~/.genomic_benchmarks'}) and no shared test split; "
                f"test splits available for CV: {', '.join(GENOMIC_BENCHMARKS_TEST)}"
            )
    if not args.tasks and not args.genomic_benchmarks:
        p.error("nothing to run: give --tasks and/or --genomic-benchmarks")
    if args.baseline_only and args.no_baseline:
        p.error("--baseline-only and --no-baseline exclude each other")
    if args.max_train is not None and args.max_train < 2:
        p.error("--max-train must be >= 2")
    if args.max_epochs is not None and args.max_epochs < 1:
        p.error("--max-epochs must be >= 1")
    if args.cv_folds is not None:
        bad = [k for k in args.cv_folds if not 1 <= k <= CV_FOLDS]
        if bad:
            p.error(f"--cv-folds {bad}: folds are numbered 1 to {CV_FOLDS}")
        args.cv_folds = sorted(set(args.cv_folds))
    if args.quick and args.max_train is None:
        args.max_train = QUICK_TRAIN
    if args.device == "cuda":
        try:
            resolve_device("cuda", 1)
        except ValueError as err:
            p.error(str(err))
    if args.tag is None:
        args.tag = default_tag(args.tasks, args.genomic_benchmarks, args.seeds, args.quick)
    if args.tag == COMBINED or not re.fullmatch(r"[A-Za-z0-9_.+-]+", args.tag):
        p.error(f"--tag {args.tag!r}: use letters, digits, _ . + - (and not {COMBINED!r})")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parsed and checked arguments (exits with a usage message on bad ones), with
    ``tasks`` resolved, ``set_params`` (from ``--set``), ``tag``, and, unless
    ``--report-from``, ``hardware`` and ``command`` (the exact command line) filled in."""
    argv = list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.report_from is not None or args.average_proba is not None:
        return args
    _check_args(parser, args)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    args.hardware = hardware_description(resolve_device(args.device, 1))
    args.command = command_line(argv, program=PROGRAM)
    return args


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Run the recipe. Returns the per-run rows (``--report-from``: the summaries)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.report_from is not None:
        try:
            report, summaries = report_from(args.report_from)
        except FileNotFoundError as err:
            build_parser().error(str(err))
        print(report, flush=True)
        _progress(f"wrote {pathlib.Path(args.report_from) / COMBINED}.{{md,csv}}")
        return summaries
    if args.average_proba is not None:
        try:
            scored = average_proba(args.average_proba)
        except (OSError, KeyError, ValueError) as err:
            build_parser().error(str(err))
        for row in scored:
            versus = row["log_loss_vs_first"]
            print(
                f"{row['name']:<60} MCC {row['mcc']:6.2f} ± {row['mcc_se']:4.2f} (bootstrap SE)"
                f"  acc {row['accuracy']:6.2f}  log loss {row['log_loss']:.4f}"
                + ("" if versus is None else f" ({versus[0]:+.4f} ± {versus[1]:.4f} vs the first)")
            )
        return scored
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / f"{args.tag}.csv", out / f"{args.tag}.md"
    _progress(f"hardware: {args.hardware}")
    _progress(f"writing {csv_path} and {md_path}")

    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    jobs = [("gue", t) for t in args.tasks] + [("gb", n) for n in args.genomic_benchmarks]
    report = ""
    for kind, name in jobs:
        task_start = time.perf_counter()
        if kind == "gue":
            rows += run_gue_task(args, name)
        else:
            rows += run_genomic_benchmark(args, name)
        _progress(f"{name}: done in {time.perf_counter() - task_start:.0f} s")
        _write_csv(csv_path, rows, CSV_FIELDS)
        report, _ = render_report(
            rows, f"Genomics benchmarks ({args.tag})", time.perf_counter() - started
        )
        md_path.write_text(report, encoding="utf-8")
    print(report, flush=True)
    return rows


if __name__ == "__main__":
    main()
