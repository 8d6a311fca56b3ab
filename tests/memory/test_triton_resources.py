"""The depth-2 backward kernel fits an H100's shared memory at the standard shape.

It once asked for 288 KiB at d = 64 (the card allows 227 KiB) and failed to launch. Triton
compiles for a named GPU target without a GPU, so ``benchmarks/triton_resources.py``
measures the shared memory of the kernel as the executor launches it; this test runs it
in a subprocess (the other Triton tests import the kernels for the interpreter).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "triton_resources.py"


def _nvidia_backend() -> bool:
    if importlib.util.find_spec("triton") is None:
        return False
    spec = importlib.util.find_spec("triton.backends.nvidia")
    if spec is None or spec.submodule_search_locations is None:
        return False
    root = Path(list(spec.submodule_search_locations)[0])
    return (root / "bin" / "ptxas").exists()


@pytest.mark.skipif(not _nvidia_backend(), reason="needs triton with its CUDA backend (ptxas)")
def test_depth2_backward_fits_h100_shared_memory() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--head-dim", "64", "--hidden-mult", "4",
         "--chunk-size", "64", "--kernels", "backward", "--json"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 1 and rows[0]["kernel"] == "backward_depth2", out.stdout
    row = rows[0]
    assert row["clip"] and row["num_stages"] == 1
    assert 0 < row["shared_bytes"] <= row["limit_bytes"] == 232_448, row
