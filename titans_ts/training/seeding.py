"""Seeding and determinism helpers (CPU runs with the same seed are bit-identical)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch

__all__ = ["deterministic_algorithms", "resolve_seed", "seed_everything"]


def resolve_seed(random_state: int | np.random.Generator | None) -> int:
    """An int seed from a scikit-learn style ``random_state``.

    ``None`` draws a fresh seed (fits differ), an int is used as is, a
    ``numpy.random.Generator`` / ``RandomState`` gives its next draw.
    """
    if random_state is None:
        return int(np.random.default_rng().integers(0, 2**31 - 1))
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if not 0 <= int(random_state) < 2**32:
            raise ValueError(f"random_state must be in [0, 2**32), got {random_state}")
        return int(random_state)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    raise TypeError(
        f"random_state must be None, an int or a numpy Generator, got {type(random_state).__name__}"
    )


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global state and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool = True) -> Iterator[None]:
    """Temporarily set ``torch.use_deterministic_algorithms`` and restore it afterwards
    (Lightning's ``deterministic=True`` sets it globally and never resets it).

    ``torch.utils.deterministic.fill_uninitialized_memory`` is switched off meanwhile: it
    only makes reads of uninitialised memory reproducible (no correct kernel does that) and
    filling every ``torch.empty`` made a CPU training step of the memory ~3x slower.
    """
    import torch.utils.deterministic as det

    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    previous_fill = det.fill_uninitialized_memory
    try:
        torch.use_deterministic_algorithms(enabled, warn_only=not enabled)
        det.fill_uninitialized_memory = False
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)
        det.fill_uninitialized_memory = previous_fill
