"""Pretrain a Titans DNA language model on the training sequences of GUE tasks.

Examples::

    export TITANS_TS_DATA_DIR=/work/shared/data
    # next-base pretraining on the human GUE train splits, with the tf/0 classifier's
    # network (6-mer tokens, MAG, width 32) and a 40-minute budget; then fine-tune on tf/0
    python recipes/genomics_pretrain.py --kmer-k 6 --max-time 2400 --out results/lm_human_k6
    python recipes/genomics.py --tasks tf/0 --set pretrained=results/lm_human_k6 \\
        --set position_embedding=False --set kmer_k=6
    python recipes/genomics_pretrain.py --quick --out /tmp/lm   # smoke test (seconds)

The corpus is the ``train`` split of each ``--tasks`` entry (default: the human GUE tasks
with a train split, :data:`HUMAN_TASKS`), de-duplicated, each sequence one record (no k-mer
spans two sequences); labels are not read. ``dev`` and ``test`` are never trained on: the
``dev`` sequences of the same tasks are the held-out set scored in bits per base before and
after training (2.0 = uniform over ``ACGT``), so the table shows whether the model learned
anything that transfers beyond the training sequences.

The network defaults are the classifier's (:data:`CLASSIFIER_DEFAULTS`: MAG, width 32,
2 layers, 2 heads, depth-2 memory with chunks of 32, window 128; docs/results.md's
pretraining figures were measured at the earlier large-set width, ``--set d_model=64``), so
``TitansSequenceClassifier(pretrained=out)`` starts from every embedding and backbone weight
and trains only a new head (plus whatever the fine-tuning changes). ``--set KEY=VALUE``
overrides any other :class:`~titans_ts.estimators.TitansDNALM` parameter.

Outputs in ``--out``: the saved model (``estimator.json``, ``weights.pt``) and
``pretrain_report.json`` (corpus, parameters, per-epoch loss, held-out bits per base before
and after, seconds, hardware). Only torch, lightning, numpy and pandas are needed.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import platform
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch

from titans_ts.datasets.genomics import load_gue
from titans_ts.estimators import CLASSIFIER_DEFAULTS, TitansDNALM

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # also when loaded by path
from genomics import parse_set  # noqa: E402  (the --set parser of recipes/genomics.py)

PROGRAM = "recipes/genomics_pretrain.py"

#: Human GUE tasks with a train split in the shared data (prom_core_notata / _tata are
#: subsets of prom_core_all's sequences and add nothing after de-duplication).
HUMAN_TASKS: tuple[str, ...] = ("prom/prom_core_all", "prom/prom_300_tata", "tf/0", "tf/1", "tf/2")

QUICK_SEQUENCES = 200


def _corpus(
    tasks: Sequence[str], split: str, data_dir: str | None, limit: int | None
) -> tuple[list[str], dict[str, int]]:
    """The de-duplicated sequences of ``split`` over ``tasks`` (first occurrence order) and
    the count each task contributed before de-duplication."""
    seen: dict[str, None] = {}
    counts: dict[str, int] = {}
    for task in tasks:
        sequences = load_gue(task, path=data_dir, splits=(split,))[split].sequences
        sequences = list(sequences[:limit] if limit else sequences)
        counts[task] = len(sequences)
        seen.update(dict.fromkeys(sequences))
    return list(seen), counts


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"python {PROGRAM}",
        description="Next-base pretraining of TitansDNALM on GUE train sequences (labels "
        "unused), scored in bits per base on the same tasks' dev sequences.",
    )
    p.add_argument("--tasks", nargs="+", default=list(HUMAN_TASKS), help="GUE tasks")
    p.add_argument("--kmer-k", type=int, default=6,
                   help="input k-mer size (0: single bases); the classifier must use the same")
    p.add_argument("--max-time", type=float, default=None, help="training seconds")
    p.add_argument("--max-epochs", type=int, default=1000,
                   help="epochs of --windows-per-epoch windows (the time limit usually ends it)")
    p.add_argument("--windows-per-epoch", type=int, default=4096)
    p.add_argument("--context-length", type=int, default=256, help="bases per window")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--set", dest="set_items", action="append", default=[], metavar="KEY=VALUE",
                   help="any other TitansDNALM parameter, e.g. --set d_model=32")
    p.add_argument("--data-dir", default=None,
                   help="data folder holding dna/gue/ (default: $TITANS_TS_DATA_DIR)")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke test: {QUICK_SEQUENCES} sequences per task, a few steps")
    p.add_argument("--out", default="results/lm_gue", help="output folder")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        overrides = parse_set(args.set_items, TitansDNALM,
                              {"random_state": "--seed", "accelerator": "--device"})
    except ValueError as err:
        parser.error(str(err))
    limit = QUICK_SEQUENCES if args.quick else None
    train, train_counts = _corpus(args.tasks, "train", args.data_dir, limit)
    held_out, _ = _corpus(args.tasks, "dev", args.data_dir, limit)
    d = CLASSIFIER_DEFAULTS
    params: dict[str, Any] = {
        "variant": d.variant, "d_model": d.d_model, "n_layers": d.n_layers,
        "n_heads": d.n_heads, "n_persistent": d.n_persistent, "memory_depth": d.memory_depth,
        "memory_chunk_size": d.memory_chunk_size, "window": d.window, "dropout": 0.0,
        "kmer_k": args.kmer_k or None, "context_length": args.context_length,
        "windows_per_epoch": 64 if args.quick else args.windows_per_epoch,
        "max_epochs": 1 if args.quick else args.max_epochs,
        "batch_size": args.batch_size, "learning_rate": args.learning_rate,
        "max_time": args.max_time, "accelerator": "cpu" if args.device == "cpu" else (
            "gpu" if args.device == "cuda" else "auto"),
        "random_state": args.seed,
        # independent windows: the corpus is many short sequences joined end to end, and the
        # classifier it initialises never streams (the figures in docs/results.md used them)
        "carry_windows": 1,
    }
    params.update(overrides)
    n_bases = sum(map(len, train))
    print(f"corpus: {len(train):,} train sequences ({n_bases:,} bases) from "
          + ", ".join(f"{t} {n:,}" for t, n in train_counts.items())
          + f"; held out: {len(held_out):,} dev sequences", file=sys.stderr, flush=True)

    lm = TitansDNALM(**params)
    untrained = TitansDNALM(**{**params, "max_epochs": 1, "windows_per_epoch": 1,
                               "learning_rate": 1e-12})
    before = untrained.fit(train[:64]).bits_per_base(held_out)
    start = time.perf_counter()
    lm.fit(train)
    seconds = time.perf_counter() - start
    after = lm.bits_per_base(held_out)
    train_bits = lm.bits_per_base(train[: len(held_out)])
    out = pathlib.Path(args.out)
    lm.save(out)
    report = {
        "command": "python " + " ".join([PROGRAM, *(argv if argv is not None else sys.argv[1:])]),
        "tasks": list(args.tasks),
        "train_sequences": len(train),
        "train_bases": n_bases,
        "train_counts": train_counts,
        "held_out_sequences": len(held_out),
        "params": lm.get_params(deep=False),
        "seconds": round(seconds, 1),
        "windows_seen": sum(1 for _ in lm.history_) * params["windows_per_epoch"],
        "history": lm.history_,
        "held_out_bits_per_base_before": before,
        "held_out_bits_per_base_after": after,
        "train_bits_per_base_after": train_bits,
        "hardware": torch.cuda.get_device_name(0) if lm._device().type == "cuda"
        else f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "quick": bool(args.quick),
    }
    (out / "pretrain_report.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"| corpus | bases | epochs | seconds | dev bits/base before | after | train "
          f"bits/base after |\n|---|---|---|---|---|---|---|\n| {len(train):,} sequences | "
          f"{n_bases:,} | {len(lm.history_)} | {seconds:.0f} | {before:.4f} | {after:.4f} | "
          f"{train_bits:.4f} |")
    print(f"saved {out}; fine-tune with: python recipes/genomics.py --tasks <task> --set "
          f"pretrained={out} --set position_embedding=False"
          + (f" --set kmer_k={args.kmer_k}" if args.kmer_k else " --set tokenizer=nucleotide"))
    if not math.isfinite(after):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
