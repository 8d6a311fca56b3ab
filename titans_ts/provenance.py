"""Provenance of benchmark runs: which hardware ran them and the exact command line.

Used by the recipes (``recipes/long_horizon.py``, ``recipes/genomics.py``) so that every
results file names the machine and the command that produced it::

    from titans_ts.provenance import command_line, hardware_description

    hardware_description(torch.device("cpu"))
    # 'CPU Intel(R) Xeon(R) ..., 2 logical cores, 2 torch threads (torch 2.x, Python 3.x)'
    command_line(["--tasks", "tf/0"], program="recipes/genomics.py")
    # 'python recipes/genomics.py --tasks tf/0'

Only the standard library and torch are imported.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
from collections.abc import Sequence

import torch

__all__ = ["command_line", "hardware_description"]


def _cpu_model() -> str:
    """The CPU model name from ``/proc/cpuinfo`` (or :mod:`platform`'s best guess)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def hardware_description(device: torch.device) -> str:
    """One line naming what ran the benchmark (GPU name, or CPU model and threads)."""
    software = f"torch {torch.__version__}, Python {platform.python_version()}"
    if device.type == "cuda":
        return f"GPU {torch.cuda.get_device_name(device)} ({software})"
    cores = os.cpu_count() or 0
    return (
        f"CPU {_cpu_model()}, {cores} logical cores, {torch.get_num_threads()} torch threads "
        f"({software})"
    )


def command_line(
    argv: Sequence[str] | None = None,
    *,
    program: str | None = None,
    interpreter: str = "python",
) -> str:
    """The command that reproduces this run, shell-quoted (``shlex.join``).

    Args:
        argv: the arguments after the program; default ``sys.argv[1:]``.
        program: the script path as it should be typed; default ``sys.argv[0]``. Recipes pass
            their own path so the string is right when ``main(argv)`` is called from Python
            (tests, notebooks), where ``sys.argv[0]`` names some other program.
        interpreter: the word in front (``"python"``); ``""`` for none.

    Returns:
        e.g. ``"python recipes/genomics.py --tasks tf/0 --set 'window=None'"``.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    prog = sys.argv[0] if program is None else program
    words = ([interpreter] if interpreter else []) + [prog, *args]
    return shlex.join(words)
