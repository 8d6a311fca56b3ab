"""Streaming (DESIGN §2.8), causality, a closed-form check and long-stream stability."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _harness import assert_close, grads, make_problem, probe_loss, run

from titans_ts.memory import MemoryConfig, NeuralMemory, run_memory


def _run_split(problem, splits, executor, **kwargs):
    """Run the stream in pieces cut at ``splits``, carrying the state."""
    T = problem.q.shape[2]
    edges = [0, *splits, T]
    state, ys = None, []
    for a, b in zip(edges[:-1], edges[1:]):
        p = problem.sliced(a, b)
        y, state = run_memory(
            p.q, p.k, p.v, p.theta, p.eta, p.alpha, p.weights,
            executor=executor, state=state, **kwargs,
        )
        ys.append(y)
    return torch.cat(ys, dim=2), state


@pytest.mark.parametrize("executor", ["chunked", "reference"])
@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("chunk", [3, 8])
def test_every_single_split_point(executor, depth, chunk):
    """run(x[:s]) then run(x[s:], state) == run(x) for every s, aligned or not."""
    problem = make_problem(T=19, depth=depth, seed=21, requires_grad=False)
    y_full, s_full = run(problem, executor, chunk_size=chunk)
    for s in range(0, 20):
        y, state = _run_split(problem, [s], executor, chunk_size=chunk)
        assert_close(f"y split@{s}", y, y_full, 1e-12)
        for a, b in zip(state.weights + state.momentum, s_full.weights + s_full.momentum):
            assert_close(f"state split@{s}", a, b, 1e-12)
        assert state.position == 19
        assert (state.grad_weights is None) == (19 % chunk == 0)


@pytest.mark.parametrize("splits", [[1, 2, 3], [5, 11, 12, 30], [16, 32]], ids=str)
def test_many_pieces_gradients(splits):
    """Gradients through a multi-piece stream equal those of one call (chunked)."""
    problem = make_problem(T=37, depth=2, seed=4)
    y_full, s_full = run(problem, "chunked", chunk_size=8)
    g_full = grads(problem, y_full, s_full)
    y, state = _run_split(problem, splits, "chunked", chunk_size=8)
    g = grads(problem, y, state)
    assert_close("y", y, y_full, 1e-12)
    for a, b in zip(g, g_full):
        assert_close("grad", a, b, 1e-10)


def test_streaming_matches_oracle_across_executors():
    """A chunked stream resumed mid-chunk equals the oracle run whole."""
    problem = make_problem(T=23, depth=2, seed=8)
    y_ref, s_ref = run(problem, "reference", chunk_size=5)
    y, state = _run_split(problem, [7, 13], "chunked", chunk_size=5)
    assert_close("y", y, y_ref, 1e-10)
    for a, b in zip(grads(problem, y, state), grads(problem, y_ref, s_ref)):
        assert_close("grad", a, b, 1e-10)


def test_linear_memory_closed_form():
    """Depth 1, chunk 1: u_t = (W k_t - v_t) k_t^T written out by hand in numpy."""
    problem = make_problem(B=1, H=2, T=12, d=5, depth=1, seed=9, requires_grad=False)
    y, state = run(problem, "chunked", chunk_size=1)
    q, k, v = (x.numpy() for x in (problem.q, problem.k, problem.v))
    th, et, al = (x.numpy() for x in (problem.theta, problem.eta, problem.alpha))
    W0 = problem.weights[0].numpy()
    for h in range(2):
        W, S = W0[h].copy(), np.zeros_like(W0[h])
        for t in range(12):
            u = np.outer(W @ k[0, h, t] - v[0, h, t], k[0, h, t])
            S = et[0, h, t] * S - th[0, h, t] * u
            W = (1.0 - al[0, h, t]) * W + S
            np.testing.assert_allclose(y[0, h, t].numpy(), W @ q[0, h, t], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(state.weights[0][0, h].numpy(), W, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(state.momentum[0][0, h].numpy(), S, rtol=1e-12, atol=1e-12)


def test_chunk_gradients_taken_at_chunk_start():
    """With b = T and no momentum/forgetting, W_T = W_0 - sum_t theta_t grad l_t(W_0)."""
    problem = make_problem(B=1, H=1, T=6, d=4, depth=1, momentum=False, forgetting=False,
                           seed=2, requires_grad=False)
    _, state = run(problem, "chunked", chunk_size=6)
    W0 = problem.weights[0][0]
    k, v, th = problem.k[0, 0], problem.v[0, 0], problem.theta[0, 0]
    expected = W0 - sum(th[t] * torch.outer(W0 @ k[t] - v[t], k[t]) for t in range(6))
    assert_close("W_T", state.weights[0][0, 0], expected, 1e-12)


@pytest.mark.parametrize("executor", ["chunked", "reference"])
def test_causality(executor):
    """Changing inputs after t never changes outputs up to t."""
    problem = make_problem(T=24, depth=2, seed=13, requires_grad=False)
    y, _ = run(problem, executor, chunk_size=8)
    for t in (0, 5, 8, 15, 22):
        p = make_problem(T=24, depth=2, seed=13, requires_grad=False)
        for x in (p.q, p.k, p.v):
            x[:, :, t + 1 :] += torch.randn_like(x[:, :, t + 1 :])
        for x in (p.theta, p.eta, p.alpha):
            x[:, :, t + 1 :] = torch.rand_like(x[:, :, t + 1 :]) * 0.5
        y2, _ = run(p, executor, chunk_size=8)
        assert torch.equal(y2[:, :, : t + 1], y[:, :, : t + 1]), f"output at <= {t} changed"
        assert not torch.allclose(y2[:, :, t + 1 :], y[:, :, t + 1 :])


def test_gradient_of_past_output_ignores_future_inputs():
    problem = make_problem(T=20, depth=2, seed=1)
    y, _ = run(problem, "chunked", chunk_size=6)
    gq, gk, gv = torch.autograd.grad(y[:, :, :9].sum(), [problem.q, problem.k, problem.v])
    for g in (gq, gk, gv):
        assert g[:, :, 9:].abs().max() == 0
        assert g[:, :, :9].abs().max() > 0


def test_module_stability_16k_tokens():
    """Default gate initialisation: a 16k-token stream stays finite with bounded norms."""
    torch.manual_seed(0)
    config = MemoryConfig(d_model=32, n_heads=2, chunk_size=64)
    layer = NeuralMemory(config)
    x = torch.randn(1, 16384, 32)
    with torch.no_grad():
        y, state = layer(x)
    assert torch.isfinite(y).all()
    norms = [w.norm().item() for w in state.run.weights + state.run.momentum]
    assert all(np.isfinite(norms))
    initial = sum(w.norm().item() for w in layer.memory_weights)
    assert sum(norms[: config.depth]) < 20 * initial, norms
    # per-token outputs stay on the scale of the early ones
    assert y[:, -1024:].abs().max() < 10 * y[:, :1024].abs().max() + 1.0


def test_probe_loss_sees_everything():
    """Guard for the harness itself: every input receives a non-zero gradient."""
    problem = make_problem(depth=2, seed=3)
    y, state = run(problem, "chunked", chunk_size=4)
    assert probe_loss(y, state).isfinite()
    for g in grads(problem, y, state):
        assert g.abs().max() > 0


@pytest.mark.parametrize("T,chunk", [(37, 3), (64, 4), (29, 8)])
def test_checkpointed_backward_equals_kept_intermediates(T, chunk):
    """Budget 0 forces sqrt checkpointing with recomputation: identical results."""
    from titans_ts.memory.chunked import chunked_run_memory

    p = make_problem(T=T, depth=2, seed=1)
    results = []
    for budget in (1 << 30, 0):
        y, st = chunked_run_memory(
            p.q, p.k, p.v, p.theta, p.eta, p.alpha, p.weights, chunk_size=chunk,
            cache_budget_bytes=budget,
        )
        results.append((y, grads(p, y, st)))
    assert torch.equal(results[0][0], results[1][0])
    for a, b in zip(results[0][1], results[1][1]):
        assert torch.equal(a, b)
    # and both equal the oracle
    y_ref, s_ref = run(p, "reference", chunk_size=chunk)
    assert_close("y", results[1][0], y_ref, 1e-10)
    for a, b in zip(results[1][1], grads(p, y_ref, s_ref)):
        assert_close("grad", a, b, 1e-10)


def test_keep_plan_fills_the_budget_with_the_last_chunks():
    from titans_ts.memory.chunked import _keep_plan

    # 100 chunks of 10 bytes (2 of them boundary state): the 11 checkpoints' reserve (22
    # bytes) comes off first; the last 47 chunks fit what is left of 500 bytes
    assert _keep_plan(100, 10, 2, 500) == (53, 7)
    assert _keep_plan(100, 10, 2, 0) == (100, 10)  # nothing kept: plain sqrt checkpoints
    assert _keep_plan(100, 10, 2, 10**6)[0] == 1  # never all: the caller keeps all itself


def _bytes_per_chunk(p, chunk: int) -> int:
    """What one full chunk of problem ``p`` keeps for the backward (intermediates + state)."""
    from titans_ts.memory.chunked import _chunk_forward, _pack

    G = p.q.shape[0] * p.q.shape[1]
    flat = [x.detach().reshape(G, *x.shape[2:])[:, :chunk] for x in (p.q, p.k, p.v)]
    gates = [x.detach().reshape(G, -1)[:, :chunk] for x in (p.theta, p.eta, p.alpha)]
    Ws = [w.detach().unsqueeze(0).expand(p.q.shape[0], *w.shape).reshape(G, *w.shape[1:])
          for w in p.weights]
    WS = [_pack(w, torch.zeros_like(w)) for w in Ws]
    _, _, cache = _chunk_forward(Ws, WS, *flat, *gates, "gelu", False, keep=True)
    return cache.nbytes() + sum(x.numel() * x.element_size() for x in WS)


def test_partial_keep_recomputes_only_the_rest_with_identical_results(monkeypatch):
    """Budgets between 0 and 'everything' keep the last chunks and recompute the others:
    matmul work strictly in between, outputs and gradients bit-identical. The default
    (``None``) keeps all or nothing."""
    from torch.utils.flop_counter import FlopCounterMode

    from titans_ts.memory import chunked
    from titans_ts.memory.chunked import chunked_run_memory

    p = make_problem(T=61, depth=2, seed=2)
    chunk = 4
    per_chunk = _bytes_per_chunk(p, chunk)
    n_chunks = -(-61 // chunk)
    runs = {}
    third = per_chunk * n_chunks // 3
    monkeypatch.setattr(chunked, "DEFAULT_CACHE_BUDGET_BYTES", third)
    for name, budget in [("all", 1 << 40), ("none", 0), ("third", third),
                         ("most", per_chunk * (n_chunks - 2)), ("default", None)]:
        y, st = chunked_run_memory(
            p.q, p.k, p.v, p.theta, p.eta, p.alpha, p.weights, chunk_size=chunk,
            cache_budget_bytes=budget,
        )
        with FlopCounterMode(display=False) as counter:
            g = grads(p, y, st)
        runs[name] = (y.detach(), g, counter.get_total_flops())
    for name in ("none", "third", "most", "default"):
        assert torch.equal(runs[name][0], runs["all"][0])
        for a, b in zip(runs[name][1], runs["all"][1]):
            assert torch.equal(a, b)
    flops = {name: r[2] for name, r in runs.items()}
    assert flops["all"] < flops["most"] < flops["third"] < flops["none"], flops
    assert flops["default"] == flops["none"]  # over the default threshold: recompute all


def test_budget_is_planned_on_a_full_chunk_when_resuming_inside_one():
    """A stream resumed one token before a chunk boundary starts with a 1-token chunk; the
    plan must be sized on a full chunk, or a half-size budget would keep everything."""
    from torch.utils.flop_counter import FlopCounterMode

    from titans_ts.memory.chunked import chunked_run_memory

    p = make_problem(T=61, depth=2, seed=4)
    chunk = 8
    with torch.no_grad():
        head = p.sliced(0, chunk - 1)
        _, state = chunked_run_memory(*head.inputs()[:6], p.weights, chunk_size=chunk)
    tail = p.sliced(chunk - 1, 61)  # chunks of 1, 8 x 6, 6 tokens
    half = _bytes_per_chunk(p, chunk) * 8 // 2
    flops, outs = {}, {}
    for name, budget in [("all", 1 << 40), ("half", half), ("none", 0)]:
        y, st = chunked_run_memory(*tail.inputs()[:6], p.weights, chunk_size=chunk,
                                   state=state, cache_budget_bytes=budget)
        with FlopCounterMode(display=False) as counter:
            g = torch.autograd.grad(probe_loss(y, st), tail.inputs()[:6])
        flops[name], outs[name] = counter.get_total_flops(), (y.detach(), g)
    assert flops["all"] < flops["half"] < flops["none"], flops
    for name in ("half", "none"):
        assert torch.equal(outs[name][0], outs["all"][0])
        for a, b in zip(outs[name][1], outs["all"][1]):
            assert torch.equal(a, b)
