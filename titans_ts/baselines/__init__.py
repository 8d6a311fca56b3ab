"""In-run baselines a deep model must beat first (DESIGN.md §5).

Names are resolved on first access (PEP 562), so importing the package loads nothing heavy.
Long-horizon forecasting: :mod:`titans_ts.baselines.linear` (repeat-last-value and the
RLinear-style last-value-centred ridge; ``python -m titans_ts.baselines.linear``).
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

__all__ = [
    "LastValueRidge",
    "NormalEquations",
    "evaluate_forecaster",
    "repeat_last_value",
    "run_long_horizon_baselines",
    "window_normal_equations",
]

_LAZY = {name: "linear" for name in __all__}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
