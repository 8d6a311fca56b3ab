"""Compiled CPU kernels of the memory, built on first use.

The chunked executor (:mod:`.chunked`) runs a stream as a Python loop over chunks; each
chunk's forward and hand-written backward issue a few hundred ATen ops. On CPU the Python
interpreter and argument parsing of those calls cost about a tenth of a training step, so
the same two functions also exist in C++ (``csrc/chunk_cpu.cpp``: the same op sequence
issued through ATen, with one-pass loops where a chain of small ops was measurably slow:
the gate product matrices, the float32 GELU with gelu' and gelu'' of the key path, the
chunk-end weight/momentum scaling, row-wise dot products of the backward). The file also
holds a one-pass causal depthwise convolution for :mod:`.conv`. It is compiled with
:func:`torch.utils.cpp_extension.load` the first time a CPU stream runs (about 30 s on 2
cores, cached afterwards in ``TORCH_EXTENSIONS_DIR``, default ``~/.cache/torch_extensions``).

Nothing else changes: chunking, checkpointing and the autograd wrapper stay in Python, and
``tests/memory/test_cpu_kernels.py`` checks the compiled step against the Python one
(outputs, end state and every gradient, float64 to ~1e-12; the float32 GELU to ATen's own
float32 accuracy). Without a C++ compiler (or ``ninja``) the build fails once, a warning is
logged, and the Python step is used.

Environment variable ``TITANS_TS_CPU_KERNELS``: ``0`` never builds or uses the compiled
kernels, ``1`` (default) uses them when they build, ``require`` raises when they cannot be
built.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import ModuleType

import torch

Tensor = torch.Tensor

__all__ = ["ENV_VAR", "NativeChunkCache", "chunk_backward", "chunk_forward", "load", "status"]

_log = logging.getLogger(__name__)

#: Environment variable that disables (``0``) or requires (``require``) the compiled step.
ENV_VAR = "TITANS_TS_CPU_KERNELS"
_SOURCE = Path(__file__).resolve().parent / "csrc" / "chunk_cpu.cpp"
_built: dict[str, ModuleType | str] = {}  # "module" -> extension, or "error" -> message


def _mode() -> str:
    value = os.environ.get(ENV_VAR, "1").strip().lower()
    if value not in ("0", "1", "require"):
        raise ValueError(f"{ENV_VAR}={value!r} is not understood: use 0, 1 or require")
    return value


def _build_flags() -> tuple[str, list[str]]:
    """Extension name and compiler flags for this machine.

    ``-fopenmp``: ``at::parallel_for`` is inline OpenMP; without it the kernels run on one
    thread (not linked: the GOMP symbols resolve against torch's own libgomp).
    ``-fno-trapping-math -fno-math-errno`` (as torch's own build) let the compiler turn the
    one-pass loops' selects into vector blends. ``-mavx2 -mfma`` where torch itself runs
    AVX2/AVX-512 kernels, so the one-pass loops vectorise 8 wide; the capability is part of
    the name, so a cache directory shared by machines of different CPUs never hands one an
    unsupported build.
    """
    capability = "default"
    try:
        capability = torch.backends.cpu.get_cpu_capability().lower()
    except (AttributeError, RuntimeError):  # pragma: no cover - very old torch
        pass
    flags = ["-O3", "-fopenmp", "-fno-trapping-math", "-fno-math-errno"]
    if capability in ("avx2", "avx512"):
        flags += ["-mavx2", "-mfma"]
        capability = "avx2"
    else:
        capability = "default"
    return f"titans_ts_cpu_{capability}", flags


def load() -> ModuleType | None:
    """The compiled extension, building it on the first call; None when disabled or unbuildable.

    Raises:
        RuntimeError: the build failed and ``TITANS_TS_CPU_KERNELS=require``.
    """
    mode = _mode()
    if mode == "0":
        return None
    if "module" in _built:
        return _built["module"]  # type: ignore[return-value]
    if "error" not in _built:
        try:
            from torch.utils.cpp_extension import load as build

            _log.info("building the compiled CPU kernels of the memory (once; ~30 s on 2 cores)")
            name, flags = _build_flags()
            _built["module"] = build(
                name=name, sources=[str(_SOURCE)], extra_cflags=flags, verbose=False
            )
            return _built["module"]  # type: ignore[return-value]
        except Exception as exc:  # compiler, ninja or headers missing: fall back to Python
            _built["error"] = f"{type(exc).__name__}: {exc}".strip()[:2000]
            _log.warning("compiled CPU kernels unavailable, using the Python path (%s)",
                         _built["error"].splitlines()[0])
    if mode == "require":
        raise RuntimeError(
            f"{ENV_VAR}=require but the compiled CPU step could not be built: {_built['error']}"
        )
    return None


def status() -> tuple[bool, str]:
    """``(usable, why)`` for the compiled CPU step (builds it if that was not tried yet)."""
    try:
        module = load()
    except RuntimeError as exc:
        return False, str(exc)
    if module is not None:
        return True, "built"
    if _mode() == "0":
        return False, f"disabled by {ENV_VAR}=0"
    return False, str(_built.get("error", "not built"))


class NativeChunkCache:
    """One chunk's intermediates as the compiled forward returned them (opaque, flat)."""

    __slots__ = ("tensors",)

    def __init__(self, tensors: list[Tensor]) -> None:
        self.tensors = tensors

    def nbytes(self) -> int:
        """Bytes held (each storage counted once)."""
        seen = {}
        for t in self.tensors:
            seen.setdefault(t.data_ptr(), t.numel() * t.element_size())
        return sum(seen.values())


def chunk_forward(
    Wg: list[Tensor], WS: list[Tensor], q: Tensor, k: Tensor, v: Tensor, theta: Tensor,
    eta: Tensor, alpha: Tensor, act: str, residual: bool, keep: bool, tau: float | None = None,
) -> tuple[Tensor, list[Tensor], NativeChunkCache | None]:
    """Compiled :func:`titans_ts.memory.chunked._chunk_forward` (same arguments and result)."""
    module = load()
    if module is None:
        raise RuntimeError(f"the compiled CPU step is unavailable: {status()[1]}")
    out = module.chunk_forward(
        list(Wg), list(WS), q, k, v, theta, eta, alpha, act, residual, keep,
        -1.0 if tau is None else float(tau),
    )
    L = len(Wg)
    return out[0], out[1 : L + 1], NativeChunkCache(out[L + 1 :]) if keep else None


def chunk_backward(
    Wg: list[Tensor], WS: list[Tensor], theta: Tensor, cache: NativeChunkCache, act: str,
    residual: bool, dy: Tensor, dWS_end: list[Tensor] | None, tau: float | None = None,
) -> tuple[list[Tensor], list[Tensor], Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Compiled :func:`titans_ts.memory.chunked._chunk_backward` (same arguments and result)."""
    module = load()
    if module is None:
        raise RuntimeError(f"the compiled CPU step is unavailable: {status()[1]}")
    out = module.chunk_backward(
        list(Wg), list(WS), theta, cache.tensors, act, residual, dy,
        [] if dWS_end is None else list(dWS_end), -1.0 if tau is None else float(tau),
    )
    L = len(Wg)
    dq, dk, dv, dtheta, deta, dalpha = out[2 * L :]
    return out[:L], out[L : 2 * L], dq, dk, dv, dtheta, deta, dalpha
