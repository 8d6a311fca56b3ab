"""NeuralMemory layer: streaming with carried conv caches, retrieval, validation, dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from titans_ts.memory import MemoryConfig, NeuralMemory, run_memory


def _layer(**kw) -> NeuralMemory:
    torch.manual_seed(0)
    cfg = dict(d_model=16, n_heads=2, depth=2, hidden_mult=2, chunk_size=5)
    cfg.update(kw)
    return NeuralMemory(MemoryConfig(**cfg)).double()


@pytest.mark.parametrize("conv_kernel", [1, 4])
def test_layer_streams_exactly_at_any_split(conv_kernel):
    layer = _layer(conv_kernel=conv_kernel)
    x = torch.randn(2, 23, 16, dtype=torch.float64)
    y, _ = layer(x)
    for s in (1, 3, 5, 11, 22):
        y1, st = layer(x[:, :s])
        y2, st = layer(x[:, s:], st)
        torch.testing.assert_close(torch.cat([y1, y2], 1), y, rtol=0, atol=1e-12)
        assert st.position == 23


def test_layer_executors_agree_with_gradients():
    layer = _layer()
    x = torch.randn(2, 13, 16, dtype=torch.float64, requires_grad=True)
    outs = {}
    for name in ("reference", "chunked"):
        object.__setattr__(layer, "config", layer.config.replace(executor=name))
        layer.zero_grad()
        y, _ = layer(x)
        grads = torch.autograd.grad(y.sin().sum(), [x, *layer.parameters()])
        outs[name] = (y, grads)
    torch.testing.assert_close(outs["chunked"][0], outs["reference"][0], rtol=1e-10, atol=1e-12)
    for a, b in zip(outs["chunked"][1], outs["reference"][1]):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_every_parameter_gets_a_gradient():
    layer = _layer()
    y, _ = layer(torch.randn(2, 12, 16, dtype=torch.float64))
    y.square().mean().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().max() > 0, name


def test_layer_is_causal():
    layer = _layer()
    x = torch.randn(1, 20, 16, dtype=torch.float64)
    y, _ = layer(x)
    x2 = x.clone()
    x2[:, 12:] = torch.randn(1, 8, 16, dtype=torch.float64)
    y2, _ = layer(x2)
    assert torch.equal(y[:, :12], y2[:, :12])
    assert not torch.allclose(y[:, 12:], y2[:, 12:])


def test_retrieve_reads_current_weights_without_updating():
    layer = _layer()
    x = torch.randn(2, 10, 16, dtype=torch.float64)
    _, state = layer(x)
    h, state2 = layer.retrieve(x[:, :4], state)
    assert h.shape == (2, 4, 16)
    assert state2.position == state.position
    for a, b in zip(state2.run.weights, state.run.weights):
        assert torch.equal(a, b)
    # the read uses the memory: a fresh state reads the initial weights instead
    h0, _ = layer.retrieve(x[:, :4])
    assert not torch.allclose(h, h0)
    # the retrieval conv cache streams like the update path
    hA, s = layer.retrieve(x[:, :3], state)
    hB, _ = layer.retrieve(x[:, 3:7], s)
    hw, _ = layer.retrieve(x[:, :7], state)
    torch.testing.assert_close(torch.cat([hA, hB], 1), hw, rtol=0, atol=1e-12)


def test_detached_state_cuts_the_graph():
    layer = _layer()
    x = torch.randn(1, 8, 16, dtype=torch.float64)
    _, st = layer(x)
    assert st.run.weights[0].requires_grad
    det = st.detach()
    assert not det.run.weights[0].requires_grad
    y, _ = layer(x, det)
    y.sum().backward()


def test_float32_layer_returns_float32():
    torch.manual_seed(0)
    layer = NeuralMemory(MemoryConfig(d_model=16, n_heads=2, chunk_size=4))
    y, st = layer(torch.randn(2, 9, 16))
    assert y.dtype == torch.float32 and st.run.weights[0].dtype == torch.float32


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(d_model=0), "d_model"),
        (dict(d_model=10, n_heads=3), "n_heads"),
        (dict(d_model=16, activation="swish"), "activation"),
        (dict(d_model=16, executor="cuda"), "executor"),
        (dict(d_model=16, eta_init=1.0), "eta_init"),
        (dict(d_model=16, theta_init=0.5), "theta_init"),
        (dict(d_model=16, backward_cache_mb=-1), "backward_cache_mb"),
        (dict(d_model=16, backward_cache_mb="512"), "backward_cache_mb"),
        (dict(d_model=16, backward_cache_mb=float("nan")), "backward_cache_mb"),
    ],
)
def test_config_errors_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MemoryConfig(**kwargs)


def test_layer_input_errors():
    layer = _layer()
    with pytest.raises(ValueError, match="d_model=16"):
        layer(torch.randn(2, 5, 8, dtype=torch.float64))
    _, st = layer(torch.randn(2, 5, 16, dtype=torch.float64))
    with pytest.raises(ValueError, match="batch size 2"):
        layer(torch.randn(3, 5, 16, dtype=torch.float64), st)


def test_run_memory_argument_errors():
    B, H, T, d = 1, 2, 4, 3
    q = torch.randn(B, H, T, d)
    g = torch.rand(B, H, T)
    w = [torch.randn(H, d, d)]
    with pytest.raises(ValueError, match="k has shape"):
        run_memory(q, q[..., :2], q, g, g, g, w, chunk_size=2)
    with pytest.raises(ValueError, match="theta must have shape"):
        run_memory(q, q, q, g[..., :2], g, g, w, chunk_size=2)
    with pytest.raises(ValueError, match="chunk_size"):
        run_memory(q, q, q, g, g, g, w, chunk_size=0)
    with pytest.raises(ValueError, match=r"weights\[0\]"):
        run_memory(q, q, q, g, g, g, [torch.randn(H, d, 5)], chunk_size=2)
    with pytest.raises(ValueError, match="output d=3"):
        run_memory(q, q, q, g, g, g, [torch.randn(H, 5, d)], chunk_size=2)
    with pytest.raises(TypeError, match="floating-point"):
        run_memory(q.long(), q, q, g, g, g, w, chunk_size=2)
    with pytest.raises(ValueError, match="executor"):
        run_memory(q, q, q, g, g, g, w, chunk_size=2, executor="fast")
    with pytest.raises(ValueError, match="cache_budget_bytes"):
        run_memory(q, q, q, g, g, g, w, chunk_size=2, cache_budget_bytes=-1)
    with pytest.raises(ValueError, match="cache_budget_bytes"):
        run_memory(q, q, q, g, g, g, w, chunk_size=2, cache_budget_bytes=1.5)
    run_memory(q, q, q, g, g, g, w, chunk_size=2, cache_budget_bytes=np.int64(0))  # accepted
    _, st = run_memory(q, q, q, g, g, g, w, chunk_size=2)
    with pytest.raises(ValueError, match="batch size"):
        run_memory(q.expand(2, -1, -1, -1), q.expand(2, -1, -1, -1), q.expand(2, -1, -1, -1),
                   g.expand(2, -1, -1), g.expand(2, -1, -1), g.expand(2, -1, -1), w,
                   chunk_size=2, state=st)


def test_empty_sequence_returns_state_unchanged():
    B, H, d = 1, 2, 3
    w = [torch.randn(H, d, d)]
    q = torch.randn(B, H, 0, d)
    g = torch.rand(B, H, 0)
    y, st = run_memory(q, q, q, g, g, g, w, chunk_size=2)
    assert y.shape == (B, H, 0, d) and st.position == 0


def test_causal_depthwise_conv_matches_conv1d_and_gradcheck():
    from titans_ts.memory.conv import causal_depthwise_conv

    torch.manual_seed(0)
    u = torch.randn(2, 9, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, dtype=torch.float64, requires_grad=True)
    cache = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    out, new_cache = causal_depthwise_conv(u, w, b, cache)
    ref = torch.nn.functional.conv1d(
        torch.cat([cache, u], 1).transpose(1, 2), w[:, None, :], b, groups=5
    ).transpose(1, 2)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(new_cache, u[:, -3:], rtol=0, atol=0)
    assert torch.autograd.gradcheck(
        lambda u, w, b, c: causal_depthwise_conv(u, w, b, c)[0], (u, w, b, cache)
    )


def test_backward_cache_mb_trades_recomputation_for_memory_not_results():
    """The layer's budget reaches the executor: 0 recomputes every chunk in the backward (more
    matmul FLOPs), inf keeps them; outputs and every gradient are identical."""
    from torch.utils.flop_counter import FlopCounterMode

    assert MemoryConfig(d_model=16, backward_cache_mb=float("inf")).backward_cache_bytes >= 2**60
    assert MemoryConfig(d_model=16, backward_cache_mb=1.5).backward_cache_bytes == 3 * 2**19
    assert MemoryConfig(d_model=16, backward_cache_mb=np.float32(1.5)).backward_cache_bytes == (
        3 * 2**19
    )
    assert MemoryConfig(d_model=16).backward_cache_bytes is None  # the memory-lean default
    x = torch.randn(2, 40, 16, dtype=torch.float64)
    results = []
    for mb in (float("inf"), 0):
        layer = _layer(backward_cache_mb=mb)
        y, _ = layer(x)
        with FlopCounterMode(display=False) as counter:
            y.square().sum().backward()
        grads = [p.grad.clone() for p in layer.parameters()]
        results.append((y.detach(), grads, counter.get_total_flops()))
    (y_keep, g_keep, flops_keep), (y_rec, g_rec, flops_rec) = results
    assert torch.equal(y_keep, y_rec)
    for a, b in zip(g_keep, g_rec):
        assert torch.equal(a, b)
    assert flops_rec > 1.1 * flops_keep
