"""End-to-end checks of ``recipes/long_horizon.py`` on the real ETTh1 file.

The file is found through ``TITANS_TS_DATA_DIR`` (shared data layout,
``ETT-small/ETTh1.csv``); without it the tests that need it are skipped with the reason.
The ``--quick`` run takes a few seconds: a tiny network trained for a handful of batches,
while every test window is still scored.
"""

from __future__ import annotations

import csv
import os
import pathlib
import types

import numpy as np
import pytest
import torch
from _scripts import load_recipe
from numpy.lib.stride_tricks import sliding_window_view

from titans_ts.baselines.linear import run_long_horizon_baselines
from titans_ts.datasets.long_horizon import WindowDataset, load_long_horizon
from titans_ts.training.forecasting import ForecastOutput

H = 96
C = 7
TEST_WINDOWS = 2785  # ETTh1, L = H = 96 (DESIGN §5)


recipe = load_recipe("long_horizon.py")


@pytest.fixture(scope="module")
def etth1() -> pathlib.Path:
    value = os.environ.get("TITANS_TS_DATA_DIR", "").strip()
    if not value:
        pytest.skip("TITANS_TS_DATA_DIR is not set; point it at the shared data folder")
    path = pathlib.Path(value).expanduser() / "ETT-small" / "ETTh1.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found (TITANS_TS_DATA_DIR={value})")
    return path


@pytest.fixture(scope="module")
def quick(etth1: pathlib.Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("long_horizon")
    argv = ["--dataset", "ETTh1", "--horizons", str(H), "--quick", "--quiet",
            "--data-path", str(etth1), "--out", str(out), "--eval-batch-size", "1000"]
    results = recipe.main(argv)
    return out, results["ETTh1"]


def _rows(out: pathlib.Path) -> list[dict[str, str]]:
    with (out / "ETTh1_results.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_quick_run_writes_all_outputs(quick) -> None:
    out, result = quick
    for name in ("ETTh1_results.csv", "ETTh1_results.md", "ETTh1_mse.png",
                 "ETTh1_results.json"):
        assert (out / name).stat().st_size > 0, name
    rows = _rows(out)
    in_run = [r for r in rows if r["horizon"] == str(H)]
    assert {r["model"] for r in in_run} == {
        recipe.TITANS, recipe.RIDGE, recipe.CYCLE, recipe.LAST
    }
    for row in in_run:
        # every test window (no drop_last) of every channel and step was scored
        assert int(row["n_test_windows"]) == TEST_WINDOWS
        assert int(row["n_values"]) == TEST_WINDOWS * H * C
        assert 0 < float(row["mse"]) < 5 and 0 < float(row["mae"]) < 5
        assert row["hardware"].startswith(("CPU ", "GPU "))
    assert result["windows"][H] == (8449, 2785, 2785)
    titans = next(r for r in in_run if r["model"] == recipe.TITANS)
    assert int(titans["epochs_run"]) == 1


def test_untrained_correction_is_the_linear_start_and_is_said_so(etth1, tmp_path) -> None:
    # ETTh1's 8,640 training hours are 90 horizons of 96: ask for more to skip training
    argv = ["--dataset", "ETTh1", "--horizons", str(H), "--quick", "--quiet", "--no-plot",
            "--data-path", str(etth1), "--out", str(tmp_path), "--eval-batch-size", "1000",
            "--min-train-horizons", "91"]
    with pytest.warns(UserWarning, match="90.0 horizons of 96 steps"):
        recipe.main(argv)
    rows = [r for r in _rows(tmp_path) if r["horizon"] == str(H)]
    titans = next(r for r in rows if r["model"] == recipe.TITANS)
    cycle = next(r for r in rows if r["model"] == recipe.CYCLE)
    assert titans["network_trained"] == "False" and titans["epochs_run"] == "0"
    assert float(titans["mse"]) == pytest.approx(float(cycle["mse"]), rel=1e-6)
    text = (tmp_path / "ETTh1_results.md").read_text(encoding="utf-8")
    assert "Titans correction not trained at H = 96" in text


def test_table_has_published_rows_and_run_facts(quick) -> None:
    out, _ = quick
    text = (out / "ETTh1_results.md").read_text(encoding="utf-8")
    expected = {
        "Titans (paper, Table 3)": "| 0.420 | 0.421 |",
        "iTransformer (published)": "| 0.454 | 0.447 |",
        "PatchTST (published)": "| 0.469 | 0.454 |",
        "DLinear (published)": "| 0.456 | 0.452 |",
    }
    lines = text.splitlines()
    for model, tail in expected.items():
        line = next(line for line in lines if line.startswith(f"| {model} |"))
        assert line.endswith(tail), line
    for model in (recipe.TITANS, recipe.RIDGE, recipe.CYCLE, recipe.LAST):
        assert any(line.startswith(f"| {model} |") for line in lines), model
    assert "Hardware: CPU" in text or "Hardware: GPU" in text
    assert "Reduced budget" in text and "--quick smoke run" in text
    assert "not comparable" in text  # one horizon only: the averages are flagged
    rows = _rows(out)
    published = {r["model"]: float(r["mse"]) for r in rows if r["horizon"] == "avg4"}
    assert published["Titans (paper, Table 3)"] == pytest.approx(0.420)


def test_baselines_match_independent_computations(quick, etth1: pathlib.Path) -> None:
    out, _ = quick
    got = {r["model"]: r for r in _rows(out) if r["horizon"] == str(H)}
    # ridge: the baselines module's own numpy harness (iter_windows) gives the same numbers
    (reference,) = run_long_horizon_baselines("ETTh1", horizons=[H], path=str(etth1))
    assert float(got[recipe.RIDGE]["mse"]) == pytest.approx(reference["test_mse"], rel=1e-9)
    assert float(got[recipe.RIDGE]["mae"]) == pytest.approx(reference["test_mae"], rel=1e-9)
    # repeat-last: brute force over every test window
    test = load_long_horizon("ETTh1", lookback=96, horizon=H, path=etth1).test.astype(float)
    windows = sliding_window_view(test, 96 + H, axis=0)  # (n, C, L + H)
    assert windows.shape[0] == TEST_WINDOWS
    err = windows[:, :, 96:] - windows[:, :, 95:96]
    assert float(got[recipe.LAST]["mse"]) == pytest.approx(float(np.mean(err**2)), rel=1e-9)
    assert float(got[recipe.LAST]["mae"]) == pytest.approx(float(np.mean(np.abs(err))),
                                                            rel=1e-9)


def test_titans_metrics_do_not_depend_on_batch_size(quick, etth1: pathlib.Path) -> None:
    out, result = quick
    est = result["estimators"][H]
    test = load_long_horizon("ETTh1", lookback=96, horizon=H, path=etth1).windows("test")
    predict = recipe.titans_predictor(est)
    sizes: list[int] = []

    def counting(x: torch.Tensor, first: int) -> torch.Tensor:
        sizes.append(x.shape[0])
        return predict(x, first)

    small = recipe.evaluate(counting, test, batch_size=1000)
    assert sizes == [1000, 1000, 785]  # the short last batch is scored too
    whole = recipe.evaluate(predict, test, batch_size=len(test))
    assert small["n_values"] == whole["n_values"] == TEST_WINDOWS * H * C
    assert small["mse"] == pytest.approx(whole["mse"], rel=1e-6)
    assert small["mae"] == pytest.approx(whole["mae"], rel=1e-6)
    titans = next(r for r in _rows(out) if r["model"] == recipe.TITANS)
    assert float(titans["mse"]) == pytest.approx(small["mse"], rel=1e-6)


class _RepeatLast(torch.nn.Module):
    def forward(self, x: torch.Tensor, season: torch.Tensor | None = None) -> ForecastOutput:
        assert season is None  # no seasonal profile on the stand-in estimator
        return ForecastOutput(x[:, -1:, :].repeat(1, 3, 1), None)


def test_titans_predictor_maps_through_the_estimator_scaler() -> None:
    # a stand-in estimator whose scaler is far from the identity: the predictor must map
    # protocol-scale inputs into it and the forecasts back
    est = types.SimpleNamespace(
        model_=_RepeatLast(), scaler_mean_=np.array([3.0, -1.0]), scaler_std_=np.array([2.0, 0.5]),
        lookback_=8, horizon_=3, seasonal_profile_=None, linear_start_=None,
        channel_mixing=False,
    )
    x = torch.randn(4, 8, 2)
    got = recipe.titans_predictor(est)(x, 0)
    assert torch.allclose(got, x[:, -1:, :].double().repeat(1, 3, 1), atol=1e-6)


def test_evaluate_rejects_bad_batch_size() -> None:
    windows = WindowDataset(np.zeros((20, 2), dtype=np.float32), 4, 3)
    with pytest.raises(ValueError, match="batch_size"):
        recipe.evaluate(lambda x, first: x, windows, batch_size=0)


def test_cycle_baseline_is_the_estimators_linear_start(quick, etth1: pathlib.Path) -> None:
    """The cycle-ridge row is the estimator's closed-form start, placed at the right phase:
    an independent numpy computation (profile from the train split's rows by absolute row
    index, per-window adaptive or fixed amplitude) gives the same test MSE."""
    out, result = quick
    est = result["estimators"][H]
    row = next(r for r in _rows(out) if r["model"] == recipe.CYCLE and r["horizon"] == str(H))
    mode, period = row["seasonality"], int(row["seasonal_period"])
    assert period == 24 and mode == est.linear_start_.mode
    splits = load_long_horizon("ETTh1", lookback=96, horizon=H, path=etth1)
    mean, std = est.scaler_mean_, est.scaler_std_
    train = (splits.train.astype(float) - mean) / std
    phase = np.arange(len(train)) % period
    profile = np.stack([train[phase == p].mean(axis=0) for p in range(period)])
    test = (splits.test.astype(float) - mean) / std
    q = profile[(splits.borders["test"][0] + np.arange(len(test))) % period]
    w = sliding_window_view(np.concatenate([test, q], axis=1), 96 + H, axis=0)
    w = w.transpose(0, 2, 1)  # (n, L + H, 2C)
    x, y, qx, qy = w[:, :96, :C], w[:, 96:, :C], w[:, :96, C:], w[:, 96:, C:]
    if mode == "adaptive":
        xc, qc = x - x.mean(1, keepdims=True), qx - qx.mean(1, keepdims=True)
        g = np.clip((xc * qc).sum(1, keepdims=True) / (qc * qc).sum(1, keepdims=True), 0, 1.5)
    else:
        g = np.ones((len(x), 1, C))
    r = x - g * qx
    feats = (r[:, :-1] - r[:, -1:]).transpose(0, 2, 1)  # (n, C, L - 1)
    start = est.linear_start_
    pred = (feats @ start.coef + start.intercept).transpose(0, 2, 1) + r[:, -1:] + g * qy
    err = (pred - y) * std  # back to the protocol scale
    assert float(row["mse"]) == pytest.approx(float(np.mean(err**2)), rel=1e-6)
