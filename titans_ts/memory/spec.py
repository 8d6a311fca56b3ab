"""The neural long-term memory: configuration, streaming state and the math contract.

This module is the single written definition of what every executor computes
(``reference``, ``chunked``, ``triton``). Executors implement it; they never redefine it.

Contract (per batch element and head; Titans, Behrouz et al. 2025, eqs. 8-18)
------------------------------------------------------------------------------
Inputs per token ``t`` (positions counted from the start of the stream): query ``q_t``,
key ``k_t``, value ``v_t`` (each ``d``-dimensional), learning rate ``theta_t``, momentum
decay ``eta_t`` and forgetting gate ``alpha_t`` (scalars).

Memory model ``f(z; W)`` with ``L = len(W)`` layers::

    L == 1:  f(z) = W_1 z
    L >= 2:  f(z) = W_L act(... act(W_1 z))         (+ z when residual=True)

Inner loss ``l_t(W) = 0.5 * || f(k_t; W) - v_t ||^2``.

Chunk size ``b``. Token ``t`` belongs to the chunk starting after position
``t' = b * floor((t - 1) / b)`` (1-based ``t``), and::

    u_t = grad_W l_t(W_{t'})                 # every gradient of a chunk at its start weights
    S_t = eta_t * S_{t-1} - theta_t * u_t     # momentum ("surprise"), S_0 = 0
    W_t = (1 - alpha_t) * W_{t-1} + S_t       # forgetting + update
    y_t = f(q_t; W_t)                         # read after the token's own update (causal)

With ``b = 1`` this is exact per-token gradient descent with momentum and weight decay.

Extension: per-token gradient clipping (``max_grad_norm = tau``, default 1.0 in
:class:`MemoryConfig`, ``None`` = the paper's plain update above)::

    u_t <- u_t * min(1, tau / ||u_t||),     ||u_t||^2 = sum over layers of ||u_t,l||_F^2

The factor is differentiated like everything else (it is folded into ``theta_t``). Why:
gradients of a chunk are summed at the same weights, so on correlated inputs (smooth
series, repeated k-mers) a chunk's step grows with the chunk size and momentum amplifies
it ~1/(1-eta) times; untrained LMM/MAC/MAG/MAL backbones at the defaults went non-finite
within ~400 tokens of a smooth sinusoidal input (tests/memory/test_clipping.py). Clipping
bounds every token's step by ``theta_t * tau``. Every executor implements it.

Streaming state (:class:`MemoryRunState`): the chunk-start weights ``W_{t'}`` (only while
a chunk is open), the current weights ``W_t``, the momentum ``S_t`` and the stream
position. Running a sequence in two pieces with the carried state equals one call on the
whole sequence for any split point.

Dtype rule
----------
Executors accumulate in at least float32 (float64 stays float64) and return outputs in
the dtype of ``q``. State tensors are kept in the accumulation dtype.

Shapes
------
``q, k, v``: ``(B, H, T, d)``; ``theta, eta, alpha``: ``(B, H, T)``; initial weights: a
list of ``(H, out, in)`` tensors (``[W (H, d, d)]`` for depth 1; ``[W_1 (H, m*d, d), ...,
W_L (H, d, m*d)]`` for depth ``L``). State tensors carry a batch dimension:
``(B, H, out, in)``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, replace
from typing import Literal

import torch

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_BACKWARD_CACHE_MB",
    "EXECUTORS",
    "MemoryConfig",
    "MemoryRunState",
]

#: MiB under which the default policy (``MemoryConfig.backward_cache_mb=None``) keeps
#: every chunk's intermediates for the backward.
DEFAULT_BACKWARD_CACHE_MB = 512.0
_MAX_BUDGET_BYTES = 1 << 62  # "keep everything"


def mib_to_budget_bytes(mb: float) -> int:
    """MiB (``float("inf")`` allowed) as the chunked executor's integer byte budget."""
    mb = float(mb)
    return _MAX_BUDGET_BYTES if mb * 2**20 >= _MAX_BUDGET_BYTES else int(mb * 2**20)

#: Activations understood by every executor (each has closed-form first/second derivatives).
ACTIVATIONS: tuple[str, ...] = ("gelu", "silu", "tanh", "relu")
#: Executor names accepted by :func:`titans_ts.memory.run_memory`.
EXECUTORS: tuple[str, ...] = ("reference", "chunked", "triton", "auto")


@dataclass(frozen=True)
class MemoryConfig:
    """Hyper-parameters of one :class:`~titans_ts.memory.NeuralMemory` layer.

    Attributes:
        d_model: width of the layer input/output.
        n_heads: number of independent memory heads.
        head_dim: width ``d`` of each head's key/value/query; default ``d_model // n_heads``.
        depth: number of layers ``L`` of the memory model (1 = linear matrix memory).
        hidden_mult: hidden width multiplier ``m`` of a deep memory (hidden = ``m * d``).
        activation: inner activation of a deep memory, one of :data:`ACTIVATIONS`.
        residual: ``f(k) = k + MLP(k)`` when True.
        chunk_size: ``b``, tokens per chunk sharing the same gradient point.
        conv_kernel: width of the causal depthwise convolution on q/k/v (1 disables it).
        theta_max: upper bound of the data-dependent inner learning rate. Gradients of a
            chunk are summed, so the step a chunk takes grows with ``chunk_size``; the
            default keeps a 64-token chunk with momentum 0.9 stable (measured: 0.03 already
            diverges at d_model 32-256 on unit-variance input, see the stability test).
        theta_init: learning rate at initialisation (sets the bias of the theta gate).
        eta_init: momentum decay at initialisation.
        alpha_init: forgetting gate at initialisation.
        max_grad_norm: ``tau`` of the per-token inner-gradient clipping (see the module
            docstring); ``None`` runs the unclipped contract.
        executor: "chunked" (default), "reference", "triton" or "auto".
        backward_cache_mb: memory (MiB) the chunked executor's training pass may spend on
            keeping chunks' intermediates (boundary weights and momentum plus what each
            chunk's backward reads) instead of recomputing them in the backward. ``None``
            (default, the memory-lean policy): keep every chunk's while all of them fit in
            512 MiB, else keep only every ``sqrt(#chunks)``-th boundary state and recompute
            every chunk, group by group (memory ``O(sqrt(T))`` chunk states). A number:
            keep every chunk's when they fit, else the last chunks' up to that budget, and
            recompute only the others. Recomputing everything costs ~28 % more matmul FLOPs
            in a forward+backward step of the layer. At the standard shape (d_model 256, 4
            heads of 64, depth 2, chunk 64) a chunk takes 3.3 MiB per batch row: the default
            keeps everything up to ~9.8k tokens per row, and T = 32k at batch 1 needs
            ~1,700 MiB (peak RSS 2.75 GB against 1.02 GB recomputing everything).
            ``float("inf")`` keeps everything (fewest FLOPs, memory linear in T; faster only
            where freed memory is reused, e.g. glibc with ``MALLOC_MMAP_MAX_=0``: at 32k on
            default glibc the fresh pages made it slower than recomputing), 0 recomputes
            everything. Other executors ignore it; results are identical either way.
    """

    d_model: int
    n_heads: int = 4
    head_dim: int | None = None
    depth: int = 2
    hidden_mult: int = 4
    activation: str = "gelu"
    residual: bool = False
    chunk_size: int = 64
    conv_kernel: int = 4
    theta_max: float = 0.02
    theta_init: float = 0.01
    eta_init: float = 0.9
    alpha_init: float = 0.001
    max_grad_norm: float | None = 1.0
    executor: Literal["reference", "chunked", "triton", "auto"] = "chunked"
    backward_cache_mb: float | None = None

    def __post_init__(self) -> None:
        def bad(name: str, value: object, want: str) -> ValueError:
            return ValueError(f"MemoryConfig.{name}={value!r} is invalid: expected {want}.")

        for name in ("d_model", "n_heads", "depth", "hidden_mult", "chunk_size", "conv_kernel"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad(name, value, "a positive integer")
        if self.head_dim is not None and (not isinstance(self.head_dim, int) or self.head_dim < 1):
            raise bad("head_dim", self.head_dim, "a positive integer or None")
        if self.head_dim is None and self.d_model % self.n_heads:
            raise bad(
                "n_heads", self.n_heads, f"a divisor of d_model={self.d_model} (or set head_dim)"
            )
        if self.activation not in ACTIVATIONS:
            raise bad("activation", self.activation, f"one of {ACTIVATIONS}")
        if self.executor not in EXECUTORS:
            raise bad("executor", self.executor, f"one of {EXECUTORS}")
        if not self.theta_max > 0:
            raise bad("theta_max", self.theta_max, "a positive float")
        if self.max_grad_norm is not None and (
            isinstance(self.max_grad_norm, bool)
            or not isinstance(self.max_grad_norm, (int, float))
            or not self.max_grad_norm > 0
        ):
            raise bad("max_grad_norm", self.max_grad_norm, "a positive float or None")
        if not 0 < self.theta_init < self.theta_max:
            raise bad("theta_init", self.theta_init, f"a float in (0, theta_max={self.theta_max})")
        for name in ("eta_init", "alpha_init"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise bad(name, value, "a float in (0, 1)")
        budget = self.backward_cache_mb
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, numbers.Real) or not budget >= 0
        ):
            raise bad("backward_cache_mb", budget,
                      "None or a number of MiB >= 0 (float('inf') keeps everything)")

    @property
    def backward_cache_bytes(self) -> int | None:
        """``backward_cache_mb`` in bytes as the chunked executor takes it (None: default)."""
        mb = self.backward_cache_mb
        return None if mb is None else mib_to_budget_bytes(mb)

    @property
    def dim_head(self) -> int:
        """Per-head width ``d``."""
        return self.head_dim if self.head_dim is not None else self.d_model // self.n_heads

    def weight_shapes(self) -> list[tuple[int, int]]:
        """``(out, in)`` of each memory layer, first layer first."""
        d, L = self.dim_head, self.depth
        if L == 1:
            return [(d, d)]
        hidden = self.hidden_mult * d
        return [(hidden, d)] + [(hidden, hidden)] * (L - 2) + [(d, hidden)]

    def replace(self, **changes: object) -> MemoryConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


@dataclass
class MemoryRunState:
    """Everything an executor needs to continue a stream.

    Attributes:
        weights: current memory weights ``W_t``, one ``(B, H, out, in)`` tensor per layer.
        momentum: current momentum ``S_t``, same shapes as ``weights``.
        grad_weights: the start weights ``W_{t'}`` of the chunk in progress, or ``None``
            when the stream stopped on a chunk boundary (the next chunk starts at ``weights``).
        position: number of tokens consumed since the start of the stream.
    """

    weights: list[torch.Tensor]
    momentum: list[torch.Tensor]
    grad_weights: list[torch.Tensor] | None = None
    position: int = 0

    def detach(self) -> MemoryRunState:
        """A copy cut from the autograd graph (truncated back-propagation through time)."""
        return MemoryRunState(
            weights=[w.detach() for w in self.weights],
            momentum=[s.detach() for s in self.momentum],
            grad_weights=(
                None if self.grad_weights is None else [w.detach() for w in self.grad_weights]
            ),
            position=self.position,
        )

    @property
    def batch_size(self) -> int:
        return self.weights[0].shape[0]
