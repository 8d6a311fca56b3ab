"""scikit-learn style estimators: :class:`TitansForecaster` (pandas / polars frames)."""

from ._base import Interval, NotFittedError, Options, TitansBaseEstimator
from .classifier import (
    CLASSIFIER_DEFAULTS,
    CLASSIFIER_FORMAT_VERSION,
    ClassifierDefaults,
    TitansSequenceClassifier,
)
from .dna_lm import DNALM_DEFAULTS, DNALM_FORMAT_VERSION, DNALMDefaults, TitansDNALM
from .forecaster import DEFAULTS, FORMAT_VERSION, ForecasterDefaults, TitansForecaster

__all__ = [
    "CLASSIFIER_DEFAULTS",
    "CLASSIFIER_FORMAT_VERSION",
    "ClassifierDefaults",
    "DEFAULTS",
    "DNALMDefaults",
    "DNALM_DEFAULTS",
    "DNALM_FORMAT_VERSION",
    "FORMAT_VERSION",
    "ForecasterDefaults",
    "Interval",
    "NotFittedError",
    "Options",
    "TitansBaseEstimator",
    "TitansDNALM",
    "TitansForecaster",
    "TitansSequenceClassifier",
]
