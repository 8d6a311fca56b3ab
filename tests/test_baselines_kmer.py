"""Tests for the k-mer + logistic-regression baseline (titans_ts.baselines.kmer)."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.metrics import matthews_corrcoef

from titans_ts.baselines.kmer import (
    KmerLogisticBaseline,
    kmer_count_matrix,
    main,
    run_kmer_baseline,
)
from titans_ts.datasets.genomics import SequenceSplit
from titans_ts.datasets.synthetic_dna import make_planted_motif_splits


@pytest.fixture(scope="module")
def planted() -> dict[str, SequenceSplit]:
    splits, _ = make_planted_motif_splits(
        600, 200, 300, length=100, motif_length=8, plant_probability=0.9, seed=0
    )
    return splits


def test_count_matrix_equals_countvectorizer() -> None:
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), int(n))) for n in rng.integers(1, 40, 50)]
    ours = kmer_count_matrix(seqs, 3, 5)
    assert ours.shape == (50, 4**3 + 4**4 + 4**5)
    vectorizer = CountVectorizer(analyzer="char", ngram_range=(3, 5), lowercase=False)
    theirs = vectorizer.fit_transform(seqs)
    offsets = {3: 0, 4: 4**3, 5: 4**3 + 4**4}
    for kmer, column in vectorizer.vocabulary_.items():
        ours_column = offsets[len(kmer)] + int("".join(str("ACGT".index(c)) for c in kmer), 4)
        np.testing.assert_array_equal(
            ours[:, ours_column].toarray(), theirs[:, column].toarray(), err_msg=kmer
        )
    assert ours.sum() == theirs.sum()


def test_count_matrix_skips_n_and_checks_k() -> None:
    counts = kmer_count_matrix(["ACGNACG"], 3, 3)
    assert counts.sum() == 2 and counts[0, 6] == 2  # ACG twice; windows with N dropped
    with pytest.raises(ValueError, match="k_min <= k_max"):
        kmer_count_matrix(["ACGT"], 4, 3)


def test_baseline_beats_chance_on_planted_motifs(planted: dict[str, SequenceSplit]) -> None:
    result = run_kmer_baseline(
        planted["train"], planted["test"], planted["dev"], Cs=(0.01, 0.1, 1.0)
    )
    # 90% planted -> best possible accuracy about 95%; chance is 50% (MCC 0)
    assert result.accuracy > 80.0, result
    assert result.mcc > 60.0, result
    assert result.selection == "dev" and set(result.val_mcc) == {0.01, 0.1, 1.0}
    assert result.C in result.val_mcc
    # the probabilities are the scored model's: their argmax gives the reported MCC
    assert result.test_proba.shape == (len(planted["test"]), 2)
    np.testing.assert_allclose(result.test_proba.sum(axis=1), 1.0)
    pred = result.classes[np.argmax(result.test_proba, axis=1)]
    assert 100.0 * matthews_corrcoef(planted["test"].labels, pred) == pytest.approx(result.mcc)


def test_baseline_is_at_chance_with_shuffled_labels(planted: dict[str, SequenceSplit]) -> None:
    rng = np.random.default_rng(1)
    train = planted["train"]
    shuffled = SequenceSplit(
        train.frame.assign(label=rng.permutation(train.labels)),
        train.classes, train.name, "train", "shuffled",
    )
    result = run_kmer_baseline(shuffled, planted["test"], Cs=(0.1,))
    assert abs(result.mcc) < 20.0, result
    assert result.selection == "10% of train"


def test_baseline_api_errors() -> None:
    baseline = KmerLogisticBaseline()
    with pytest.raises(RuntimeError, match="not fitted"):
        baseline.predict(["ACGT"])
    with pytest.raises(RuntimeError, match="not fitted"):
        baseline.predict_proba(["ACGT"])
    with pytest.raises(ValueError, match="both val_sequences and val_labels"):
        baseline.fit(["ACGT", "TTTT"], np.array([0, 1]), val_sequences=["ACGT"])
    with pytest.raises(ValueError, match="transform must be"):
        KmerLogisticBaseline(transform="tfidf").fit(  # type: ignore[arg-type]
            ["ACGTAC"] * 10 + ["TTTTGG"] * 10, np.array([0] * 10 + [1] * 10)
        )


def test_cli_on_gue_layout(planted: dict[str, SequenceSplit], tmp_path: pathlib.Path) -> None:
    task_dir = tmp_path / "dna" / "gue" / "toy" / "0"
    task_dir.mkdir(parents=True)
    for split, data in planted.items():
        data.frame[["sequence", "label"]].to_csv(task_dir / f"{split}.csv", index=False)
    out = tmp_path / "results.json"
    code = main(
        ["--task", "toy/0", "--data-dir", str(tmp_path), "--C", "0.1", "--k-max", "5",
         "--json", str(out)]
    )
    assert code == 0
    (result,) = json.loads(out.read_text())
    assert result["task"] == "toy/0" and result["k_max"] == 5
    assert result["mcc"] > 60.0
