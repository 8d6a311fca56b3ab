"""Forecasting heads: flatten the token sequence and map it linearly to the horizon.

Shapes (DESIGN.md §4):

* Input: token states ``(B, N, d)`` from the backbone (``N`` patch tokens of width ``d``).
* :class:`PointHead`: ``(B, N, d) -> (B, H, K)``: ``H`` horizon steps, ``K`` targets per
  item (``K = 1`` for channel-independent models, ``K = C`` when channels are mixed).
* :class:`QuantileHead`: ``(B, N, d) -> (B, H, K, Q)`` for ``Q`` quantile levels, sorted
  along the last axis, so quantiles never cross.
* :func:`pinball_loss`: quantile predictions ``(..., Q)`` against targets ``(...)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["PointHead", "QuantileHead", "check_quantiles", "pinball_loss"]


def check_quantiles(quantiles: Sequence[float]) -> tuple[float, ...]:
    """Validate quantile levels: a non-empty, strictly increasing sequence in ``(0, 1)``.

    Returns:
        The levels as a tuple of floats.

    Raises:
        ValueError: empty, out of ``(0, 1)``, unsorted or repeated levels.
    """
    try:
        levels = tuple(float(q) for q in quantiles)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"quantiles must be a sequence of floats in (0, 1), got {quantiles!r}"
        ) from err
    if not levels:
        raise ValueError("quantiles must not be empty; pass None for point forecasts only")
    if any(not 0.0 < q < 1.0 for q in levels):
        raise ValueError(f"quantiles must lie strictly between 0 and 1, got {list(levels)}")
    if any(b <= a for a, b in zip(levels, levels[1:], strict=False)):
        raise ValueError(
            f"quantiles must be strictly increasing without repeats, got {list(levels)}; "
            "sort them, e.g. quantiles=sorted(set(quantiles))"
        )
    return levels


class _FlattenLinear(nn.Module):
    """``(B, N, d) -> (B, N·d) -> dropout -> Linear -> (B, out_features)``."""

    def __init__(self, n_tokens: int, d_model: int, out_features: int, dropout: float) -> None:
        super().__init__()
        for name, value in (("n_tokens", n_tokens), ("d_model", d_model)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.n_tokens = n_tokens
        self.d_model = d_model
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(n_tokens * d_model, out_features)

    def _flat(self, z: Tensor) -> Tensor:
        if z.ndim != 3 or z.shape[1:] != (self.n_tokens, self.d_model):
            raise ValueError(
                f"head input must have shape (B, {self.n_tokens}, {self.d_model}), "
                f"got {tuple(z.shape)}"
            )
        return self.linear(self.dropout(z.flatten(1)))


class PointHead(_FlattenLinear):
    """Flatten-linear horizon head (PatchTST's ``FlattenHead``) for point forecasts.

    Args:
        n_tokens: number ``N`` of input tokens (patches).
        d_model: token width ``d``.
        horizon: number ``H`` of forecast steps.
        n_targets: number ``K`` of target series per item.
        dropout: dropout on the flattened tokens.

    Shapes:
        ``(B, N, d) -> (B, H, K)``.
    """

    def __init__(
        self, n_tokens: int, d_model: int, horizon: int, n_targets: int = 1, dropout: float = 0.0
    ) -> None:
        for name, value in (("horizon", horizon), ("n_targets", n_targets)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        super().__init__(n_tokens, d_model, horizon * n_targets, dropout)
        self.horizon = horizon
        self.n_targets = n_targets

    def forward(self, z: Tensor) -> Tensor:
        """Map tokens ``(B, N, d)`` to a forecast ``(B, H, K)``."""
        return self._flat(z).view(z.shape[0], self.horizon, self.n_targets)


class QuantileHead(_FlattenLinear):
    """Flatten-linear head predicting several quantiles per horizon step.

    The raw outputs are sorted along the quantile axis (monotone rearrangement,
    Chernozhukov et al. 2010), so the predicted quantiles never cross; sorting never
    increases the pinball loss and gradients flow through it.

    Args:
        n_tokens, d_model, horizon, n_targets, dropout: as in :class:`PointHead`.
        quantiles: increasing levels in ``(0, 1)`` (``Q`` of them).

    Shapes:
        ``(B, N, d) -> (B, H, K, Q)``.
    """

    def __init__(
        self,
        n_tokens: int,
        d_model: int,
        horizon: int,
        quantiles: Sequence[float],
        n_targets: int = 1,
        dropout: float = 0.0,
    ) -> None:
        levels = check_quantiles(quantiles)
        for name, value in (("horizon", horizon), ("n_targets", n_targets)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        super().__init__(n_tokens, d_model, horizon * n_targets * len(levels), dropout)
        self.horizon = horizon
        self.n_targets = n_targets
        self.quantiles = levels
        self.register_buffer("levels", torch.tensor(levels), persistent=False)

    def forward(self, z: Tensor) -> Tensor:
        """Map tokens ``(B, N, d)`` to sorted quantile forecasts ``(B, H, K, Q)``."""
        raw = self._flat(z).view(z.shape[0], self.horizon, self.n_targets, len(self.quantiles))
        return torch.sort(raw, dim=-1).values


def pinball_loss(prediction: Tensor, target: Tensor, quantiles: Sequence[float] | Tensor) -> Tensor:
    """Mean pinball (quantile) loss.

    ``ρ_q(e) = max(q·e, (q - 1)·e)`` with ``e = target - prediction``, averaged over every
    element and quantile.

    Args:
        prediction: ``(..., Q)`` quantile forecasts.
        target: ``(...)`` observations (broadcast against the quantile axis).
        quantiles: ``Q`` levels in ``(0, 1)``.

    Returns:
        A scalar tensor.
    """
    levels = torch.as_tensor(quantiles, dtype=prediction.dtype, device=prediction.device)
    if prediction.shape[-1] != levels.numel():
        raise ValueError(
            f"prediction has {prediction.shape[-1]} quantiles on its last axis but "
            f"{levels.numel()} levels were given"
        )
    if prediction.shape[:-1] != target.shape:
        raise ValueError(
            f"prediction (..., Q) {tuple(prediction.shape)} does not match target "
            f"{tuple(target.shape)}"
        )
    error = target.unsqueeze(-1) - prediction
    return torch.maximum(levels * error, (levels - 1.0) * error).mean()
