"""Output heads: forecasting (point and quantile) heads."""

from .forecast import PointHead, QuantileHead, check_quantiles, pinball_loss

__all__ = ["PointHead", "QuantileHead", "check_quantiles", "pinball_loss"]
