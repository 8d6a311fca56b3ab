"""Fused Triton executor of the neural memory (``executor="triton"``).

Importing this package never imports Triton: the kernels (:mod:`.fused_chunk`) load on
first use, so the package imports on machines without Triton or without a GPU, where
:func:`supports` answers ``(False, reason)``.

- :func:`triton_run_memory` — the executor, same signature as
  :func:`titans_ts.memory.chunked.chunked_run_memory`;
- :func:`supports` — whether the kernels can run a given problem, and why not;
- :func:`launch_counts` — kernel launches so far (tests assert Triton really ran);
- :class:`SharedMemoryError` — with ``preflight=True`` (what ``executor="auto"`` uses),
  raised before the first launch on a GPU whose shared memory per block is smaller than the
  kernels need (compiled for its architecture to find out).
"""

from __future__ import annotations

import importlib.util
import os

import torch

from ..spec import MemoryRunState

Tensor = torch.Tensor

__all__ = [
    "SharedMemoryError", "launch_counts", "supports", "triton_available", "triton_run_memory",
]


class SharedMemoryError(ValueError):
    """The kernels of a problem need more shared memory per block than the GPU allows
    (checked before the first launch). ``run_memory(executor="auto")`` catches it and runs
    the chunked executor instead."""


def triton_available() -> tuple[bool, str]:
    """Whether the ``triton`` package is installed (without importing it)."""
    if importlib.util.find_spec("triton") is None:
        return False, "the triton package is not installed"
    return True, "triton is installed"


def _interpreter_requested() -> bool:
    """Whether the kernels run (or will be built) for the Triton CPU interpreter."""
    import sys

    module = sys.modules.get(__name__ + ".fused_chunk")
    if module is not None:
        return bool(module.INTERPRETER)
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def supports(
    q: Tensor, weights: list[Tensor], chunk_size: int | None = None
) -> tuple[bool, str]:
    """Whether :func:`triton_run_memory` can run this problem, with the reason.

    Args:
        q: (B, H, T, d) queries (device and dtype as passed to ``run_memory``).
        weights: the memory weights, one (H, out, in) tensor per layer.
        chunk_size: the chunk size, when known.
    Returns:
        ``(True, why)`` for CUDA tensors (or CPU tensors under ``TRITON_INTERPRET=1``) of a
        supported shape with Triton installed, else ``(False, why not)``.
    """
    ok, why = triton_available()
    if not ok:
        return False, why
    if q.device.type != "cuda" and not (q.device.type == "cpu" and _interpreter_requested()):
        return False, f"inputs on {q.device.type}: the Triton kernels need CUDA"
    if q.device.type == "cuda" and not torch.cuda.is_available():  # pragma: no cover
        return False, "CUDA is not available"
    if q.dtype not in (torch.float32, torch.bfloat16, torch.float16):
        return False, f"dtype {q.dtype} unsupported (float32/bfloat16/float16 only)"
    # limits mirror fused_chunk.MAX_* (duplicated so that this check never imports triton)
    d = q.shape[-1]
    if len(weights) not in (1, 2):
        return False, f"memory depth {len(weights)} unsupported (1 or 2 only)"
    if d > 128:
        return False, f"head width d={d} unsupported (<= 128)"
    if len(weights) == 2 and d > 64:
        return False, f"head width d={d} unsupported for depth 2 (<= 64)"
    if len(weights) == 2 and weights[0].shape[-2] > 4 * d:
        return False, f"hidden width {weights[0].shape[-2]} unsupported (<= 4 * d = {4 * d})"
    if chunk_size is not None and chunk_size > 64:
        return False, f"chunk_size={chunk_size} unsupported (<= 64)"
    where = "CUDA" if q.device.type == "cuda" else "the Triton interpreter on CPU"
    return True, f"supported shape on {where}"


def triton_run_memory(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    theta: Tensor,
    eta: Tensor,
    alpha: Tensor,
    weights: list[Tensor],
    *,
    chunk_size: int,
    activation: str = "gelu",
    residual: bool = False,
    state: MemoryRunState | None = None,
    precision: str | None = None,
    max_grad_norm: float | None = None,
    preflight: bool = False,
) -> tuple[Tensor, MemoryRunState]:
    """The fused Triton executor (see :func:`.fused_chunk.fused_chunk_run_memory`).

    Args:
        q, k, v: (B, H, T, d) float32; theta, eta, alpha: (B, H, T) float32.
        weights: ``[W (H, d, d)]`` or ``[W1 (H, m*d, d), W2 (H, d, m*d)]``.
    Returns:
        ``(y (B, H, T, d), state)``. Raises ``ValueError``/``TypeError`` for unsupported
        problems (see :func:`supports`), never falls back to another executor.
    """
    from .fused_chunk import fused_chunk_run_memory

    return fused_chunk_run_memory(
        q, k, v, theta, eta, alpha, weights, chunk_size=chunk_size, activation=activation,
        residual=residual, state=state, precision=precision, max_grad_norm=max_grad_norm,
        preflight=preflight,
    )


def launch_counts() -> dict[str, int]:
    """Kernel launches per kind since the kernels were imported (empty before)."""
    import sys

    module = sys.modules.get(__name__ + ".fused_chunk")
    return {} if module is None else dict(module.LAUNCHES)
