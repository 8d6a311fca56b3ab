"""Held-out bits per base of a Titans DNA LM: carried stream state vs state reset every R bases.

The model (``TitansDNALM`` at its defaults unless flags say otherwise) is fitted on the
first 2 Mbp of the E. coli 536 genome and scored on bases 3.9-4.9 Mbp, once with the
memory state carried through the whole megabase and once per ``--resets`` value with the
state dropped every R bases (``reset_every``; each base then sees at most the R bases
before it). It answers whether the streaming memory keeps helping over a long stream.

    python benchmarks/dna_lm_reset.py [--epochs 8] [--seed 0] [--context-length 512]
        [--carry-windows 128] [--resets 65536 4096 512] [--set learning_rate=1e-3]

Session 25's window models (defaults then): ``--epochs 3 --carry-windows 1 --set
learning_rate=1e-3``.

``--carry-windows n`` trains statefully (``TitansDNALM(carry_windows=n)``: every batch row
reads n consecutive windows with the state carried between optimiser steps); ``--set
KEY=VALUE`` sets any other ``TitansDNALM`` parameter (e.g. ``--set d_model=64``). The last
line is the in-run baseline the model has to beat: a Markov chain over bases
(``titans_ts.baselines.markov``, order chosen on the last 10 % of the training bases),
scored on the same held-out bases.

Where a long memory could help: every row is also split into **far repeats** (bases whose
32-mer ending at them, the base and the 31 before it, occurred earlier in the held-out
stretch, the nearest such copy at least ``--far`` bases back, so that only a memory
reaching that far can predict them from the earlier copy) and all other bases.
``--recall-probe N`` streams a direct test of memorising at test time: held-out genome, N
random bases, more genome (longer than any training window), the same N random bases
again; a memory that memorises scores the second copy well under the first (2 bits/base
for random bases).
``--save DIR`` keeps the fitted model; ``--load DIR`` scores a saved one without fitting.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np
import torch
from ecoli_stream import _default_genome, codes_to_str

from titans_ts.estimators import TitansDNALM
from titans_ts.estimators.dna_lm import DNALM_DEFAULTS as D
from titans_ts.training.dna_lm import genome_codes

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "recipes"))
from genomics import parse_set  # noqa: E402  (the --set parser of recipes/genomics.py)

#: TitansDNALM parameters this script sets through its own flags
_RESERVED = {"random_state": "--seed", "max_epochs": "--epochs",
             "windows_per_epoch": "--windows-per-epoch", "context_length": "--context-length",
             "batch_size": "--batch-size", "carry_windows": "--carry-windows"}


def add_lm_arguments(parser: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (any ``TitansDNALM`` parameter) and ``--threads``."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any other TitansDNALM parameter (a Python literal value)")
    parser.add_argument("--threads", type=int, default=1)


def lm_overrides(parser: argparse.ArgumentParser, args: argparse.Namespace,
                 reserved: dict[str, str]) -> dict:
    """The ``--set`` parameters (``reserved``: those the script sets through its own flags)
    after setting torch's thread count from ``--threads``."""
    try:
        extra = parse_set(args.set, TitansDNALM, reserved)
    except ValueError as err:
        parser.error(str(err))
    torch.set_num_threads(args.threads)
    return extra


def far_repeats(codes: np.ndarray, far: int, k: int = 32) -> np.ndarray:
    """``(L - 1,)`` bool over the scored bases ``codes[1:]``: True where the k-mer ending at
    the base occurred earlier in ``codes`` and its nearest earlier copy ends at least ``far``
    bases before it (so a model that sees fewer than ``far`` bases back cannot copy it; N is
    read as T in the k-mer; a diagnostic, not an exact repeat finder)."""
    if far < 1:
        raise ValueError(f"far must be >= 1 base, got {far}")
    if not 1 <= k <= 32:
        raise ValueError(f"k must be in 1..32 (2-bit packing into 64 bits), got {k}")
    base = np.minimum(np.asarray(codes, dtype=np.uint64), np.uint64(3))
    L = len(base)
    out = np.zeros(max(L - 1, 0), dtype=bool)
    if L < k:
        return out
    h = np.zeros(L - k + 1, dtype=np.uint64)  # h[j] = k-mer codes[j : j + k]
    for i in range(k):
        h = (h << np.uint64(2)) | base[i : L - k + 1 + i]
    pos = np.arange(k - 1, L)  # the base each k-mer ends at
    order = np.lexsort((pos, h))  # by k-mer, then by position
    same = h[order][1:] == h[order][:-1]
    prev = np.full(len(h), -1, dtype=np.int64)  # where the nearest earlier copy ended
    prev[order[1:][same]] = pos[order[:-1][same]]
    hit = (prev >= 0) & (pos - prev >= far)
    out[pos[hit] - 1] = True  # scored base i is entry i - 1
    return out


def recall_probe(
    codes: np.ndarray, n: int, gap: int, seed: int = 0
) -> tuple[np.ndarray, slice, slice]:
    """Genome ``codes[:gap]``, ``n`` random bases X, ``codes[gap : 2 gap]``, X again.
    Returns the probe and the entries of ``nats`` (scored bases ``1..``) holding the first
    and the second copy of X."""
    x = np.random.default_rng(seed).integers(0, 4, n)
    probe = np.concatenate([codes[:gap], x, codes[gap : 2 * gap], x])
    first = slice(gap - 1, gap - 1 + n)
    second = slice(2 * gap + n - 1, 2 * gap + 2 * n - 1)
    return probe, first, second


def _split_row(label: str, nats: np.ndarray, far: np.ndarray, seconds: float) -> str:
    bits = nats / np.log(2.0)
    return (f"{label:>18} {bits.mean():>10.4f} {bits[far].mean():>10.4f} "
            f"{bits[~far].mean():>10.4f} {seconds:>8.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genome", type=pathlib.Path, default=_default_genome())
    parser.add_argument("--epochs", type=int, default=D.max_epochs)
    parser.add_argument("--windows-per-epoch", type=int, default=D.windows_per_epoch)
    parser.add_argument("--context-length", type=int, default=D.context_length,
                        help="bases per training window")
    parser.add_argument("--batch-size", type=int, default=D.batch_size)
    parser.add_argument("--carry-windows", type=int, default=D.carry_windows,
                        help="consecutive windows per stream with the state carried "
                             "(1: independent windows)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-bases", type=int, default=2_000_000)
    parser.add_argument("--heldout", type=int, nargs=2, default=[3_900_000, 4_900_000],
                        metavar=("START", "END"))
    parser.add_argument("--resets", type=int, nargs="*", default=[65536, 4096, 512])
    add_lm_arguments(parser)
    parser.add_argument("--markov-orders", type=int, nargs="*", default=list(range(1, 13)),
                        help="orders the Markov baseline chooses from (none: skip it)")
    parser.add_argument("--far", type=int, default=512,
                        help="a far repeat's earlier copy ends at least this many bases back")
    parser.add_argument("--recall-probe", type=int, nargs="*", default=[1024], metavar="N",
                        help="lengths of random stretches streamed twice (none: skip)")
    parser.add_argument("--save", type=pathlib.Path, help="save the fitted model here")
    parser.add_argument("--load", type=pathlib.Path,
                        help="score the model saved here instead of fitting one")
    args = parser.parse_args(argv)
    extra = lm_overrides(parser, args, _RESERVED)
    if args.load is not None and extra:
        parser.error("--set configures the fit; a model loaded with --load is scored as saved")
    from titans_ts.encoders.seqio import read_fasta

    codes = genome_codes(list(read_fasta(args.genome).values()))
    start, end = args.heldout
    if not args.train_bases <= start < end <= len(codes):
        raise ValueError(f"--heldout {start} {end} must lie after the first --train-bases "
                         f"({args.train_bases}) and inside the genome ({len(codes):,} bases)")
    t0 = time.perf_counter()
    if args.load is not None:
        lm = TitansDNALM.load(args.load)
        print(f"loaded {args.load} (carry_windows {lm.carry_windows_}, seed "
              f"{lm.random_state}); train bits/base {lm.train_bits_per_base_:.4f}")
    else:
        params = dict(random_state=args.seed, accelerator="cpu", max_epochs=args.epochs,
                      windows_per_epoch=args.windows_per_epoch,
                      context_length=args.context_length, batch_size=args.batch_size,
                      carry_windows=args.carry_windows)
        lm = TitansDNALM(**{**params, **extra})
        lm.fit([codes_to_str(codes[: args.train_bases])])
        print(f"fitted {args.epochs} epochs x {args.windows_per_epoch} windows of "
              f"{lm.context_length} bases, carry_windows {lm.carry_windows_} {extra or ''} "
              f"(seed {args.seed}) "
              f"in {time.perf_counter() - t0:.0f}s; "
              f"train bits/base {lm.train_bits_per_base_:.4f}", flush=True)
        if args.save is not None:
            print(f"saved to {lm.save(args.save)}")
    heldout_codes = codes[start : end + 1]
    heldout = codes_to_str(heldout_codes)
    far = far_repeats(heldout_codes, args.far)
    print(f"held-out bases {start:,}-{end:,} ({int(far.sum()):,} far repeats: 32-mer seen "
          f">= {args.far} bases earlier in the stretch):")
    print(f"{'state reset every':>18} {'bits/base':>10} {'far rep.':>10} {'other':>10} "
          f"{'seconds':>8}")
    for reset in [None, *args.resets]:
        t0 = time.perf_counter()
        nats = lm.nats(heldout, reset_every=reset)
        label = "never (carried)" if reset is None else f"{reset:,}"
        print(_split_row(label, nats, far, time.perf_counter() - t0), flush=True)
    markov = None
    if args.markov_orders:
        from titans_ts.baselines.markov import select_markov_order

        t0 = time.perf_counter()
        markov, _ = select_markov_order(codes[: args.train_bases], args.markov_orders)
        nats = markov.nats(heldout_codes)
        print(_split_row(f"Markov order {markov.order}", nats, far, time.perf_counter() - t0)
              + "  (baseline)")
    gap = 4 * lm.context_length  # further than any training window reaches
    for n in args.recall_probe:
        probe, first, second = recall_probe(heldout_codes, n, gap, seed=args.seed)
        print(f"recall probe: {gap} genome bases, {n} random bases X, {gap} genome bases, X "
              "again; bits/base on X (first copy / second copy):")
        # carried state only: a reset inside the probe would score the second copy from a
        # fresh state, which tells nothing about recall
        rows = [("never (carried)", lm.nats(codes_to_str(probe)))]
        if markov is not None:
            rows.append((f"Markov order {markov.order}", markov.nats(probe)))
        for label, nats in rows:
            bits = nats / np.log(2.0)
            print(f"{label:>18} {bits[first].mean():>10.4f} {bits[second].mean():>10.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
