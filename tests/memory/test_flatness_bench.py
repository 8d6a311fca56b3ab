"""``benchmarks/flatness.py``: interleaved short/long timing of the layer and the executor."""

from __future__ import annotations

import math

from _scripts import load_benchmark


def test_flatness_reports_every_cell_and_round(capsys) -> None:
    bench = load_benchmark("flatness.py")
    tiny = ["--d-model", "16", "--heads", "2", "--head-dim", "8", "--hidden-mult", "2",
            "--chunk-size", "8"]
    # budget 0: the layer and executor cells checkpoint and recompute, the keep-all ones do not
    result = bench.main(["--short", "16", "--long", "48", "--rounds", "2", "--repeats", "1",
                         "--cache-budget-mb", "0", "--json", *tiny])
    assert (result["short"], result["long"], result["rounds"]) == (16, 48, 2)
    for cell in bench.CELLS:
        row = result[cell]
        assert len(row["round_ratios"]) == 2
        for key in ("short_tokens_per_s", "long_tokens_per_s", "ratio_of_medians",
                    "short_flops_per_token", "long_flops_per_token"):
            assert math.isfinite(row[key]) and row[key] > 0
    # without recomputation the matmul work per token does not depend on T (to within the
    # conv/edge terms); with budget 0 the backward recomputes every chunk: more work per token
    for cell in ("layer-keep-all", "keep-all"):
        assert abs(result[cell]["flop_ratio"] - 1.0) < 0.05
    assert result["layer"]["long_flops_per_token"] > 1.1 * result["layer-keep-all"][
        "long_flops_per_token"]
    out = capsys.readouterr()
    assert "ratio" in out.out and out.err.count("round ") == 2
