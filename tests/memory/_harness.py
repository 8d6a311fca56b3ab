"""One harness every memory executor must pass (outputs, state and every gradient)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from titans_ts.memory import MemoryRunState, run_memory

Tensor = torch.Tensor


@dataclass
class Problem:
    q: Tensor
    k: Tensor
    v: Tensor
    theta: Tensor
    eta: Tensor
    alpha: Tensor
    weights: list[Tensor]

    def inputs(self) -> list[Tensor]:
        return [self.q, self.k, self.v, self.theta, self.eta, self.alpha, *self.weights]

    def sliced(self, start: int, end: int) -> Problem:
        seq = (self.q, self.k, self.v, self.theta, self.eta, self.alpha)
        cut = [x[:, :, start:end] for x in seq]
        return Problem(*cut, self.weights)


def weight_shapes(depth: int, d: int, mult: int) -> list[tuple[int, int]]:
    if depth == 1:
        return [(d, d)]
    return [(mult * d, d)] + [(mult * d, mult * d)] * (depth - 2) + [(d, mult * d)]


def make_problem(
    B: int = 2,
    H: int = 2,
    T: int = 37,
    d: int = 8,
    depth: int = 2,
    mult: int = 2,
    dtype: torch.dtype = torch.float64,
    momentum: bool = True,
    forgetting: bool = True,
    seed: int = 0,
    requires_grad: bool = True,
) -> Problem:
    """Random inputs in the regime the layer produces (unit-norm q/k, gates in range)."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    def unit(*shape: int) -> Tensor:
        return torch.nn.functional.normalize(rnd(*shape), dim=-1)

    def rand(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=g, dtype=torch.float64)

    q, k, v = unit(B, H, T, d), unit(B, H, T, d), rnd(B, H, T, d)
    theta = 0.05 + 0.15 * rand(B, H, T)
    eta = 0.3 + 0.5 * rand(B, H, T) if momentum else torch.zeros(B, H, T, dtype=torch.float64)
    alpha = 0.1 * rand(B, H, T) if forgetting else torch.zeros(B, H, T, dtype=torch.float64)
    weights = [rnd(H, o, i) / i**0.5 for o, i in weight_shapes(depth, d, mult)]
    tensors = [x.to(dtype).requires_grad_(requires_grad) for x in (q, k, v, theta, eta, alpha)]
    weights = [w.to(dtype).requires_grad_(requires_grad) for w in weights]
    return Problem(*tensors, weights)


def probe_loss(y: Tensor, state: MemoryRunState) -> Tensor:
    """A scalar that depends on every output element and every state tensor, with
    fixed pseudo-random coefficients (so no gradient cancels by symmetry)."""
    def coef(x: Tensor) -> Tensor:
        idx = torch.arange(x.numel(), dtype=x.dtype, device=x.device)
        return torch.sin(idx * 0.37 + 0.1).reshape(x.shape)

    total = (y * coef(y)).sum()
    for t in [*state.weights, *state.momentum]:
        total = total + (t * coef(t)).sum()
    return total


def run(problem: Problem, executor: str, **kwargs) -> tuple[Tensor, MemoryRunState]:
    p = problem
    return run_memory(
        p.q, p.k, p.v, p.theta, p.eta, p.alpha, p.weights, executor=executor, **kwargs
    )


def grads(problem: Problem, y: Tensor, state: MemoryRunState) -> list[Tensor]:
    return list(torch.autograd.grad(probe_loss(y, state), problem.inputs()))


NAMES = ["q", "k", "v", "theta", "eta", "alpha"]


def assert_close(name: str, actual: Tensor, expected: Tensor, rtol: float) -> None:
    """Relative max error against the scale of ``expected``: readable failures."""
    assert torch.isfinite(expected).all(), f"{name}: the oracle produced non-finite values"
    scale = expected.abs().max().clamp_min(1e-30)
    err = ((actual - expected).abs().max() / scale).item()
    assert err <= rtol, f"{name}: relative max error {err:.3e} > {rtol:.1e}"


def assert_runs_match(
    problem: Problem, executor: str, oracle: str, rtol: float, **kwargs
) -> None:
    """Outputs, final state and gradients of every input agree between two executors."""
    y1, s1 = run(problem, executor, **kwargs)
    y0, s0 = run(problem, oracle, **kwargs)
    assert y1.dtype == problem.q.dtype
    assert s1.position == s0.position
    assert (s1.grad_weights is None) == (s0.grad_weights is None)
    assert_close("y", y1, y0, rtol)
    for i, (a, b) in enumerate(zip(s1.weights, s0.weights)):
        assert_close(f"state.weights[{i}]", a, b, rtol)
    for i, (a, b) in enumerate(zip(s1.momentum, s0.momentum)):
        assert_close(f"state.momentum[{i}]", a, b, rtol)
    g1 = grads(problem, y1, s1)
    g0 = grads(problem, y0, s0)
    names = NAMES + [f"weights[{i}]" for i in range(len(problem.weights))]
    for name, a, b in zip(names, g1, g0):
        assert_close(f"d/d{name}", a, b, rtol)
