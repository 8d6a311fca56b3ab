"""Backbone tests run single-threaded: the tiny tensors here gain nothing from intra-op
threads, and on a shared 2-core machine multi-threaded small kernels (depthwise conv1d in
float64) can be ~100x slower under contention. The previous setting is restored."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
