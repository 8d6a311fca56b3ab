"""Building blocks shared by the Titans variants: gated FFN and the sigmoid branch gate.

Every block of :mod:`titans_ts.backbone.variants` is pre-norm residual
(``x <- x + dropout(branch(norm(x)))``); the pieces here are the branches.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["BranchGate", "SwiGLU"]


class SwiGLU(nn.Module):
    """Gated feed-forward network ``W_2 (SiLU(x W_1) * (x W_3))``: ``(B, T, d) -> (B, T, d)``."""

    def __init__(self, d_model: int, hidden: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(d_model, hidden, bias=False)
        self.w3 = nn.Linear(d_model, hidden, bias=False)
        self.w2 = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class BranchGate(nn.Module):
    """Combine an attention branch ``y`` and a memory branch ``m`` (MAG, MAC: ``y ⊗ M``).

    ``o = (norm_y(y) * sigmoid(norm_m(m))) W_o`` with RMS norms on both branches;
    ``y, m`` are ``(B, T, d)``, the output is ``(B, T, d)``.
    """

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.norm_y = nn.RMSNorm(d_model)
        self.norm_m = nn.RMSNorm(d_model)
        self.proj = nn.Linear(d_model, d_model, bias=False)

    def forward(self, y: Tensor, m: Tensor) -> Tensor:
        return self.proj(self.norm_y(y) * self.norm_m(m).sigmoid())
