"""Where a ``NeuralMemory`` training step spends its time (CPU diagnostics).

Prints (standard configuration of issue 2 unless flags say otherwise):

1. the median forward+backward time of the whole layer and of the chunked executor alone
   (``run_memory`` on inputs of the same shapes): the rest is projections, convolution,
   norms and gates;
2. a profile of one layer step: self time of batched GEMMs against everything else, and
   for each GEMM shape its achieved GFLOP/s inside the step;
3. the same GEMM shapes timed in a loop on fixed operands (cache-resident), for contrast.

Profiler times carry per-op overhead (small ops look slower than they are); read them as
shares, and time changes with ``benchmarks/memory_ab.py``::

    python benchmarks/memory_profile.py
    python benchmarks/memory_profile.py --threads 1 --seq-len 4096 --batch 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from titans_ts.memory import MemoryConfig, NeuralMemory, run_memory

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _shape_args, also if loaded by path
from _shape_args import add_shape_args, executor_inputs, memory_config_kwargs  # noqa: E402

GEMMS = ("aten::bmm", "aten::baddbmm_", "aten::baddbmm", "aten::mm", "aten::addmm")


def _median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _gemm_flops(name: str, shapes: list) -> int | None:
    """FLOPs of one call from the profiler's input shapes (None when unknown)."""
    try:
        if name == "aten::bmm":
            (b, m, k), (_, _, n) = shapes[0], shapes[1]
        elif name in ("aten::baddbmm_", "aten::baddbmm"):
            (b, m, n), (_, _, k) = shapes[0], shapes[1]
        elif name == "aten::mm":
            (m, k), (_, n) = shapes[0], shapes[1]
            b = 1
        elif name == "aten::addmm":
            (m, k), (_, n) = shapes[1], shapes[2]
            b = 1
        else:
            return None
    except (TypeError, ValueError, IndexError):
        return None
    return 2 * b * m * k * n


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=2048)
    add_shape_args(ap)
    ap.add_argument("--top", type=int, default=12, help="GEMM shapes to list")
    args = ap.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = MemoryConfig(**memory_config_kwargs(args))
    layer = NeuralMemory(config)
    x = torch.randn(args.batch, args.seq_len, args.d_model)

    def layer_step() -> None:
        layer(x)[0].square().mean().backward()

    B, T = args.batch, args.seq_len
    q, k, v, theta, eta, alpha, *weights = executor_inputs(layer, B, T)

    def executor_step() -> None:
        y, _ = run_memory(
            q, k, v, theta, eta, alpha, weights, chunk_size=config.chunk_size,
            activation=config.activation, residual=config.residual,
            max_grad_norm=config.max_grad_norm,
        )
        y.square().mean().backward()

    t_layer = _median_time(layer_step, args.repeats)
    t_exec = _median_time(executor_step, args.repeats)
    tokens = B * T
    print(f"{torch.get_num_threads()} threads, B={B} T={T}: layer fwd+bwd {t_layer:.3f} s "
          f"({tokens / t_layer:,.0f} tok/s); executor alone {t_exec:.3f} s "
          f"({100 * t_exec / t_layer:.0f} % of the layer step)")

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        layer_step()
    total = gemm = 0.0
    per_shape: dict[tuple, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for event in prof.key_averages(group_by_input_shape=True):
        total += event.self_cpu_time_total
        if event.key not in GEMMS:
            continue
        gemm += event.self_cpu_time_total
        flops = _gemm_flops(event.key, event.input_shapes)
        if flops is None:
            continue
        key = (event.key, json.dumps(event.input_shapes[:3]))
        per_shape[key][0] += event.self_cpu_time_total
        per_shape[key][1] += flops * event.count
        per_shape[key][2] += event.count
    print(f"profiled step: GEMMs {100 * gemm / total:.0f} % of op self time, "
          f"other ops {100 * (total - gemm) / total:.0f} %")
    rows = sorted(per_shape.items(), key=lambda kv: -kv[1][0])[: args.top]
    print(f"{'op':<16}{'input shapes':<52}{'calls':>6}{'ms':>8}{'GF/s in step':>14}"
          f"{'GF/s alone':>12}")
    result = {"layer_s": t_layer, "executor_s": t_exec, "gemm_share": gemm / total, "gemms": []}
    for (name, shapes), (us, flops, count) in rows:
        rate = flops / us / 1e3 if us else float("nan")
        alone = _alone_rate(name, json.loads(shapes))
        print(f"{name:<16}{shapes:<52}{count:>6}{us / 1e3:>8.1f}{rate:>14.0f}{alone:>12.0f}")
        result["gemms"].append({"op": name, "shapes": shapes, "gflops_in_step": rate,
                                "gflops_alone": alone})
    return result


def _alone_rate(name: str, shapes: list) -> float:
    """GFLOP/s of one GEMM shape repeated on fixed operands."""
    flops = _gemm_flops(name, shapes)
    if flops is None:
        return float("nan")
    if name == "aten::bmm":
        a, b = torch.randn(shapes[0]), torch.randn(shapes[1])
        fn = lambda: torch.bmm(a, b)  # noqa: E731
    elif name.startswith("aten::baddbmm"):
        c, a, b = torch.randn(shapes[0]), torch.randn(shapes[1]), torch.randn(shapes[2])
        fn = lambda: c.baddbmm_(a, b)  # noqa: E731
    elif name == "aten::mm":
        a, b = torch.randn(shapes[0]), torch.randn(shapes[1])
        fn = lambda: torch.mm(a, b)  # noqa: E731
    else:
        c, a, b = torch.randn(shapes[0]), torch.randn(shapes[1]), torch.randn(shapes[2])
        fn = lambda: torch.addmm(c, a, b)  # noqa: E731
    seconds = _median_time(lambda: [fn() for _ in range(20)], 5) / 20
    return flops / seconds / 1e9


if __name__ == "__main__":
    main()
