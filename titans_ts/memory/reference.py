"""Token-by-token oracle of the memory contract (:mod:`titans_ts.memory.spec`).

Slow on purpose: one Python step per token, the inner gradient ``u_t`` taken by autograd
(:func:`torch.func.grad`) rather than by a hand-written formula, so that it is an
independent check of the fast executors. It is differentiable end to end (the inner
gradient is itself differentiated by the outer backward pass).
"""

from __future__ import annotations

import torch

from .activations import activation as get_activation
from .spec import MemoryRunState

Tensor = torch.Tensor

__all__ = ["memory_model", "naive_run_memory"]


def memory_model(
    weights: list[Tensor], z: Tensor, *, activation: str = "gelu", residual: bool = False
) -> Tensor:
    """The memory model ``f(z; W)`` of the contract, for per-(batch, head) weights.

    Args:
        weights: one (B, H, out, in) tensor per layer.
        z: (B, H, ..., d) inputs (any number of token dimensions after H).
    Returns:
        (B, H, ..., d) ``W_L act(... act(W_1 z))`` (+ ``z`` when residual).
    """
    act = get_activation(activation)
    lead = z.shape[:2]
    h = z.reshape(*lead, -1, z.shape[-1])
    for i, w in enumerate(weights):
        h = h @ w.transpose(-1, -2)
        if i < len(weights) - 1:
            h = act(h)
    h = h.reshape(*z.shape[:-1], h.shape[-1])
    return h + z if residual else h


def naive_run_memory(
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
    max_grad_norm: float | None = None,
) -> tuple[Tensor, MemoryRunState]:
    """Reference executor. Same arguments and result as :func:`titans_ts.memory.run_memory`.

    Expects validated inputs already in the compute dtype (the public entry does that).
    """
    B, H, T, _ = q.shape

    if state is None:
        W = [w.unsqueeze(0).expand(B, *w.shape) for w in weights]
        S = [torch.zeros_like(w) for w in W]
        Wg = None
        pos = 0
    else:
        W, S = list(state.weights), list(state.momentum)
        Wg = None if state.grad_weights is None else list(state.grad_weights)
        pos = state.position

    def model(Ws: list[Tensor], z: Tensor) -> Tensor:  # z: (B, H, d)
        return memory_model(Ws, z, activation=activation, residual=residual)

    def inner_loss(Ws: list[Tensor], kt: Tensor, vt: Tensor) -> Tensor:
        # Summed over batch and heads: each (b, h) slice of W only affects its own term,
        # so the gradient w.r.t. the (B, H, ...) weights is the per-(b, h) gradient.
        return 0.5 * (model(Ws, kt) - vt).square().sum()

    inner_grad = torch.func.grad(inner_loss)
    ys = []
    for t in range(T):
        if pos % chunk_size == 0:
            Wg = W
        u = inner_grad(Wg, k[:, :, t], v[:, :, t])
        th = theta[:, :, t, None, None]
        if max_grad_norm is not None:  # u_t <- u_t * min(1, tau / ||u_t||), differentiated
            sq = sum(ui.square().sum((-2, -1)) for ui in u)[..., None, None]
            th = th * (max_grad_norm * sq.clamp_min(max_grad_norm**2).rsqrt())
        et = eta[:, :, t, None, None]
        keep = 1.0 - alpha[:, :, t, None, None]
        S = [et * s - th * ui for s, ui in zip(S, u)]
        W = [keep * w + s for w, s in zip(W, S)]
        ys.append(model(W, q[:, :, t]))
        pos += 1

    y = torch.stack(ys, dim=2) if ys else q.new_zeros(q.shape)
    open_chunk = pos % chunk_size != 0
    new_state = MemoryRunState(
        weights=W, momentum=S, grad_weights=Wg if open_chunk else None, position=pos
    )
    return y, new_state
