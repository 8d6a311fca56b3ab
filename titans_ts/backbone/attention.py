"""Causal attention for Titans: sliding-window (MAG, MAL, SWA) and segment attention (MAC).

Both run on :func:`torch.nn.functional.scaled_dot_product_attention` with boolean masks
(``True`` = may attend) and stream with a carried key/value cache.

Sliding window (``window = w``): the query at stream position ``t`` sees the keys at
positions ``t - w + 1 .. t`` and every persistent (prefix) key. Queries are processed in
blocks of ``block`` tokens, each against at most ``w - 1 + block`` keys, so memory grows
linearly in ``T`` (no ``T x T`` mask is ever built). The cache holds the last ``w - 1``
keys/values.

Segment attention (MAC, DESIGN.md section 3): for a segment of length ``C`` with retrieved
memory ``h`` (one ``h_i`` per segment token), the keys are ``[P || h || segment]``;
persistent keys are visible to every query, and segment token ``j`` sees ``h_i`` and segment
token ``i`` only for ``i <= j``. The cache holds the keys/values of ``h`` and of the segment
tokens already seen in the open segment.

Shapes: ``q, k, v`` are ``(B, H, T, d_h)``; prefixes ``(B, H, N_p, d_h)``; the modules take
and return ``(B, T, d_model)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "KVCache",
    "SegmentAttention",
    "SegmentCache",
    "SlidingWindowAttention",
    "apply_rope",
    "segment_attention",
    "segment_mask",
    "sliding_window_attention",
    "sliding_window_mask",
]


@dataclass
class KVCache:
    """Keys/values of the last ``window - 1`` tokens: ``k, v`` are ``(B, H, n, d_h)``."""

    k: Tensor
    v: Tensor

    def detach(self) -> KVCache:
        """A copy cut from the autograd graph."""
        return KVCache(self.k.detach(), self.v.detach())


@dataclass
class SegmentCache:
    """Keys/values of the open MAC segment, each ``(B, H, o, d_h)`` with ``o < C``.

    ``k_h, v_h`` come from the retrieved memory ``h``, ``k_x, v_x`` from the segment tokens.
    """

    k_h: Tensor
    v_h: Tensor
    k_x: Tensor
    v_x: Tensor

    def detach(self) -> SegmentCache:
        """A copy cut from the autograd graph."""
        return SegmentCache(*(t.detach() for t in (self.k_h, self.v_h, self.k_x, self.v_x)))

    @property
    def length(self) -> int:
        return self.k_x.shape[-2]


def apply_rope(x: Tensor, start: int, base: float = 10000.0) -> Tensor:
    """Rotary position embedding of ``x`` ``(B, H, T, d_h)`` at positions ``start .. start+T-1``.

    Angles are computed in float64 (exact for stream positions far beyond 1e6) and cast to
    ``x.dtype``. ``d_h`` must be even.
    """
    d = x.shape[-1]
    t = x.shape[-2]
    inv = base ** (-torch.arange(0, d, 2, dtype=torch.float64, device=x.device) / d)
    pos = torch.arange(start, start + t, dtype=torch.float64, device=x.device)
    ang = pos[:, None] * inv[None, :]
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.flatten(-2)


def sliding_window_mask(
    n_q: int, q_start: int, k_start: int, n_k: int, window: int, n_prefix: int, device: torch.device
) -> Tensor:
    """Boolean mask ``(n_q, n_prefix + n_k)``: query at index ``q_start + r`` may see the key at
    index ``k_start + c`` iff ``0 <= (q_start + r) - (k_start + c) < window``; prefix columns
    are always visible."""
    qi = torch.arange(q_start, q_start + n_q, device=device)[:, None]
    kj = torch.arange(k_start, k_start + n_k, device=device)[None, :]
    diff = qi - kj
    mask = (diff >= 0) & (diff < window)
    if n_prefix:
        mask = torch.cat((torch.ones(n_q, n_prefix, dtype=torch.bool, device=device), mask), 1)
    return mask


def sliding_window_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    window: int,
    cache: KVCache | None = None,
    k_prefix: Tensor | None = None,
    v_prefix: Tensor | None = None,
    block: int = 64,
    dropout_p: float = 0.0,
) -> tuple[Tensor, KVCache]:
    """Causal sliding-window attention with an always-visible prefix, block-wise.

    Args:
        q, k, v: ``(B, H, T, d_h)`` for the ``T`` new tokens (already position-encoded).
        window: each query sees itself and the ``window - 1`` keys before it.
        cache: keys/values of up to ``window - 1`` tokens right before these ones.
        k_prefix, v_prefix: ``(B, H, N_p, d_h)`` persistent keys/values, or ``None``.
        block: queries per block; each block attends to ``<= N_p + window - 1 + block`` keys.
        dropout_p: attention dropout.

    Returns:
        ``(out (B, H, T, d_h), cache)`` with the cache holding the last ``window - 1``
        keys/values (older ones when ``T < window - 1``).
    """
    if cache is not None and cache.k.shape[-2]:
        k_all = torch.cat((cache.k, k), dim=-2)
        v_all = torch.cat((cache.v, v), dim=-2)
    else:
        k_all, v_all = k, v
    c = k_all.shape[-2] - k.shape[-2]
    t = q.shape[-2]
    n_p = 0 if k_prefix is None else k_prefix.shape[-2]
    outs = []
    for a in range(0, t, block):
        e = min(a + block, t)
        lo = max(0, c + a - window + 1)
        hi = c + e
        kb, vb = k_all[..., lo:hi, :], v_all[..., lo:hi, :]
        if n_p:
            kb = torch.cat((k_prefix, kb), dim=-2)
            vb = torch.cat((v_prefix, vb), dim=-2)
        mask = sliding_window_mask(e - a, c + a, lo, hi - lo, window, n_p, q.device)
        qb = q[..., a:e, :]
        outs.append(F.scaled_dot_product_attention(qb, kb, vb, attn_mask=mask, dropout_p=dropout_p))
    out = torch.cat(outs, dim=-2) if len(outs) > 1 else outs[0]
    keep = window - 1
    start = k_all.shape[-2] - min(keep, k_all.shape[-2])
    new_cache = KVCache(k_all[..., start:, :], v_all[..., start:, :])
    return out, new_cache


def segment_mask(n_q: int, offset: int, n_prefix: int, device: torch.device) -> Tensor:
    """Boolean mask ``(n_q, n_prefix + 2 * (offset + n_q))`` for keys ``[P || h || x]``.

    Query ``r`` is segment token ``j = offset + r``; it sees every prefix key, ``h_i`` for
    ``i <= j`` and ``x_i`` for ``i <= j``.
    """
    n = offset + n_q
    j = torch.arange(offset, n, device=device)[:, None]
    i = torch.arange(n, device=device)[None, :]
    causal = i <= j
    parts = [torch.ones(n_q, n_prefix, dtype=torch.bool, device=device), causal, causal]
    return torch.cat(parts, dim=1)


def segment_attention(
    q: Tensor,
    k_h: Tensor,
    v_h: Tensor,
    k_x: Tensor,
    v_x: Tensor,
    *,
    k_prefix: Tensor | None = None,
    v_prefix: Tensor | None = None,
    dropout_p: float = 0.0,
) -> Tensor:
    """MAC attention over ``[P || h || segment]`` within one segment.

    Args:
        q: ``(B, H, n, d_h)`` queries of segment tokens ``o .. o+n-1`` where
            ``o = k_x.shape[-2] - n`` tokens of the segment came before.
        k_h, v_h: ``(B, H, o+n, d_h)`` keys/values of the retrieved memory of the segment so far.
        k_x, v_x: ``(B, H, o+n, d_h)`` keys/values of the segment tokens so far.
        k_prefix, v_prefix: ``(B, H, N_p, d_h)`` persistent keys/values, or ``None``.

    Returns:
        ``(B, H, n, d_h)``.
    """
    n = q.shape[-2]
    offset = k_x.shape[-2] - n
    n_p = 0 if k_prefix is None else k_prefix.shape[-2]
    keys = [k_h, k_x] if not n_p else [k_prefix, k_h, k_x]
    vals = [v_h, v_x] if not n_p else [v_prefix, v_h, v_x]
    mask = segment_mask(n, offset, n_p, q.device)
    return F.scaled_dot_product_attention(
        q, torch.cat(keys, dim=-2), torch.cat(vals, dim=-2), attn_mask=mask, dropout_p=dropout_p
    )


class _Projections(nn.Module):
    """Shared q/k/v/out projections and head split for the attention modules."""

    def __init__(self, d_model: int, n_heads: int, dropout: float, rope: bool) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.dropout = dropout
        self.rope = rope
        self.wq = nn.Linear(d_model, d_model, bias=False)
        self.wk = nn.Linear(d_model, d_model, bias=False)
        self.wv = nn.Linear(d_model, d_model, bias=False)
        self.wo = nn.Linear(d_model, d_model, bias=False)

    def heads(self, x: Tensor) -> Tensor:
        """``(B, T, d_model) -> (B, H, T, d_h)``."""
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)

    def merge(self, x: Tensor) -> Tensor:
        """``(B, H, T, d_h) -> (B, T, d_model)`` followed by the output projection."""
        b, _, t, _ = x.shape
        return self.wo(x.transpose(1, 2).reshape(b, t, -1))

    def keys_values(self, x: Tensor, start: int | None) -> tuple[Tensor, Tensor]:
        """Keys (rotated at positions ``start..`` unless ``start`` is None) and values."""
        k = self.heads(self.wk(x))
        if self.rope and start is not None:
            k = apply_rope(k, start)
        return k, self.heads(self.wv(x))

    def queries(self, x: Tensor, start: int) -> Tensor:
        q = self.heads(self.wq(x))
        return apply_rope(q, start) if self.rope else q

    @property
    def p_drop(self) -> float:
        return self.dropout if self.training else 0.0


class SlidingWindowAttention(_Projections):
    """Multi-head causal sliding-window attention with a persistent prefix (MAG, MAL, SWA).

    ``forward(x, position, prefix, cache)``: ``x`` ``(B, T, d_model)`` are the tokens at stream
    positions ``position .. position+T-1``; ``prefix`` ``(B, N_p, d_model)`` (or ``None``) are
    tokens visible to every query (not rotated); returns ``(y (B, T, d_model), cache)``.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        window: int,
        *,
        block: int = 64,
        dropout: float = 0.0,
        rope: bool = True,
    ) -> None:
        super().__init__(d_model, n_heads, dropout, rope)
        self.window = window
        self.block = block

    def forward(
        self,
        x: Tensor,
        position: int = 0,
        prefix: Tensor | None = None,
        cache: KVCache | None = None,
    ) -> tuple[Tensor, KVCache]:
        q = self.queries(x, position)
        k, v = self.keys_values(x, position)
        kp = vp = None
        if prefix is not None and prefix.shape[1]:
            kp, vp = self.keys_values(prefix, None)
        out, cache = sliding_window_attention(
            q,
            k,
            v,
            window=self.window,
            cache=cache,
            k_prefix=kp,
            v_prefix=vp,
            block=self.block,
            dropout_p=self.p_drop,
        )
        return self.merge(out), cache


class SegmentAttention(_Projections):
    """Multi-head MAC segment attention over ``[P || h || segment]``.

    ``forward(x, h, position, prefix, cache)``: ``x`` and ``h`` ``(B, n, d_model)`` are the
    tokens at stream positions ``position .. position+n-1`` and their retrieved memory, all
    inside one segment; ``cache`` holds the earlier tokens of that segment (``None`` when
    ``x`` starts the segment). Returns ``(y (B, n, d_model), cache including these tokens)``.
    """

    def forward(
        self,
        x: Tensor,
        h: Tensor,
        position: int = 0,
        prefix: Tensor | None = None,
        cache: SegmentCache | None = None,
    ) -> tuple[Tensor, SegmentCache]:
        q = self.queries(x, position)
        k_x, v_x = self.keys_values(x, position)
        k_h, v_h = self.keys_values(h, position)
        if cache is not None and cache.length:
            k_x = torch.cat((cache.k_x, k_x), dim=-2)
            v_x = torch.cat((cache.v_x, v_x), dim=-2)
            k_h = torch.cat((cache.k_h, k_h), dim=-2)
            v_h = torch.cat((cache.v_h, v_h), dim=-2)
        kp = vp = None
        if prefix is not None and prefix.shape[1]:
            kp, vp = self.keys_values(prefix, None)
        out = segment_attention(
            q, k_h, v_h, k_x, v_x, k_prefix=kp, v_prefix=vp, dropout_p=self.p_drop
        )
        return self.merge(out), SegmentCache(k_h, v_h, k_x, v_x)
