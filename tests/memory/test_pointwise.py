"""Fused pointwise stages of NeuralMemory against the plain PyTorch compositions they replace."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from titans_ts.memory.pointwise import rms_norm_gate, silu_heads


def _silu_heads_composed(u: torch.Tensor, heads: int, d: int, n_norm: int) -> torch.Tensor:
    B, T, C = u.shape
    parts = [
        F.silu(p).reshape(B, T, heads, d).transpose(1, 2) for p in u.split(heads * d, dim=-1)
    ]
    parts = [F.normalize(p, dim=-1) if i < n_norm else p for i, p in enumerate(parts)]
    return torch.stack(parts)


def _rms_norm_gate_composed(y, weight, gate_pre, eps=1e-6):
    B, H, T, d = y.shape
    z = F.rms_norm(y, (d,), weight=weight, eps=eps).transpose(1, 2).reshape(B, T, H * d)
    return z * F.silu(gate_pre)


@pytest.mark.parametrize("n_norm", [0, 1, 2, 3])
def test_silu_heads_matches_composition_with_gradients(n_norm):
    torch.manual_seed(0)
    u = torch.randn(2, 7, 3 * 2 * 5, dtype=torch.float64, requires_grad=True)
    out = silu_heads(u, 2, 5, n_norm)
    assert out.shape == (3, 2, 2, 7, 5) and out.is_contiguous()
    ref = _silu_heads_composed(u, 2, 5, n_norm)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-14)
    g = torch.randn_like(out)
    (du,) = torch.autograd.grad(out, u, g)
    (du_ref,) = torch.autograd.grad(ref, u, g)
    torch.testing.assert_close(du, du_ref, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(lambda x: silu_heads(x, 2, 5, n_norm), (u,))


def test_silu_heads_clamped_norm_matches_normalize():
    # rows whose SiLU output has norm below eps take F.normalize's clamped branch
    u = torch.randn(1, 4, 3 * 4, dtype=torch.float64)
    u[0, 1, :4] = -60.0  # silu(-60) ~ -5e-25: norm far below eps = 1e-12
    u.requires_grad_(True)
    out = silu_heads(u, 1, 4, 2)
    ref = _silu_heads_composed(u, 1, 4, 2)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-30)
    g = torch.randn_like(out)
    torch.testing.assert_close(
        torch.autograd.grad(out, u, g)[0], torch.autograd.grad(ref, u, g)[0], rtol=1e-10, atol=0
    )


def test_silu_heads_float32_close_to_float64():
    torch.manual_seed(1)
    u = torch.randn(2, 9, 3 * 4 * 8)
    torch.testing.assert_close(
        silu_heads(u, 4, 8, 2), silu_heads(u.double(), 4, 8, 2).float(), rtol=1e-5, atol=1e-6
    )


def test_rms_norm_gate_matches_composition_with_gradients():
    torch.manual_seed(0)
    y = torch.randn(2, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    w = (1 + 0.3 * torch.randn(4, dtype=torch.float64)).requires_grad_(True)
    gp = torch.randn(2, 5, 12, dtype=torch.float64, requires_grad=True)
    out = rms_norm_gate(y, w, gp)
    ref = _rms_norm_gate_composed(y, w, gp)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-14)
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, (y, w, gp), g)
    for a, b in zip(grads, torch.autograd.grad(ref, (y, w, gp), g)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(rms_norm_gate, (y, w, gp))


def test_rms_norm_gate_only_requested_gradients():
    y = torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    w = torch.ones(4, dtype=torch.float64)
    gp = torch.randn(1, 3, 8, dtype=torch.float64)
    (dy,) = torch.autograd.grad(rms_norm_gate(y, w, gp).sum(), y)
    (dy_ref,) = torch.autograd.grad(_rms_norm_gate_composed(y, w, gp).sum(), y)
    torch.testing.assert_close(dy, dy_ref, rtol=1e-10, atol=1e-12)


def test_bad_shapes_raise_value_error():
    with pytest.raises(ValueError, match="u must be"):
        silu_heads(torch.randn(2, 3, 10), 2, 4, 1)
    with pytest.raises(ValueError, match="n_norm"):
        silu_heads(torch.randn(2, 3, 16), 2, 4, 3)
    with pytest.raises(ValueError, match="gate_pre"):
        rms_norm_gate(torch.randn(1, 2, 3, 4), torch.ones(4), torch.randn(1, 3, 9))
