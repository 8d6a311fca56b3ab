"""``NeuralMemory``: the Titans long-term memory as an ``nn.Module``.

Projections, causal depthwise convolution, gates, output norm and gate live here; the
memory math is delegated to :func:`titans_ts.memory.run_memory` (never re-implemented).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .conv import causal_depthwise_conv
from .normalize import l2_normalize, rms_norm_gate
from .reference import memory_model
from .run import run_memory, select_executor
from .spec import MemoryConfig, MemoryRunState

Tensor = torch.Tensor

__all__ = ["NeuralMemory", "NeuralMemoryState"]

_log = logging.getLogger(__name__)


@dataclass
class NeuralMemoryState:
    """Streaming state of a :class:`NeuralMemory`.

    Attributes:
        run: the executor state (weights, momentum, chunk-start weights, position).
        conv_cache: (B, K - 1, 3 * H * d) last pre-convolution q/k/v projections, or None.
        retrieve_cache: (B, K - 1, H * d) the same for the query path of :meth:`retrieve`.
    """

    run: MemoryRunState
    conv_cache: Tensor | None = None
    retrieve_cache: Tensor | None = None

    @property
    def position(self) -> int:
        """Tokens consumed by the memory update path since the stream started."""
        return self.run.position

    def detach(self) -> NeuralMemoryState:
        """A copy cut from the autograd graph (truncated back-propagation through time)."""
        return NeuralMemoryState(
            run=self.run.detach(),
            conv_cache=None if self.conv_cache is None else self.conv_cache.detach(),
            retrieve_cache=None if self.retrieve_cache is None else self.retrieve_cache.detach(),
        )


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


class NeuralMemory(nn.Module):
    """Neural long-term memory layer (Titans §3), ``(B, T, d_model) -> (B, T, d_model)``.

    Per token: ``q, k, v`` projections, each through a causal depthwise convolution and
    SiLU, ``q`` and ``k`` L2-normalised per head; data-dependent gates
    ``theta = theta_max * sigmoid(.)``, ``eta = sigmoid(.)``, ``alpha = sigmoid(.)``; the memory
    update and read of :func:`~titans_ts.memory.run_memory`; per-head RMSNorm of the read and
    an output gate ``o = (norm(y) * silu(x W_G)) W_O``.
    """

    def __init__(self, config: MemoryConfig) -> None:
        super().__init__()
        if not isinstance(config, MemoryConfig):
            raise TypeError(f"config must be a MemoryConfig, got {type(config).__name__}")
        self.config = config
        H, d = config.n_heads, config.dim_head
        inner = H * d
        self.to_qkv = nn.Linear(config.d_model, 3 * inner, bias=False)
        K = config.conv_kernel
        self.conv_weight = nn.Parameter(torch.empty(3 * inner, 1, K))
        self.conv_bias = nn.Parameter(torch.zeros(3 * inner))
        self.to_gates = nn.Linear(config.d_model, 3 * H)
        self.memory_weights = nn.ParameterList(
            [nn.Parameter(torch.empty(H, o, i)) for o, i in config.weight_shapes()]
        )
        self.norm_weight = nn.Parameter(torch.ones(d))
        self.to_gate = nn.Linear(config.d_model, inner, bias=False)
        self.to_out = nn.Linear(inner, config.d_model, bias=False)
        self._executor_logged: str | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise: identity-leaning convolution, gate biases at the configured values."""
        c = self.config
        K = c.conv_kernel
        with torch.no_grad():
            self.conv_weight.normal_(0.0, 0.1 / math.sqrt(K))
            self.conv_weight[:, 0, -1] += 1.0
            self.conv_bias.zero_()
            self.to_gates.weight.normal_(0.0, 0.02)
            H = c.n_heads
            self.to_gates.bias[:H] = _logit(c.theta_init / c.theta_max)
            self.to_gates.bias[H : 2 * H] = _logit(c.eta_init)
            self.to_gates.bias[2 * H :] = _logit(c.alpha_init)
            for w in self.memory_weights:
                nn.init.normal_(w, 0.0, 1.0 / math.sqrt(w.shape[-1]))
            self.norm_weight.fill_(1.0)

    # ------------------------------------------------------------------ helpers
    def _conv(
        self, u: Tensor, cache: Tensor | None, channels: slice
    ) -> tuple[Tensor, Tensor | None]:
        """Causal depthwise conv over time. u: (B, T, C) -> (B, T, C), new cache (B, K-1, C)."""
        weight = self.conv_weight[channels, 0].to(u.dtype)  # (C, K)
        return causal_depthwise_conv(u, weight, self.conv_bias[channels].to(u.dtype), cache)

    def _heads(self, u: Tensor) -> Tensor:
        B, T, _ = u.shape
        return u.reshape(B, T, self.config.n_heads, self.config.dim_head).transpose(1, 2)

    def _output(self, y: Tensor, x: Tensor) -> Tensor:
        """y: (B, H, T, d) memory read; x: (B, T, d_model) the layer input."""
        gated = rms_norm_gate(y, self.norm_weight.to(y.dtype), self.to_gate(x), eps=1e-6)
        return self.to_out(gated)

    def _initial_run_state(self, batch: int, dtype: torch.dtype) -> MemoryRunState:
        ws = [w.to(dtype).unsqueeze(0).expand(batch, *w.shape) for w in self.memory_weights]
        return MemoryRunState(weights=ws, momentum=[torch.zeros_like(w) for w in ws])

    def _check_input(self, x: Tensor, state: NeuralMemoryState | None) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != self.config.d_model:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must have shape (B, T, d_model={self.config.d_model}), got {got}")
        if state is not None:
            if not isinstance(state, NeuralMemoryState):
                raise TypeError(f"state must be a NeuralMemoryState, got {type(state).__name__}")
            if state.run.batch_size != x.shape[0]:
                raise ValueError(
                    f"state was built for batch size {state.run.batch_size}, x has {x.shape[0]}"
                )

    def executor_for(self, x: Tensor) -> tuple[str, str]:
        """The executor this layer uses for input ``x`` (B, T, d_model), and why."""
        c = self.config
        B, T = x.shape[0], x.shape[1]
        # a zero-stride stand-in for q (B, H, T, d): right device, dtype and shape, no memory
        q = torch.empty_strided((B, c.n_heads, T, c.dim_head), (0, 0, 0, 0), dtype=x.dtype,
                                device=x.device)
        return select_executor(c.executor, q, list(self.memory_weights), c.chunk_size)

    # ------------------------------------------------------------------ public
    def forward(
        self, x: Tensor, state: NeuralMemoryState | None = None
    ) -> tuple[Tensor, NeuralMemoryState]:
        """Update the memory with every token of ``x`` and read it after each update.

        Args:
            x: (B, T, d_model).
            state: the state returned by the previous call of this stream, or None.
        Returns:
            ``(o, state)``: o (B, T, d_model), causal (o_t depends on x_{<=t} only).
        """
        self._check_input(x, state)
        c = self.config
        H = c.n_heads
        inner = H * c.dim_head
        qkv, conv_cache = self._conv(
            self.to_qkv(x), None if state is None else state.conv_cache, slice(None)
        )
        qkv = F.silu(qkv)
        q, k, v = (self._heads(t) for t in qkv.split(inner, dim=-1))
        q = l2_normalize(q)
        k = l2_normalize(k)
        gates = torch.sigmoid(self.to_gates(x)).transpose(1, 2)  # (B, 3H, T)
        theta = c.theta_max * gates[:, :H]
        eta = gates[:, H : 2 * H]
        alpha = gates[:, 2 * H :]
        name, reason = self.executor_for(x)
        if self._executor_logged != name:
            _log.info("NeuralMemory uses the %r executor (%s)", name, reason)
            self._executor_logged = name
        y, run_state = run_memory(
            q, k, v, theta, eta, alpha, list(self.memory_weights),
            chunk_size=c.chunk_size, activation=c.activation, residual=c.residual,
            state=None if state is None else state.run, executor=c.executor,
            max_grad_norm=c.max_grad_norm, cache_budget_bytes=c.backward_cache_bytes,
        )
        new_state = NeuralMemoryState(
            run=run_state,
            conv_cache=conv_cache,
            retrieve_cache=None if state is None else state.retrieve_cache,
        )
        return self._output(y, x), new_state

    def retrieve(
        self, x: Tensor, state: NeuralMemoryState | None = None
    ) -> tuple[Tensor, NeuralMemoryState]:
        """Read ``f(q(x_t); W)`` at the state's current weights, without updating them.

        Used by memory-as-context (MAC): the query path has its own convolution cache,
        advanced in the returned state; weights, momentum and position are unchanged.

        Args:
            x: (B, T, d_model).
        Returns:
            ``(h, state)``: h (B, T, d_model).
        """
        self._check_input(x, state)
        c = self.config
        inner = c.n_heads * c.dim_head
        wq = self.to_qkv.weight[:inner]
        q, cache = self._conv(
            F.linear(x, wq), None if state is None else state.retrieve_cache, slice(0, inner)
        )
        q = l2_normalize(self._heads(F.silu(q)))
        run = self._initial_run_state(x.shape[0], q.dtype) if state is None else state.run
        weights = [w.to(q.dtype) for w in run.weights]
        y = memory_model(weights, q, activation=c.activation, residual=c.residual)
        new_state = NeuralMemoryState(
            run=run, conv_cache=None if state is None else state.conv_cache, retrieve_cache=cache
        )
        return self._output(y, x), new_state

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"d_model={c.d_model}, heads={c.n_heads}x{c.dim_head}, depth={c.depth}, "
            f"hidden_mult={c.hidden_mult}, chunk_size={c.chunk_size}, executor={c.executor!r}"
        )
