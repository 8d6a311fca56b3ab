"""GPU throughput of the memory math: chunked (eager), chunked (torch.compile), Triton.

Issue 7 configuration: B 8, H 8, d 64, depth-2 memory with hidden multiplier 4, chunk 64,
T in {1k, 4k, 16k}, float32 inputs, per-token gradient clipping at the library's default
``max_grad_norm=1.0`` (``--max-grad-norm none`` for the paper's unclipped update)::

    python benchmarks/memory_gpu.py            # table
    python benchmarks/memory_gpu.py --json     # one JSON line per (executor, T)

Per configuration: forward tokens/s (no autograd), forward+backward tokens/s (loss = mean
square of the output plus of the final state, backward to every input), peak CUDA memory
of each (``torch.cuda.max_memory_allocated`` after a reset), achieved TFLOP/s of the
forward (FLOPs of :func:`titans_ts.memory.chunked.forward_flops`), the forward+backward
rate counted as 3x the forward FLOPs (a convention, labelled ``*_3x``), the largest
relative output difference against eager chunked (Triton only), and the same run's bf16
dense-matmul TFLOP/s for scale.

``chunked-compile`` compiles the chunked executor's per-chunk forward and backward
(``_chunk_forward``/``_chunk_backward``) with ``torch.compile`` and leaves its Python loop
over chunks alone: compiling the whole stream would unroll hundreds of chunks into one
graph. Compilation happens in the warm-up calls and is not timed.

Needs CUDA; without it, exits with a message (status 2).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

import torch

from titans_ts.memory import chunked as chunked_module
from titans_ts.memory import run_memory
from titans_ts.memory.chunked import forward_flops
from titans_ts.memory.spec import mib_to_budget_bytes

Tensor = torch.Tensor

EXECUTORS = ("chunked", "chunked-compile", "triton")


def matmul_tflops(n: int = 8192, repeats: int = 10) -> float:
    """Best bf16 dense matmul rate (n x n x n) on the current GPU, in TFLOP/s."""
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        end.record()
        torch.cuda.synchronize()
        best = min(best, start.elapsed_time(end) / 1e3)
    return 2 * n**3 / best / 1e12


def time_call(
    fn: Callable[[], object], repeats: int, warmup: int, device: str
) -> tuple[float, float | None]:
    """(median seconds, peak MiB allocated or None off CUDA) of ``fn`` after ``warmup``
    untimed calls."""
    cuda = device == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    for _ in range(warmup):
        fn()
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
    return statistics.median(times), peak


@contextmanager
def compiled_chunks() -> Iterator[None]:
    """Swap the chunked executor's per-chunk functions for ``torch.compile``d ones."""
    fwd, bwd = chunked_module._chunk_forward, chunked_module._chunk_backward
    chunked_module._chunk_forward = torch.compile(fwd, dynamic=False)
    chunked_module._chunk_backward = torch.compile(bwd, dynamic=False)
    try:
        yield
    finally:
        chunked_module._chunk_forward, chunked_module._chunk_backward = fwd, bwd


def make_inputs(args: argparse.Namespace, T: int) -> list[Tensor]:
    """q, k, v (B, H, T, d) with unit-norm q/k, gates in their usual range, and the
    depth-``args.depth`` weights (H, out, in); all leaves requiring grad."""
    dev = args.device
    g = torch.Generator(device=dev).manual_seed(0)
    B, H, d = args.batch, args.heads, args.head_dim

    def rnd(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g, device=dev)

    q = torch.nn.functional.normalize(rnd(B, H, T, d), dim=-1)
    k = torch.nn.functional.normalize(rnd(B, H, T, d), dim=-1)
    v = rnd(B, H, T, d)
    theta = 0.002 + 0.01 * torch.rand(B, H, T, generator=g, device=dev)
    eta = 0.8 + 0.15 * torch.rand(B, H, T, generator=g, device=dev)
    alpha = 0.01 * torch.rand(B, H, T, generator=g, device=dev)
    hidden = args.mult * d
    shapes = [(d, d)] if args.depth == 1 else [(hidden, d), (d, hidden)]
    weights = [rnd(H, o, i) / i**0.5 for o, i in shapes]
    dtype = getattr(torch, args.dtype)
    tensors = [q, k, v, theta, eta, alpha, *weights]
    return [x.to(dtype).requires_grad_() for x in tensors]


def measure(args: argparse.Namespace, executor: str, T: int, matmul: float | None) -> dict:
    """One configuration: timings, peak memory, FLOP rates (see the module docstring)."""
    inputs = make_inputs(args, T)
    q, k, v, theta, eta, alpha, *weights = inputs
    name = "chunked" if executor.startswith("chunked") else executor

    budget = None if args.backward_cache_mb is None else mib_to_budget_bytes(
        args.backward_cache_mb
    )

    def call() -> tuple[Tensor, object]:
        return run_memory(
            q, k, v, theta, eta, alpha, weights, chunk_size=args.chunk, executor=name,
            max_grad_norm=args.max_grad_norm, cache_budget_bytes=budget,
        )

    def fwd() -> None:
        with torch.no_grad():
            call()

    def fwdbwd() -> None:
        y, state = call()
        loss = y.float().square().mean()
        for w in [*state.weights, *state.momentum]:
            loss = loss + w.square().mean()
        torch.autograd.grad(loss, inputs)

    ctx = compiled_chunks() if executor == "chunked-compile" else nullcontext()
    fwdbwd_error = None
    with ctx:
        t_fwd, mem_fwd = time_call(fwd, args.repeats, args.warmup, args.device)
        try:  # a kernel that cannot launch (e.g. too much shared memory) keeps the fwd row
            t_fb, mem_fb = time_call(fwdbwd, args.repeats, args.warmup, args.device)
        except Exception as exc:  # noqa: BLE001 - reported in the row, not hidden
            t_fb, mem_fb = float("nan"), None
            fwdbwd_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    tokens = args.batch * T
    d, hidden = args.head_dim, args.mult * args.head_dim
    shapes = [(d, d)] if args.depth == 1 else [(hidden, d), (d, hidden)]
    flops = forward_flops(args.batch, args.heads, T, shapes, args.chunk)
    row = {
        "executor": executor,
        "T": T,
        "fwd_tokens_per_s": tokens / t_fwd,
        "fwdbwd_tokens_per_s": tokens / t_fb,
        "fwd_seconds": t_fwd,
        "fwdbwd_seconds": t_fb,
        "fwd_peak_mib": mem_fwd,
        "fwdbwd_peak_mib": mem_fb,
        "fwd_tflops": flops / t_fwd / 1e12,
        "fwdbwd_tflops_3x": 3 * flops / t_fb / 1e12,
        "forward_gflop": flops / 1e9,
        "bf16_matmul_tflops": matmul,
    }
    if fwdbwd_error is not None:
        row["fwdbwd_error"] = fwdbwd_error
    if executor == "triton":
        with torch.no_grad():
            y_t, _ = call()
            y_c, _ = run_memory(
                q, k, v, theta, eta, alpha, weights, chunk_size=args.chunk, executor="chunked",
                max_grad_norm=args.max_grad_norm,
            )
        row["max_rel_err_vs_chunked"] = (
            (y_t.float() - y_c.float()).abs().max() / y_c.float().abs().max()
        ).item()
    row["config"] = {
        key: val for key, val in vars(args).items() if key not in ("json", "seq_lens", "executors")
    }
    row["device"] = torch.cuda.get_device_name() if args.device == "cuda" else args.device
    row["torch"] = torch.__version__
    return row


def _mib(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--depth", type=int, default=2, choices=[1, 2])
    p.add_argument("--mult", type=int, default=4)
    p.add_argument("--chunk", type=int, default=64)
    p.add_argument("--seq-lens", type=int, nargs="+", default=[1024, 4096, 16384])
    p.add_argument("--executors", nargs="+", default=list(EXECUTORS), choices=EXECUTORS)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument(
        "--max-grad-norm", type=lambda x: None if x.lower() == "none" else float(x), default=1.0,
        help="per-token inner-gradient clipping bound, as NeuralMemory's default; 'none' = off",
    )
    p.add_argument(
        "--backward-cache-mb", type=float, default=None,
        help="the chunked executor's keep-or-recompute budget in MiB (MemoryConfig."
        "backward_cache_mb; 'inf' keeps every chunk); default: the library's 512 MiB rule",
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--json", action="store_true", help="one JSON line per configuration")
    p.add_argument(
        "--device", default="cuda", choices=["cuda", "cpu"],
        help="cpu only to smoke-test this script (triton then needs TRITON_INTERPRET=1)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "memory_gpu.py measures CUDA throughput, but torch.cuda.is_available() is False "
            "on this machine: nothing measured. (CPU throughput: benchmarks/memory_throughput.py)",
            file=sys.stderr,
        )
        return 2
    matmul = matmul_tflops() if args.device == "cuda" else None
    for T in args.seq_lens:
        for executor in args.executors:
            try:
                row = measure(args, executor, T, matmul)
            except torch.OutOfMemoryError as exc:
                row = {"executor": executor, "T": T, "error": f"out of memory: {exc}"}
            if args.device == "cuda":
                torch.cuda.empty_cache()
            if args.json:
                print(json.dumps(row), flush=True)
            elif "error" in row:
                print(f"{executor:>16} T={T:>6}: {row['error']}", flush=True)
            else:
                print(
                    f"{executor:>16} T={T:>6}: fwd {row['fwd_tokens_per_s']:>12,.0f} tok/s "
                    f"({row['fwd_tflops']:.3f} TFLOP/s, {_mib(row['fwd_peak_mib'])} MiB)  "
                    f"fwd+bwd {row['fwdbwd_tokens_per_s']:>12,.0f} tok/s "
                    f"({_mib(row['fwdbwd_peak_mib'])} MiB)  [bf16 matmul {_mib(matmul)} TFLOP/s]",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
