"""Stream a very long input through each Titans variant in constant memory.

Each variant runs in its own subprocess (so peak RSS is per variant), in
``torch.inference_mode()``, feeding fixed-size pieces of random embeddings and carrying the
:class:`~titans_ts.backbone.BackboneState`. At each checkpoint (default 10k, 100k, 1M
tokens) it reports the cumulative throughput, the current RSS and the peak RSS of the
process; flat RSS from the first to the last checkpoint shows the state does not grow.

Usage::

    python benchmarks/long_context.py                       # 1M tokens, all variants
    python benchmarks/long_context.py --tokens 100000 --variants mag mac --width 64
    python benchmarks/long_context.py --json long_context.json

Measured with the defaults (width 32, 2 layers, pieces of 1024, one thread on a shared
2-core CPU): tokens/s at 10k / 100k / 1M tokens and peak RSS at 1M —
LMM 13.7k / 15.1k / 15.4k, 251 MiB; MAC 7.0k / 6.8k / 7.4k, 250 MiB; MAG 11.9k / 12.0k /
12.9k, 255 MiB; MAL 13.5k / 13.4k / 13.7k, 254 MiB; SWA 86.5k / 85.7k / 88.3k, 239 MiB.
RSS after the warm-up piece was 237-249 MiB, so growth over 1M tokens is <= 6 MiB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from titans_ts.backbone import VARIANTS, TitansBackbone, TitansConfig
from titans_ts.memory import MemoryConfig


def rss_mb() -> tuple[float, float]:
    """``(current, peak)`` resident set size of this process in MiB (Linux ``/proc``)."""
    cur = peak = float("nan")
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                cur = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    if peak != peak:  # no VmHWM: fall back to getrusage (KiB on Linux)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return cur, peak


def stream_one(args: argparse.Namespace) -> dict[str, object]:
    """Stream ``args.tokens`` tokens through one variant; measurements per checkpoint."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    mem = MemoryConfig(
        d_model=args.width,
        n_heads=args.heads,
        chunk_size=args.chunk_size,
        theta_max=args.theta_max,
        theta_init=args.theta_max / 2,
    )
    cfg = TitansConfig(
        variant=args.variant,
        d_model=args.width,
        n_layers=args.layers,
        n_heads=args.heads,
        window=args.window,
        segment_len=args.segment_len,
        n_persistent=4,
        memory=mem,
    )
    model = TitansBackbone(cfg).eval()
    gen = torch.Generator().manual_seed(1)
    checkpoints = sorted(c for c in args.checkpoints if c <= args.tokens)
    if not checkpoints or checkpoints[-1] != args.tokens:
        checkpoints.append(args.tokens)
    rows = []
    with torch.inference_mode():
        state = None
        x = torch.randn(args.batch, args.piece, args.width, generator=gen)
        y, state = model(x, None)  # warm-up piece, not timed
        base_rss, _ = rss_mb()
        done, start, finite = 0, time.perf_counter(), True
        for cp in checkpoints:
            while done < cp:
                n = min(args.piece, cp - done)
                x = torch.randn(args.batch, n, args.width, generator=gen)
                y, state = model(x, state)
                done += n
            finite = finite and bool(torch.isfinite(y).all())
            secs = time.perf_counter() - start
            cur, peak = rss_mb()
            rows.append(
                {
                    "tokens": cp,
                    "seconds": secs,
                    "tokens_per_s": cp * args.batch / secs,
                    "rss_mb": cur,
                    "peak_rss_mb": peak,
                    "finite": finite,
                }
            )
    return {"variant": args.variant, "rss_after_warmup_mb": base_rss, "checkpoints": rows}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--tokens", type=int, default=1_000_000, help="stream length per variant")
    p.add_argument("--checkpoints", nargs="+", type=int, default=[10_000, 100_000, 1_000_000])
    p.add_argument("--piece", type=int, default=1024, help="tokens per forward call")
    p.add_argument("--width", type=int, default=32, help="d_model")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--window", type=int, default=64)
    p.add_argument("--segment-len", type=int, default=64)
    p.add_argument(
        "--chunk-size",
        type=int,
        default=16,
        help="memory chunk size (64 diverged on MAC's correlated inputs at the default theta_max)",
    )
    p.add_argument(
        "--theta-max",
        type=float,
        default=0.01,
        help="memory inner learning-rate bound (theta_init = theta_max / 2); with 0.02 MAC's "
        "untrained memory diverged to non-finite outputs within 100k tokens",
    )
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--variant", help=argparse.SUPPRESS)  # child process: run one variant
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.variant:
        print(json.dumps(stream_one(args)))
        return []
    print(
        f"streaming {args.tokens:,} tokens, width {args.width}, {args.layers} layers, "
        f"pieces of {args.piece}, batch {args.batch}, {args.threads} thread(s)",
        flush=True,
    )
    results = []
    for variant in args.variants:
        out = subprocess.run(
            [sys.executable, __file__, *argv, "--variant", variant],
            check=True,
            capture_output=True,
            text=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = results[-1]
        print(f"{variant:<5} rss after warm-up {r['rss_after_warmup_mb']:.0f} MiB", flush=True)
        for c in r["checkpoints"]:
            print(
                f"      {c['tokens']:>9,} tokens  {c['tokens_per_s']:>9,.0f} tok/s  "
                f"rss {c['rss_mb']:>6.0f} MiB  peak {c['peak_rss_mb']:>6.0f} MiB"
                + ("" if c["finite"] else "  NON-FINITE OUTPUT"),
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "results": results}, fh, indent=2)
    return results


if __name__ == "__main__":
    main()
