"""Chunked executor == token oracle: outputs, state and gradients of every input."""

from __future__ import annotations

import pytest
import torch
from _harness import assert_close, assert_runs_match, grads, make_problem, run

DEPTHS = [1, 2, 3]
CHUNKS = [1, 3, 16, 64]  # 64 >= T


@pytest.mark.parametrize("depth", DEPTHS, ids=lambda d: f"depth{d}")
@pytest.mark.parametrize("chunk", CHUNKS, ids=lambda c: f"b{c}")
@pytest.mark.parametrize("heads", [1, 4], ids=lambda h: f"H{h}")
@pytest.mark.parametrize("residual", [False, True], ids=["mlp", "residual"])
def test_chunked_equals_reference_float64(depth, chunk, heads, residual):
    B = 2 if heads == 1 else 1
    problem = make_problem(B=B, H=heads, T=29, d=8, depth=depth, seed=depth * 100 + chunk)
    assert_runs_match(
        problem, "chunked", "reference", rtol=1e-10, chunk_size=chunk, residual=residual
    )


@pytest.mark.parametrize("depth", DEPTHS, ids=lambda d: f"depth{d}")
@pytest.mark.parametrize("chunk", [1, 5, 64], ids=lambda c: f"b{c}")
@pytest.mark.parametrize(
    "momentum,forgetting", [(False, False), (True, False), (False, True)],
    ids=["no-momentum-no-forget", "momentum-only", "forget-only"],
)
def test_gates_switched_off(depth, chunk, momentum, forgetting):
    """eta = 0 exactly (no momentum) and alpha = 0 (no forgetting) are exact special cases."""
    problem = make_problem(depth=depth, momentum=momentum, forgetting=forgetting, seed=7)
    assert_runs_match(problem, "chunked", "reference", rtol=1e-10, chunk_size=chunk)


def test_full_forgetting_is_exact():
    """alpha = 1 wipes the weights every token: products hit exact zeros without NaN."""
    problem = make_problem(depth=2, seed=3)
    with torch.no_grad():
        problem.alpha[:, :, 10:14] = 1.0
    assert_runs_match(problem, "chunked", "reference", rtol=1e-10, chunk_size=4)


@pytest.mark.parametrize("activation", ["gelu", "silu", "tanh", "relu"])
def test_activations(activation):
    problem = make_problem(depth=2, seed=11)
    assert_runs_match(
        problem, "chunked", "reference", rtol=1e-10, chunk_size=6, activation=activation
    )


@pytest.mark.parametrize("depth", DEPTHS, ids=lambda d: f"depth{d}")
@pytest.mark.parametrize("chunk", [1, 3, 16], ids=lambda c: f"b{c}")
def test_chunked_equals_reference_float32(depth, chunk):
    p64 = make_problem(depth=depth, T=40, seed=5)
    p32 = make_problem(depth=depth, T=40, seed=5, dtype=torch.float32)
    y32, s32 = run(p32, "chunked", chunk_size=chunk)
    y64, s64 = run(p64, "reference", chunk_size=chunk)
    assert y32.dtype == torch.float32
    assert_close("y", y32.double(), y64, 1e-4)
    for a, b in zip(grads(p32, y32, s32), grads(p64, y64, s64)):
        assert_close("grad", a.double(), b, 1e-3)


def test_bfloat16_inputs_accumulate_in_float32():
    p = make_problem(depth=2, T=20, seed=2, dtype=torch.bfloat16, requires_grad=False)
    y, state = run(p, "chunked", chunk_size=8)
    assert y.dtype == torch.bfloat16
    assert state.weights[0].dtype == torch.float32
    p64 = make_problem(depth=2, T=20, seed=2, requires_grad=False)
    y64, _ = run(p64, "reference", chunk_size=8)
    assert_close("y", y.double(), y64, 5e-2)
