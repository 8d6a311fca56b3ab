"""``benchmarks/memory_ab.py``: the working tree against a git revision, in one process."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys

import pytest
from _scripts import ROOT, load_benchmark


def test_paired_ab_against_head_times_the_same_function(capsys) -> None:
    if shutil.which("git") is None or subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True
    ).returncode:
        pytest.skip("needs the git repository")
    ab = load_benchmark("memory_ab.py")
    tiny = ["--d-model", "16", "--heads", "2", "--head-dim", "8", "--hidden-mult", "2",
            "--chunk-size", "8", "--seq-len", "24", "--batch", "2", "--warmup", "0"]
    result = ab.main(["--base", "HEAD", "--pairs", "3", *tiny])
    assert len(result["pair_ratios"]) == 3
    assert math.isfinite(result["paired_speedup"]) and result["paired_speedup"] > 0
    assert not result["state_dict_mismatch"]
    # same weights, same input, same (or nearly the same) code: the same outputs
    assert result["max_abs_output_diff"] < 1e-4
    assert "base/new per pair median" in capsys.readouterr().out
    # the extracted package is unloaded afterwards, so a second run starts clean
    assert not [m for m in sys.modules if m.startswith(ab.BASE_PACKAGE)]
    with pytest.raises(SystemExit, match="git archive"):
        ab.main(["--base", "no-such-revision-xyz", *tiny])
