"""Per-token inner-gradient clipping (``max_grad_norm``): exact, bounded, and stabilising.

Contract extension (:mod:`titans_ts.memory.spec`): with ``tau = max_grad_norm`` every
token's gradient is ``u_t * min(1, tau / ||u_t||)`` (Frobenius norm over all layers),
differentiated like every other operation.
"""

from __future__ import annotations

import pytest
import torch
from _harness import assert_close, assert_runs_match, grads, make_problem, run
from test_streaming import _run_split

from titans_ts.backbone import TitansBackbone, TitansConfig
from titans_ts.memory import MemoryConfig, NeuralMemory, run_memory
from titans_ts.memory.reference import memory_model


def _first_chunk_norms(problem, chunk: int, residual: bool = False) -> torch.Tensor:
    """||u_t|| (B, H, chunk) of the first chunk's tokens, all taken at the initial weights."""
    B = problem.q.shape[0]
    W0 = [w.detach().unsqueeze(0).expand(B, *w.shape) for w in problem.weights]
    out = []
    for t in range(chunk):
        kt, vt = problem.k[:, :, t].detach(), problem.v[:, :, t].detach()

        def loss(ws, kt=kt, vt=vt):
            return 0.5 * (memory_model(ws, kt, residual=residual) - vt).square().sum()

        u = torch.func.grad(loss)(W0)
        out.append(sum(x.square().sum((-2, -1)) for x in u).sqrt())
    return torch.stack(out, -1)


def _mixed_tau(problem, chunk: int, residual: bool = False) -> float:
    """A bound that clips some of the first chunk's tokens but not all of them."""
    norms = _first_chunk_norms(problem, chunk, residual).flatten().sort().values
    # halfway between two middle norms: no token sits on the kink ||u_t|| == tau
    tau = 0.5 * (norms[len(norms) // 2 - 1] + norms[len(norms) // 2]).item()
    assert (norms > tau).any() and (norms < tau).any()
    return tau


@pytest.mark.parametrize("depth", [1, 2, 3], ids=lambda d: f"depth{d}")
@pytest.mark.parametrize("chunk", [1, 4, 64], ids=lambda c: f"b{c}")
@pytest.mark.parametrize("residual", [False, True], ids=["mlp", "residual"])
def test_clipped_chunked_equals_reference(depth, chunk, residual):
    """Outputs, state and gradients of every input, with clipped and unclipped tokens mixed."""
    problem = make_problem(T=23, depth=depth, seed=40 + depth)
    tau = _mixed_tau(problem, min(chunk, 23), residual)
    assert_runs_match(
        problem, "chunked", "reference", rtol=1e-10,
        chunk_size=chunk, residual=residual, max_grad_norm=tau,
    )


def test_clipping_changes_the_run_and_a_huge_bound_does_not():
    problem = make_problem(T=20, depth=2, seed=3, requires_grad=False)
    y_plain, _ = run(problem, "chunked", chunk_size=5)
    y_huge, _ = run(problem, "chunked", chunk_size=5, max_grad_norm=1e12)
    y_clip, _ = run(problem, "chunked", chunk_size=5, max_grad_norm=_mixed_tau(problem, 5))
    torch.testing.assert_close(y_huge, y_plain, rtol=0, atol=0)
    assert (y_clip - y_plain).abs().max() > 1e-3


def test_each_token_step_is_bounded_by_theta_tau():
    """chunk 1, no momentum, no forgetting: ||W_t - W_{t-1}|| = theta_t min(||u_t||, tau)."""
    problem = make_problem(T=12, depth=2, seed=5, momentum=False, forgetting=False,
                           requires_grad=False)
    tau = 2.8  # about the median ||u_t|| of this problem: some tokens clipped, some not
    state, steps = None, []
    prev = [w.unsqueeze(0).expand(problem.q.shape[0], *w.shape) for w in problem.weights]
    for t in range(12):
        p = problem.sliced(t, t + 1)
        _, state = run_memory(p.q, p.k, p.v, p.theta, p.eta, p.alpha, p.weights,
                              chunk_size=1, state=state, max_grad_norm=tau)
        diff = sum((a - b).square().sum((-2, -1)) for a, b in zip(state.weights, prev)).sqrt()
        steps.append(diff / p.theta[:, :, 0])
        prev = [w.clone() for w in state.weights]
    steps = torch.stack(steps, -1)
    assert steps.max() <= tau * (1 + 1e-9)
    assert (steps > 0.99 * tau).any() and (steps < 0.99 * tau).any()


def test_clipped_stream_splits_exactly():
    problem = make_problem(T=21, depth=2, seed=9)
    tau = _mixed_tau(problem, 6)
    y_full, s_full = run(problem, "chunked", chunk_size=6, max_grad_norm=tau)
    g_full = grads(problem, y_full, s_full)
    y, state = _run_split(problem, [4, 6, 13], "chunked", chunk_size=6, max_grad_norm=tau)
    assert_close("y", y, y_full, 1e-12)
    for a, b in zip(grads(problem, y, state), g_full):
        assert_close("grad", a, b, 1e-10)


def test_zero_gradient_tokens_stay_finite():
    """v_t = f(k_t) gives u_t = 0: the clip factor and its derivative must not be NaN."""
    problem = make_problem(T=6, depth=1, seed=2, momentum=False, forgetting=False)
    with torch.no_grad():
        W = problem.weights[0]
        problem.v.copy_(torch.einsum("hoi,bhti->bhto", W, problem.k))
    for ex in ("reference", "chunked"):
        y, st = run(problem, ex, chunk_size=1, max_grad_norm=0.1)
        g = grads(problem, y, st)
        assert all(torch.isfinite(x).all() for x in g)


def _smooth_input(T: int, d: int) -> torch.Tensor:
    """Correlated, slowly varying channels: the input that made the plain update diverge."""
    t = torch.arange(T, dtype=torch.float32)
    x = torch.stack([torch.sin(t / 50 * (i % 7 + 1) + i) for i in range(d)], -1)[None]
    return x + 0.05 * torch.randn(1, T, d, generator=torch.Generator().manual_seed(0))


def test_untrained_backbones_stay_finite_on_smooth_input():
    """Regression: without clipping every variant went non-finite within ~400 tokens."""
    x = _smooth_input(640, 32)
    for variant in ("lmm", "mac", "mag", "mal"):
        torch.manual_seed(0)
        model = TitansBackbone(TitansConfig(variant=variant, d_model=32, n_layers=2)).eval()
        assert model.config.memory.max_grad_norm == 1.0
        with torch.no_grad():
            y, _ = model(x)
        assert torch.isfinite(y).all(), variant


def test_plain_update_diverges_on_the_same_input():
    """Documents why clipping is on by default: the unclipped contract blows up here."""
    torch.manual_seed(0)
    layer = NeuralMemory(MemoryConfig(d_model=32, n_heads=4, max_grad_norm=None))
    clipped = NeuralMemory(MemoryConfig(d_model=32, n_heads=4))
    clipped.load_state_dict(layer.state_dict())
    x = _smooth_input(1024, 32)
    with torch.no_grad():
        _, plain = layer(x)
        y, st = clipped(x)
    assert not all(torch.isfinite(w).all() for w in plain.run.weights)
    assert torch.isfinite(y).all()
    assert max(w.norm().item() for w in st.run.weights) < 100


@pytest.mark.parametrize("bad", [0, -1.0, True, "1"])
def test_bad_bounds_are_rejected(bad):
    with pytest.raises(ValueError, match="max_grad_norm"):
        MemoryConfig(d_model=8, max_grad_norm=bad)
    problem = make_problem(T=4, depth=1, requires_grad=False)
    with pytest.raises(ValueError, match="max_grad_norm"):
        run(problem, "chunked", chunk_size=2, max_grad_norm=bad)
