"""Causal depthwise convolution over time with a hand-written backward.

``out[:, t] = bias + sum_j weight[:, j] * full[:, t + j]`` where ``full`` is the input with
``K - 1`` cached (or zero) steps prepended. Written as ``K`` shifted multiply-adds: on CPU
this beats ``conv1d`` with ``groups=C`` and its backward, and keeps the time-major layout
of the projections. The backward writes each input gradient once, without the zero-filled
full-size buffers autograd would allocate for every shifted slice.

On CPU, when the compiled kernels build (:mod:`.cpu_kernels`), the same sum runs as one
pass over the data forward and one backward (no concatenated copy of the input, no
per-tap temporaries); ``tests/memory/test_cpu_kernels.py`` checks the two against each other.
"""

from __future__ import annotations

import torch

from . import cpu_kernels

Tensor = torch.Tensor

__all__ = ["causal_depthwise_conv"]


class _CausalDepthwiseConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, full: Tensor, weight: Tensor, bias: Tensor) -> Tensor:  # type: ignore[override]
        K = weight.shape[1]
        T = full.shape[1] - (K - 1)
        out = torch.addcmul(bias, full[:, :T], weight[:, 0])
        for j in range(1, K):
            out.addcmul_(full[:, j : j + T], weight[:, j])
        ctx.save_for_backward(full, weight)
        return out

    @staticmethod
    def backward(ctx, dout: Tensor):  # type: ignore[override]
        full, weight = ctx.saved_tensors
        K = weight.shape[1]
        T = dout.shape[1]
        dfull = dweight = dbias = None
        if ctx.needs_input_grad[0]:
            dfull = torch.empty_like(full)
            dfull[:, T:].zero_()
            torch.mul(dout, weight[:, 0], out=dfull[:, :T])
            for j in range(1, K):
                dfull[:, j : j + T].addcmul_(dout, weight[:, j])
        if ctx.needs_input_grad[1]:
            # one reused product buffer; a shifted slice of ``full`` is never copied
            C = dout.shape[-1]
            prod = torch.empty(dout.shape, dtype=dout.dtype, device=dout.device)
            dweight = dout.new_empty(C, K)
            for j in range(K):
                torch.mul(dout, full[:, j : j + T], out=prod)
                torch.sum(prod.view(-1, C), dim=0, out=dweight[:, j])
        if ctx.needs_input_grad[2]:
            dbias = dout.sum((0, 1))
        return dfull, dweight, dbias


class _CompiledCausalDepthwiseConv(torch.autograd.Function):
    """The same convolution through the compiled CPU kernels (u and cache kept separate)."""

    @staticmethod
    def forward(ctx, u: Tensor, weight: Tensor, bias: Tensor, cache: Tensor) -> Tensor:  # type: ignore[override]
        module = cpu_kernels.load()
        ctx.save_for_backward(u, weight, cache)
        return module.conv_forward(u, weight, bias, cache)

    @staticmethod
    def backward(ctx, dout: Tensor):  # type: ignore[override]
        u, weight, cache = ctx.saved_tensors
        du, dcache, dweight, dbias = cpu_kernels.load().conv_backward(u, weight, cache, dout)
        return du, dweight, dbias, dcache if ctx.needs_input_grad[3] else None


def causal_depthwise_conv(
    u: Tensor, weight: Tensor, bias: Tensor, cache: Tensor | None
) -> tuple[Tensor, Tensor | None]:
    """Causal depthwise convolution of a chunk of a stream.

    Args:
        u: (B, T, C) inputs.
        weight: (C, K) taps, the last one multiplying the current step.
        bias: (C,).
        cache: (B, K - 1, C) the previous ``K - 1`` inputs of the stream, or None (zeros).
    Returns:
        ``(out (B, T, C), new cache (B, K - 1, C) or None when K == 1)``.
    """
    K = weight.shape[1]
    if K == 1:
        return torch.addcmul(bias, u, weight[:, 0]), None
    if cache is None:
        cache = u.new_zeros(u.shape[0], K - 1, u.shape[2])
    cache = cache.to(u.dtype)
    compiled_dtype = u.dtype in (torch.float32, torch.float64)  # the kernels' dtypes
    if u.device.type == "cpu" and compiled_dtype and cpu_kernels.load() is not None:
        u = u.contiguous()
        out = _CompiledCausalDepthwiseConv.apply(u, weight, bias, cache.contiguous())
        T = u.shape[1]
        new_cache = u[:, T - (K - 1) :] if T >= K - 1 else torch.cat([cache[:, T:], u], dim=1)
        return out, new_cache
    full = torch.cat([cache, u], dim=1)
    return _CausalDepthwiseConv.apply(full, weight, bias), full[:, u.shape[1] :]
