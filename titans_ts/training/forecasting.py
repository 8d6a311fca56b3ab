"""The forecasting network: RevIN → patching → patch embedding → Titans backbone → head.

A plain ``nn.Module`` (no Lightning here; :mod:`titans_ts.training.lightning` wraps it).

Shapes:

* Input ``x``: ``(B, L, C)`` lookback windows (batch, time, channel); with a seasonal cycle
  (``seasonality`` not ``"none"``) also ``season (B, L + H, C)``, the series' cycle profile
  over the window's steps (:mod:`titans_ts.encoders.seasonal`).
* Output :class:`ForecastOutput`: ``point (B, H, C)`` and, with quantiles,
  ``quantiles (B, H, C, Q)``.

Channel handling (DESIGN.md §4):

* channel-independent (default): every channel is its own univariate series; channels are
  folded into the batch ``(B, L, C) -> (B·C, L)``, patched to ``(B·C, N, P)``, embedded to
  ``(B·C, N, d)``. All channels share every weight (RevIN's affine too), so the network does
  not depend on ``C`` and any number of channels can be forecast.
* channel mixing (``channel_mixing=True``): the ``C`` patches of a time step form one token,
  ``(B, C, N, P) -> (B, N, C·P) -> (B, N, d)``, and the head predicts all ``C`` channels;
  the network is tied to ``C = n_channels``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from titans_ts.backbone import TitansBackbone, TitansConfig
from titans_ts.encoders.seasonal import SEASONAL_MODES, add_cycle, remove_cycle
from titans_ts.encoders.timeseries import (
    Patching,
    RevIN,
    RevINStats,
    from_channel_independent,
    to_channel_independent,
)
from titans_ts.heads.forecast import PointHead, QuantileHead, check_quantiles, pinball_loss
from titans_ts.memory import MemoryConfig

__all__ = [
    "ForecastModelConfig",
    "ForecastOutput",
    "TitansForecastModel",
    "build_backbone_config",
    "quantile_column_suffixes",
]


@dataclass(frozen=True)
class ForecastModelConfig:
    """Everything needed to rebuild a :class:`TitansForecastModel` (JSON round-trips).

    Attributes:
        lookback: input length ``L``.
        horizon: forecast length ``H``.
        n_channels: channels ``C`` per item. Only the channel-mixing network depends on it;
            a channel-independent network accepts any ``C``.
        patch_len: patch length ``P``.
        stride: patch stride ``S``; the series is end-padded by ``S`` (PatchTST), giving
            ``N = (L + S - P) // S + 1`` tokens.
        channel_mixing: mix channels in each token instead of channel independence.
        revin: reversible instance normalisation of every window (affine).
        quantiles: levels of the optional quantile head (``None``: point forecasts only).
        head_dropout: dropout on the flattened tokens in the heads.
        linear_skip: forecast = a linear map of the last-value-centred lookback (shared by
            all channels, the in-run ridge baseline's form; see :meth:`TitansForecastModel.
            set_linear_skip`) + the Titans path's output in RevIN units times the window's
            scale. The Titans head starts at zero, so an untrained network is exactly the
            linear forecast and training learns a correction to it.
        seasonality: ``"none"``, or how a seasonal cycle is taken out of every window before
            everything else and put back on the forecast (``"fixed"``, ``"adaptive"``; see
            :mod:`titans_ts.encoders.seasonal`); the model then needs ``season`` inputs.
        backbone: the Titans backbone; its ``d_model`` is the token width ``d``.
    """

    lookback: int
    horizon: int
    n_channels: int = 1
    patch_len: int = 16
    stride: int = 8
    channel_mixing: bool = False
    revin: bool = True
    quantiles: tuple[float, ...] | None = None
    head_dropout: float = 0.0
    linear_skip: bool = False
    seasonality: str = "none"
    backbone: TitansConfig = field(default_factory=TitansConfig)

    def __post_init__(self) -> None:
        for name in ("lookback", "horizon", "n_channels", "patch_len", "stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"ForecastModelConfig.{name}={value!r} is invalid: expected a positive int."
                )
        if self.patch_len > self.lookback + self.stride:
            raise ValueError(
                f"patch_len={self.patch_len} is longer than lookback={self.lookback} plus the "
                f"end padding stride={self.stride}; use a shorter patch_len"
            )
        if self.linear_skip and self.lookback < 2:
            raise ValueError(
                "linear_skip=True centres the lookback on its last value and needs lookback "
                f">= 2, got {self.lookback}; use a longer lookback or linear_skip=False"
            )
        if self.seasonality not in SEASONAL_MODES:
            raise ValueError(
                f"ForecastModelConfig.seasonality={self.seasonality!r} is invalid: expected "
                f"one of {SEASONAL_MODES}"
            )
        if self.quantiles is not None:
            object.__setattr__(self, "quantiles", check_quantiles(self.quantiles))
        if not isinstance(self.backbone, TitansConfig):
            raise TypeError(f"backbone must be a TitansConfig, got {type(self.backbone).__name__}")

    @property
    def n_tokens(self) -> int:
        """Number ``N`` of patch tokens per series."""
        return (self.lookback + self.stride - self.patch_len) // self.stride + 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (nested backbone and memory configs as dicts)."""
        out = dataclasses.asdict(self)
        out["quantiles"] = None if self.quantiles is None else list(self.quantiles)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ForecastModelConfig:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        backbone = dict(data.pop("backbone"))
        memory = backbone.pop("memory", None)
        backbone["memory"] = None if memory is None else MemoryConfig(**memory)
        quantiles = data.pop("quantiles", None)
        return cls(
            **data,
            quantiles=None if quantiles is None else tuple(quantiles),
            backbone=TitansConfig(**backbone),
        )


class ForecastOutput(NamedTuple):
    """Network output: ``point (B, H, C)``; ``quantiles (B, H, C, Q)`` or ``None``."""

    point: Tensor
    quantiles: Tensor | None


class TitansForecastModel(nn.Module):
    """Patch-token Titans forecaster (see the module docstring for shapes).

    Args:
        config: a :class:`ForecastModelConfig`.
    """

    def __init__(self, config: ForecastModelConfig) -> None:
        super().__init__()
        self.config = config
        d = config.backbone.d_model
        c = config.n_channels
        mixing = config.channel_mixing
        self.revin = RevIN(c if mixing else 1, affine=True) if config.revin else None
        self.patching = Patching(config.patch_len, config.stride, pad_end=True)
        n_tokens = self.patching.num_patches(config.lookback)
        self.embed = nn.Linear(config.patch_len * (c if mixing else 1), d)
        self.position = nn.Parameter(torch.randn(n_tokens, d) * 0.02)
        self.backbone = TitansBackbone(config.backbone)
        n_targets = c if mixing else 1
        self.head = PointHead(n_tokens, d, config.horizon, n_targets, config.head_dropout)
        self.quantile_head = (
            None
            if config.quantiles is None
            else QuantileHead(
                n_tokens, d, config.horizon, config.quantiles, n_targets, config.head_dropout
            )
        )
        self.skip = None
        if config.linear_skip:
            self.skip = nn.Linear(config.lookback - 1, config.horizon)
            for head in (self.head, self.quantile_head):
                if head is not None:  # the deep path starts as a zero correction
                    nn.init.zeros_(head.linear.weight)
                    nn.init.zeros_(head.linear.bias)

    @torch.no_grad()
    def set_linear_skip(self, coef: Any, intercept: Any) -> None:
        """Load a closed-form linear forecast into the skip path.

        Args:
            coef: ``(L - 1, H)`` weights on the centred inputs ``x_s - x_L`` (s < L).
            intercept: ``(H,)`` bias; the forecast is ``centred @ coef + intercept + x_L``
                (e.g. :func:`titans_ts.baselines.linear.fit_ridge_blocks`).
        """
        if self.skip is None:
            raise ValueError("this model was built with linear_skip=False")
        coef_t = torch.as_tensor(coef, dtype=self.skip.weight.dtype)
        bias_t = torch.as_tensor(intercept, dtype=self.skip.bias.dtype)
        want = (self.config.lookback - 1, self.config.horizon)
        if tuple(coef_t.shape) != want or tuple(bias_t.shape) != (want[1],):
            raise ValueError(
                f"coef must be {want} and intercept ({want[1]},), got "
                f"{tuple(coef_t.shape)} and {tuple(bias_t.shape)}"
            )
        self.skip.weight.copy_(coef_t.T)
        self.skip.bias.copy_(bias_t)

    def describe_inputs(self, batch_size: int = 1) -> dict[str, tuple[tuple[int, ...], Any]]:
        """Input contract: ``{"x": ((B, L, C), dtype)}``, plus ``"season": ((B, L + H, C),
        dtype)`` with a seasonal cycle."""
        dtype = next(self.parameters()).dtype
        cfg = self.config
        out = {"x": ((batch_size, cfg.lookback, cfg.n_channels), dtype)}
        if cfg.seasonality != "none":
            out["season"] = ((batch_size, cfg.lookback + cfg.horizon, cfg.n_channels), dtype)
        return out

    def _check_x(self, x: Tensor, season: Tensor | None) -> None:
        cfg = self.config
        if x.ndim != 3 or x.shape[1] != cfg.lookback:
            raise ValueError(
                f"x must have shape (B, lookback={cfg.lookback}, C), got {tuple(x.shape)}"
            )
        want = (x.shape[0], cfg.lookback + cfg.horizon, x.shape[2])
        if cfg.seasonality != "none" and (season is None or tuple(season.shape) != want):
            got = None if season is None else tuple(season.shape)
            raise ValueError(
                f"this model removes a {cfg.seasonality!r} seasonal cycle and needs season of "
                f"shape (B, L + H, C) = {want} (the cycle profile over the window), got {got}"
            )
        if cfg.channel_mixing and x.shape[2] != cfg.n_channels:
            raise ValueError(
                f"this channel-mixing model was built for {cfg.n_channels} channels, "
                f"got x with {x.shape[2]}"
            )

    def _normalize(self, x: Tensor) -> tuple[Tensor, RevINStats | None]:
        if self.revin is None:
            return x, None
        return self.revin.normalize(x)

    def _denormalize(self, y: Tensor, stats: RevINStats | None) -> Tensor:
        return y if stats is None or self.revin is None else self.revin.denormalize(y, stats)

    def forward(self, x: Tensor, season: Tensor | None = None) -> ForecastOutput:
        """Forecast ``H`` steps from ``x (B, L, C)`` (and ``season (B, L + H, C)`` when the
        model has a seasonal cycle; ignored otherwise)."""
        self._check_x(x, season)
        batch, _, channels = x.shape
        scale = None
        if self.config.seasonality != "none":
            assert season is not None
            season = season.to(x.dtype)
            x, scale = remove_cycle(x, season, self.config.seasonality)
        if self.config.channel_mixing:
            raw = x  # (B, L, C)
            z, stats = self._normalize(x)
            patches = self.patching(z.transpose(1, 2))  # (B, C, N, P)
            tokens = patches.permute(0, 2, 1, 3).flatten(2)  # (B, N, C·P)
        else:
            raw = to_channel_independent(x).unsqueeze(-1)  # (B·C, L, 1)
            z, stats = self._normalize(raw)
            tokens = self.patching(z.squeeze(-1))  # (B·C, N, P)
        h = self.embed(tokens) + self.position
        h, _ = self.backbone(h)  # (B', N, d)
        point = self.head(h)  # (B', H, K)
        quant = None if self.quantile_head is None else self.quantile_head(h)  # (B', H, K, Q)
        point = self._denormalize(point, stats)
        if quant is not None:
            quant = self._denormalize(quant.movedim(-1, 0), stats).movedim(0, -1)
            # monotone in q is kept: the inverse affine map is increasing only for a positive
            # RevIN weight, so sort again (a no-op when the weight is positive)
            quant = torch.sort(quant, dim=-1).values
        if self.skip is not None:  # linear forecast + the Titans correction
            last = raw[:, -1:, :]  # (B', 1, K)
            linear = self.skip((raw[:, :-1] - last).transpose(1, 2)).transpose(1, 2) + last
            offset = linear if stats is None else linear - stats.center
            point = point + offset
            quant = None if quant is None else quant + offset.unsqueeze(-1)
        if not self.config.channel_mixing:
            point = from_channel_independent(point.squeeze(-1), channels)  # (B, H, C)
            if quant is not None:
                q = quant.shape[-1]
                quant = quant.squeeze(2).reshape(batch, channels, -1, q).transpose(1, 2)
        if scale is not None:
            assert season is not None
            point = add_cycle(point, season, scale)
            quant = None if quant is None else add_cycle(quant, season, scale)
        return ForecastOutput(point, quant)

    def loss(self, x: Tensor, y: Tensor, season: Tensor | None = None) -> Tensor:
        """Training loss on a batch: MSE of the point forecast, plus the mean pinball loss
        of the quantile head when there is one.

        Args:
            x: ``(B, L, C)`` inputs.
            y: ``(B, H, C)`` targets.
            season: ``(B, L + H, C)`` cycle profile (models with a seasonal cycle only).
        """
        out = self(x, season)
        if out.point.shape != y.shape:
            raise ValueError(
                f"target must have shape {tuple(out.point.shape)} (B, horizon, C), "
                f"got {tuple(y.shape)}"
            )
        loss = F.mse_loss(out.point, y)
        if out.quantiles is not None:
            assert self.config.quantiles is not None
            loss = loss + pinball_loss(out.quantiles, y, self.config.quantiles)
        return loss


def build_backbone_config(
    *,
    variant: str,
    d_model: int,
    n_layers: int,
    n_heads: int,
    n_tokens: int,
    n_persistent: int,
    memory_depth: int,
    memory_chunk_size: int,
    dropout: float,
) -> TitansConfig:
    """A :class:`TitansConfig` whose attention window and MAC segment cover all ``n_tokens``
    patch tokens (the lookback is short, so full causal attention over it is cheap)."""
    span = max(1, int(n_tokens))
    return TitansConfig(
        variant=variant,
        d_model=d_model,
        n_layers=n_layers,
        n_heads=n_heads,
        window=span,
        segment_len=span,
        n_persistent=n_persistent,
        memory=MemoryConfig(
            d_model=d_model,
            n_heads=n_heads,
            depth=memory_depth,
            chunk_size=min(memory_chunk_size, span),
        ),
        dropout=dropout,
    )


def quantile_column_suffixes(quantiles: Sequence[float]) -> list[str]:
    """Column suffixes ``q0.1``, ``q0.5``, ... for quantile levels (``%g`` formatting)."""
    return [f"q{q:g}" for q in quantiles]
