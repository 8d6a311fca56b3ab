"""Throughput of the ``NeuralMemory`` layer on the current device (CPU by default).

Standard configuration (issue 2): d_model 256, 4 heads of 64, depth-2 memory with hidden
multiplier 4, chunk 64, T 2048, batch 4, float32::

    python benchmarks/memory_throughput.py            # table
    python benchmarks/memory_throughput.py --json     # one JSON object

Reported: forward tokens/s (no autograd), forward+backward tokens/s (loss = mean square of
the output, backward to every parameter), peak resident memory of the process, achieved
GFLOP/s of the forward (FLOPs the math needs: projections plus the chunked memory math of
:func:`titans_ts.memory.chunked.forward_flops`), and the same process's dense-matmul
GFLOP/s (best of several 2048x2048 float32 matmuls) for scale.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time

import torch

from titans_ts.memory import MemoryConfig, NeuralMemory
from titans_ts.memory.chunked import forward_flops


def layer_forward_flops(config: MemoryConfig, batch: int, seq_len: int) -> int:
    """FLOPs of one forward of the layer: projections + memory math (elementwise excluded)."""
    inner = config.n_heads * config.dim_head
    tokens = batch * seq_len
    # q, k, v, output gate and the three scalar gates
    proj = 2 * tokens * config.d_model * (3 * inner + inner + 3 * config.n_heads)
    proj += 2 * tokens * inner * config.d_model  # output projection
    memory = forward_flops(
        batch, config.n_heads, seq_len, config.weight_shapes(), config.chunk_size
    )
    return proj + memory


def matmul_gflops(n: int = 2048, repeats: int = 5, device: str = "cpu") -> float:
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        if device != "cpu":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def _time(fn, repeats: int, warmup: int, device: str) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device != "cpu":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device != "cpu":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    config = MemoryConfig(
        d_model=args.d_model, n_heads=args.heads, head_dim=args.head_dim, depth=args.depth,
        hidden_mult=args.mult, chunk_size=args.chunk, executor=args.executor,
        backward_cache_mb=args.backward_cache_mb,
    )
    layer = NeuralMemory(config).to(device=args.device, dtype=dtype)
    x = torch.randn(args.batch, args.seq_len, args.d_model, device=args.device, dtype=dtype)
    tokens = args.batch * args.seq_len

    def fwd() -> None:
        with torch.no_grad():
            layer(x)

    def fwdbwd() -> None:
        layer.zero_grad(set_to_none=True)
        y, _ = layer(x)
        y.float().square().mean().backward()

    t_fwd = _time(fwd, args.repeats, args.warmup, args.device)
    t_fb = _time(fwdbwd, args.repeats, args.warmup, args.device)
    flops = layer_forward_flops(config, args.batch, args.seq_len)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if args.device != "cpu":
        peak = torch.cuda.max_memory_allocated() / 2**20
    result = {
        "fwd_tokens_per_s": tokens / t_fwd,
        "fwdbwd_tokens_per_s": tokens / t_fb,
        "peak_mem_mb": peak,
        "gflops": flops / t_fwd / 1e9,
        "matmul_peak_gflops": matmul_gflops(device=args.device),
        "fwd_seconds": t_fwd,
        "fwdbwd_seconds": t_fb,
        "forward_gflop": flops / 1e9,
        "config": {k: v for k, v in vars(args).items() if k not in ("json",)},
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    result["fraction_of_matmul_peak"] = result["gflops"] / result["matmul_peak_gflops"]
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--mult", type=int, default=4)
    p.add_argument("--chunk", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=2048)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64", "bfloat16"])
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--executor", default="chunked", choices=["chunked", "triton", "auto", "reference"]
    )
    p.add_argument(
        "--backward-cache-mb", type=float, default=None,
        help="MemoryConfig.backward_cache_mb: MiB of chunk intermediates the training pass may "
        "keep instead of recomputing (default: None, the memory-lean default; inf = keep all, "
        "0 = always recompute)",
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    r = measure(args)
    if args.json:
        print(json.dumps(r))
    else:
        for key in ("fwd_tokens_per_s", "fwdbwd_tokens_per_s", "peak_mem_mb", "gflops",
                    "matmul_peak_gflops", "fraction_of_matmul_peak"):
            print(f"{key:>26}: {r[key]:,.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
