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
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

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
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any other TitansDNALM parameter (a Python literal value)")
    parser.add_argument("--markov-orders", type=int, nargs="*", default=list(range(1, 13)),
                        help="orders the Markov baseline chooses from (none: skip it)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        extra = parse_set(args.set, TitansDNALM, _RESERVED)
    except ValueError as err:
        parser.error(str(err))
    torch.set_num_threads(args.threads)
    from titans_ts.encoders.seqio import read_fasta

    codes = genome_codes(list(read_fasta(args.genome).values()))
    start, end = args.heldout
    if not args.train_bases <= start < end <= len(codes):
        raise ValueError(f"--heldout {start} {end} must lie after the first --train-bases "
                         f"({args.train_bases}) and inside the genome ({len(codes):,} bases)")
    t0 = time.perf_counter()
    params = dict(random_state=args.seed, accelerator="cpu", max_epochs=args.epochs,
                  windows_per_epoch=args.windows_per_epoch, context_length=args.context_length,
                  batch_size=args.batch_size, carry_windows=args.carry_windows)
    lm = TitansDNALM(**{**params, **extra})
    lm.fit([codes_to_str(codes[: args.train_bases])])
    print(f"fitted {args.epochs} epochs x {args.windows_per_epoch} windows of "
          f"{lm.context_length} bases, carry_windows {lm.carry_windows_} {extra or ''} "
          f"(seed {args.seed}) "
          f"in {time.perf_counter() - t0:.0f}s; "
          f"train bits/base {lm.train_bits_per_base_:.4f}", flush=True)
    heldout = codes_to_str(codes[start:end + 1])
    print(f"held-out bases {start:,}-{end:,}:")
    print(f"{'state reset every':>18} {'bits/base':>10} {'seconds':>8}")
    for reset in [None, *args.resets]:
        t0 = time.perf_counter()
        bits = lm.bits_per_base(heldout, reset_every=reset)
        label = "never (carried)" if reset is None else f"{reset:,}"
        print(f"{label:>18} {bits:>10.4f} {time.perf_counter() - t0:>8.0f}", flush=True)
    if args.markov_orders:
        from titans_ts.baselines.markov import select_markov_order

        t0 = time.perf_counter()
        markov, _ = select_markov_order(codes[: args.train_bases], args.markov_orders)
        bits = markov.bits_per_base(codes[start : end + 1])
        label = f"Markov order {markov.order}"
        print(f"{label:>18} {bits:>10.4f} {time.perf_counter() - t0:>8.0f}  (baseline)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
