"""Shared memory of the fused Triton kernels, compiled offline for a GPU (no GPU needed).

Triton compiles for a named target (``GPUTarget("cuda", 90, 32)`` = an H100) with the
``ptxas`` it ships, so the shared memory a kernel will ask for at launch is known on a
machine without a GPU (:func:`titans_ts.memory.triton.fused_chunk.shared_memory_bytes`,
which the executor also runs for the device's own architecture before its first launch).
A kernel that asks for more than the card has fails to launch (``OutOfResources``), which
is what the depth-2 backward did on an H100 at d = 64 (288 KiB; Triton 3.6 offline gives the
same 294,912 bytes). This script compiles the forward and backward kernel with the launch
options the executor itself uses (``_Plan``) and prints their shared memory against the
card's limit.

    python benchmarks/triton_resources.py                       # d 64, hidden 256, chunk 64
    python benchmarks/triton_resources.py --head-dim 32 --hidden-mult 4 --no-clip --json

Registers and spills are not reported: Triton reads them from the driver at load time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

#: Largest dynamic shared memory per block, bytes (H100 / H200: 227 KiB).
SHARED_LIMIT = {90: 232_448}


def kernel_resources(
    head_dim: int,
    hidden_mult: int,
    chunk_size: int,
    depth: int = 2,
    clip: bool = True,
    activation: str = "gelu",
    arch: int = 90,
    which: tuple[str, ...] = ("forward", "backward"),
) -> list[dict[str, object]]:
    """Compile the forward and backward kernel for ``arch`` as the executor would launch
    them; one dict per kernel with ``shared_bytes``, the options and the compile seconds."""
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        raise RuntimeError("unset TRITON_INTERPRET: the interpreter does not compile kernels")
    import triton

    from titans_ts.memory.triton import fused_chunk as fc
    from titans_ts.memory.triton.gates import ChunkLayout

    d = head_dim
    shapes = [(d, d)] if depth == 1 else [(hidden_mult * d, d), (d, hidden_mult * d)]
    layout = ChunkLayout.build(0, 4 * chunk_size, chunk_size)
    plan = fc._Plan(shapes, d, layout, activation, False, False, "tf32x3",
                    max_grad_norm=1.0 if clip else None)
    launch = {"forward": plan.common(), "backward": plan.backward_options()}
    rows = []
    for kind in which:
        t0 = time.perf_counter()
        nbytes = fc.shared_memory_bytes(plan, arch, (kind,))[kind]
        rows.append({
            "kernel": f"{kind}_depth{depth}", "head_dim": d, "hidden": shapes[0][0],
            "chunk": chunk_size, "clip": clip, "num_warps": launch[kind].get("num_warps", 4),
            "num_stages": launch[kind].get("num_stages", 3), "shared_bytes": nbytes,
            "limit_bytes": SHARED_LIMIT.get(arch), "triton": triton.__version__,
            "compile_s": round(time.perf_counter() - t0, 1),
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--hidden-mult", type=int, default=4)
    ap.add_argument("--chunk-size", type=int, default=64)
    ap.add_argument("--depth", type=int, default=2, choices=[1, 2])
    ap.add_argument("--no-clip", action="store_true", help="kernels without gradient clipping")
    ap.add_argument("--activation", default="gelu")
    ap.add_argument("--arch", type=int, default=90, help="CUDA compute capability x10")
    ap.add_argument("--kernels", default="forward,backward", help="comma list")
    ap.add_argument("--json", action="store_true", help="one JSON object per kernel")
    args = ap.parse_args(argv)
    rows = kernel_resources(args.head_dim, args.hidden_mult, args.chunk_size, args.depth,
                            not args.no_clip, args.activation, args.arch,
                            tuple(args.kernels.split(",")))
    over = False
    for r in rows:
        limit = r["limit_bytes"]
        over |= limit is not None and r["shared_bytes"] > limit
        if args.json:
            print(json.dumps(r))
        else:
            fits = "?" if limit is None else ("fits" if r["shared_bytes"] <= limit else "TOO BIG")
            print(f"{r['kernel']:>17}  d {r['head_dim']:>3}  hidden {r['hidden']:>3}  "
                  f"chunk {r['chunk']:>2}  clip {r['clip']!s:>5}  warps {r['num_warps']}  "
                  f"stages {r['num_stages']}  shared {r['shared_bytes'] / 1024:6.1f} KiB  "
                  f"({fits}; limit {limit})  [triton {r['triton']}, {r['compile_s']} s]")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
