"""Where forward+backward throughput goes between a short and a long stream (CPU diagnostics).

Times one training step (forward, ``y.square().mean().backward()``) of

* ``layer``: the whole ``NeuralMemory`` (projections, convolution, gates, executor) at its
  default ``backward_cache_mb`` (or ``--cache-budget-mb``);
* ``layer-keep-all``: the same layer with ``backward_cache_mb=inf`` (what a user with the
  memory to spare can set: no recomputation; 3.3 MiB per 64-token chunk and batch row
  at the standard shape, ~1.7 GiB at T = 32k);
* ``executor``: the chunked executor alone (:func:`titans_ts.memory.chunked.chunked_run_memory`
  on inputs of the layer's shapes) at the same budget, past which the backward recomputes
  chunks from sqrt checkpoints;
* ``keep-all``: the executor with a cache budget large enough to keep every chunk
  (no recomputation),

at batch 1 for a short and a long ``T``, **interleaved round by round** so that slow phases
of a shared machine hit every cell alike. Reports the median tokens/s of each cell over
rounds and each row's long-over-short ratio (1.0 = flat), and beside it the matmul FLOPs
per token of one step at each length (counted by ``torch.utils.flop_counter`` during the
warm-up, so free of timing noise) and their short-over-long ratio: the flatness a cell would
have if time were proportional to matmul work::

    python benchmarks/flatness.py                                    # 2048 vs 32768, 3 rounds
    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=268435456 \\
        python benchmarks/flatness.py --rounds 5                       # without page faults

Run it with the glibc settings of the README's CPU tip to take page faults out (otherwise
blocks of 32 MiB and more are mapped afresh, and faulted in, on every step).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from titans_ts.memory import MemoryConfig, NeuralMemory
from titans_ts.memory.chunked import chunked_run_memory
from titans_ts.memory.spec import mib_to_budget_bytes

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _shape_args, also if loaded by path
from _shape_args import add_shape_args, executor_inputs, memory_config_kwargs  # noqa: E402

CELLS = ("layer", "layer-keep-all", "executor", "keep-all")


def _steps(
    layer: NeuralMemory, keep_all: NeuralMemory, seq_len: int, budget: int | None
) -> dict:
    """One zero-argument training step per cell at batch 1 and ``seq_len`` tokens
    (``keep_all``: ``layer`` with ``backward_cache_mb=inf``)."""
    config = layer.config
    x = torch.randn(1, seq_len, config.d_model)
    inputs = executor_inputs(layer, 1, seq_len)
    (q, k, v, *gates), weights = inputs[:6], inputs[6:]

    def executor(budget: int | None):
        def step() -> None:
            y, _ = chunked_run_memory(
                q, k, v, *gates, weights, chunk_size=config.chunk_size,
                activation=config.activation, residual=config.residual,
                max_grad_norm=config.max_grad_norm, cache_budget_bytes=budget,
            )
            y.square().mean().backward()
        return step

    return {
        "layer": lambda: layer(x)[0].square().mean().backward(),
        "layer-keep-all": lambda: keep_all(x)[0].square().mean().backward(),
        "executor": executor(budget),
        "keep-all": executor(mib_to_budget_bytes(float("inf"))),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--short", type=int, default=2048, help="short T (tokens)")
    ap.add_argument("--long", type=int, default=32768, help="long T (tokens)")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds (0: count FLOPs only)")
    ap.add_argument("--repeats", type=int, default=2, help="timed steps per cell and round "
                    "(the short T gets long // short times as many)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--cells", default=",".join(CELLS), help="comma list of " + ",".join(CELLS))
    ap.add_argument(
        "--cache-budget-mb", type=float, default=None,
        help="the layer and executor cells' backward_cache_mb (default: None, the layer's "
        "memory-lean default; a number fills that many MiB; 0 = always recompute)",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object at the end")
    add_shape_args(ap)
    args = ap.parse_args(argv)
    cells = [c for c in args.cells.split(",") if c]
    for bad in set(cells) - set(CELLS):
        ap.error(f"unknown cell {bad!r}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = MemoryConfig(**memory_config_kwargs(args), backward_cache_mb=args.cache_budget_mb)
    layer = NeuralMemory(config)
    keep_all = NeuralMemory(config.replace(backward_cache_mb=float("inf")))
    keep_all.load_state_dict(layer.state_dict())
    lengths = (args.short, args.long)
    steps = {T: _steps(layer, keep_all, T, config.backward_cache_bytes) for T in lengths}
    rates: dict[tuple[str, int], list[float]] = {(c, T): [] for c in cells for T in lengths}
    flops: dict[tuple[str, int], float] = {}
    for T in lengths:  # warm-up (kernels built, allocator primed), counting matmul FLOPs
        for c in cells:
            with FlopCounterMode(display=False) as counter:
                steps[T][c]()
            flops[(c, T)] = counter.get_total_flops() / T
    for r in range(args.rounds):
        for c in cells:
            for T in lengths:
                n = args.repeats * max(1, args.long // T)
                times = []
                for _ in range(n):
                    t0 = time.perf_counter()
                    steps[T][c]()
                    times.append(time.perf_counter() - t0)
                rates[(c, T)].append(T / statistics.median(times))
        print(f"round {r + 1}: " + "  ".join(
            f"{c} {rates[(c, args.short)][-1]:,.0f} / {rates[(c, args.long)][-1]:,.0f}"
            for c in cells), file=sys.stderr, flush=True)
    result = {"short": args.short, "long": args.long, "rounds": args.rounds,
              "threads": torch.get_num_threads(),
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    if args.rounds:
        print(f"tokens/s, median of {args.rounds} rounds, batch 1 "
              f"({torch.get_num_threads()} threads):")
    for c in cells:
        f_short, f_long = flops[(c, args.short)], flops[(c, args.long)]
        result[c] = {"short_flops_per_token": f_short, "long_flops_per_token": f_long,
                     "flop_ratio": f_short / f_long}
        if not args.rounds:
            continue
        short = statistics.median(rates[(c, args.short)])
        long = statistics.median(rates[(c, args.long)])
        ratios = [b / a for a, b in zip(rates[(c, args.short)], rates[(c, args.long)])]
        result[c].update(short_tokens_per_s=short, long_tokens_per_s=long,
                         ratio_of_medians=long / short, round_ratios=ratios)
        print(f"  {c:<14} T={args.short}: {short:>8,.0f}   T={args.long}: {long:>8,.0f}"
              f"   ratio {long / short:.2f} (rounds: "
              + ", ".join(f"{x:.2f}" for x in ratios) + ")")
    print("matmul MFLOP per token of one step (torch.utils.flop_counter), short-over-long:")
    for c in cells:
        row = result[c]
        print(f"  {c:<14} T={args.short}: {row['short_flops_per_token'] / 1e6:>8.3f}"
              f"   T={args.long}: {row['long_flops_per_token'] / 1e6:>8.3f}"
              f"   ratio {row['flop_ratio']:.2f}")
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
