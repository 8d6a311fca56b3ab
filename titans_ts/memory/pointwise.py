"""Fused pointwise stages of :class:`~titans_ts.memory.NeuralMemory` with hand-written backward.

:func:`silu_heads` turns the convolved ``q | k | v`` projections into the executor's inputs:
SiLU, split into heads, per-head L2 normalisation of ``q`` and ``k``, written once in the
head-major layout ``(3, B, H, T, d)`` the executors read without a copy. Autograd would
allocate about a dozen full-size temporaries for the same math (``F.normalize``'s backward
alone takes several); here the forward makes three passes over the data and the backward
five. The math is exactly ``F.normalize(F.silu(u_part), dim=-1, eps=eps)`` per normalised
part and ``F.silu(u_part)`` for the others (tested against that composition).
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor

__all__ = ["silu_heads"]


class _SiluHeads(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u: Tensor, heads: int, dim_head: int, n_norm: int, eps: float):  # type: ignore[override]
        B, T, C = u.shape
        parts = C // (heads * dim_head)
        u5 = u.view(B, T, parts, heads, dim_head)
        out = u.new_empty(parts, B, heads, T, dim_head)
        torch.ops.aten.silu.out(u5, out=out.permute(1, 3, 0, 2, 4))
        norm = None
        if n_norm:
            s = out[:n_norm]
            norm = torch.linalg.vector_norm(s, dim=-1, keepdim=True)
            s.div_(norm.clamp_min(eps))
        ctx.save_for_backward(u, out, norm)
        ctx.eps = eps
        ctx.n_norm = n_norm
        return out

    @staticmethod
    def backward(ctx, g: Tensor):  # type: ignore[override]
        u, out, norm = ctx.saved_tensors
        n = ctx.n_norm
        B, T, C = u.shape
        parts, _, heads, _, dim_head = out.shape
        g = g.contiguous()
        ds = torch.empty_like(out)
        if n:
            # d/ds [s / max(|s|, eps)] applied to g: (g - o (g . o)) / |s| where |s| >= eps,
            # g / eps where the norm was clamped
            o = out[:n]
            dot = torch.linalg.vecdot(g[:n], o, dim=-1).unsqueeze(-1)
            dot.masked_fill_(norm < ctx.eps, 0.0)
            torch.addcmul(g[:n], o, dot, value=-1.0, out=ds[:n])
            ds[:n].div_(norm.clamp_min(ctx.eps))
        if n < parts:
            ds[n:].copy_(g[n:])
        du = torch.empty_like(u)
        torch.ops.aten.silu_backward.grad_input(
            ds.permute(1, 3, 0, 2, 4), u.view(B, T, parts, heads, dim_head),
            grad_input=du.view(B, T, parts, heads, dim_head),
        )
        return du, None, None, None, None


def silu_heads(u: Tensor, heads: int, dim_head: int, n_norm: int, eps: float = 1e-12) -> Tensor:
    """SiLU, split into heads, L2-normalise the first ``n_norm`` parts.

    Args:
        u: (B, T, P * heads * dim_head) — ``P`` parts side by side (``q | k | v``: P = 3).
        heads, dim_head: the head split of each part.
        n_norm: how many leading parts to L2-normalise per head (``q`` and ``k``: 2).
        eps: lower bound of the norm, as in :func:`torch.nn.functional.normalize`.
    Returns:
        (P, B, heads, T, dim_head), contiguous: ``out[p] = normalize(silu(part p))`` for
        ``p < n_norm``, ``silu(part p)`` otherwise.
    """
    if u.dim() != 3 or u.shape[-1] % (heads * dim_head) != 0:
        raise ValueError(
            f"u must be (B, T, P * {heads} * {dim_head}), got shape {tuple(u.shape)}"
        )
    parts = u.shape[-1] // (heads * dim_head)
    if not 0 <= n_norm <= parts:
        raise ValueError(f"n_norm must be in [0, {parts}], got {n_norm}")
    return _SiluHeads.apply(u.contiguous(), heads, dim_head, n_norm, eps)


class _RMSNormGate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y: Tensor, weight: Tensor, gate_pre: Tensor, eps: float):  # type: ignore[override]
        B, H, T, d = y.shape
        r = torch.linalg.vector_norm(y, dim=-1, keepdim=True).square_().div_(d).add_(eps)
        r.rsqrt_()
        sg = torch.nn.functional.silu(gate_pre).view(B, T, H, d)
        out = torch.empty(B, T, H, d, dtype=y.dtype, device=y.device)
        torch.mul(y.transpose(1, 2), r.transpose(1, 2), out=out)
        out.mul_(sg).mul_(weight)
        ctx.save_for_backward(y, r, weight, gate_pre, sg)
        return out.view(B, T, H * d)

    @staticmethod
    def backward(ctx, dout: Tensor):  # type: ignore[override]
        y, r, weight, gate_pre, sg = ctx.saved_tensors
        B, H, T, d = y.shape
        dout = dout.contiguous().view(B, T, H, d)
        rt = r.transpose(1, 2)
        yhat = torch.empty_like(dout)  # (B, T, H, d), token-major like dout
        torch.mul(y.transpose(1, 2), rt, out=yhat)
        c = torch.mul(dout, sg)  # gradient reaching weight * yhat
        prod = c * yhat
        dweight = prod.sum((0, 1, 2)) if ctx.needs_input_grad[1] else None
        dy = None
        if ctx.needs_input_grad[0]:
            # rms-norm backward: r (c w - yhat mean(c w yhat))
            m = torch.matmul(prod, weight).div_(d).unsqueeze(-1)
            c.mul_(weight).addcmul_(yhat, m, value=-1.0)
            dy = torch.empty_like(y)
            torch.mul(c, rt, out=dy.transpose(1, 2))
        dgate = None
        if ctx.needs_input_grad[2]:
            dsg = yhat.mul_(weight).mul_(dout).view(B, T, H * d)
            dgate = torch.ops.aten.silu_backward(dsg, gate_pre)
        return dy, dweight, dgate, None


def rms_norm_gate(y: Tensor, weight: Tensor, gate_pre: Tensor, eps: float = 1e-6) -> Tensor:
    """Per-head RMSNorm of the memory read, moved to token-major layout, times a SiLU gate.

    Args:
        y: (B, H, T, d) memory read.
        weight: (d,) RMSNorm gain.
        gate_pre: (B, T, H * d) gate pre-activation.
        eps: added to the mean square, as in :func:`torch.nn.functional.rms_norm`.
    Returns:
        (B, T, H * d): ``rms_norm(y, weight)`` transposed to (B, T, H, d), flattened, times
        ``silu(gate_pre)``.
    """
    B, H, T, d = y.shape
    if weight.shape != (d,) or gate_pre.shape != (B, T, H * d):
        raise ValueError(
            f"expected weight ({d},) and gate_pre ({B}, {T}, {H * d}), got "
            f"{tuple(weight.shape)} and {tuple(gate_pre.shape)}"
        )
    return _RMSNormGate.apply(y.contiguous(), weight, gate_pre.contiguous(), eps)
