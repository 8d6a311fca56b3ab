"""Can a Titans DNA LM learn to copy? Training on random bases with repeats written in.

The training sequence is ``--bases`` i.i.d. uniform random bases (2 bits/base is the best
any model can do on them), read as ``TitansDNALM`` streams with ``repeat_fraction`` of
every stream overwritten by exact copies of its own earlier stretches
(:class:`~titans_ts.training.dna_lm.GenomeStreams`). The copies are the only predictable
bases, so the training loss falls below 2 bits/base only as far as the model learns to
recall what it read. Afterwards, on fresh random bases, the recall probe of
``benchmarks/dna_lm_reset.py`` (N random bases, a gap of other random bases, the same N
bases again) prints bits/base on the first and the second copy for N in ``--probe-lengths``
and each gap in ``--gaps``; a model that recalls scores the second copy under the first.

    python benchmarks/dna_lm_copy.py [--epochs 4] [--set variant='mag'] [--set kmer_k=8]
        [--set context_length=128 --set carry_windows=16 --set windows_per_epoch=8192]

Defaults: ``TitansDNALM`` defaults except ``repeat_fraction=0.3`` and
``memory_theta_max=0.1`` (both can be overridden with ``--set``).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from dna_lm_reset import add_lm_arguments, lm_overrides, recall_probe
from ecoli_stream import codes_to_str

from titans_ts.estimators import TitansDNALM

_RESERVED = {"random_state": "--seed", "max_epochs": "--epochs"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", type=int, default=1_000_000,
                        help="length of the random training sequence")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    add_lm_arguments(parser)
    parser.add_argument("--probe-lengths", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--gaps", type=int, nargs="+", default=[64, 1024])
    args = parser.parse_args(argv)
    extra = lm_overrides(parser, args, _RESERVED)
    codes = np.random.default_rng(123).integers(0, 4, args.bases)
    params = dict(accelerator="cpu", random_state=args.seed, max_epochs=args.epochs,
                  repeat_fraction=0.3, memory_theta_max=0.1)
    params.update(extra)
    t0 = time.perf_counter()
    lm = TitansDNALM(**params).fit(codes_to_str(codes))
    per_epoch = [round(float(h["train_loss"]) / math.log(2.0), 4) for h in lm.history_]
    print(f"{params}: fitted in {time.perf_counter() - t0:.0f}s; training bits/base per "
          f"epoch {per_epoch} (2.0 = nothing recalled)", flush=True)
    test = np.random.default_rng(7).integers(0, 4, 20_000)
    print(f"{'N':>6} {'gap':>6} {'first copy':>11} {'second copy':>12}")
    for n in args.probe_lengths:
        for gap in args.gaps:
            probe, first, second = recall_probe(test, n, gap, seed=n + gap)
            bits = lm.nats(codes_to_str(probe)) / np.log(2.0)
            print(f"{n:>6} {gap:>6} {bits[first].mean():>11.4f} {bits[second].mean():>12.4f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
