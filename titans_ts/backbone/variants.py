"""Titans architectures (paper section 4, DESIGN.md section 3) that stream.

Every block is pre-norm residual; ``P`` are ``N_p`` learned persistent tokens per block
(fixed at test time, visible to every position, never consumed as stream tokens):

- **LMM**: ``x += M(norm x)``; ``x += FFN(norm x)``. The memory reads ``P`` once at stream
  start (so ``x~ = [P || x]``), the carried state remembers it.
- **MAG**: ``u = norm x``; ``x += gate(SWA([P || u]), M([P || u]))``; ``x += FFN(norm x)``.
- **MAL**: ``x += M(norm x)``; ``x += SWA(norm x)``; ``x += FFN(norm x)``, where the attention
  prefix is the memory sub-block's output at the persistent positions, computed once at
  stream start and carried in the state.
- **MAC**: segments of ``segment_len`` stream positions. Per segment, ``h = M.retrieve(u)``
  at the weights of the previous segment's end; ``y = Attn([P || h || u])`` (segment token
  ``j`` sees ``h_i, u_i`` for ``i <= j``); the memory is updated with ``y`` (RMS-normed, as
  every memory input here, which keeps the inner loop at the scale it is stable for),
  ``m = M(norm y)``; ``x += gate(y, m)``; ``x += FFN(norm x)``.
- **SWA** (baseline, no memory): ``x += SWA([P || norm x])``; ``x += FFN(norm x)``.

Streaming: :class:`TitansBackbone` returns a :class:`BackboneState` (memory states, attention
caches, stream position) so ``backbone(x[:, :s])`` followed by ``backbone(x[:, s:], state)``
equals ``backbone(x)`` for any ``s``; the state has a constant size, so arbitrarily long
streams run in constant memory.

Whole sequences (classification): :meth:`TitansBackbone.bidirectional` runs every block on
each sequence left to right and right to left with the same weights and averages the two
(the weight-tied two-way layer of Caduceus, Schiff et al. 2024), so every position sees the
whole sequence; it has no streaming state.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from titans_ts.memory import NeuralMemory, NeuralMemoryState

from .attention import KVCache, SegmentAttention, SegmentCache, SlidingWindowAttention
from .blocks import BranchGate, SwiGLU
from .config import TitansConfig

__all__ = [
    "BackboneState",
    "LMMBlock",
    "LayerState",
    "MACBlock",
    "MAGBlock",
    "MALBlock",
    "SWABlock",
    "TitansBackbone",
]


@dataclass
class LayerState:
    """Streaming state of one block.

    Attributes:
        memory: neural-memory state after the last consumed token (``None`` before the
            stream starts or for SWA).
        attention: sliding-window cache (MAG, MAL, SWA) or the open segment's cache (MAC).
        segment_memory: MAC only: the memory state at the start of the open segment (its
            weights serve the retrieval ``h`` of the rest of that segment), ``None`` when the
            stream stopped on a segment boundary.
        prefix: MAL only: attention prefix ``(B, N_p, d)`` computed at stream start.
    """

    memory: NeuralMemoryState | None = None
    attention: KVCache | SegmentCache | None = None
    segment_memory: NeuralMemoryState | None = None
    prefix: Tensor | None = None

    def detach(self) -> LayerState:
        """A copy cut from the autograd graph (truncated back-propagation through time)."""

        def cut(x: object) -> object:
            return None if x is None else x.detach()

        return LayerState(
            memory=cut(self.memory),
            attention=cut(self.attention),
            segment_memory=cut(self.segment_memory),
            prefix=cut(self.prefix),
        )


@dataclass
class BackboneState:
    """Streaming state of a :class:`TitansBackbone`: one :class:`LayerState` per block and the
    number of stream tokens consumed so far (``position``)."""

    layers: list[LayerState] = field(default_factory=list)
    position: int = 0

    def detach(self) -> BackboneState:
        """A copy cut from the autograd graph (truncated back-propagation through time)."""
        return BackboneState([s.detach() for s in self.layers], self.position)


def _sliding_window_attention(config: TitansConfig) -> SlidingWindowAttention:
    """The sliding-window attention of SWA, MAG and MAL blocks, configured from ``config``."""
    return SlidingWindowAttention(
        config.d_model,
        config.n_heads,
        config.window,
        block=config.block_size,
        dropout=config.dropout,
        rope=config.rope,
    )


class _Block(nn.Module):
    """Common parts: persistent tokens, FFN sub-block, residual dropout."""

    def __init__(self, config: TitansConfig) -> None:
        super().__init__()
        d = config.d_model
        self.config = config
        self.persistent = (
            nn.Parameter(torch.randn(config.n_persistent, d)) if config.n_persistent else None
        )
        self.norm_ffn = nn.RMSNorm(d)
        self.ffn = SwiGLU(d, config.ffn_hidden)
        self.drop = nn.Dropout(config.dropout)

    def prefix(self, batch: int) -> Tensor | None:
        """Persistent tokens expanded to ``(B, N_p, d)``, or ``None`` when ``N_p = 0``."""
        if self.persistent is None:
            return None
        return self.persistent.unsqueeze(0).expand(batch, -1, -1)

    def ffn_residual(self, x: Tensor) -> Tensor:
        """``x + dropout(FFN(norm x))``, ``(B, T, d) -> (B, T, d)``."""
        return x + self.drop(self.ffn(self.norm_ffn(x)))


def _primed_memory(
    memory: NeuralMemory, prefix: Tensor | None
) -> tuple[Tensor | None, NeuralMemoryState | None]:
    """Let the memory read the persistent tokens once (stream start)."""
    if prefix is None:
        return None, None
    return memory(prefix, None)


class LMMBlock(_Block):
    """``x += M(norm x)``; ``x += FFN(norm x)`` with the memory primed on ``P``."""

    def __init__(self, config: TitansConfig) -> None:
        super().__init__(config)
        self.norm_mem = nn.RMSNorm(config.d_model)
        self.memory = NeuralMemory(config.memory)

    def forward(
        self, x: Tensor, position: int, state: LayerState | None
    ) -> tuple[Tensor, LayerState]:
        if state is None:
            state = LayerState(memory=_primed_memory(self.memory, self.prefix(x.shape[0]))[1])
        m, mem = self.memory(self.norm_mem(x), state.memory)
        x = self.ffn_residual(x + self.drop(m))
        return x, LayerState(memory=mem)


class SWABlock(_Block):
    """Baseline: ``x += SWA([P || norm x])``; ``x += FFN(norm x)``."""

    def __init__(self, config: TitansConfig) -> None:
        super().__init__(config)
        self.norm_attn = nn.RMSNorm(config.d_model)
        self.attn = _sliding_window_attention(config)

    def forward(
        self, x: Tensor, position: int, state: LayerState | None
    ) -> tuple[Tensor, LayerState]:
        cache = None if state is None else state.attention
        a, cache = self.attn(self.norm_attn(x), position, self.prefix(x.shape[0]), cache)
        x = self.ffn_residual(x + self.drop(a))
        return x, LayerState(attention=cache)


class MAGBlock(_Block):
    """``u = norm x``; ``x += gate(SWA([P || u]), M([P || u]))``; ``x += FFN(norm x)``."""

    def __init__(self, config: TitansConfig) -> None:
        super().__init__(config)
        self.norm_in = nn.RMSNorm(config.d_model)
        self.attn = _sliding_window_attention(config)
        self.memory = NeuralMemory(config.memory)
        self.gate = BranchGate(config.d_model)

    def forward(
        self, x: Tensor, position: int, state: LayerState | None
    ) -> tuple[Tensor, LayerState]:
        prefix = self.prefix(x.shape[0])
        if state is None:
            state = LayerState(memory=_primed_memory(self.memory, prefix)[1])
        u = self.norm_in(x)
        y, cache = self.attn(u, position, prefix, state.attention)
        m, mem = self.memory(u, state.memory)
        x = self.ffn_residual(x + self.drop(self.gate(y, m)))
        return x, LayerState(memory=mem, attention=cache)


class MALBlock(_Block):
    """``x += M(norm x)``; ``x += SWA(norm x)`` with the memory output at ``P`` as prefix;
    ``x += FFN(norm x)``."""

    def __init__(self, config: TitansConfig) -> None:
        super().__init__(config)
        self.norm_mem = nn.RMSNorm(config.d_model)
        self.memory = NeuralMemory(config.memory)
        self.norm_attn = nn.RMSNorm(config.d_model)
        self.attn = _sliding_window_attention(config)

    def forward(
        self, x: Tensor, position: int, state: LayerState | None
    ) -> tuple[Tensor, LayerState]:
        if state is None:
            prefix = self.prefix(x.shape[0])
            m_p, mem = _primed_memory(self.memory, prefix)
            attn_prefix = None if prefix is None else self.norm_attn(prefix + m_p)
            state = LayerState(memory=mem, prefix=attn_prefix)
        m, mem = self.memory(self.norm_mem(x), state.memory)
        x = x + self.drop(m)
        a, cache = self.attn(self.norm_attn(x), position, state.prefix, state.attention)
        x = self.ffn_residual(x + self.drop(a))
        return x, LayerState(memory=mem, attention=cache, prefix=state.prefix)


class MACBlock(_Block):
    """Memory as context: per segment, retrieve ``h`` at the previous segment's end weights,
    attend over ``[P || h || segment]``, update the memory with the attention output ``y`` and
    gate ``y`` with the memory read ``M(norm y)``; then ``x += FFN(norm x)``."""

    def __init__(self, config: TitansConfig) -> None:
        super().__init__(config)
        self.norm_in = nn.RMSNorm(config.d_model)
        self.attn = SegmentAttention(config.d_model, config.n_heads, config.dropout, config.rope)
        self.memory = NeuralMemory(config.memory)
        self.norm_mem = nn.RMSNorm(config.d_model)
        self.gate = BranchGate(config.d_model)

    def forward(
        self, x: Tensor, position: int, state: LayerState | None
    ) -> tuple[Tensor, LayerState]:
        seg_len = self.config.segment_len
        prefix = self.prefix(x.shape[0])
        state = LayerState() if state is None else state
        mem, seg_mem, cache = state.memory, state.segment_memory, state.attention
        u = self.norm_in(x)
        outs = []
        i, t = 0, x.shape[1]
        while i < t:
            offset = (position + i) % seg_len
            n = min(seg_len - offset, t - i)
            u_i = u[:, i : i + n]
            if offset == 0:
                # A fresh segment: retrieve at the weights the previous segment ended with.
                h, seg_mem = self.memory.retrieve(u_i, mem)
                y, cache = self.attn(u_i, h, position + i, prefix, None)
                m, mem = self.memory(self.norm_mem(y), seg_mem)
            else:
                # Continue an open segment: retrieve at its start weights (``seg_mem``), and
                # keep ``mem`` (updated by the segment's earlier tokens) for the update.
                h, seg_mem = self.memory.retrieve(u_i, seg_mem)
                y, cache = self.attn(u_i, h, position + i, prefix, cache)
                m, mem = self.memory(self.norm_mem(y), mem)
                mem = _with_retrieval_path(mem, seg_mem)
            outs.append(self.gate(y, m))
            if offset + n == seg_len:
                seg_mem, cache = None, None
            i += n
        o = torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]
        x = self.ffn_residual(x + self.drop(o))
        return x, LayerState(memory=mem, attention=cache, segment_memory=seg_mem)


def _with_retrieval_path(
    memory: NeuralMemoryState, retrieval: NeuralMemoryState
) -> NeuralMemoryState:
    """``memory`` with the retrieval-path convolution cache of ``retrieval``.

    In MAC the retrieval path reads the block input ``u`` and the update path reads ``y``;
    when a segment is split across calls, the two advance on different state objects and
    must be merged so the next segment's retrieval continues the convolution correctly.
    """
    return dataclasses.replace(memory, retrieve_cache=retrieval.retrieve_cache)


_BLOCKS: dict[str, type[_Block]] = {
    "lmm": LMMBlock,
    "mac": MACBlock,
    "mag": MAGBlock,
    "mal": MALBlock,
    "swa": SWABlock,
}


class TitansBackbone(nn.Module):
    """A stack of Titans blocks of one variant and a final RMS norm.

    ``forward(x, state=None) -> (y, state)``: ``x`` ``(B, T, d_model)`` embeddings of the next
    ``T`` stream tokens, ``y`` ``(B, T, d_model)``. Pass the returned state to continue the
    stream; pieces fed in order give the same outputs as the whole sequence. The output at
    position ``t`` depends on inputs ``<= t`` only.
    """

    def __init__(self, config: TitansConfig) -> None:
        super().__init__()
        self.config = config
        block = _BLOCKS[config.variant]
        self.blocks = nn.ModuleList(block(config) for _ in range(config.n_layers))
        self.norm = nn.RMSNorm(config.d_model)

    def describe_inputs(self, batch_size: int = 1, length: int = 1) -> dict[str, tuple]:
        """Input contract: ``{"x": ((B, T, d_model), dtype)}``."""
        dtype = next(self.parameters()).dtype
        return {"x": ((batch_size, length, self.config.d_model), dtype)}

    def _check_x(self, x: Tensor) -> None:
        if x.dim() != 3 or x.shape[-1] != self.config.d_model:
            raise ValueError(
                f"x must have shape (B, T, d_model={self.config.d_model}), got {tuple(x.shape)}"
            )

    def forward(
        self, x: Tensor, state: BackboneState | None = None
    ) -> tuple[Tensor, BackboneState]:
        self._check_x(x)
        if state is not None and state.layers and len(state.layers) != len(self.blocks):
            raise ValueError(
                f"state has {len(state.layers)} layer states but the backbone has "
                f"{len(self.blocks)} blocks; was it produced by another config?"
            )
        position = 0 if state is None else state.position
        if x.shape[1] == 0:
            return self.norm(x), state if state is not None else BackboneState()
        layers = []
        previous = None if state is None or not state.layers else state.layers
        for i, block in enumerate(self.blocks):
            x, s = block(x, position, None if previous is None else previous[i])
            layers.append(s)
        return self.norm(x), BackboneState(layers, position + x.shape[1])

    def bidirectional(self, x: Tensor, mask: Tensor) -> Tensor:
        """Non-causal pass over whole, right-padded sequences: ``(B, T, d_model) -> (B, T,
        d_model)``.

        Each block reads every row's real tokens (``mask (B, T)`` bool, ``True`` on a
        prefix of each row) left to right and, with the same weights, right to left; its
        output is the mean of the two, position by position. Padding stays at the end in
        both directions, so the real tokens' outputs do not depend on it; reversing each
        row's real tokens reverses the output. Twice the forward's compute.
        """
        self._check_x(x)
        if mask.shape != x.shape[:2] or mask.dtype != torch.bool:
            raise ValueError(
                f"mask must be a bool tensor of shape (B, T)={tuple(x.shape[:2])}, got "
                f"{mask.dtype} {tuple(mask.shape)}"
            )
        steps = torch.arange(x.shape[1], device=x.device)
        lengths = mask.sum(1, keepdim=True)
        if not bool(torch.equal(mask, steps < lengths)):
            raise ValueError(
                "mask must mark a prefix of each row (right padding, as pad_batch makes)"
            )
        # each row's real tokens reversed, padding left in place; the map is its own inverse
        flip = torch.where(steps < lengths, lengths - 1 - steps, steps)[..., None]
        flip = flip.expand_as(x)
        batch = x.shape[0]
        for block in self.blocks:
            both, _ = block(torch.cat([x, x.gather(1, flip)]), 0, None)
            x = 0.5 * (both[:batch] + both[batch:].gather(1, flip))
        return self.norm(x)
