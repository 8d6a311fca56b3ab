"""Fused Triton executor of the memory contract (:mod:`titans_ts.memory.spec`).

The same algorithm as :mod:`titans_ts.memory.chunked` (read its module docstring for the
math), fused: one program per (batch, head) problem walks the chunks of the stream in
order and keeps everything of a chunk on chip except the memory weights, which are read
and written tile by tile (``BH`` hidden units at a time) from global memory.

Reads top-down: activations -> kernels (depth 1, depth 2; forward, backward) -> launchers
-> autograd Function -> public function :func:`fused_chunk_run_memory`.

Launch structure
----------------
- forward: one launch, grid ``(B * H,)``; each program loops over the ``NC`` chunks. Per
  chunk it loads q/k/v rows and the chunk's gate tensors (:mod:`.gates`), computes the
  key-path errors at the chunk-start weights, the dual-form retrieval and the chunk-end
  weights and momentum, which go into the next state *slot*. With autograd, every chunk
  boundary gets its own slot (``NC + 1``: the saved states the backward recomputes from,
  as the chunked executor's ``ctx.boundary``); without, two slots are used in turn.
- backward: one launch, grid ``(B * H,)``; each program walks the chunks in reverse,
  recomputes the chunk from its saved boundary state, and writes the gradients of q, k,
  v, of the chunk's gate tensors and of the chunk-start weights/momentum (two gradient
  slots used in turn). Depth 2 uses a per-program global scratch of ``6 x BT x hidden``
  floats for the hidden-width intermediates shared between its passes over the tiles.
- the gate algebra (tiny ``(BT+1)^2`` matrices per chunk) runs in PyTorch for all chunks
  at once before the forward kernel and after the backward kernel (:mod:`.gates`).

Per-token gradient clipping (``max_grad_norm``, the library default): each token's
gradient norm at the chunk-start weights (depth 2: one more pass over the hidden tiles)
scales its error row by ``min(1, tau / ||u||)`` before the error enters the retrieval and
the chunk-end update, the same update as the chunked executor's ``theta * clip``; the
backward kernel differentiates the factor (depth 2: one more pass, and the key path pairs
the unclipped error with the scratch ``dg1``).

Numerics: float32 storage and accumulation; ``tl.dot`` precision is a parameter
(``"tf32x3"`` by default on GPU, float32-accurate; ``"ieee"`` for the strictest check).

Status: verified against the chunked executor under the Triton interpreter and, without
clipping, on an H100 (forward at d 64; forward and backward at d 32: docs/results.md §3).
Not yet run on a GPU: clipping, and the single-stage depth-2 backward at d 64 (144 KiB of
shared memory compiled offline for sm_90, where the 3-stage one needed 288 KiB). Shared
memory is checked per card before the first launch (:func:`shared_memory_bytes`,
:class:`SharedMemoryError`). At the standard shape (d 64, hidden 256, chunk 64) both
kernels used 255 registers per thread and spilled (~3 KiB forward, ~6 KiB backward of
local memory per thread, an earlier offline build): likely what limits their speed.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter

import torch
import triton
import triton.language as tl

from ..chunked import chunk_bounds, flat_start_state
from ..spec import MemoryRunState
from . import SharedMemoryError
from .gates import ChunkLayout, GateTensors, gate_backward, gate_forward

Tensor = torch.Tensor

__all__ = [
    "INTERPRETER",
    "SharedMemoryError",
    "LAUNCHES",
    "MAX_CHUNK",
    "MAX_HEAD_DIM",
    "MAX_HEAD_DIM_DEEP",
    "MAX_HIDDEN_MULT",
    "fused_chunk_run_memory",
    "shared_memory_bytes",
]

#: True when the kernels below were built for the Triton interpreter (``TRITON_INTERPRET=1``
#: at import time): they then run on CPU tensors, slowly, for testing.
INTERPRETER: bool = os.environ.get("TRITON_INTERPRET", "0") == "1"
#: Number of kernel launches per kind since import (tests check that Triton really ran).
LAUNCHES: Counter[str] = Counter()
#: Largest supported head width ``d`` (depth 1; depth 2: MAX_HEAD_DIM_DEEP), chunk size and
#: hidden multiplier. Shared memory at the largest depth-2 shape (d 64, hidden 256, chunk
#: 64), compiled offline for sm_90 by ``benchmarks/triton_resources.py`` (Triton 3.6 and
#: 3.9): forward 96-144 KiB, backward 144 KiB with ``num_stages=1`` (an H100 allows 227
#: KiB). With Triton's default 3 stages the backward asked for 288 KiB and failed to launch
#: on an H100 (2026-11-26, docs/results.md); the single-stage backward has not yet been
#: launched on a GPU.
MAX_HEAD_DIM = 128
MAX_HEAD_DIM_DEEP = 64
MAX_CHUNK = 64
MAX_HIDDEN_MULT = 4

_ACT_CODES = {"gelu": 0, "silu": 1, "tanh": 2, "relu": 3}
_INV_SQRT_2 = tl.constexpr(0.7071067811865476)
_INV_SQRT_2PI = tl.constexpr(0.3989422804014327)


# ----------------------------------------------------------------------------------------
# activations: value, first and second derivative (ACT: 0 gelu, 1 silu, 2 tanh, 3 relu)


@triton.jit
def _tanh(z):
    return 1.0 - 2.0 / (tl.exp(2.0 * z) + 1.0)


@triton.jit
def _act(z, ACT: tl.constexpr):
    if ACT == 0:
        out = 0.5 * z * (1.0 + tl.math.erf(z * _INV_SQRT_2))
    elif ACT == 1:
        out = z * tl.sigmoid(z)
    elif ACT == 2:
        out = _tanh(z)
    else:
        out = tl.where(z > 0, z, 0.0)
    return out


@triton.jit
def _act_d1(z, ACT: tl.constexpr):
    if ACT == 0:
        out = 0.5 * (1.0 + tl.math.erf(z * _INV_SQRT_2)) + z * tl.exp(-0.5 * z * z) * _INV_SQRT_2PI
    elif ACT == 1:
        s = tl.sigmoid(z)
        out = s * (1.0 + z * (1.0 - s))
    elif ACT == 2:
        t = _tanh(z)
        out = 1.0 - t * t
    else:
        out = tl.where(z > 0, 1.0, 0.0)
    return out


@triton.jit
def _act_d2(z, ACT: tl.constexpr):
    if ACT == 0:
        out = tl.exp(-0.5 * z * z) * _INV_SQRT_2PI * (2.0 - z * z)
    elif ACT == 1:
        s = tl.sigmoid(z)
        out = s * (1.0 - s) * (2.0 + z * (1.0 - 2.0 * s))
    elif ACT == 2:
        t = _tanh(z)
        out = -2.0 * t * (1.0 - t * t)
    else:
        out = z * 0.0
    return out


# ----------------------------------------------------------------------------------------
# kernels


@triton.jit
def _chunk_rows(c, T, N0, CHUNK):
    """First token and token count of chunk ``c`` (the first chunk holds ``N0`` tokens)."""
    start = tl.maximum(N0 + (c - 1) * CHUNK, 0)
    end = tl.minimum(N0 + c * CHUNK, T)
    return start, end - start


@triton.jit
def _tile(h0, rh, rd, rt, md, D, HD, BT):
    """Offsets and masks of hidden tile ``h0 .. h0 + BH``: into a (HD, D) layer-1 matrix
    (``o1``, ``m1``), a (D, HD) layer-2 matrix (``o2``, ``m2``) and a (BT, HD) scratch slot
    (``osc``, ``msc``)."""
    mh = (h0 + rh) < HD
    o1 = (h0 + rh)[:, None] * D + rd[None, :]
    m1 = mh[:, None] & md[None, :]
    o2 = rd[:, None] * HD + (h0 + rh)[None, :]
    m2 = md[:, None] & mh[None, :]
    osc = rt[:, None] * HD + (h0 + rh)[None, :]
    msc = mh[None, :] & (rt[:, None] < BT)
    return o1, m1, o2, m2, osc, msc


@triton.jit
def _clip_factor(sq, TAU):
    """Per-token clipping factor ``min(1, tau / sqrt(sq))`` of squared gradient norms."""
    return TAU / tl.sqrt(tl.maximum(sq, TAU * TAU))


@triton.jit
def _clip_dsq(sq, clip, dclip, TAU):
    """d(loss)/d(sq) from d(loss)/d(clip): ``-clip / (2 sq)`` where clipping is active."""
    return tl.where(sq > TAU * TAU, -0.5 * clip / tl.maximum(sq, TAU * TAU) * dclip, 0.0)


@triton.jit
def _fwd_depth1_kernel(
    q_ptr, k_ptr, v_ptr, y_ptr, cst_ptr, vec_ptr,
    w_ptr, s_ptr, wg_ptr,
    T, N0, NC, NSLOT, CHUNK, TAU,
    D: tl.constexpr, BT: tl.constexpr, BD: tl.constexpr,
    RESIDUAL: tl.constexpr, HAS_WG: tl.constexpr, PREC: tl.constexpr, CLIP: tl.constexpr,
):
    """Depth-1 forward. q/k/v/y: (G, T, D); w/s: (G, NSLOT, D, D) state slots (slot 0 =
    input state); wg: (G, D, D) start weights of a resumed chunk (read when HAS_WG)."""
    g = tl.program_id(0).to(tl.int64)
    rt = tl.arange(0, BT)
    rd = tl.arange(0, BD)
    md = rd < D
    mw = md[:, None] & md[None, :]
    ow = rd[:, None] * D + rd[None, :]
    WSZ = D * D
    for c in range(NC):
        start, n = _chunk_rows(c, T, N0, CHUNK)
        mt = rt < n
        mtd = mt[:, None] & md[None, :]
        tok = g * T * D + (start + rt)[:, None] * D + rd[None, :]
        q = tl.load(q_ptr + tok, mask=mtd, other=0.0)
        k = tl.load(k_ptr + tok, mask=mtd, other=0.0)
        v = tl.load(v_ptr + tok, mask=mtd, other=0.0)
        gc = g * NC + c
        cst = tl.load(cst_ptr + gc * BT * BT + rt[:, None] * BT + rt[None, :])
        vb = vec_ptr + gc * 5 * BT
        gam = tl.load(vb + rt)[:, None]
        rho = tl.load(vb + BT + rt)[:, None]
        we = tl.load(vb + 2 * BT + rt)[:, None]
        ee = tl.load(vb + 3 * BT + rt)[:, None]
        ge = tl.load(vb + 4 * BT)
        re = tl.load(vb + 4 * BT + 1)
        Ee = tl.load(vb + 4 * BT + 2)
        base = (g * NSLOT + c % NSLOT) * WSZ
        nxt = (g * NSLOT + (c + 1) % NSLOT) * WSZ
        wg_base = w_ptr + base
        if HAS_WG:
            if c == 0:
                wg_base = wg_ptr + g * WSZ
        Wg = tl.load(wg_base + ow, mask=mw, other=0.0)
        Wb = tl.load(w_ptr + base + ow, mask=mw, other=0.0)
        Sb = tl.load(s_ptr + base + ow, mask=mw, other=0.0)

        err = tl.dot(k, tl.trans(Wg), input_precision=PREC) - v
        if RESIDUAL:
            err += k
        err = tl.where(mt[:, None], err, 0.0)
        if CLIP:  # ||u_t|| = |err_t| |k_t|
            sq = tl.sum(err * err, axis=1) * tl.sum(k * k, axis=1)
            err = err * _clip_factor(sq, TAU)[:, None]
        p = cst * tl.dot(q, tl.trans(k), input_precision=PREC)
        y = gam * tl.dot(q, tl.trans(Wb), input_precision=PREC)
        y += rho * tl.dot(q, tl.trans(Sb), input_precision=PREC)
        y -= tl.dot(p, err, input_precision=PREC)
        if RESIDUAL:
            y += q
        tl.store(y_ptr + tok, y, mask=mtd)

        Wn = ge * Wb + re * Sb - tl.dot(tl.trans(err * we), k, input_precision=PREC)
        Sn = Ee * Sb - tl.dot(tl.trans(err * ee), k, input_precision=PREC)
        tl.store(w_ptr + nxt + ow, Wn, mask=mw)
        tl.store(s_ptr + nxt + ow, Sn, mask=mw)
        tl.debug_barrier()


@triton.jit
def _load_bwd_chunk(
    q_ptr, k_ptr, v_ptr, dy_ptr, cst_ptr, vec_ptr, g, c, T, N0, NC, rt, rd, md,
    D: tl.constexpr, BT: tl.constexpr, CHUNK,
):
    """Inputs of chunk ``c`` of program ``g`` for a backward step: its rows, the q/k/v/dy
    tiles (BT, D), the intra-chunk coefficients (BT, BT) and the gate vectors/scalars."""
    start, n = _chunk_rows(c, T, N0, CHUNK)
    mt = rt < n
    mtd = mt[:, None] & md[None, :]
    tok = g * T * D + (start + rt)[:, None] * D + rd[None, :]
    q = tl.load(q_ptr + tok, mask=mtd, other=0.0)
    k = tl.load(k_ptr + tok, mask=mtd, other=0.0)
    v = tl.load(v_ptr + tok, mask=mtd, other=0.0)
    dy = tl.load(dy_ptr + tok, mask=mtd, other=0.0)
    gc = g * NC + c
    cst = tl.load(cst_ptr + gc * BT * BT + rt[:, None] * BT + rt[None, :])
    vb = vec_ptr + gc * 5 * BT
    gam = tl.load(vb + rt)[:, None]
    rho = tl.load(vb + BT + rt)[:, None]
    we = tl.load(vb + 2 * BT + rt)[:, None]
    ee = tl.load(vb + 3 * BT + rt)[:, None]
    ge = tl.load(vb + 4 * BT)
    re = tl.load(vb + 4 * BT + 1)
    Ee = tl.load(vb + 4 * BT + 2)
    return start, n, mt, mtd, tok, q, k, v, dy, cst, gam, rho, we, ee, ge, re, Ee


@triton.jit
def _bwd_depth1_kernel(
    q_ptr, k_ptr, v_ptr, dy_ptr, cst_ptr, vec_ptr,
    w_ptr, s_ptr, wg_ptr,
    dw_ptr, ds_ptr, dwgl_ptr, dwg_ptr,
    dq_ptr, dk_ptr, dv_ptr, dcst_ptr, dvec_ptr,
    T, N0, NC, NSLOT, CHUNK, TAU,
    D: tl.constexpr, BT: tl.constexpr, BD: tl.constexpr,
    RESIDUAL: tl.constexpr, HAS_WG: tl.constexpr, PREC: tl.constexpr, CLIP: tl.constexpr,
):
    """Depth-1 backward, chunks in reverse. w/s: saved slots (G, NC+1, D, D); dw/ds:
    (G, 2, D, D) gradient slots, slot ``NC % 2`` holding the gradient of the final state on
    entry and slot 0 the gradient of the initial state on exit; dwgl: (G, D, D) gradient
    of the returned last-chunk start weights; dwg: (G, D, D) out, gradient of ``wg``."""
    g = tl.program_id(0).to(tl.int64)
    rt = tl.arange(0, BT)
    rd = tl.arange(0, BD)
    md = rd < D
    mw = md[:, None] & md[None, :]
    ow = rd[:, None] * D + rd[None, :]
    WSZ = D * D
    for i in range(NC):
        c = NC - 1 - i
        (start, n, mt, mtd, tok, q, k, v, dy, cst, gam, rho, we, ee, ge, re, Ee) = (
            _load_bwd_chunk(
                q_ptr, k_ptr, v_ptr, dy_ptr, cst_ptr, vec_ptr, g, c, T, N0, NC, rt, rd, md,
                D, BT, CHUNK,
            )
        )
        gc = g * NC + c
        base = (g * NSLOT + c) * WSZ
        dnext = (g * 2 + (c + 1) % 2) * WSZ
        dbase = (g * 2 + c % 2) * WSZ
        is_wg = c < 0
        wg_base = w_ptr + base
        if HAS_WG:
            if c == 0:
                wg_base = wg_ptr + g * WSZ
                is_wg = c == 0
        Wg = tl.load(wg_base + ow, mask=mw, other=0.0)
        Wb = tl.load(w_ptr + base + ow, mask=mw, other=0.0)
        Sb = tl.load(s_ptr + base + ow, mask=mw, other=0.0)
        dWn = tl.load(dw_ptr + dnext + ow, mask=mw, other=0.0)
        dSn = tl.load(ds_ptr + dnext + ow, mask=mw, other=0.0)

        err = tl.dot(k, tl.trans(Wg), input_precision=PREC) - v
        if RESIDUAL:
            err += k
        err = tl.where(mt[:, None], err, 0.0)
        err_u = err  # unclipped; `err` below is the clipped error the update uses
        if CLIP:
            esq = tl.sum(err * err, axis=1)
            ksq = tl.sum(k * k, axis=1)
            sq = esq * ksq
            clip = _clip_factor(sq, TAU)
            err = err * clip[:, None]
        gm = tl.dot(q, tl.trans(k), input_precision=PREC)
        p = cst * gm

        # chunk end: Wn = ge Wb + re Sb - err^T diag(we) k,  Sn = Ee Sb - err^T diag(ee) k
        kW = tl.dot(k, tl.trans(dWn), input_precision=PREC)
        kS = tl.dot(k, tl.trans(dSn), input_precision=PREC)
        derr = -(we * kW + ee * kS) - tl.dot(tl.trans(p), dy, input_precision=PREC)
        dwe = -tl.sum(err * kW, axis=1)
        dee = -tl.sum(err * kS, axis=1)
        dk = -we * tl.dot(err, dWn, input_precision=PREC)
        dk -= ee * tl.dot(err, dSn, input_precision=PREC)
        dge = tl.sum(tl.sum(dWn * Wb, axis=1), axis=0)
        dre = tl.sum(tl.sum(dWn * Sb, axis=1), axis=0)
        dEe = tl.sum(tl.sum(dSn * Sb, axis=1), axis=0)

        # retrieval: y = gam q Wb^T + rho q Sb^T - (cst * q k^T) err
        qW = tl.dot(q, tl.trans(Wb), input_precision=PREC)
        qS = tl.dot(q, tl.trans(Sb), input_precision=PREC)
        dgam = tl.sum(dy * qW, axis=1)
        drho = tl.sum(dy * qS, axis=1)
        dWb = ge * dWn + tl.dot(tl.trans(dy * gam), q, input_precision=PREC)
        dSb = re * dWn + Ee * dSn + tl.dot(tl.trans(dy * rho), q, input_precision=PREC)
        dq = gam * tl.dot(dy, Wb, input_precision=PREC) + rho * tl.dot(dy, Sb, input_precision=PREC)
        if RESIDUAL:
            dq += dy
        dp = -tl.dot(dy, tl.trans(err), input_precision=PREC)
        dcst = dp * gm
        dgm = dp * cst
        dq += tl.dot(dgm, k, input_precision=PREC)
        dk += tl.dot(tl.trans(dgm), q, input_precision=PREC)

        if CLIP:  # err_clipped = clip(sq) err_u, sq = |err_u|^2 |k|^2
            dsq = _clip_dsq(sq, clip, tl.sum(err_u * derr, axis=1), TAU)
            derr = clip[:, None] * derr + (2.0 * dsq * ksq)[:, None] * err_u
            dk += (2.0 * dsq * esq)[:, None] * k

        # key path: err_u = k Wg^T - v (+ k)
        dv = -derr
        if RESIDUAL:
            dk += derr
        dWg = tl.dot(tl.trans(derr), k, input_precision=PREC)
        dk += tl.dot(derr, Wg, input_precision=PREC)
        if c == NC - 1:
            dWg += tl.load(dwgl_ptr + g * WSZ + ow, mask=mw, other=0.0)
        if is_wg:
            tl.store(dwg_ptr + g * WSZ + ow, dWg, mask=mw)
        else:
            dWb += dWg
        tl.store(dw_ptr + dbase + ow, dWb, mask=mw)
        tl.store(ds_ptr + dbase + ow, dSb, mask=mw)

        tl.store(dq_ptr + tok, dq, mask=mtd)
        tl.store(dk_ptr + tok, dk, mask=mtd)
        tl.store(dv_ptr + tok, dv, mask=mtd)
        tl.store(dcst_ptr + gc * BT * BT + rt[:, None] * BT + rt[None, :], dcst)
        dvb = dvec_ptr + gc * 5 * BT
        tl.store(dvb + rt, dgam)
        tl.store(dvb + BT + rt, drho)
        tl.store(dvb + 2 * BT + rt, dwe)
        tl.store(dvb + 3 * BT + rt, dee)
        tl.store(dvb + 4 * BT, dge)
        tl.store(dvb + 4 * BT + 1, dre)
        tl.store(dvb + 4 * BT + 2, dEe)
        tl.debug_barrier()


@triton.jit
def _fwd_depth2_kernel(
    q_ptr, k_ptr, v_ptr, y_ptr, cst_ptr, vec_ptr,
    w1_ptr, s1_ptr, w2_ptr, s2_ptr, wg1_ptr, wg2_ptr,
    T, N0, NC, NSLOT, CHUNK, TAU,
    D: tl.constexpr, HD: tl.constexpr, BT: tl.constexpr, BD: tl.constexpr, BH: tl.constexpr,
    ACT: tl.constexpr, RESIDUAL: tl.constexpr, HAS_WG: tl.constexpr, PREC: tl.constexpr,
    CLIP: tl.constexpr,
):
    """Depth-2 forward. w1/s1: (G, NSLOT, HD, D), w2/s2: (G, NSLOT, D, HD) state slots;
    wg1/wg2: (G, HD, D)/(G, D, HD) start weights of a resumed first chunk (HAS_WG). The
    hidden dimension is processed in tiles of BH units: pass 1 accumulates the key-path
    output, pass 2 the errors, the layer-1 retrieval, the layer-2 retrieval sums and the
    chunk-end update of both layers."""
    g = tl.program_id(0).to(tl.int64)
    rt = tl.arange(0, BT)
    rd = tl.arange(0, BD)
    rh = tl.arange(0, BH)
    md = rd < D
    WSZ = HD * D
    for c in range(NC):
        start, n = _chunk_rows(c, T, N0, CHUNK)
        mt = rt < n
        mtd = mt[:, None] & md[None, :]
        tok = g * T * D + (start + rt)[:, None] * D + rd[None, :]
        q = tl.load(q_ptr + tok, mask=mtd, other=0.0)
        k = tl.load(k_ptr + tok, mask=mtd, other=0.0)
        v = tl.load(v_ptr + tok, mask=mtd, other=0.0)
        gc = g * NC + c
        cst = tl.load(cst_ptr + gc * BT * BT + rt[:, None] * BT + rt[None, :])
        vb = vec_ptr + gc * 5 * BT
        gam = tl.load(vb + rt)[:, None]
        rho = tl.load(vb + BT + rt)[:, None]
        we = tl.load(vb + 2 * BT + rt)[:, None]
        ee = tl.load(vb + 3 * BT + rt)[:, None]
        ge = tl.load(vb + 4 * BT)
        re = tl.load(vb + 4 * BT + 1)
        Ee = tl.load(vb + 4 * BT + 2)
        base = (g * NSLOT + c % NSLOT) * WSZ
        nxt = (g * NSLOT + (c + 1) % NSLOT) * WSZ
        wg1 = w1_ptr + base
        wg2 = w2_ptr + base
        if HAS_WG:
            if c == 0:
                wg1 = wg1_ptr + g * WSZ
                wg2 = wg2_ptr + g * WSZ

        # pass 1: key-path output at the chunk-start weights
        z2 = tl.zeros((BT, BD), dtype=tl.float32)
        asq = tl.zeros((BT,), dtype=tl.float32)
        for h0 in range(0, HD, BH):
            o1, m1, o2, m2, osc, msc = _tile(h0, rh, rd, rt, md, D, HD, BT)
            W1g = tl.load(wg1 + o1, mask=m1, other=0.0)
            W2g = tl.load(wg2 + o2, mask=m2, other=0.0)
            a1 = _act(tl.dot(k, tl.trans(W1g), input_precision=PREC), ACT)
            if CLIP:
                asq += tl.sum(a1 * a1, axis=1)
            z2 += tl.dot(a1, tl.trans(W2g), input_precision=PREC)
        err = z2 - v
        if RESIDUAL:
            err += k
        err = tl.where(mt[:, None], err, 0.0)
        if CLIP:  # pass 1b: ||u_t||^2 = |d1_t|^2 |k_t|^2 + |err_t|^2 |a1_t|^2
            dsq1 = tl.zeros((BT,), dtype=tl.float32)
            for h0 in range(0, HD, BH):
                o1, m1, o2, m2, osc, msc = _tile(h0, rh, rd, rt, md, D, HD, BT)
                W1g = tl.load(wg1 + o1, mask=m1, other=0.0)
                W2g = tl.load(wg2 + o2, mask=m2, other=0.0)
                z1 = tl.dot(k, tl.trans(W1g), input_precision=PREC)
                d1 = tl.dot(err, W2g, input_precision=PREC) * _act_d1(z1, ACT)
                dsq1 += tl.sum(d1 * d1, axis=1)
            sq = dsq1 * tl.sum(k * k, axis=1) + tl.sum(err * err, axis=1) * asq
            err = err * _clip_factor(sq, TAU)[:, None]

        # pass 2: errors of layer 1, retrieval, chunk-end update
        p1 = cst * tl.dot(q, tl.trans(k), input_precision=PREC)
        y = tl.zeros((BT, BD), dtype=tl.float32)
        gm2 = tl.zeros((BT, BT), dtype=tl.float32)
        for h0 in range(0, HD, BH):
            o1, m1, o2, m2, osc, msc = _tile(h0, rh, rd, rt, md, D, HD, BT)
            W1g = tl.load(wg1 + o1, mask=m1, other=0.0)
            W2g = tl.load(wg2 + o2, mask=m2, other=0.0)
            W1b = tl.load(w1_ptr + base + o1, mask=m1, other=0.0)
            S1b = tl.load(s1_ptr + base + o1, mask=m1, other=0.0)
            W2b = tl.load(w2_ptr + base + o2, mask=m2, other=0.0)
            S2b = tl.load(s2_ptr + base + o2, mask=m2, other=0.0)
            z1 = tl.dot(k, tl.trans(W1g), input_precision=PREC)
            a1 = _act(z1, ACT)
            d1 = tl.dot(err, W2g, input_precision=PREC) * _act_d1(z1, ACT)
            zq1 = gam * tl.dot(q, tl.trans(W1b), input_precision=PREC)
            zq1 += rho * tl.dot(q, tl.trans(S1b), input_precision=PREC)
            zq1 -= tl.dot(p1, d1, input_precision=PREC)
            h1 = _act(zq1, ACT)
            y += tl.dot(gam * h1, tl.trans(W2b), input_precision=PREC)
            y += tl.dot(rho * h1, tl.trans(S2b), input_precision=PREC)
            gm2 += tl.dot(h1, tl.trans(a1), input_precision=PREC)
            W1n = ge * W1b + re * S1b - tl.dot(tl.trans(d1 * we), k, input_precision=PREC)
            S1n = Ee * S1b - tl.dot(tl.trans(d1 * ee), k, input_precision=PREC)
            W2n = ge * W2b + re * S2b - tl.dot(tl.trans(err), a1 * we, input_precision=PREC)
            S2n = Ee * S2b - tl.dot(tl.trans(err), a1 * ee, input_precision=PREC)
            tl.store(w1_ptr + nxt + o1, W1n, mask=m1)
            tl.store(s1_ptr + nxt + o1, S1n, mask=m1)
            tl.store(w2_ptr + nxt + o2, W2n, mask=m2)
            tl.store(s2_ptr + nxt + o2, S2n, mask=m2)
        cst = tl.load(cst_ptr + gc * BT * BT + rt[:, None] * BT + rt[None, :])
        y -= tl.dot(cst * gm2, err, input_precision=PREC)
        if RESIDUAL:
            y += q
        tl.store(y_ptr + tok, y, mask=mtd)
        tl.debug_barrier()


@triton.jit
def _bwd_depth2_kernel(
    q_ptr, k_ptr, v_ptr, dy_ptr, cst_ptr, vec_ptr,
    w1_ptr, s1_ptr, w2_ptr, s2_ptr, wg1_ptr, wg2_ptr,
    dw1_ptr, ds1_ptr, dw2_ptr, ds2_ptr, dwgl1_ptr, dwgl2_ptr, dwg1_ptr, dwg2_ptr,
    dq_ptr, dk_ptr, dv_ptr, dcst_ptr, dvec_ptr, sc_ptr,
    T, N0, NC, NSLOT, CHUNK, TAU,
    D: tl.constexpr, HD: tl.constexpr, BT: tl.constexpr, BD: tl.constexpr, BH: tl.constexpr,
    ACT: tl.constexpr, RESIDUAL: tl.constexpr, HAS_WG: tl.constexpr, PREC: tl.constexpr,
    CLIP: tl.constexpr,
):
    """Depth-2 backward, chunks in reverse; slots as in :func:`_bwd_depth1_kernel` with
    layer shapes (HD, D) and (D, HD). ``sc``: (G, 6, BT, HD) scratch holding, per chunk,
    z1, g1 = err W2g, zq1, the partial dz1, the partial da1 and dg1.

    Four passes over the hidden tiles: (A) key path -> err; (B) layer-1 errors and
    retrieval, the layer-2 Gram matrix and end-update sums; (C) retrieval and chunk-end
    gradients of both layers, d(err) contributions; (D) the key-path backward, which needs
    the complete d(err)."""
    g = tl.program_id(0).to(tl.int64)
    rt = tl.arange(0, BT)
    rd = tl.arange(0, BD)
    rh = tl.arange(0, BH)
    md = rd < D
    WSZ = HD * D
    SSZ = BT * HD
    sc = sc_ptr + g * 6 * SSZ
    for i in range(NC):
        c = NC - 1 - i
        (start, n, mt, mtd, tok, q, k, v, dy, cst, gam, rho, we, ee, ge, re, Ee) = (
            _load_bwd_chunk(
                q_ptr, k_ptr, v_ptr, dy_ptr, cst_ptr, vec_ptr, g, c, T, N0, NC, rt, rd, md,
                D, BT, CHUNK,
            )
        )
        gc = g * NC + c
        base = (g * NSLOT + c) * WSZ
        dnext = (g * 2 + (c + 1) % 2) * WSZ
        dbase = (g * 2 + c % 2) * WSZ
        is_wg = c < 0
        wg1 = w1_ptr + base
        wg2 = w2_ptr + base
        if HAS_WG:
            if c == 0:
                wg1 = wg1_ptr + g * WSZ
                wg2 = wg2_ptr + g * WSZ
                is_wg = c == 0

        # pass A: key path -> err; z1 to scratch
        z2 = tl.zeros((BT, BD), dtype=tl.float32)
        asq = tl.zeros((BT,), dtype=tl.float32)
        for h0 in range(0, HD, BH):
            o1, m1, o2, m2, osc, msc = _tile(h0, rh, rd, rt, md, D, HD, BT)
            W1g = tl.load(wg1 + o1, mask=m1, other=0.0)
            W2g = tl.load(wg2 + o2, mask=m2, other=0.0)
            z1 = tl.dot(k, tl.trans(W1g), input_precision=PREC)
            tl.store(sc + osc, z1, mask=msc)
            a1 = _act(z1, ACT)
            if CLIP:
                asq += tl.sum(a1 * a1, axis=1)
            z2 += tl.dot(a1, tl.trans(W2g), input_precision=PREC)
        err = z2 - v
        if RESIDUAL:
            err += k
        err = tl.where(mt[:, None], err, 0.0)
        err_u = err  # unclipped; `err` below is the clipped error the update uses
        tl.debug_barrier()
        if CLIP:  # pass A2: the token's gradient norm, then the clipping factor
            dsq1 = tl.zeros((BT,), dtype=tl.float32)
            for h0 in range(0, HD, BH):
                o1, m1, o2, m2, osc, msc = _tile(h0, rh, rd, rt, md, D, HD, BT)
                z1 = tl.load(sc + osc, mask=msc, other=0.0)
                W2g = tl.load(wg2 + o2, mask=m2, other=0.0)
                d1 = tl.dot(err, W2g, input_precision=PREC) * _act_d1(z1, ACT)
                dsq1 += tl.sum(d1 * d1, axis=1)
            ksq = tl.sum(k * k, axis=1)
            esq = tl.sum(err * err, axis=1)
            sq = dsq1 * ksq + esq * asq
            clip = _clip_factor(sq, TAU)
            err = err * clip[:, None]

        # pass B: g1, layer-1 retrieval (zq1 to scratch), layer-2 Gram matrix, end sums
        p1 = cst * tl.dot(q, tl.trans(k), input_precision=PREC)
        gm2 = tl.zeros((BT, BT), dtype=tl.float32)
        aw = tl.zeros((BT, BD), dtype=tl.float32)
        as_ = tl.zeros((BT, BD), dtype=tl.float32)
        for h0 in range(0, HD, BH):
            o1, m1, o2, m2, osc, msc = _tile(h0, rh, rd, rt, md, D, HD, BT)
            z1 = tl.load(sc + osc, mask=msc, other=0.0)
            a1 = _act(z1, ACT)
            W2g = tl.load(wg2 + o2, mask=m2, other=0.0)
            g1 = tl.dot(err, W2g, input_precision=PREC)
            tl.store(sc + SSZ + osc, g1, mask=msc)
            d1 = g1 * _act_d1(z1, ACT)
            W1b = tl.load(w1_ptr + base + o1, mask=m1, other=0.0)
            S1b = tl.load(s1_ptr + base + o1, mask=m1, other=0.0)
            zq1 = gam * tl.dot(q, tl.trans(W1b), input_precision=PREC)
            zq1 += rho * tl.dot(q, tl.trans(S1b), input_precision=PREC)
            zq1 -= tl.dot(p1, d1, input_precision=PREC)
            tl.store(sc + 2 * SSZ + osc, zq1, mask=msc)
            gm2 += tl.dot(_act(zq1, ACT), tl.trans(a1), input_precision=PREC)
            dW2n = tl.load(dw2_ptr + dnext + o2, mask=m2, other=0.0)
            dS2n = tl.load(ds2_ptr + dnext + o2, mask=m2, other=0.0)
            aw += tl.dot(a1, tl.trans(dW2n), input_precision=PREC)
            as_ += tl.dot(a1, tl.trans(dS2n), input_precision=PREC)
        tl.debug_barrier()

        p2 = cst * gm2
        dp2 = -tl.dot(dy, tl.trans(err), input_precision=PREC)
        dcst = dp2 * gm2
        dgm2 = dp2 * cst
        derr = -tl.dot(tl.trans(p2), dy, input_precision=PREC) - (we * aw + ee * as_)
        dwe = -tl.sum(err * aw, axis=1)
        dee = -tl.sum(err * as_, axis=1)
        dgam = tl.zeros((BT,), dtype=tl.float32)
        drho = tl.zeros((BT,), dtype=tl.float32)
        dge = tl.sum(dgam, axis=0)
        dre = tl.sum(dgam, axis=0)
        dEe = tl.sum(dgam, axis=0)
        dq = tl.zeros((BT, BD), dtype=tl.float32)
        if RESIDUAL:
            dq += dy
        dk = tl.zeros((BT, BD), dtype=tl.float32)
        dp1 = tl.zeros((BT, BT), dtype=tl.float32)

        # pass C: retrieval and chunk-end gradients
        for h0 in range(0, HD, BH):
            o1, m1, o2, m2, osc, msc = _tile(h0, rh, rd, rt, md, D, HD, BT)
            z1 = tl.load(sc + osc, mask=msc, other=0.0)
            g1 = tl.load(sc + SSZ + osc, mask=msc, other=0.0)
            zq1 = tl.load(sc + 2 * SSZ + osc, mask=msc, other=0.0)
            a1 = _act(z1, ACT)
            ad1 = _act_d1(z1, ACT)
            d1 = g1 * ad1
            h1 = _act(zq1, ACT)
            W2b = tl.load(w2_ptr + base + o2, mask=m2, other=0.0)
            S2b = tl.load(s2_ptr + base + o2, mask=m2, other=0.0)
            dW2n = tl.load(dw2_ptr + dnext + o2, mask=m2, other=0.0)
            dS2n = tl.load(ds2_ptr + dnext + o2, mask=m2, other=0.0)
            # layer 2: retrieval and chunk end
            dyW = tl.dot(dy, W2b, input_precision=PREC)
            dyS = tl.dot(dy, S2b, input_precision=PREC)
            dgam += tl.sum(h1 * dyW, axis=1)
            drho += tl.sum(h1 * dyS, axis=1)
            dh1 = gam * dyW + rho * dyS + tl.dot(dgm2, a1, input_precision=PREC)
            dW2b = ge * dW2n + tl.dot(tl.trans(dy * gam), h1, input_precision=PREC)
            dS2b = re * dW2n + Ee * dS2n + tl.dot(tl.trans(dy * rho), h1, input_precision=PREC)
            tl.store(dw2_ptr + dbase + o2, dW2b, mask=m2)
            tl.store(ds2_ptr + dbase + o2, dS2b, mask=m2)
            dge += tl.sum(tl.sum(dW2n * W2b, axis=1), axis=0)
            dre += tl.sum(tl.sum(dW2n * S2b, axis=1), axis=0)
            dEe += tl.sum(tl.sum(dS2n * S2b, axis=1), axis=0)
            da1 = tl.dot(tl.trans(dgm2), h1, input_precision=PREC)
            da1 -= we * tl.dot(err, dW2n, input_precision=PREC)
            da1 -= ee * tl.dot(err, dS2n, input_precision=PREC)
            # layer 1: retrieval
            W1b = tl.load(w1_ptr + base + o1, mask=m1, other=0.0)
            S1b = tl.load(s1_ptr + base + o1, mask=m1, other=0.0)
            dW1n = tl.load(dw1_ptr + dnext + o1, mask=m1, other=0.0)
            dS1n = tl.load(ds1_ptr + dnext + o1, mask=m1, other=0.0)
            dzq1 = dh1 * _act_d1(zq1, ACT)
            qW = tl.dot(q, tl.trans(W1b), input_precision=PREC)
            qS = tl.dot(q, tl.trans(S1b), input_precision=PREC)
            dgam += tl.sum(dzq1 * qW, axis=1)
            drho += tl.sum(dzq1 * qS, axis=1)
            dW1b = ge * dW1n + tl.dot(tl.trans(dzq1 * gam), q, input_precision=PREC)
            dS1b = re * dW1n + Ee * dS1n + tl.dot(tl.trans(dzq1 * rho), q, input_precision=PREC)
            tl.store(dw1_ptr + dbase + o1, dW1b, mask=m1)
            tl.store(ds1_ptr + dbase + o1, dS1b, mask=m1)
            dge += tl.sum(tl.sum(dW1n * W1b, axis=1), axis=0)
            dre += tl.sum(tl.sum(dW1n * S1b, axis=1), axis=0)
            dEe += tl.sum(tl.sum(dS1n * S1b, axis=1), axis=0)
            dq += gam * tl.dot(dzq1, W1b, input_precision=PREC)
            dq += rho * tl.dot(dzq1, S1b, input_precision=PREC)
            dp1 -= tl.dot(dzq1, tl.trans(d1), input_precision=PREC)
            # layer 1: chunk end
            kW = tl.dot(k, tl.trans(dW1n), input_precision=PREC)
            kS = tl.dot(k, tl.trans(dS1n), input_precision=PREC)
            dd1 = -tl.dot(tl.trans(p1), dzq1, input_precision=PREC) - (we * kW + ee * kS)
            dwe -= tl.sum(d1 * kW, axis=1)
            dee -= tl.sum(d1 * kS, axis=1)
            dk -= we * tl.dot(d1, dW1n, input_precision=PREC)
            dk -= ee * tl.dot(d1, dS1n, input_precision=PREC)
            # key path, the part that needs only dd1: d1 = g1 * act'(z1), g1 = err W2g
            dg1 = dd1 * ad1
            W2g = tl.load(wg2 + o2, mask=m2, other=0.0)
            derr += tl.dot(dg1, tl.trans(W2g), input_precision=PREC)
            tl.store(sc + 3 * SSZ + osc, dd1 * g1 * _act_d2(z1, ACT), mask=msc)
            tl.store(sc + 4 * SSZ + osc, da1, mask=msc)
            tl.store(sc + 5 * SSZ + osc, dg1, mask=msc)
        tl.debug_barrier()

        gm1 = tl.dot(q, tl.trans(k), input_precision=PREC)
        dcst += dp1 * gm1
        dgm1 = dp1 * cst
        dq += tl.dot(dgm1, k, input_precision=PREC)
        dk += tl.dot(tl.trans(dgm1), q, input_precision=PREC)
        if CLIP:
            # pass C2: err = clip(sq) err_u; `derr` so far is d/d(err). Adds the paths
            # through sq = |d1|^2 |k|^2 + |err_u|^2 |a1|^2 and turns the scratch dg1 (of
            # g1 = err W2g) into the one pass D pairs with err_u.
            dsq = _clip_dsq(sq, clip, tl.sum(err_u * derr, axis=1), TAU)
            derr = clip[:, None] * derr + (2.0 * dsq * asq)[:, None] * err_u
            dk += (2.0 * dsq * dsq1)[:, None] * k
            for h0 in range(0, HD, BH):
                o1, m1, o2, m2, osc, msc = _tile(h0, rh, rd, rt, md, D, HD, BT)
                z1 = tl.load(sc + osc, mask=msc, other=0.0)
                W2g = tl.load(wg2 + o2, mask=m2, other=0.0)
                ad1 = _act_d1(z1, ACT)
                g1u = tl.dot(err_u, W2g, input_precision=PREC)
                dd1u = (2.0 * dsq * ksq)[:, None] * (g1u * ad1)
                dg1u = dd1u * ad1
                derr += tl.dot(dg1u, tl.trans(W2g), input_precision=PREC)
                dz1 = tl.load(sc + 3 * SSZ + osc, mask=msc, other=0.0)
                tl.store(sc + 3 * SSZ + osc, dz1 + dd1u * g1u * _act_d2(z1, ACT), mask=msc)
                da1 = tl.load(sc + 4 * SSZ + osc, mask=msc, other=0.0)
                a1 = _act(z1, ACT)
                tl.store(sc + 4 * SSZ + osc, da1 + (2.0 * dsq * esq)[:, None] * a1, mask=msc)
                dg1 = tl.load(sc + 5 * SSZ + osc, mask=msc, other=0.0)
                tl.store(sc + 5 * SSZ + osc, clip[:, None] * dg1 + dg1u, mask=msc)
            tl.debug_barrier()
        derr = tl.where(mt[:, None], derr, 0.0)
        dv = -derr
        if RESIDUAL:
            dk += derr

        # pass D: key-path backward with the complete d(err)
        for h0 in range(0, HD, BH):
            o1, m1, o2, m2, osc, msc = _tile(h0, rh, rd, rt, md, D, HD, BT)
            z1 = tl.load(sc + osc, mask=msc, other=0.0)
            dz1 = tl.load(sc + 3 * SSZ + osc, mask=msc, other=0.0)
            da1 = tl.load(sc + 4 * SSZ + osc, mask=msc, other=0.0)
            dg1 = tl.load(sc + 5 * SSZ + osc, mask=msc, other=0.0)
            W1g = tl.load(wg1 + o1, mask=m1, other=0.0)
            W2g = tl.load(wg2 + o2, mask=m2, other=0.0)
            a1 = _act(z1, ACT)
            da1 += tl.dot(derr, W2g, input_precision=PREC)
            dW2g = tl.dot(tl.trans(err_u), dg1, input_precision=PREC)
            dW2g += tl.dot(tl.trans(derr), a1, input_precision=PREC)
            dz1 += da1 * _act_d1(z1, ACT)
            dW1g = tl.dot(tl.trans(dz1), k, input_precision=PREC)
            dk += tl.dot(dz1, W1g, input_precision=PREC)
            if c == NC - 1:
                dW1g += tl.load(dwgl1_ptr + g * WSZ + o1, mask=m1, other=0.0)
                dW2g += tl.load(dwgl2_ptr + g * WSZ + o2, mask=m2, other=0.0)
            if is_wg:
                tl.store(dwg1_ptr + g * WSZ + o1, dW1g, mask=m1)
                tl.store(dwg2_ptr + g * WSZ + o2, dW2g, mask=m2)
            else:
                dW1g += tl.load(dw1_ptr + dbase + o1, mask=m1, other=0.0)
                dW2g += tl.load(dw2_ptr + dbase + o2, mask=m2, other=0.0)
                tl.store(dw1_ptr + dbase + o1, dW1g, mask=m1)
                tl.store(dw2_ptr + dbase + o2, dW2g, mask=m2)

        tl.store(dq_ptr + tok, dq, mask=mtd)
        tl.store(dk_ptr + tok, dk, mask=mtd)
        tl.store(dv_ptr + tok, dv, mask=mtd)
        tl.store(dcst_ptr + gc * BT * BT + rt[:, None] * BT + rt[None, :], dcst)
        dvb = dvec_ptr + gc * 5 * BT
        tl.store(dvb + rt, dgam)
        tl.store(dvb + BT + rt, drho)
        tl.store(dvb + 2 * BT + rt, dwe)
        tl.store(dvb + 3 * BT + rt, dee)
        tl.store(dvb + 4 * BT, dge)
        tl.store(dvb + 4 * BT + 1, dre)
        tl.store(dvb + 4 * BT + 2, dEe)
        tl.debug_barrier()


# ----------------------------------------------------------------------------------------
# launchers


def _next_pow2(x: int) -> int:
    return 1 << max(0, x - 1).bit_length()


class _Plan:
    """Static facts of one call: shapes, block sizes and kernel switches."""

    def __init__(
        self,
        shapes: list[tuple[int, int]],
        d: int,
        layout: ChunkLayout,
        activation: str,
        residual: bool,
        has_wg: bool,
        precision: str,
        block_hidden: int | None = None,
        needs_grad: bool = True,
        max_grad_norm: float | None = None,
    ) -> None:
        self.L = len(shapes)
        self.tau = max_grad_norm
        self.needs_grad = needs_grad
        self.shapes = shapes
        self.D = d
        self.HD = shapes[0][0] if self.L == 2 else d
        self.layout = layout
        self.act = _ACT_CODES[activation]
        self.residual = residual
        self.has_wg = has_wg
        self.precision = precision
        self.BD = max(16, _next_pow2(d))
        if block_hidden is None:  # 32: less shared memory than 64, same spills (sm_90)
            block_hidden = min(32, max(16, _next_pow2(self.HD)))
        self.BH = block_hidden
        BT = layout.block
        self.num_warps = 8 if BT * self.BD >= 64 * 64 else 4
        # Software pipelining (Triton's default num_stages=3) multiplies the depth-2
        # backward's shared memory: at d = 64, hidden 256, chunk 64 it needs 288 KiB (the
        # H100 failure, reproduced offline by `benchmarks/triton_resources.py`; an H100
        # allows 227 KiB), 144 KiB without it. d <= 32 keeps the default it ran with.
        self.bwd_stages: int | None = 1 if self.L == 2 and self.BD > 32 else None

    def static_key(self) -> tuple:
        """Everything that selects a compiled kernel (constexprs and compiler options)."""
        return (self.L, self.D, self.HD, self.layout.block, self.BD, self.BH, self.act,
                self.residual, self.has_wg, self.precision, self.tau is not None,
                self.num_warps, self.bwd_stages)

    def backward_options(self) -> dict[str, object]:
        """Launch options of the backward kernel (compiler options only when compiled)."""
        kw = self.common()
        if not INTERPRETER and self.bwd_stages is not None:
            kw["num_stages"] = self.bwd_stages
        return kw

    def common(self) -> dict[str, object]:
        """Keyword arguments shared by every launch of this call."""
        lay = self.layout
        kw: dict[str, object] = dict(
            T=lay.T, N0=lay.n0, NC=lay.n_chunks, CHUNK=lay.chunk_size,
            D=self.D, BT=lay.block, BD=self.BD,
            RESIDUAL=self.residual, HAS_WG=self.has_wg, PREC=self.precision,
            TAU=1.0 if self.tau is None else float(self.tau), CLIP=self.tau is not None,
        )
        if self.L == 2:
            kw.update(HD=self.HD, BH=self.BH, ACT=self.act)
        if not INTERPRETER:
            kw["num_warps"] = self.num_warps
        return kw


def _memory_fwd(
    plan: _Plan,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    gates: GateTensors,
    W0: list[Tensor],
    S0: list[Tensor],
    Wg0: list[Tensor] | None,
    save_states: bool,
) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """Run the forward kernel.

    Args:
        q, k, v: (G, T, d) contiguous float32.
        gates: per-chunk gate tensors.
        W0, S0: (G, out, in) per layer, the state at the start of the piece.
        Wg0: (G, out, in) per layer, start weights of a resumed chunk, or None.
        save_states: keep every chunk-boundary state (for the backward) instead of two.
    Returns:
        ``(y (G, T, d), W_slots, S_slots)`` with slots (G, NSLOT, out, in) per layer.
    """
    G = q.shape[0]
    NC = plan.layout.n_chunks
    n_slots = NC + 1 if save_states else 2
    Wb = [q.new_empty(G, n_slots, *w.shape[1:]) for w in W0]
    Sb = [q.new_empty(G, n_slots, *w.shape[1:]) for w in W0]
    for buf, w in zip(Wb + Sb, W0 + S0):
        buf[:, 0].copy_(w)
    wg = [w.contiguous() for w in Wg0] if Wg0 is not None else [b[:, 0] for b in Wb]
    y = torch.empty_like(q)
    kernel, kw = _kernels(plan)["forward"]
    states = [Wb[0], Sb[0], wg[0]] if plan.L == 1 else [Wb[0], Sb[0], Wb[1], Sb[1], *wg]
    kernel[(G,)](q, k, v, y, gates.cst, gates.vec, *states, NSLOT=n_slots, **kw)
    LAUNCHES[f"forward_depth{plan.L}"] += 1
    return y, Wb, Sb


def _memory_bwd(
    plan: _Plan,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    dy: Tensor,
    gates: GateTensors,
    Wb: list[Tensor],
    Sb: list[Tensor],
    Wg0: list[Tensor] | None,
    dW_out: list[Tensor | None],
    dS_out: list[Tensor | None],
    dWg_last: list[Tensor | None],
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, list[Tensor], list[Tensor], list[Tensor] | None]:
    """Run the backward kernel.

    Args:
        q, k, v, dy: (G, T, d) contiguous float32.
        Wb, Sb: saved state slots (G, NC + 1, out, in) per layer from :func:`_memory_fwd`.
        Wg0: as in :func:`_memory_fwd`.
        dW_out, dS_out, dWg_last: gradients of the returned final weights, momentum and
            last-chunk start weights, (G, out, in) per layer or None.
    Returns:
        ``(dq, dk, dv, dcst, dvec, dW0, dS0, dWg0)``: token gradients (G, T, d), gradients of
        the gate tensors, and (G, out, in) per layer for the input state (``dWg0`` None
        without ``Wg0``).
    """
    G = q.shape[0]
    NC = plan.layout.n_chunks
    BT = plan.layout.block
    shapes = [tuple(w.shape[2:]) for w in Wb]
    dWs = [q.new_zeros(G, 2, *s) for s in shapes]
    dSs = [q.new_zeros(G, 2, *s) for s in shapes]
    for buf, grad in zip(dWs + dSs, [*dW_out, *dS_out]):
        if grad is not None:
            buf[:, NC % 2].copy_(grad)
    dwgl = [q.new_zeros(G, *s) if d is None else d.contiguous() for d, s in zip(dWg_last, shapes)]
    dwg = [q.new_zeros(G, *s) for s in shapes] if Wg0 is not None else dwgl
    wg = [w.contiguous() for w in Wg0] if Wg0 is not None else [b[:, 0] for b in Wb]
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    dcst = torch.empty_like(gates.cst)
    dvec = torch.zeros_like(gates.vec)
    kernel, kw = _kernels(plan)["backward"]  # the launch options the preflight sized
    if plan.L == 1:
        states = [Wb[0], Sb[0], wg[0], dWs[0], dSs[0], dwgl[0], dwg[0]]
        extra: list[Tensor] = []
    else:
        states = [Wb[0], Sb[0], Wb[1], Sb[1], *wg, dWs[0], dSs[0], dWs[1], dSs[1], *dwgl, *dwg]
        extra = [q.new_empty(G, 6, BT, plan.HD)]  # scratch
    kernel[(G,)](
        q, k, v, dy, gates.cst, gates.vec, *states, dq, dk, dv, dcst, dvec, *extra,
        NSLOT=NC + 1, **kw,
    )
    LAUNCHES[f"backward_depth{plan.L}"] += 1
    dW0 = [b[:, 0] for b in dWs]
    dS0 = [b[:, 0] for b in dSs]
    return dq, dk, dv, dcst, dvec, dW0, dS0, (dwg if Wg0 is not None else None)


# ----------------------------------------------------------------------------------------
# shared memory: known before launch by compiling for the device's architecture


_SHARED_BYTES: dict[tuple, int] = {}
_RUNTIME_ARGS = frozenset({"T", "N0", "NC", "NSLOT", "CHUNK", "TAU"})


def _kernels(plan: _Plan) -> dict[str, tuple[object, dict[str, object]]]:
    fwd = _fwd_depth1_kernel if plan.L == 1 else _fwd_depth2_kernel
    bwd = _bwd_depth1_kernel if plan.L == 1 else _bwd_depth2_kernel
    return {"forward": (fwd, plan.common()), "backward": (bwd, plan.backward_options())}


def shared_memory_bytes(
    plan: _Plan, arch: int, kinds: tuple[str, ...] = ("forward", "backward")
) -> dict[str, int]:
    """Shared memory per block (bytes) of this plan's kernels compiled for CUDA ``sm_<arch>``.

    Compiles with Triton's bundled ``ptxas`` for the named target, so it needs no GPU
    (``benchmarks/triton_resources.py`` prints it). Cached per kernel configuration. Not
    available for kernels built for the interpreter.
    """
    if INTERPRETER:
        raise RuntimeError("the kernels were built for the interpreter (TRITON_INTERPRET=1)")
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    out: dict[str, int] = {}
    for kind in kinds:
        key = (kind, arch, plan.static_key())
        if key not in _SHARED_BYTES:
            kernel, kw = _kernels(plan)[kind]
            options = {"num_warps": kw.pop("num_warps", 4), "num_stages": kw.pop("num_stages", 3)}
            names = kernel.arg_names  # type: ignore[attr-defined]
            consts = {k: v for k, v in kw.items() if k not in _RUNTIME_ARGS}
            signature = {
                n: "constexpr" if n in consts else "*fp32" if n.endswith("_ptr")
                else "fp32" if n == "TAU" else "i32"
                for n in names
            }
            src = ASTSource(fn=kernel, signature=signature,
                            constexprs={(names.index(k),): v for k, v in consts.items()})
            compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options)
            _SHARED_BYTES[key] = int(compiled.metadata.shared)
        out[kind] = _SHARED_BYTES[key]
    return out


def check_shared_memory(plan: _Plan, need: dict[str, int], limit: int, device: str) -> None:
    """Raise :class:`SharedMemoryError` when a kernel in ``need`` (bytes) exceeds ``limit``."""
    for kind, nbytes in need.items():
        if nbytes > limit:
            hidden = f", hidden {plan.HD}" if plan.L == 2 else ""
            raise SharedMemoryError(
                f"the Triton {kind} kernel (depth {plan.L}, d {plan.D}{hidden}, chunk block "
                f"{plan.layout.block}) needs {nbytes / 1024:.0f} KiB of shared memory per block "
                f"and {device} allows {limit / 1024:.0f} KiB; use executor='chunked', a smaller "
                "head width or a smaller chunk"
            )


def _check_device(plan: _Plan, device: torch.device) -> None:
    """Before the first launch on a CUDA device: do this plan's kernels fit its shared
    memory? (Triton would otherwise fail at launch, for the backward only mid-backward.)"""
    if INTERPRETER or device.type != "cuda" or torch.version.hip is not None:
        return
    index = device.index if device.index is not None else torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    kinds = ("forward", "backward") if plan.needs_grad else ("forward",)
    try:
        need = shared_memory_bytes(plan, 10 * major + minor, kinds)
        limit = device_shared_memory_limit(index)
    except Exception as exc:  # noqa: BLE001 - the check is a courtesy; the launch still runs
        warnings.warn(f"could not size the Triton kernels' shared memory before launch ({exc})",
                      RuntimeWarning, stacklevel=3)
        return
    check_shared_memory(plan, need, limit, torch.cuda.get_device_name(index))


def device_shared_memory_limit(index: int) -> int:
    """Shared memory one block may opt into on CUDA device ``index`` (bytes): PyTorch's
    ``shared_memory_per_block_optin`` where it has it, else Triton's driver query (the
    H100: 232,448). (``triton.compiler.max_shared_mem`` is gone from Triton 3.6.)"""
    props = torch.cuda.get_device_properties(index)
    optin = getattr(props, "shared_memory_per_block_optin", None)
    if optin:
        return int(optin)
    from triton.runtime import driver

    return int(driver.active.utils.get_device_properties(index)["max_shared_mem"])


# ----------------------------------------------------------------------------------------
# autograd


class _FusedMemoryFunction(torch.autograd.Function):
    """Forward keeps the chunk-boundary states (one slot per chunk), backward recomputes
    each chunk from its slot; the gate algebra is recomputed in PyTorch."""

    @staticmethod
    def forward(ctx, plan: _Plan, q, k, v, theta, eta, alpha, *flat):  # type: ignore[override]
        L = plan.L
        W0, S0 = list(flat[:L]), list(flat[L : 2 * L])
        Wg0 = list(flat[2 * L : 3 * L]) if plan.has_wg else None
        gates = gate_forward(theta, eta, alpha, plan.layout)
        save = plan.needs_grad
        y, Wb, Sb = _memory_fwd(plan, q, k, v, gates, W0, S0, Wg0, save_states=save)
        NC = plan.layout.n_chunks
        n_slots = Wb[0].shape[1]
        W_out = [b[:, NC % n_slots].clone() for b in Wb]
        S_out = [b[:, NC % n_slots].clone() for b in Sb]
        if NC == 1 and Wg0 is not None:
            Wg_last = [w.clone() for w in Wg0]
        else:
            Wg_last = [b[:, (NC - 1) % n_slots].clone() for b in Wb]
        if save:
            ctx.plan = plan
            ctx.save_for_backward(q, k, v, theta, eta, alpha, *Wb, *Sb, *(Wg0 or []))
        return (y, *W_out, *S_out, *Wg_last)

    @staticmethod
    def backward(ctx, dy, *douts):  # type: ignore[override]
        plan: _Plan = ctx.plan
        L = plan.L
        saved = ctx.saved_tensors
        q, k, v, theta, eta, alpha = saved[:6]
        Wb, Sb = list(saved[6 : 6 + L]), list(saved[6 + L : 6 + 2 * L])
        Wg0 = list(saved[6 + 2 * L :]) if plan.has_wg else None
        dy = torch.zeros_like(q) if dy is None else dy.contiguous()
        dW_out, dS_out, dWg_last = douts[:L], douts[L : 2 * L], douts[2 * L : 3 * L]
        gates = gate_forward(theta, eta, alpha, plan.layout)
        dq, dk, dv, dcst, dvec, dW0, dS0, dWg0 = _memory_bwd(
            plan, q, k, v, dy, gates, Wb, Sb, Wg0, list(dW_out), list(dS_out), list(dWg_last)
        )
        dth, det, dal = gate_backward(gates, dcst, dvec, plan.layout)
        dflat: list[Tensor | None] = [*dW0, *dS0]
        if plan.has_wg:
            dflat += list(dWg0) if dWg0 is not None else [None] * L
        return (None, dq, dk, dv, dth, det, dal, *dflat)


# ----------------------------------------------------------------------------------------
# public function


def _check_supported(
    q: Tensor, weights: list[Tensor], chunk_size: int
) -> None:
    d = q.shape[-1]
    if q.dtype != torch.float32:
        raise TypeError(
            f"the Triton executor computes in float32 but got {q.dtype} inputs; call it "
            "through titans_ts.memory.run_memory, which casts bfloat16/float16 to float32 "
            "(float64 needs executor='chunked')"
        )
    if q.device.type != "cuda" and not INTERPRETER:
        raise ValueError(
            f"the Triton executor needs CUDA tensors, got {q.device.type} "
            "(or set TRITON_INTERPRET=1 before importing it, for testing on CPU)"
        )
    if len(weights) not in (1, 2):
        raise ValueError(f"the Triton executor supports memory depth 1 and 2, got {len(weights)}")
    if d > MAX_HEAD_DIM:
        raise ValueError(f"the Triton executor supports head width d <= {MAX_HEAD_DIM}, got {d}")
    if len(weights) == 2 and d > MAX_HEAD_DIM_DEEP:
        raise ValueError(
            f"the Triton executor supports head width d <= {MAX_HEAD_DIM_DEEP} for a depth-2 "
            f"memory (shared-memory limit of the backward kernel), got {d}"
        )
    if len(weights) == 2 and weights[0].shape[-2] > MAX_HIDDEN_MULT * d:
        raise ValueError(
            f"the Triton executor supports hidden width <= {MAX_HIDDEN_MULT} * d = "
            f"{MAX_HIDDEN_MULT * d}, got {weights[0].shape[-2]}"
        )
    if chunk_size > MAX_CHUNK:
        raise ValueError(
            f"the Triton executor supports chunk_size <= {MAX_CHUNK}, got {chunk_size}"
        )


def fused_chunk_run_memory(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    theta: Tensor,
    eta: Tensor,
    alpha: Tensor,
    weights: list[Tensor],
    *,
    chunk_size: int,
    activation: str = "gelu",
    residual: bool = False,
    state: MemoryRunState | None = None,
    precision: str | None = None,
    block_hidden: int | None = None,
    max_grad_norm: float | None = None,
    preflight: bool = False,
) -> tuple[Tensor, MemoryRunState]:
    """Fused Triton executor; same arguments and result as :func:`titans_ts.memory.run_memory`.

    Args:
        q, k, v: (B, H, T, d) float32 queries, keys and values (CUDA, or CPU under the
            Triton interpreter).
        theta, eta, alpha: (B, H, T) float32 gates.
        weights: initial weights, ``[W (H, d, d)]`` or ``[W1 (H, m*d, d), W2 (H, d, m*d)]``.
        chunk_size: tokens per chunk (<= :data:`MAX_CHUNK`); d <= :data:`MAX_HEAD_DIM`
            (:data:`MAX_HEAD_DIM_DEEP` for depth 2), hidden <= 4 d.
        activation, residual: the memory model (see :mod:`titans_ts.memory.spec`).
        state: the state of a previous call, to continue the stream (any split point).
        precision: ``tl.dot`` input precision, ``"ieee"``, ``"tf32x3"`` or ``"tf32"``;
            default ``"tf32x3"`` (float32-accurate on tensor cores).
        block_hidden: hidden units per tile of a depth-2 memory (a power of two >= 16);
            default 32 (16 for a hidden width <= 16).
        max_grad_norm: ``tau`` of the per-token inner-gradient clipping
            (:mod:`titans_ts.memory.spec`), or None for the unclipped update. The kernels
            compute each token's gradient norm at the chunk-start weights (one more pass
            over the hidden tiles at depth 2) and scale its error by ``min(1, tau/||u||)``,
            differentiated in the backward kernel.
        preflight: on CUDA, first compile the kernels for the card's architecture and
            raise :class:`SharedMemoryError` if they need more shared memory per block than
            it allows (``run_memory(executor="auto")`` does, to fall back to the chunked
            executor). Costs one extra compile per kernel configuration and process
            (Triton's disk cache keeps it); without it a kernel that does not fit fails at
            launch with Triton's ``OutOfResources``.
    Returns:
        ``(y (B, H, T, d) float32, state)``.

    Examples:
        >>> y, st = fused_chunk_run_memory(q, k, v, th, et, al, [W1, W2], chunk_size=64)
        >>> y2, st = fused_chunk_run_memory(q2, k2, v2, th2, et2, al2, [W1, W2],
        ...                                 chunk_size=64, state=st)   # stream on
    """
    _check_supported(q, weights, chunk_size)
    if precision is None:
        precision = "ieee" if INTERPRETER else "tf32x3"
    if precision not in ("ieee", "tf32x3", "tf32"):
        raise ValueError(f"precision={precision!r}: expected 'ieee', 'tf32x3' or 'tf32'")
    if max_grad_norm is not None and not (
        isinstance(max_grad_norm, (int, float)) and not isinstance(max_grad_norm, bool)
        and max_grad_norm > 0
    ):
        raise ValueError(f"max_grad_norm must be a positive float or None, got {max_grad_norm!r}")
    if block_hidden is not None and (block_hidden < 16 or block_hidden & (block_hidden - 1)):
        raise ValueError(f"block_hidden={block_hidden}: expected a power of two >= 16")
    B, H, T, d = q.shape
    L = len(weights)
    G = B * H

    def flat(x: Tensor) -> Tensor:  # (B, H, ...) -> (B*H, ...)
        return x.reshape(G, *x.shape[2:])

    W, S, Wg, position = flat_start_state(weights, state, B, chunk_size)
    if T == 0:
        return q.new_zeros(q.shape), MemoryRunState(
            weights=[w.reshape(B, H, *w.shape[1:]) for w in W],
            momentum=[s.reshape(B, H, *s.shape[1:]) for s in S],
            grad_weights=None if Wg is None else [w.reshape(B, H, *w.shape[1:]) for w in Wg],
            position=position,
        )

    layout = ChunkLayout.build(position, T, chunk_size)
    assert layout.n_chunks == len(chunk_bounds(position, T, chunk_size))
    shapes = [tuple(w.shape[1:]) for w in weights]
    tensors = [flat(x).contiguous() for x in (q, k, v, theta, eta, alpha)]
    ins = W + S + (Wg if Wg is not None else [])
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in tensors + ins)
    plan = _Plan(
        shapes, d, layout, activation, residual, Wg is not None, precision, block_hidden,
        needs_grad, max_grad_norm,
    )
    if preflight:
        _check_device(plan, q.device)
    outs = _FusedMemoryFunction.apply(plan, *tensors, *ins)
    y = outs[0]
    W_new = list(outs[1 : L + 1])
    S_new = list(outs[L + 1 : 2 * L + 1])
    Wg_last = list(outs[2 * L + 1 :])

    new_position = position + T
    grad_weights = Wg_last if new_position % chunk_size != 0 else None

    def unflat(x: Tensor) -> Tensor:
        return x.reshape(B, H, *x.shape[1:])

    new_state = MemoryRunState(
        weights=[unflat(w) for w in W_new],
        momentum=[unflat(s) for s in S_new],
        grad_weights=None if grad_weights is None else [unflat(w) for w in grad_weights],
        position=new_position,
    )
    return unflat(y), new_state
