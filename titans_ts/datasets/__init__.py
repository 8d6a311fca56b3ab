"""Datasets: discovery of local copies, long-horizon benchmarks, genomics, synthetic fallback.

Importing this package loads only :mod:`titans_ts.datasets.discovery` (standard library).
The other names are resolved on first access (PEP 562), so ``import titans_ts.datasets``
does not import torch, pandas or numpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from titans_ts.datasets.discovery import cache_dir, data_dir, download_file, resolve_data_path

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from titans_ts.datasets.genomics import (
        GENOMIC_BENCHMARKS,
        GENOMIC_BENCHMARKS_TEST,
        GUE_TASKS,
        SequenceSplit,
        load_genomic_benchmark,
        load_genomic_benchmark_intervals,
        load_genomic_benchmark_test,
        load_gue,
        sequences_from_intervals,
    )
    from titans_ts.datasets.long_horizon import (
        HORIZONS,
        LONG_HORIZON_DATASETS,
        LongHorizonSplits,
        WindowDataset,
        count_windows,
        load_long_horizon,
        load_or_synthesize,
        read_wide_csv,
        split_borders,
        splits_from_frame,
    )
    from titans_ts.datasets.synthetic import make_synthetic, to_long, to_wide

__all__ = [
    "GENOMIC_BENCHMARKS",
    "GENOMIC_BENCHMARKS_TEST",
    "GUE_TASKS",
    "HORIZONS",
    "LONG_HORIZON_DATASETS",
    "LongHorizonSplits",
    "SequenceSplit",
    "WindowDataset",
    "cache_dir",
    "count_windows",
    "data_dir",
    "download_file",
    "load_genomic_benchmark",
    "load_genomic_benchmark_intervals",
    "load_genomic_benchmark_test",
    "load_gue",
    "load_long_horizon",
    "load_or_synthesize",
    "make_synthetic",
    "read_wide_csv",
    "resolve_data_path",
    "sequences_from_intervals",
    "split_borders",
    "splits_from_frame",
    "to_long",
    "to_wide",
]

_LAZY = {
    "GENOMIC_BENCHMARKS": "genomics",
    "GENOMIC_BENCHMARKS_TEST": "genomics",
    "GUE_TASKS": "genomics",
    "SequenceSplit": "genomics",
    "load_genomic_benchmark": "genomics",
    "load_genomic_benchmark_intervals": "genomics",
    "load_genomic_benchmark_test": "genomics",
    "load_gue": "genomics",
    "sequences_from_intervals": "genomics",
    "HORIZONS": "long_horizon",
    "LONG_HORIZON_DATASETS": "long_horizon",
    "LongHorizonSplits": "long_horizon",
    "WindowDataset": "long_horizon",
    "count_windows": "long_horizon",
    "load_long_horizon": "long_horizon",
    "load_or_synthesize": "long_horizon",
    "read_wide_csv": "long_horizon",
    "split_borders": "long_horizon",
    "splits_from_frame": "long_horizon",
    "make_synthetic": "synthetic",
    "to_long": "synthetic",
    "to_wide": "synthetic",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
