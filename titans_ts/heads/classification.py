"""Sequence classification head: masked pooling over valid tokens + a linear classifier.

Shapes:

* token states ``h``: ``(B, T, d)``; ``mask``: ``(B, T)`` bool, ``True`` on real tokens
  (right padding is ``False``). Every row must hold at least one real token.
* pooled embedding: ``(B, d)``; logits: ``(B, K)`` for ``K`` classes.

Poolings: ``"mean"`` and ``"max"`` over the real tokens, ``"meanmax"`` (both concatenated:
``(B, 2d)``; mean suits composition-like signals, max the presence of a motif anywhere), or
``"last"``, the state of each row's last real token (in a causal backbone the only one that
has read the whole sequence, and, through relative position in attention, one that can see
*where* a motif sits relative to the sequence end; mean and max cannot).

Padding never reaches the pooled vector: masked positions get weight 0 (mean), ``-inf``
(max) or are never indexed (last) whatever their values, so a row pooled in a wider padded
batch equals the same row pooled alone.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = [
    "POOLINGS",
    "ClassificationHead",
    "masked_last",
    "masked_max",
    "masked_mean",
    "masked_pool",
    "pooled_width",
]

#: Pooling modes understood by :func:`masked_pool` and :class:`ClassificationHead`.
POOLINGS: tuple[str, ...] = ("mean", "max", "meanmax", "last")


def _check(h: Tensor, mask: Tensor) -> None:
    if h.dim() != 3:
        raise ValueError(f"h must have shape (B, T, d), got {tuple(h.shape)}")
    if mask.shape != h.shape[:2]:
        raise ValueError(
            f"mask must have shape (B, T) = {tuple(h.shape[:2])} matching h, got "
            f"{tuple(mask.shape)}"
        )
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor, got {mask.dtype}")


def _require_tokens(mask: Tensor) -> Tensor:
    """Real-token count per row ``(B,)``; :class:`ValueError` naming a row without any."""
    counts = mask.sum(dim=1)
    if bool((counts == 0).any()):
        row = int(torch.nonzero(counts == 0)[0, 0])
        raise ValueError(f"row {row} of mask has no real token; every row needs at least one")
    return counts


def masked_mean(h: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``h (B, T, d)`` over the positions where ``mask (B, T)`` is ``True``.

    Returns ``(B, d)``. Rows without any real token raise :class:`ValueError`.
    """
    _check(h, mask)
    counts = _require_tokens(mask)  # (B,)
    weights = mask.to(h.dtype).unsqueeze(-1)  # (B, T, 1)
    # where() (not multiplication) so that non-finite values at padded positions cannot leak
    summed = torch.where(weights > 0, h, torch.zeros((), dtype=h.dtype, device=h.device)).sum(1)
    return summed / counts.to(h.dtype).unsqueeze(-1)


def masked_max(h: Tensor, mask: Tensor) -> Tensor:
    """Element-wise maximum of ``h (B, T, d)`` over real positions; returns ``(B, d)``."""
    _check(h, mask)
    _require_tokens(mask)
    fill = torch.finfo(h.dtype).min
    return h.masked_fill(~mask.unsqueeze(-1), fill).amax(dim=1)


def masked_last(h: Tensor, mask: Tensor) -> Tensor:
    """``h (B, T, d)`` at each row's last real position (the highest index where ``mask``
    is ``True``); returns ``(B, d)``."""
    _check(h, mask)
    _require_tokens(mask)
    last = mask.shape[1] - 1 - mask.flip(1).to(torch.int8).argmax(dim=1)  # (B,)
    return h[torch.arange(h.shape[0], device=h.device), last]


def pooled_width(d_model: int, mode: str) -> int:
    """Width of the pooled vector for token width ``d_model``: ``2 d`` for ``"meanmax"``."""
    return 2 * d_model if mode == "meanmax" else d_model


def masked_pool(h: Tensor, mask: Tensor, mode: str = "mean") -> Tensor:
    """Pool ``h (B, T, d)`` over real tokens with ``mode`` in :data:`POOLINGS` ->
    ``(B, pooled_width(d, mode))``."""
    if mode == "mean":
        return masked_mean(h, mask)
    if mode == "max":
        return masked_max(h, mask)
    if mode == "last":
        return masked_last(h, mask)
    if mode == "meanmax":
        return torch.cat([masked_mean(h, mask), masked_max(h, mask)], dim=-1)
    raise ValueError(f"pooling must be one of {POOLINGS}, got {mode!r}")


class ClassificationHead(nn.Module):
    """Masked pooling, dropout and a linear map to class logits.

    Args:
        d_model: token width ``d``.
        n_classes: number of classes ``K`` (at least 2).
        pooling: one of :data:`POOLINGS`.
        dropout: dropout on the pooled vector before the linear layer.

    ``forward(h (B, T, d), mask (B, T) bool) -> logits (B, K)``; :meth:`pool` gives the
    pooled ``(B, pooled_width(d, pooling))`` embedding alone.
    """

    def __init__(
        self, d_model: int, n_classes: int, pooling: str = "mean", dropout: float = 0.0
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(f"n_classes must be an int >= 2, got {n_classes!r}")
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(pooled_width(d_model, pooling), n_classes)

    def pool(self, h: Tensor, mask: Tensor) -> Tensor:
        """Pooled embedding ``(B, d)`` (``(B, 2d)`` for ``"meanmax"``) of ``h (B, T, d)``."""
        return masked_pool(h, mask, self.pooling)

    def classify(self, pooled: Tensor) -> Tensor:
        """Logits ``(B, K)`` from pooled embeddings ``(B, d)``."""
        return self.linear(self.dropout(pooled))

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        return self.classify(self.pool(h, mask))
