"""Training: the forecasting network, its Lightning shell, lazy window data, seeding.

Nothing in :mod:`titans_ts.memory` or :mod:`titans_ts.backbone` imports Lightning; this
package is where Lightning enters.
"""

from .data import ForecastDataModule, SeriesWindows, split_window_ranges
from .forecasting import (
    ForecastModelConfig,
    ForecastOutput,
    TitansForecastModel,
    build_backbone_config,
    quantile_column_suffixes,
)
from .lightning import BestWeights, LossHistory, LossModule
from .seeding import deterministic_algorithms, resolve_seed, seed_everything

__all__ = [
    "BestWeights",
    "ForecastDataModule",
    "ForecastModelConfig",
    "ForecastOutput",
    "LossHistory",
    "LossModule",
    "SeriesWindows",
    "TitansForecastModel",
    "build_backbone_config",
    "deterministic_algorithms",
    "quantile_column_suffixes",
    "resolve_seed",
    "seed_everything",
    "split_window_ranges",
]
