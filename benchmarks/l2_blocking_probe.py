"""Probe for the next CPU step of issue 2: would running each (batch, head) problem's chunk
GEMMs on one core, from its L2, beat the batched GEMMs the chunked executor issues now?

Runs only the forward GEMM chain of the standard configuration (depth-2 memory, d = 64,
hidden 256, chunk 64; 11 GEMMs per chunk: key path, back-propagated error, retrieval in
dual form, chunk-end update), over all chunks of a stream, two ways, into the same
preallocated per-chunk outputs (as the executor keeps them for the backward):

- ``batched``: chunk by chunk, each GEMM one ``bmm``/``baddbmm`` over all G problems (ATen's
  intra-op threads split the batch) -- the executor's order today;
- ``per_problem``: ``at::parallel_for`` over the G problems, each thread running one
  problem's whole stream (all chunks) with single-problem ``mm`` calls, so its weights and
  the chunk's operands stay in that core's L2.

No elementwise work, so it bounds what the reordering can give the GEMMs (their FLOPs are
~60 % of the step). Compiled on first use (~20 s)::

    python benchmarks/l2_blocking_probe.py --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.cpp_extension import load_inline

CPP = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
using at::Tensor;

// one problem, one chunk: inputs are 2-D views; outputs written in place
static void chunk_gemms(const Tensor& k, const Tensor& q, const Tensor& W1, const Tensor& W2,
                        const Tensor& WS1, const Tensor& WS2, const Tensor& P, const Tensor& X1,
                        const Tensor& R2, Tensor z1, Tensor e, Tensor g, Tensor G1, Tensor zq1,
                        Tensor G2, Tensor lhs2, Tensor y, Tensor WS1n, Tensor WS2n) {
  at::mm_out(z1, k, W1.t());                       // 64x64 . 64x256
  at::mm_out(e, z1, W2.t());                       // 64x256 . 256x64
  at::mm_out(g, e, W2);                            // 64x64 . 64x256
  at::mm_out(G1, q, k.t());                        // 64x64 . 64x64
  at::mm_out(zq1, X1, WS1.t());                    // 64x128 . 128x256
  zq1.addmm_(P, z1, 1.0, -1.0);                    // 64x64 . 64x256
  at::mm_out(G2, zq1, z1.t());                     // 64x256 . 256x64
  at::mm_out(lhs2, zq1, WS2.t());                  // 64x256 . 256x128
  at::mm_out(y, P, e);                             // 64x64 . 64x64
  WS1n.copy_(WS1).addmm_(z1.t(), X1, 1.0, -1.0);   // 256x64 . 64x128
  WS2n.copy_(WS2).addmm_(R2.t(), z1, 1.0, -1.0);   // 128x64 . 64x256
}

// all tensors (G, ...); per-chunk outputs (C, G, ...); weights chained chunk to chunk
void run(const Tensor& k, const Tensor& q, const Tensor& W1, const Tensor& W2,
         const Tensor& WS1, const Tensor& WS2, const Tensor& P, const Tensor& X1,
         const Tensor& R2, Tensor z1, Tensor e, Tensor g, Tensor G1, Tensor zq1, Tensor G2,
         Tensor lhs2, Tensor y, Tensor WS1n, Tensor WS2n, bool per_problem) {
  const int64_t G = k.size(0), C = z1.size(0), n = z1.size(2);
  if (per_problem) {
    at::parallel_for(0, G, 1, [&](int64_t b, int64_t e_) {
      for (int64_t p = b; p < e_; ++p) {
        for (int64_t c = 0; c < C; ++c) {
          Tensor ws1 = c == 0 ? WS1[p] : WS1n[c - 1][p];
          Tensor ws2 = c == 0 ? WS2[p] : WS2n[c - 1][p];
          chunk_gemms(k[p].narrow(0, c * n, n), q[p].narrow(0, c * n, n), W1[p], W2[p], ws1, ws2,
                      P[p], X1[p], R2[p], z1[c][p], e[c][p], g[c][p], G1[c][p], zq1[c][p],
                      G2[c][p], lhs2[c][p], y[c][p], WS1n[c][p], WS2n[c][p]);
        }
      }
    });
    return;
  }
  for (int64_t c = 0; c < C; ++c) {
    Tensor kc = k.narrow(1, c * n, n), qc = q.narrow(1, c * n, n);
    Tensor ws1 = c == 0 ? WS1 : WS1n[c - 1];
    Tensor ws2 = c == 0 ? WS2 : WS2n[c - 1];
    Tensor z1c = z1[c], ec = e[c], gc = g[c], G1c = G1[c], zq1c = zq1[c], G2c = G2[c];
    Tensor lhs2c = lhs2[c], yc = y[c];
    at::bmm_out(z1c, kc, W1.transpose(1, 2));
    at::bmm_out(ec, z1c, W2.transpose(1, 2));
    at::bmm_out(gc, ec, W2);
    at::bmm_out(G1c, qc, kc.transpose(1, 2));
    at::bmm_out(zq1c, X1, ws1.transpose(1, 2));
    zq1c.baddbmm_(P, z1c, 1.0, -1.0);
    at::bmm_out(G2c, zq1c, z1c.transpose(1, 2));
    at::bmm_out(lhs2c, zq1c, ws2.transpose(1, 2));
    at::bmm_out(yc, P, ec);
    WS1n[c].copy_(ws1).baddbmm_(z1c.transpose(1, 2), X1, 1.0, -1.0);
    WS2n[c].copy_(ws2).baddbmm_(R2.transpose(1, 2), z1[c], 1.0, -1.0);
  }
}
"""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=16, help="batch x heads (G)")
    ap.add_argument("--chunks", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ext = load_inline(
        "titans_ts_l2_probe", CPP, functions=["run"], extra_cflags=["-O3", "-fopenmp"],
        extra_ldflags=["-fopenmp"],
    )
    G, C, n, d, h = args.problems, args.chunks, 64, 64, 256
    torch.manual_seed(0)
    r = lambda *s: torch.randn(*s) * 0.05  # noqa: E731
    ins = dict(k=r(G, C * n, d), q=r(G, C * n, d), W1=r(G, h, d), W2=r(G, d, h),
               WS1=r(G, h, 2 * d), WS2=r(G, 2 * d, h), P=r(G, n, n), X1=r(G, n, 2 * d),
               R2=r(G, n, 2 * d))
    outs = dict(z1=(n, h), e=(n, d), g=(n, h), G1=(n, n), zq1=(n, h), G2=(n, n),
                lhs2=(n, 2 * d), y=(n, d), WS1n=(h, 2 * d), WS2n=(2 * d, h))
    outs = {k: torch.zeros(C, G, *s) for k, s in outs.items()}  # touched before timing
    macs = n * d * h * 3 + n * n * d * 2 + n * 2 * d * h * 3 + n * n * h * 2
    flops = 2.0 * macs * G * C
    times: dict[str, list[float]] = {"batched": [], "per_problem": []}
    for i in range(args.repeats + 1):
        for mode in ("batched", "per_problem"):  # alternating, first round discarded
            start = time.perf_counter()
            ext.run(*ins.values(), *outs.values(), mode == "per_problem")
            if i:
                times[mode].append(time.perf_counter() - start)
    for mode, ts in times.items():
        t = statistics.median(ts)
        print(f"{mode:12s} {t * 1e3:7.1f} ms  {flops / t / 1e9:6.1f} GFLOP/s "
              f"({torch.get_num_threads()} threads, G={G}, {C} chunks)")
    print(f"per_problem / batched speed: "
          f"{statistics.median(times['batched']) / statistics.median(times['per_problem']):.2f}")


if __name__ == "__main__":
    main()
