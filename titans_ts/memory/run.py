"""The public executor entry: argument checks, dtype rule, dispatch.

Math lives in the executors (``reference.py``, ``chunked.py``, ``triton/``); this file
only validates, casts and picks one.
"""

from __future__ import annotations

import numbers
import warnings

import torch

from .chunked import chunked_run_memory
from .reference import naive_run_memory
from .spec import ACTIVATIONS, EXECUTORS, MemoryRunState

Tensor = torch.Tensor

__all__ = ["run_memory", "select_executor"]


def select_executor(
    executor: str,
    q: Tensor,
    weights: list[Tensor],
    chunk_size: int | None = None,
) -> tuple[str, str]:
    """Resolve ``executor`` to a concrete executor name, with the reason for the choice.

    ``"auto"`` picks ``"triton"`` on CUDA when the kernels support the shape and Triton is
    importable, else ``"chunked"``. Every executor implements the per-token gradient
    clipping (``max_grad_norm``), so it does not enter the choice.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor={executor!r} is unknown: expected one of {EXECUTORS}")
    if executor != "auto":
        return executor, f"requested {executor!r}"
    if q.device.type != "cuda":
        return "chunked", f"auto: inputs on {q.device.type}, Triton kernels need CUDA"
    try:
        from .triton import supports
    except ImportError as exc:  # pragma: no cover - depends on the installation
        return "chunked", f"auto: Triton kernels unavailable ({exc})"
    ok, why = supports(q, weights, chunk_size)
    return ("triton", "auto: CUDA and a supported shape") if ok else ("chunked", f"auto: {why}")


def _check(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    theta: Tensor,
    eta: Tensor,
    alpha: Tensor,
    weights: list[Tensor],
    chunk_size: int,
    activation: str,
    state: MemoryRunState | None,
    max_grad_norm: float | None = None,
) -> None:
    for name, x in (("q", q), ("k", k), ("v", v), ("theta", theta), ("eta", eta), ("alpha", alpha)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if q.dim() != 4:
        raise ValueError(f"q must have shape (B, H, T, d), got {tuple(q.shape)}")
    for name, x in (("k", k), ("v", v)):
        if x.shape != q.shape:
            raise ValueError(f"{name} has shape {tuple(x.shape)} but q has {tuple(q.shape)}")
    B, H, T, d = q.shape
    for name, x in (("theta", theta), ("eta", eta), ("alpha", alpha)):
        if tuple(x.shape) != (B, H, T):
            raise ValueError(
                f"{name} must have shape (B, H, T) = {(B, H, T)}, got {tuple(x.shape)}"
            )
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r} is unknown: expected one of {ACTIVATIONS}")
    if max_grad_norm is not None and (
        isinstance(max_grad_norm, bool)
        or not isinstance(max_grad_norm, (int, float))
        or not max_grad_norm > 0
    ):
        raise ValueError(f"max_grad_norm must be a positive float or None, got {max_grad_norm!r}")
    if not isinstance(weights, (list, tuple)) or len(weights) == 0:
        raise TypeError("weights must be a non-empty list of (H, out, in) tensors")
    prev = d
    for i, w in enumerate(weights):
        if not isinstance(w, torch.Tensor) or w.dim() != 3 or w.shape[0] != H or w.shape[2] != prev:
            got = tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__
            raise ValueError(
                f"weights[{i}] must have shape (H={H}, out, in={prev}), got {got}"
            )
        prev = w.shape[1]
    if prev != d:
        raise ValueError(f"the last memory layer must output d={d} features, it outputs {prev}")
    if state is not None:
        if not isinstance(state, MemoryRunState):
            raise TypeError(f"state must be a MemoryRunState, got {type(state).__name__}")
        if len(state.weights) != len(weights) or len(state.momentum) != len(weights):
            raise ValueError(
                f"state holds {len(state.weights)} layers but weights has {len(weights)}"
            )
        groups = [("weights", state.weights), ("momentum", state.momentum)]
        if state.grad_weights is not None:
            groups.append(("grad_weights", state.grad_weights))
        for name, tensors in groups:
            for i, (s, w) in enumerate(zip(tensors, weights)):
                want = (B, *w.shape)
                if tuple(s.shape) != want:
                    raise ValueError(
                        f"state.{name}[{i}] has shape {tuple(s.shape)}, expected {want}; "
                        "was the state produced with another batch size or memory config?"
                    )


def run_memory(
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
    executor: str = "chunked",
    max_grad_norm: float | None = None,
    cache_budget_bytes: int | None = None,
) -> tuple[Tensor, MemoryRunState]:
    """Run the neural long-term memory over a stream (contract: :mod:`titans_ts.memory.spec`).

    Args:
        q, k, v: (B, H, T, d) queries, keys and values.
        theta, eta, alpha: (B, H, T) learning rate, momentum decay and forgetting gate.
        weights: initial memory weights, one (H, out, in) tensor per layer.
        chunk_size: tokens per chunk sharing one gradient point (1 = exact per-token GD).
        activation: hidden activation of a deep memory.
        residual: ``f(k) = k + MLP(k)`` when True.
        state: the state returned by a previous call, to continue the stream.
        executor: "chunked", "reference", "triton" or "auto".
        max_grad_norm: ``tau``; when set, every token's inner gradient is rescaled to
            ``u_t * min(1, tau / ||u_t||)`` (norm over all layers), differentiably. ``None``
            (default here) leaves the contract's plain gradient.
        cache_budget_bytes: bytes the chunked executor's training pass may keep for the
            backward instead of recomputing (every chunk's intermediates when they fit,
            else the last chunks'); ``None``: every chunk's within 512 MiB, else none
            (same results either way; see :attr:`MemoryConfig.backward_cache_mb`). Other
            executors ignore it.

    Returns:
        ``(y, state)``: ``y`` (B, H, T, d) in ``q``'s dtype, where ``y_t = f(q_t; W_t)``
        reads the memory after token ``t``'s update, and the state to continue from.
    """
    _check(q, k, v, theta, eta, alpha, weights, chunk_size, activation, state, max_grad_norm)
    if cache_budget_bytes is not None:
        if (
            not isinstance(cache_budget_bytes, numbers.Integral)
            or isinstance(cache_budget_bytes, bool) or cache_budget_bytes < 0
        ):
            raise ValueError(
                f"cache_budget_bytes must be None or an integer >= 0, got {cache_budget_bytes!r}"
            )
        cache_budget_bytes = int(cache_budget_bytes)
    name, _ = select_executor(executor, q, list(weights), chunk_size)
    out_dtype = q.dtype
    dtypes = [x.dtype for x in (q, k, v, theta, eta, alpha, *weights)]
    cdt = torch.float64 if torch.float64 in dtypes else torch.float32

    def cast(x: Tensor) -> Tensor:
        return x if x.dtype == cdt else x.to(cdt)

    if state is not None and state.weights[0].dtype != cdt:
        state = MemoryRunState(
            weights=[cast(w) for w in state.weights],
            momentum=[cast(s) for s in state.momentum],
            grad_weights=(
                None if state.grad_weights is None else [cast(w) for w in state.grad_weights]
            ),
            position=state.position,
        )
    if q.shape[2] == 0:
        if state is None:
            B = q.shape[0]
            ws = [cast(w).unsqueeze(0).expand(B, *w.shape) for w in weights]
            state = MemoryRunState(weights=ws, momentum=[torch.zeros_like(w) for w in ws])
        return q.new_zeros(q.shape), state

    args = [cast(x) for x in (q, k, v, theta, eta, alpha)]
    ws = [cast(w) for w in weights]
    kwargs = dict(chunk_size=chunk_size, activation=activation, residual=residual, state=state)
    tau = None if max_grad_norm is None else float(max_grad_norm)
    if name == "reference":
        y, new_state = naive_run_memory(*args, ws, **kwargs, max_grad_norm=tau)
    elif name == "chunked":
        y, new_state = chunked_run_memory(
            *args, ws, **kwargs, max_grad_norm=tau, cache_budget_bytes=cache_budget_bytes
        )
    else:
        from .triton import SharedMemoryError, triton_run_memory

        try:
            y, new_state = triton_run_memory(
                *args, ws, **kwargs, max_grad_norm=tau, preflight=executor == "auto"
            )
        except SharedMemoryError as exc:
            if executor != "auto":
                raise
            warnings.warn(f"executor='auto' runs 'chunked': {exc}", RuntimeWarning, stacklevel=2)
            y, new_state = chunked_run_memory(
                *args, ws, **kwargs, max_grad_norm=tau, cache_budget_bytes=cache_budget_bytes
            )
    return y.to(out_dtype), new_state
