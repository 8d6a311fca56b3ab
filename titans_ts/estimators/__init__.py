"""scikit-learn style estimators: :class:`TitansForecaster` (pandas / polars frames)."""

from ._base import Interval, NotFittedError, Options, TitansBaseEstimator
from .forecaster import DEFAULTS, FORMAT_VERSION, ForecasterDefaults, TitansForecaster

__all__ = [
    "DEFAULTS",
    "FORMAT_VERSION",
    "ForecasterDefaults",
    "Interval",
    "NotFittedError",
    "Options",
    "TitansBaseEstimator",
    "TitansForecaster",
]
