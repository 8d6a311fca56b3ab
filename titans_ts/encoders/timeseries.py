"""Time-series input encoders: reversible instance norm, patching, channel independence.

Shape conventions (DESIGN.md §4):

* Series batches are ``(B, L, C)``: batch, time, channel.
* Channel-independent processing folds channels into the batch: ``(B, L, C) -> (B·C, L)``
  (row ``b·C + c`` is channel ``c`` of sample ``b``) and unfolds ``(B·C, H) -> (B, H, C)``.
* Patching works on the last axis: ``(..., L) -> (..., N, P)``; for ``(B, C, L)`` input that is
  ``(B, C, N, P)`` with ``N`` patches of length ``P``.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import nn

__all__ = [
    "Patching",
    "RevIN",
    "RevINStats",
    "from_channel_independent",
    "to_channel_independent",
]


class RevINStats(NamedTuple):
    """Per-instance statistics from :meth:`RevIN.normalize`, each of shape ``(..., 1, C)``.

    ``center`` is the mean over time (or the last value with ``center="last"``), ``scale`` is
    ``sqrt(var + eps)`` with the population variance over time.
    """

    center: torch.Tensor
    scale: torch.Tensor


class RevIN(nn.Module):
    """Reversible instance normalisation (Kim et al., ICLR 2022).

    ``normalize`` standardises every series of a batch with its own statistics over time and
    returns them; ``denormalize`` inverts the map for any length along time (e.g. a forecast
    of ``H`` steps), so ``denormalize(*normalize(x)) == x`` up to float rounding. The module
    holds no per-batch state: statistics travel explicitly.

    Args:
        num_features: number of channels ``C`` (last axis).
        eps: added to the variance before the square root; when inverting the affine map a
            weight smaller than ``eps`` in magnitude is treated as ``±eps``.
        affine: learn a per-channel weight (init 1) and bias (init 0) applied after scaling.
        center: ``"mean"`` (RevIN) or ``"last"`` (subtract the last value, RLinear /
            PatchTST ``subtract_last``).

    Shapes:
        x: ``(..., L, C)``; statistics ``(..., 1, C)``; output has the shape of the input.
    """

    def __init__(
        self,
        num_features: int,
        *,
        eps: float = 1e-5,
        affine: bool = True,
        center: Literal["mean", "last"] = "mean",
    ) -> None:
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"num_features must be a positive int, got {num_features!r}")
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if center not in ("mean", "last"):
            raise ValueError(f"center must be 'mean' or 'last', got {center!r}")
        self.num_features = num_features
        self.eps = float(eps)
        self.affine = bool(affine)
        self.center = center
        if self.affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, affine={self.affine}, center={self.center!r}"

    def _check(self, x: torch.Tensor, name: str) -> None:
        if x.ndim < 2 or x.shape[-1] != self.num_features:
            raise ValueError(
                f"{name} must have shape (..., time, {self.num_features}), got {tuple(x.shape)}"
            )

    def normalize(self, x: torch.Tensor) -> tuple[torch.Tensor, RevINStats]:
        """Normalise ``x (..., L, C)``; return it and the statistics needed to invert."""
        self._check(x, "x")
        if self.center == "mean":
            center = x.mean(dim=-2, keepdim=True)
        else:
            center = x[..., -1:, :]
        variance = x.var(dim=-2, keepdim=True, unbiased=False)
        scale = torch.sqrt(variance + self.eps)
        center, scale = center.detach(), scale.detach()
        y = (x - center) / scale
        if self.affine:
            y = y * self.weight + self.bias
        return y, RevINStats(center, scale)

    def denormalize(self, y: torch.Tensor, stats: RevINStats) -> torch.Tensor:
        """Invert :meth:`normalize` on ``y (..., H, C)`` using the statistics it returned."""
        self._check(y, "y")
        if self.affine:
            # exact inverse of the affine map; a weight within eps of 0 is clamped to ±eps
            weight = self.weight
            tiny = weight.abs() < self.eps
            weight = torch.where(tiny, torch.where(weight < 0, -self.eps, self.eps), weight)
            y = (y - self.bias) / weight
        return y * stats.scale + stats.center

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, RevINStats]:
        """Same as :meth:`normalize`."""
        return self.normalize(x)


class Patching(nn.Module):
    """Split the last (time) axis into (possibly overlapping) patches, like PatchTST.

    With ``pad_end`` the series is first extended by ``stride`` copies of its last value
    (PatchTST's ``padding_patch="end"``), which adds one patch.

    Args:
        patch_len: ``P`` >= 1.
        stride: ``S`` >= 1 (``S == P``: non-overlapping).
        pad_end: repeat the last value ``stride`` times before cutting.

    Shapes:
        ``(..., L) -> (..., N, P)`` with ``N = (L + pad - P) // S + 1``, ``pad = S`` if
        ``pad_end`` else 0; e.g. ``(B, C, L) -> (B, C, N, P)``. Requires ``L + pad >= P``.
        The output is a strided view of the (padded) input.
    """

    def __init__(self, patch_len: int, stride: int, *, pad_end: bool = True) -> None:
        super().__init__()
        for name, value in (("patch_len", patch_len), ("stride", stride)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.patch_len = patch_len
        self.stride = stride
        self.pad_end = bool(pad_end)

    def extra_repr(self) -> str:
        return f"patch_len={self.patch_len}, stride={self.stride}, pad_end={self.pad_end}"

    def num_patches(self, length: int) -> int:
        """Number of patches ``N`` for a series of ``length`` steps."""
        padded = length + (self.stride if self.pad_end else 0)
        if padded < self.patch_len:
            raise ValueError(
                f"series of length {length} is shorter than patch_len={self.patch_len}"
                + (" even after end padding" if self.pad_end else "")
                + "; use a longer lookback or a shorter patch_len"
            )
        return (padded - self.patch_len) // self.stride + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Patch ``x (..., L)`` into ``(..., N, P)``."""
        if x.ndim < 1:
            raise ValueError("x must have a time axis (last dimension)")
        self.num_patches(x.shape[-1])  # validates the length
        if self.pad_end:
            x = torch.cat([x, x[..., -1:].expand(*x.shape[:-1], self.stride)], dim=-1)
        return x.unfold(-1, self.patch_len, self.stride)


def to_channel_independent(x: torch.Tensor) -> torch.Tensor:
    """Fold channels into the batch: ``(B, L, C) -> (B·C, L)``, row ``b·C + c``."""
    if x.ndim != 3:
        raise ValueError(f"x must have shape (batch, time, channels), got {tuple(x.shape)}")
    batch, length, channels = x.shape
    return x.transpose(1, 2).reshape(batch * channels, length)


def from_channel_independent(y: torch.Tensor, n_channels: int) -> torch.Tensor:
    """Undo :func:`to_channel_independent`: ``(B·C, H) -> (B, H, C)``."""
    if y.ndim != 2:
        raise ValueError(f"y must have shape (batch*channels, time), got {tuple(y.shape)}")
    if n_channels < 1 or y.shape[0] % n_channels:
        raise ValueError(
            f"first dimension {y.shape[0]} is not a multiple of n_channels={n_channels}"
        )
    return y.reshape(y.shape[0] // n_channels, n_channels, y.shape[1]).transpose(1, 2)
