"""The repeat split and the recall probe of ``benchmarks/dna_lm_reset.py``."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module("dna_lm_reset")
    finally:
        sys.path.remove(str(BENCHMARKS))


def brute_far_repeats(codes: np.ndarray, far: int, k: int) -> np.ndarray:
    out = np.zeros(len(codes) - 1, dtype=bool)
    c = np.minimum(codes, 3)
    for i in range(k - 1, len(codes)):
        kmer = tuple(c[i - k + 1 : i + 1])
        earlier = [j for j in range(k - 1, i) if tuple(c[j - k + 1 : j + 1]) == kmer]
        out[i - 1] = bool(earlier) and i - max(earlier) >= far  # the nearest copy is far
    return out


@pytest.mark.parametrize(("far", "k"), [(4, 4), (5, 4), (1, 3), (30, 6), (8, 32)])
def test_far_repeats_matches_brute_force(bench: ModuleType, far: int, k: int) -> None:
    rng = np.random.default_rng(far * 100 + k)
    motif = rng.integers(0, 4, 40)
    codes = np.concatenate([rng.integers(0, 5, 50), motif, rng.integers(0, 4, 30), motif,
                            motif[:10]])
    got = bench.far_repeats(codes, far, k=k)
    np.testing.assert_array_equal(got, brute_far_repeats(codes, far, k))
    assert got.any() and not got.all()


def test_far_repeats_rejects_bad_arguments(bench: ModuleType) -> None:
    with pytest.raises(ValueError, match="1..32"):
        bench.far_repeats(np.zeros(100, dtype=np.int64), 4, k=33)
    with pytest.raises(ValueError, match="far must be"):
        bench.far_repeats(np.zeros(100, dtype=np.int64), 0)


def test_recall_probe_places_both_copies(bench: ModuleType) -> None:
    genome = np.arange(200) % 4
    probe, first, second = bench.recall_probe(genome, 25, 60, seed=3)
    assert len(probe) == 2 * 60 + 2 * 25
    scored = probe[1:]  # entry i of nats scores base i + 1
    np.testing.assert_array_equal(scored[first], scored[second])
    np.testing.assert_array_equal(probe[:60], genome[:60])
    np.testing.assert_array_equal(probe[85:145], genome[60:120])
    assert not np.array_equal(scored[first], genome[60:85])


def test_copy_benchmark_runs_end_to_end(bench: ModuleType, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``benchmarks/dna_lm_copy.py`` at a toy size: trains, prints per-epoch training bits
    and one probe row per (N, gap), all finite."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    copy = importlib.import_module("dna_lm_copy")
    assert copy.main(["--bases", "20000", "--epochs", "2", "--set", "windows_per_epoch=64",
                      "--set", "context_length=64", "--set", "carry_windows=4",
                      "--probe-lengths", "16", "32", "--gaps", "64"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "training bits/base per epoch" in out[0] and "'repeat_fraction': 0.3" in out[0]
    rows = [line.split() for line in out[2:]]
    assert [(r[0], r[1]) for r in rows] == [("16", "64"), ("32", "64")]
    assert all(1.0 < float(x) < 3.0 for r in rows for x in r[2:])
