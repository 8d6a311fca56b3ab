"""In-run baselines a deep model must beat first (DESIGN.md §5).

Names are resolved on first access (PEP 562), so importing the package loads nothing heavy.
Long-horizon forecasting: :mod:`titans_ts.baselines.linear` (repeat-last-value and the
RLinear-style last-value-centred ridge; ``python -m titans_ts.baselines.linear``).
DNA language models: :mod:`titans_ts.baselines.markov` (a Markov chain over bases, scored in
bits per base). DNA classification: :mod:`titans_ts.baselines.kmer`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from titans_ts.baselines.linear import (
        LastValueRidge,
        NormalEquations,
        evaluate_forecaster,
        repeat_last_value,
        run_long_horizon_baselines,
        window_normal_equations,
    )
    from titans_ts.baselines.markov import MarkovDNALM, select_markov_order

__all__ = [
    "LastValueRidge",
    "MarkovDNALM",
    "NormalEquations",
    "evaluate_forecaster",
    "repeat_last_value",
    "run_long_horizon_baselines",
    "select_markov_order",
    "window_normal_equations",
]

_LAZY = {name: "linear" for name in __all__}
_LAZY.update(MarkovDNALM="markov", select_markov_order="markov")


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
