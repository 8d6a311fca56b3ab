"""Checks of ``recipes/genomics.py`` (GUE / Genomic Benchmarks recipe) on the real data.

The data are found through ``TITANS_TS_DATA_DIR`` (shared data layout: ``dna/gue/...`` and
``dna/genomic_benchmarks_test/...``); without them the tests that need them are skipped with
the reason. The runs are ``--quick`` (256 training sequences, one epoch) or a 100-sequence
cross-validation with a one-layer network, so the file takes well under a minute on 2 cores.
"""

from __future__ import annotations

import csv
import json
import math
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
from _scripts import ROOT, load_recipe
from sklearn.metrics import matthews_corrcoef

from titans_ts.datasets.genomics import load_genomic_benchmark_test
from titans_ts.estimators import CLASSIFIER_DEFAULTS, TitansSequenceClassifier

RECIPE = ROOT / "recipes" / "genomics.py"


recipe = load_recipe("genomics.py")


def _data_root() -> pathlib.Path:
    value = os.environ.get("TITANS_TS_DATA_DIR", "").strip()
    if not value:
        pytest.skip("TITANS_TS_DATA_DIR is not set; point it at the shared data folder")
    return pathlib.Path(value).expanduser()


@pytest.fixture(scope="module")
def gue_dir() -> pathlib.Path:
    root = _data_root()
    for task in ("mouse/0", "mouse/2"):
        for split in ("train", "dev", "test"):
            path = root / "dna" / "gue" / task / f"{split}.csv.gz"
            if not path.is_file():
                pytest.skip(f"{path} not found (TITANS_TS_DATA_DIR={root})")
    return root


@pytest.fixture(scope="module")
def gb_test_file() -> pathlib.Path:
    root = _data_root()
    path = root / "dna" / "genomic_benchmarks_test" / "human_nontata_promoters_test.csv.gz"
    if not path.is_file():
        pytest.skip(f"{path} not found (TITANS_TS_DATA_DIR={root})")
    return path


@pytest.fixture(scope="module")
def quick(gue_dir: pathlib.Path, tmp_path_factory: pytest.TempPathFactory):
    """Two --quick runs into one folder (mouse/0 with the baseline, mouse/2 without)."""
    out = tmp_path_factory.mktemp("genomics")
    common = ["--quick", "--device", "cpu", "--data-dir", str(gue_dir), "--out", str(out)]
    argv0 = ["--tasks", "mouse/0", *common, "--save-proba"]
    rows0 = recipe.main(argv0)
    rows2 = recipe.main(
        ["--tasks", "mouse/2", "--no-baseline", "--save-proba", "--save-model", *common]
    )
    return out, argv0, rows0, rows2


def _read(path: pathlib.Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# --------------------------------------------------------------------------- end to end


def test_quick_run_writes_csv_and_markdown(quick) -> None:
    out, argv0, rows0, _ = quick
    tag = "genomics_gue-mouse0_quick"
    csv_path, md_path = out / f"{tag}.csv", out / f"{tag}.md"
    assert csv_path.stat().st_size > 0 and md_path.stat().st_size > 0
    rows = _read(csv_path)
    assert [r["model"] for r in rows] == [recipe.TITANS, recipe.KMER]
    assert len(rows0) == 2
    for row in rows:
        assert row["task"] == "mouse/0" and row["benchmark"] == recipe.GUE
        mcc, acc = float(row["mcc"]), float(row["accuracy"])
        assert math.isfinite(mcc) and -100.0 <= mcc <= 100.0
        assert 0.0 <= acc <= 100.0
        assert int(row["n_train"]) == recipe.QUICK_TRAIN  # stratified subsample of train
        assert int(row["n_train_available"]) == 6478
        assert int(row["n_test"]) == recipe.QUICK_EVAL
        assert row["quick"] == "True"
        assert row["hardware"].startswith("CPU ")
        assert row["command"] == "python recipes/genomics.py " + " ".join(argv0)
    titans = rows[0]
    assert titans["epochs_run"] == "1" and titans["seed"] == "0"
    assert float(titans["fit_seconds"]) > 0
    params = json.loads(titans["params"])
    assert params["max_epochs"] == 1 and params["random_state"] == 0
    assert params["accelerator"] == "cpu"
    resolved = json.loads(titans["resolved"])
    # kmer_k="auto" (the default): 4-mers and 6-mers tried on dev; 6-mers kept only when
    # their dev loss is lower by more than one standard error of the paired difference
    # (auto_margin=1); 101-nt sequences -> 102 - k overlapping k-mer tokens
    scores = {int(k): v for k, v in resolved["kmer_k_dev_loss"].items()}
    margin = {int(k): v for k, v in resolved["kmer_k_margin"].items()}
    assert set(scores) == set(margin) == {4, 6}
    lowest = min(scores, key=scores.get)
    assert margin[lowest] == [0.0, 0.0] and margin[10 - lowest][1] > 0
    assert margin[10 - lowest][0] == pytest.approx(
        scores[10 - lowest] - scores[lowest], abs=1e-3
    )
    assert resolved["kmer_k"] == (4 if margin[4][0] <= margin[4][1] else 6)
    assert resolved["d_model"] == 32 and resolved["window"] == 102 - resolved["kmer_k"]
    # position_embedding="auto" (the default): the chosen size refitted with positions
    # (and, when they are kept, the other size with positions too)
    pos = resolved["position_dev_loss"]
    chosen = str(resolved["position_embedding"]).lower()
    assert set(pos) == {"false", "true"} and pos[chosen] == scores[resolved["kmer_k"]]
    off = resolved["position_margin"]["false"]
    assert resolved["position_embedding"] == (off[0] > off[1])
    search = resolved["search"]
    assert [s[:2] for s in search[:2]] == [[4, False], [6, False]]
    assert len(search) == (4 if resolved["position_embedding"] else 3)
    assert [resolved["kmer_k"], resolved["position_embedding"], pos[chosen]] in search
    history = json.loads(titans["history"])  # [[epoch, train_loss, val_loss, lr], ...]
    assert len(history) == 1 and history[0][0] == 1
    assert math.isfinite(history[0][1]) and math.isfinite(history[0][2])
    # learning_rate=None: the small-set rate (quick subsample) is the one resolved and used
    assert params["learning_rate"] is None
    assert resolved["learning_rate"] == CLASSIFIER_DEFAULTS.learning_rate_small
    assert resolved["lr_decay"] is None  # below large_from_samples: a constant rate
    assert history[0][3] == pytest.approx(resolved["learning_rate"])  # one epoch: no decay yet
    assert rows[1]["C"] != ""

    text = md_path.read_text(encoding="utf-8")
    header = (
        "| task | Titans MCC | Titans acc | k-mer MCC | k-mer acc | DNABERT-2 MCC | "
        "Titans − k-mer | notes |"
    )
    assert header in text
    line = next(x for x in text.splitlines() if x.startswith("| mouse/0 |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[3] != "–" and cells[4] != "–"  # the baseline columns are filled
    assert float(cells[3]) == pytest.approx(float(rows[1]["mcc"]), abs=0.006)
    assert cells[5] == "56.76"
    assert "--quick smoke run" in cells[7] and "train subsampled" in cells[7]
    assert "Command: `python recipes/genomics.py --tasks mouse/0 --quick" in text


def test_save_proba_writes_the_scored_probabilities(quick) -> None:
    out, _, _, rows2 = quick
    (titans,) = [r for r in rows2 if r["model"] == recipe.TITANS]
    path = out / "genomics_gue-mouse2_quick_mouse_2_seed0_test_proba.npz"
    data = np.load(path, allow_pickle=False)
    proba, classes, y = data["proba"], data["classes"], data["y"]
    assert proba.shape == (recipe.QUICK_EVAL, len(classes)) == (titans["n_test"], 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    pred = classes[np.argmax(proba, axis=1)]
    assert 100.0 * matthews_corrcoef(y, pred) == pytest.approx(titans["mcc"])
    dev = np.load(str(path).replace("_test_proba", "_dev_proba"), allow_pickle=False)
    assert dev["proba"].shape == (titans["n_val"], 2) and len(dev["y"]) == titans["n_val"]
    np.testing.assert_allclose(dev["proba"].sum(axis=1), 1.0, rtol=1e-6)
    assert set(np.unique(dev["y"])) <= set(classes)


def test_save_model_reloads_the_scored_classifier(quick, gue_dir) -> None:
    out, _, _, rows2 = quick
    (titans,) = [r for r in rows2 if r["model"] == recipe.TITANS]
    stem = out / "genomics_gue-mouse2_quick_mouse_2_seed0"
    clf = TitansSequenceClassifier.load(f"{stem}_model")
    assert json.loads(titans["resolved"])["kmer_k"] == clf.kmer_k_
    assert len(clf.history_) == titans["epochs_run"]
    # the reloaded network gives the saved probabilities on the same (subsampled) test split
    splits = recipe.load_gue(recipe.resolve_task("mouse/2"), path=gue_dir)
    test = recipe.stratified_subsample(splits["test"], recipe.QUICK_EVAL)
    saved = np.load(f"{stem}_test_proba.npz", allow_pickle=False)
    np.testing.assert_array_equal(saved["y"], test.labels)
    np.testing.assert_allclose(clf.predict_proba(test.sequences), saved["proba"], atol=1e-6)


def test_save_proba_writes_the_baselines_probabilities(quick) -> None:
    out, _, rows0, _ = quick
    (kmer,) = [r for r in rows0 if r["model"] == recipe.KMER]
    stem = out / "genomics_gue-mouse0_quick_mouse_0"
    data = np.load(f"{stem}_kmer_test_proba.npz", allow_pickle=False)
    proba, classes, y = data["proba"], data["classes"], data["y"]
    assert proba.shape == (kmer["n_test"], 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    pred = classes[np.argmax(proba, axis=1)]
    assert 100.0 * matthews_corrcoef(y, pred) == pytest.approx(kmer["mcc"])
    # averaged with the Titans fit of the same run: one more model, scored like the others
    rows = recipe.average_proba([f"{stem}_seed0_test_proba.npz", f"{stem}_kmer_test_proba.npz"])
    assert rows[-1]["name"] == "average" and rows[1]["mcc"] == pytest.approx(kmer["mcc"])


def test_report_from_merges_per_task_csvs(quick, capsys: pytest.CaptureFixture) -> None:
    out = quick[0]
    summaries = recipe.main(["--report-from", str(out)])
    assert [s["task"] for s in summaries] == ["mouse/0", "mouse/2"]
    md = (out / "genomics_results.md").read_text(encoding="utf-8")
    assert md in capsys.readouterr().out
    assert "genomics_gue-mouse0_quick.csv" in md and "genomics_gue-mouse2_quick.csv" in md
    results_table = md.split("Published GUE test MCC")[0]
    table = [x for x in results_table.splitlines() if x.startswith("| mouse/")]
    assert [x.split("|")[1].strip() for x in table] == ["mouse/0", "mouse/2"]
    rows = {r["task"]: r for r in _read(out / "genomics_results.csv")}
    assert set(rows) == {"mouse/0", "mouse/2"}
    assert float(rows["mouse/2"]["dnabert2_mcc"]) == 79.32
    assert rows["mouse/2"]["kmer_mcc"] == "" and "no baseline" in rows["mouse/2"]["notes"]
    assert rows["mouse/0"]["kmer_mcc"] != ""
    delta = float(rows["mouse/0"]["titans_mcc"]) - float(rows["mouse/0"]["kmer_mcc"])
    assert float(rows["mouse/0"]["titans_minus_kmer"]) == pytest.approx(delta)
    # the combined files are not read back as per-run CSVs
    again = recipe.main(["--report-from", str(out)])
    assert [s["task"] for s in again] == ["mouse/0", "mouse/2"]


def test_report_from_empty_folder_is_a_clear_error(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        recipe.main(["--report-from", str(tmp_path)])
    assert "no per-run CSVs" in capsys.readouterr().err


# --------------------------------------------------------------------------- --set


def test_set_parsing_types() -> None:
    got = recipe.parse_set(
        ["d_model=64", "learning_rate=3e-4", "window=None", "variant=mac", "rc_augment=False"]
    )
    assert got == {
        "d_model": 64,
        "learning_rate": 3e-4,
        "window": None,
        "variant": "mac",
        "rc_augment": False,
    }
    assert type(got["d_model"]) is int and type(got["learning_rate"]) is float
    assert recipe.parse_set(["class_weight=balanced", "max-epochs=3"]) == {
        "class_weight": "balanced",
        "max_epochs": 3,
    }


def test_set_bad_key_is_a_clear_error(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(ValueError, match="'d_modle' is not a TitansSequenceClassifier"):
        recipe.parse_set(["d_modle=64"])
    with pytest.raises(ValueError, match="key=value"):
        recipe.parse_set(["d_model"])
    with pytest.raises(ValueError, match="--seeds"):
        recipe.parse_set(["random_state=3"])
    with pytest.raises(SystemExit):
        recipe.main(["--tasks", "mouse/0", "--set", "d_modle=64"])
    err = capsys.readouterr().err
    assert "d_modle" in err and "valid keys" in err and "d_model" in err
    with pytest.raises(SystemExit):  # a bad value fails before any data is read
        recipe.main(["--tasks", "mouse/0", "--set", "n_layers=0"])
    assert "n_layers" in capsys.readouterr().err


def test_unknown_task_is_a_clear_error(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        recipe.main(["--tasks", "mouse/1"])
    assert "unknown GUE task 'mouse/1'" in capsys.readouterr().err
    assert recipe.resolve_task("prom_core_all") == "prom/prom_core_all"
    assert recipe.resolve_task("prom/prom_300_tata") == "prom/prom_300_tata"
    assert recipe.resolve_task("tf/2") == "tf/2"


def test_default_tags_differ_per_task() -> None:
    tags = {recipe.default_tag([t], [], [0], False) for t in recipe.DEFAULT_TASKS}
    assert len(tags) == len(recipe.DEFAULT_TASKS)
    assert recipe.default_tag(list(recipe.DEFAULT_TASKS), [], [0], False) == "genomics_gue-all"
    assert recipe.default_tag(["tf/0"], [], [0, 1], True) == "genomics_gue-tf0_seeds0-1_quick"


# --------------------------------------------------------------------------- CV path


def test_cv_on_official_test_split(gb_test_file: pathlib.Path, tmp_path: pathlib.Path) -> None:
    full = load_genomic_benchmark_test("human_nontata_promoters", path=gb_test_file)
    split = recipe.stratified_subsample(full, 100)
    assert len(split) == 100
    share = float(np.mean(full.labels))
    assert abs(float(np.mean(split.labels)) - share) < 0.02  # stratified
    args = recipe.parse_args(
        ["--tasks", "--genomic-benchmarks", "human_nontata_promoters", "--device", "cpu"]
        + ["--max-epochs", "1", "--set", "d_model=16", "--set", "n_layers=1"]
        + ["--out", str(tmp_path)]
    )
    assert args.tasks == [] and args.tag == "genomics_gb-human_nontata_promoters"
    rows = recipe.cross_validate(args, split)
    titans = [r for r in rows if r["model"] == recipe.TITANS]
    kmer = [r for r in rows if r["model"] == recipe.KMER]
    assert [r["fold"] for r in titans] == list(range(5)) == [r["fold"] for r in kmer]
    assert sum(r["n_test"] for r in titans) == 100  # the folds partition the split
    for row in rows:
        assert row["protocol"] == "5-fold CV on official test split"
        assert row["n_test"] == 20 and row["n_val"] == 8 and row["n_train"] == 72
        assert math.isfinite(row["accuracy"]) and math.isfinite(row["mcc"])
    (summary,) = recipe.summarise(rows)
    assert summary["metric"] == "accuracy" and summary["n_seeds"] == 1
    assert summary["titans_accuracy"] == pytest.approx(np.mean([r["accuracy"] for r in titans]))
    assert summary["kmer_accuracy"] == pytest.approx(np.mean([r["accuracy"] for r in kmer]))
    assert summary["titans_minus_kmer"] == pytest.approx(
        summary["titans_accuracy"] - summary["kmer_accuracy"]
    )
    assert "5-fold CV on official test split" in summary["notes"]
    assert "mean of 5 folds" in summary["notes"] and "96.6" in summary["notes"]
    table = recipe.markdown_table([summary])
    assert "| human_nontata_promoters |" in table and "5-fold CV" in table


def test_cv_folds_runs_only_the_chosen_folds(
    gb_test_file: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture
) -> None:
    full = load_genomic_benchmark_test("human_nontata_promoters", path=gb_test_file)
    split = recipe.stratified_subsample(full, 100)
    base = ["--tasks", "--genomic-benchmarks", "human_nontata_promoters", "--device", "cpu",
            "--baseline-only", "--out", str(tmp_path)]
    every = recipe.cross_validate(recipe.parse_args(base), split)
    args = recipe.parse_args(base + ["--cv-folds", "4", "2", "4"])
    assert args.cv_folds == [2, 4]
    rows = recipe.cross_validate(args, split)
    assert [r["fold"] for r in rows] == [1, 3]
    for row in rows:  # the same folds, hold-outs and fits as in the full run
        same = next(r for r in every if r["fold"] == row["fold"])
        assert row["accuracy"] == same["accuracy"] and row["n_test"] == same["n_test"]
    (summary,) = recipe.summarise(rows)
    assert "mean of 2 folds" in summary["notes"]
    with pytest.raises(SystemExit):
        recipe.parse_args(base + ["--cv-folds", "6"])
    assert "folds are numbered 1 to 5" in capsys.readouterr().err


def test_full_copy_uses_official_train_test(
    gb_test_file: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """With a full copy in the upstream layout, the official train/test protocol is used."""
    name = "human_nontata_promoters"
    full = load_genomic_benchmark_test(name, path=gb_test_file)
    pool = recipe.stratified_subsample(full, 80)
    root = tmp_path / "gb"
    order = np.random.default_rng(0).permutation(80)  # the file is sorted by class
    for split, rows in (("train", order[:60]), ("test", order[60:])):
        for i in rows:
            cls = full.classes[pool.labels[i]]
            folder = root / name / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i}.txt").write_text(pool.sequences[i])
    args = recipe.parse_args(
        ["--tasks", "--genomic-benchmarks", name, "--gb-root", str(root), "--device", "cpu"]
        + ["--max-epochs", "1", "--set", "d_model=16", "--set", "n_layers=1"]
        + ["--out", str(tmp_path / "out")]
    )
    rows = recipe.run_genomic_benchmark(args, name)
    assert [r["model"] for r in rows] == [recipe.TITANS, recipe.KMER]
    for row in rows:
        assert row["protocol"] == recipe.PROTOCOL_GB and "fold" not in row
        assert (row["n_train"], row["n_val"], row["n_test"]) == (54, 6, 20)
    (summary,) = recipe.summarise(rows)
    assert recipe.PROTOCOL_GB in summary["notes"] and "CV" not in summary["notes"]


def test_seed_mean_and_std() -> None:
    rows = [
        {
            "tag": "t",
            "task": "tf/0",
            "benchmark": "GUE",
            "model": "Titans",
            "seed": s,
            "mcc": m,
            "accuracy": a,
            "epochs_run": 3,
            "max_epochs": 20,
        }
        for s, m, a in ((0, 50.0, 70.0), (1, 54.0, 74.0))
    ] + [
        {
            "tag": "t",
            "task": "tf/0",
            "benchmark": "GUE",
            "model": "k-mer LR",
            "mcc": 40.0,
            "accuracy": 65.0,
        }
    ]
    (s,) = recipe.summarise(rows)
    assert s["titans_mcc"] == 52.0 and s["titans_mcc_std"] == pytest.approx(np.sqrt(8.0))
    assert s["titans_minus_kmer"] == 12.0 and s["n_seeds"] == 2
    assert "52.00 ± 2.83" in recipe.markdown_table([s])


def test_baseline_is_borrowed_from_a_run_on_the_same_data() -> None:
    def row(tag, model, mcc, n_train=100):
        return {"tag": tag, "task": "tf/2", "benchmark": "GUE", "protocol": "p",
                "model": model, "seed": 0, "mcc": mcc, "accuracy": 70.0, "n_train": n_train}

    rows = [
        row("gpu_a", "Titans", 60.0),
        row("gpu_b", "Titans", 58.0),
        row("sub", "Titans", 50.0, n_train=50),  # another training set: nothing to borrow
        row("cpu", "k-mer LR", 55.0),  # a --baseline-only run on the full train split
    ]
    by_tag = {s["tag"]: s for s in recipe.summarise(rows)}
    assert set(by_tag) == {"gpu_a", "gpu_b", "sub"}  # the lender's own row is absorbed
    assert by_tag["gpu_a"]["titans_minus_kmer"] == 5.0
    assert by_tag["gpu_b"]["titans_minus_kmer"] == 3.0
    assert "k-mer baseline from run cpu (same data)" in by_tag["gpu_a"]["notes"]
    assert by_tag["sub"]["kmer_mcc"] is None and "no baseline" in by_tag["sub"]["notes"]
    # nobody to lend to: the baseline-only run is a row of its own
    (alone,) = recipe.summarise([row("cpu", "k-mer LR", 55.0)])
    assert alone["kmer_mcc"] == 55.0 and "baseline only" in alone["notes"]


def test_dev_split_choice_ignores_the_test_split() -> None:
    def row(tag, model, mcc, dev_losses, task="tf/2", n_train=100, seed=0):
        history = json.dumps([[i + 1, 0.5, v] for i, v in enumerate(dev_losses)])
        return {"tag": tag, "task": task, "benchmark": "GUE", "protocol": "p", "model": model,
                "seed": seed, "mcc": mcc, "accuracy": 70.0, "n_train": n_train,
                "history": history if model == "Titans" else ""}

    rows = [
        row("k4", "Titans", 66.0, [0.60, 0.52, 0.55]),  # best test MCC, worse dev loss
        row("k6", "Titans", 61.0, [0.58, 0.49, 0.50]),  # lowest dev loss: chosen
        row("k6", "Titans", 63.0, [0.57, 0.51], seed=1),  # second seed: mean dev 0.50
        row("sub", "Titans", 70.0, [0.30], n_train=50),  # another training set
        row("kmer", "k-mer LR", 55.0, []),
        row("alone", "Titans", 40.0, [0.7], task="tf/1"),  # one candidate: no choice
    ]
    summaries = recipe.summarise(rows)
    by_tag = {s["tag"]: s for s in summaries}
    assert by_tag["k6"]["titans_dev_loss"] == pytest.approx(0.50)
    (chosen,) = recipe.select_on_dev(summaries)
    assert chosen["tag"] == "k6" and chosen["candidates"] == 2
    assert chosen["titans_mcc"] == 62.0 and chosen["titans_minus_kmer"] == 7.0
    assert chosen["others"] == "k4 0.5200/66.00"
    report, _ = recipe.render_report(rows, "t")
    assert "Chosen on the dev split" in report and "| tf/2 | k6 | defaults | 0.5000 |" in report


def test_baseline_only_excludes_no_baseline(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        recipe.main(["--tasks", "mouse/0", "--baseline-only", "--no-baseline"])
    assert "exclude each other" in capsys.readouterr().err


# --------------------------------------------------------------------------- published


EXPECTED_MCC = {
    "DNABERT-2": [69.37, 68.04, 74.17, 71.59, 71.99, 76.06, 66.52, 56.76, 79.32],
    "NT-2500M-multi": [70.33, 71.58, 72.97, 79.43, 66.64, None, None, 63.31, 71.52],
    "CNN": [58.07, 60.09, 69.33, 70.30, 53.95, 63.20, 45.22, 31.14, 63.15],
}
GB_ORDER = [
    "human_enhancers_cohn",
    "human_enhancers_ensembl",
    "human_ensembl_regulatory",
    "human_nontata_promoters",
    "human_ocr_ensembl",
]
EXPECTED_ACC = {
    "Titans (paper, LMM)": [75.2, 89.6, 89.3, 96.6, 79.9],
    "HyenaDNA": [74.2, 89.2, 93.8, 96.6, 80.9],
}


def _check_published(mcc: dict, acc: dict) -> None:
    for model, values in mcc.items():
        want = {t: v for t, v in zip(recipe.DEFAULT_TASKS, values) if v is not None}
        assert recipe.PUBLISHED[model] == want, model
        assert recipe.PUBLISHED_METRIC[model] == "mcc"
    for model, values in acc.items():
        assert recipe.PUBLISHED[model] == dict(zip(GB_ORDER, values)), model
        assert recipe.PUBLISHED_METRIC[model] == "accuracy"


def test_published_values_match_design() -> None:
    assert recipe.DEFAULT_TASKS == (
        "prom_core_all",
        "prom_core_notata",
        "prom_core_tata",
        "prom_300_tata",
        "tf/0",
        "tf/1",
        "tf/2",
        "mouse/0",
        "mouse/2",
    )
    _check_published(EXPECTED_MCC, EXPECTED_ACC)
    assert set(recipe.PUBLISHED) == set(EXPECTED_MCC) | set(EXPECTED_ACC)


def test_published_values_parse_from_design_md() -> None:
    """When DESIGN.md is at hand, read §5's numbers from it rather than from a transcription."""
    candidates = [
        ROOT / "DESIGN.md",
        ROOT / "docs" / "DESIGN.md",
        ROOT.parent / "shared" / "DESIGN.md",
    ]
    design = next((p for p in candidates if p.is_file()), None)
    if design is None:
        pytest.skip("DESIGN.md not found next to the repository")
    text = " ".join(design.read_text(encoding="utf-8").split())
    gue = re.search(
        r"Published DNABERT-2 MCC: (.*?) \(NT-2500M-multi: (.*?); the paper's CNN "
        r"baseline: (.*?)\)",
        text,
    )
    assert gue, "GUE sentence of DESIGN §5 not found"
    pairs = re.findall(r"([\w/]+) (\d+\.\d+)", gue.group(1))
    assert [t for t, _ in pairs] == list(recipe.DEFAULT_TASKS)

    def values(group: str) -> list[float | None]:
        return [None if v.strip() == "–" else float(v) for v in group.split(",")]

    mcc = {
        "DNABERT-2": [float(v) for _, v in pairs],
        "NT-2500M-multi": values(gue.group(2)),
        "CNN": values(gue.group(3)),
    }
    gb = re.search(r"Titans paper \(LMM\): (.*?); HyenaDNA ((?:\d+\.\d, )*\d+\.\d)", text)
    assert gb, "Genomic Benchmarks sentence of DESIGN §5 not found"
    names = re.findall(r"([A-Za-z -]+?) (\d+\.\d)", gb.group(1))
    assert [n.strip(" ,") for n, _ in names] == [
        "Enhancer Cohn",
        "Enhancer Ensembl",
        "Human Regulatory",
        "Non-TATA Promoters",
        "Human OCR",
    ]
    acc = {
        "Titans (paper, LMM)": [float(v) for _, v in names],
        "HyenaDNA": [float(v) for v in gb.group(2).split(",")],
    }
    _check_published(mcc, acc)


# --------------------------------------------------------------------------- dependencies


def test_imports_without_polars_gluonts_biopython() -> None:
    """The recipe must run where only torch, lightning, pandas and scikit-learn are installed."""
    code = f"""
import importlib.util, sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("polars", "gluonts", "Bio"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Blocker())
spec = importlib.util.spec_from_file_location("genomics_recipe", {str(RECIPE)!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.build_parser()
module.parse_set(["d_model=16"])
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


def test_average_proba_scores_each_file_and_the_mean(tmp_path, capsys) -> None:
    y = np.array(["a", "b", "a", "b", "a", "b"])
    classes = np.array(["a", "b"])
    p1 = np.array([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.2, 0.8]])
    p2 = np.array([[0.7, 0.3], [0.1, 0.9], [0.3, 0.7], [0.6, 0.4], [0.7, 0.3], [0.45, 0.55]])
    paths = []
    for i, p in enumerate((p1, p2)):
        paths.append(tmp_path / f"s{i}.npz")
        np.savez(paths[-1], classes=classes, proba=p, y=y)
    rows = recipe.main(["--average-proba", *map(str, paths)])
    assert [r["name"] for r in rows] == ["s0.npz", "s1.npz", "average"]
    # s0 misses sample 1 and 4; s1 misses 2 and 3; the mean misses none
    assert [r["accuracy"] for r in rows] == pytest.approx([100 * 4 / 6, 100 * 4 / 6, 100.0])
    assert rows[2]["mcc"] == pytest.approx(100.0)
    # the true class's probability, sequence by sequence
    l0 = -np.log([0.9, 0.4, 0.8, 0.7, 0.4, 0.8])
    l1 = -np.log([0.7, 0.9, 0.3, 0.4, 0.7, 0.55])
    assert rows[0]["log_loss"] == pytest.approx(l0.mean()) and rows[0]["log_loss_vs_first"] is None
    assert rows[1]["log_loss"] == pytest.approx(l1.mean())
    diff = l1 - l0
    assert rows[1]["log_loss_vs_first"] == pytest.approx((diff.mean(), diff.std(ddof=1) / 6**0.5))
    assert "average" in capsys.readouterr().out
    np.savez(tmp_path / "other.npz", classes=classes, proba=p1, y=y[::-1])
    with pytest.raises(SystemExit):
        recipe.main(["--average-proba", str(paths[0]), str(tmp_path / "other.npz")])
    assert "other classes or test labels" in capsys.readouterr().err


def test_mcc_of_resamples_matches_sklearn_on_each_resample() -> None:
    rng = np.random.default_rng(1)
    for n_classes in (2, 3):
        y = rng.integers(0, n_classes, 300)
        pred = np.where(rng.random(300) < 0.6, y, rng.integers(0, n_classes, 300))
        resamples = rng.integers(0, 300, (40, 300))
        expected = [matthews_corrcoef(y[i], pred[i]) for i in resamples]
        got = recipe._mcc_of_resamples(y, pred, n_classes, resamples)
        np.testing.assert_allclose(got, expected, atol=1e-12)
    constant = np.zeros(10, dtype=int)  # undefined MCC: 0, as sklearn
    assert recipe._mcc_of_resamples(constant, constant, 2, np.arange(10)[None]).tolist() == [0.0]


def test_average_proba_bootstrap_se_is_the_sampling_error(tmp_path) -> None:
    # independent coin-flip predictions: MCC ~ N(0, 1/n), so the SE is about 100/sqrt(n)
    rng = np.random.default_rng(2)
    n = 2000
    y = rng.choice(np.array(["neg", "pos"]), n)
    paths = []
    for i in range(2):
        p = rng.random(n)
        paths.append(tmp_path / f"r{i}.npz")
        np.savez(paths[-1], classes=np.array(["neg", "pos"]), proba=np.c_[1 - p, p], y=y)
    rows = recipe.average_proba(paths)
    for row in rows:
        assert row["mcc_se"] == pytest.approx(100 / np.sqrt(n), rel=0.1)
    perfect = tmp_path / "perfect.npz"
    np.savez(perfect, classes=np.array(["neg", "pos"]), proba=np.c_[y == "neg", y == "pos"], y=y)
    assert recipe.average_proba([perfect, perfect])[0]["mcc_se"] == 0.0
