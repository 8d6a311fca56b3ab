"""The layer's hand-written normalisations against the PyTorch compositions they replace."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from titans_ts.memory.normalize import l2_normalize, rms_norm_gate


def test_l2_normalize_matches_functional_and_gradcheck():
    torch.manual_seed(0)
    base = torch.randn(2, 7, 3, 5, dtype=torch.float64)
    base[0, 2, 1] = 0.0  # a zero vector: the clamped branch
    base[1, 4, 0] *= 1e-14  # below eps: clamped too
    x = base.transpose(1, 2).requires_grad_(True)  # a non-contiguous view, as in the layer
    y = l2_normalize(x)
    assert y.is_contiguous() and y.shape == x.shape
    torch.testing.assert_close(y, torch.nn.functional.normalize(x, dim=-1), rtol=0, atol=1e-15)
    dy = torch.randn(y.shape, dtype=torch.float64)
    (g,) = torch.autograd.grad((y * dy).sum(), x)
    (g_ref,) = torch.autograd.grad((torch.nn.functional.normalize(x, dim=-1) * dy).sum(), x)
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-9)
    assert torch.autograd.gradcheck(l2_normalize, (torch.randn(3, 4, dtype=torch.float64,
                                                              requires_grad=True),))


def _rms_norm_gate_composed(y, weight, gate_pre, eps=1e-6):
    B, H, T, d = y.shape
    z = F.rms_norm(y, (d,), weight=weight, eps=eps).transpose(1, 2).reshape(B, T, H * d)
    return z * F.silu(gate_pre)


def _rms_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(2, 3, 5, 4, generator=g, dtype=torch.float64).requires_grad_()
    w = (1 + 0.3 * torch.randn(4, generator=g, dtype=torch.float64)).requires_grad_()
    gp = torch.randn(2, 5, 12, generator=g, dtype=torch.float64).requires_grad_()
    return y, w, gp


def test_rms_norm_gate_matches_composition_with_gradients():
    y, w, gp = _rms_inputs()
    out = rms_norm_gate(y, w, gp)
    ref = _rms_norm_gate_composed(y, w, gp)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    coef = torch.randn(out.shape, dtype=torch.float64)
    g1 = torch.autograd.grad((out * coef).sum(), (y, w, gp))
    g0 = torch.autograd.grad((ref * coef).sum(), (y, w, gp))
    for a, b in zip(g1, g0):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(rms_norm_gate, (y, w, gp))


def test_rms_norm_gate_only_requested_gradients():
    y, w, gp = _rms_inputs(1)
    w.requires_grad_(False)
    gp.requires_grad_(False)
    (dy,) = torch.autograd.grad(rms_norm_gate(y, w, gp).sum(), y)
    (dy_ref,) = torch.autograd.grad(_rms_norm_gate_composed(y, w, gp).sum(), y)
    torch.testing.assert_close(dy, dy_ref, rtol=1e-10, atol=1e-12)


def test_rms_norm_gate_bad_shapes_raise_value_error():
    with pytest.raises(ValueError, match="gate_pre"):
        rms_norm_gate(torch.randn(1, 2, 3, 4), torch.ones(4), torch.randn(1, 3, 9))
