"""TitansSequenceClassifier: scikit-learn conventions, RC invariance, persistence,
determinism, bad inputs, and a tiny real fit on GUE mouse/2.

Fits use TINY settings (seconds each on 2 shared cores); one fitted model per module is
shared by the read-only tests.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.ensemble import VotingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, matthews_corrcoef
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from titans_ts.datasets.synthetic_dna import make_planted_motif_dataset
from titans_ts.encoders.dna import reverse_complement
from titans_ts.estimators import CLASSIFIER_DEFAULTS, TitansSequenceClassifier
from titans_ts.estimators import classifier as classifier_module
from titans_ts.estimators.classifier import _prefer_simpler
from titans_ts.heads.classification import (
    POOLINGS,
    masked_last,
    masked_max,
    masked_mean,
    masked_pool,
)
from titans_ts.training.sequence import (
    SequenceCollate,
    SequenceModelConfig,
    SubkmerEmbedding,
    TitansSequenceModel,
    build_sequence_backbone_config,
    pad_batch,
)

TINY: dict = {
    "d_model": 8,  # smallest width with an even head width for rotary embeddings (2 heads)
    "n_heads": 2,
    "n_layers": 1,
    "n_persistent": 2,
    "memory_chunk_size": 8,
    "window": 16,
    "max_epochs": 2,
    "batch_size": 16,
    "kmer_k": 4,  # one network per fit (the "auto" defaults train three; tested on their own)
    "position_embedding": False,
    "accelerator": "cpu",  # identical fits are promised on CPU only
    "random_state": 0,
}


def tiny(**changes) -> TitansSequenceClassifier:
    return TitansSequenceClassifier(**{**TINY, **changes})


def with_prediction_params(fitted: TitansSequenceClassifier, **params) -> TitansSequenceClassifier:
    """``fitted``'s trained state under other prediction-time ``params`` (no refit)."""
    est = clone(fitted).set_params(**params)
    est.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
    return est


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Small tensors gain nothing from intra-op threads on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def motif_data() -> tuple[list[str], np.ndarray]:
    """64 variable-length (20-40 nt) sequences with string labels ``"neg"``/``"pos"``."""
    split, _ = make_planted_motif_dataset(64, length=(20, 40), motif_length=6, seed=3)
    labels = np.where(split.labels == 1, "pos", "neg")
    return split.sequences, labels


@pytest.fixture(scope="module")
def fitted(motif_data) -> TitansSequenceClassifier:
    X, y = motif_data
    return tiny().fit(X, y)


# --------------------------------------------------------------------------- conventions


def test_init_stores_arguments_unvalidated():
    est = TitansSequenceClassifier(d_model=-3, variant="nope")
    assert est.d_model == -3 and est.variant == "nope"


def test_defaults_come_from_the_defaults_table():
    params = TitansSequenceClassifier().get_params()
    assert params["variant"] == CLASSIFIER_DEFAULTS.variant
    assert params["max_epochs"] == CLASSIFIER_DEFAULTS.max_epochs
    # chosen from the data
    assert params["learning_rate"] is None and params["d_model"] is None
    assert params["window"] is None


def test_get_set_params_clone_round_trip():
    est = TitansSequenceClassifier(d_model=16, class_weight={"a": 2.0}, random_state=3)
    params = est.get_params()
    copy = clone(est)
    assert copy is not est and copy.get_params() == params
    copy.set_params(d_model=32, rc_average=False)
    assert copy.d_model == 32 and copy.rc_average is False
    assert est.d_model == 16
    assert TitansSequenceClassifier(**params).get_params() == params


def test_clone_of_fitted_forgets_fit(fitted, motif_data):
    copy = clone(fitted)
    assert not hasattr(copy, "model_")
    with pytest.raises(NotFittedError):
        copy.predict(motif_data[0])


@pytest.mark.parametrize(
    "method", ["predict", "predict_proba", "decision_function", "transform", "score", "save"]
)
def test_not_fitted_error(method, motif_data, tmp_path):
    est = TitansSequenceClassifier()
    args = {"score": (motif_data[0], motif_data[1]), "save": (tmp_path / "m",)}.get(
        method, (motif_data[0],)
    )
    with pytest.raises(NotFittedError, match="TitansSequenceClassifier instance is not fitted"):
        getattr(est, method)(*args)


def test_is_a_classifier_with_string_input_tags():
    from sklearn.base import is_classifier
    from sklearn.utils import get_tags

    est = TitansSequenceClassifier(accelerator="cpu")
    assert is_classifier(est)
    tags = get_tags(est)
    assert tags.input_tags.string and not tags.non_deterministic


# --------------------------------------------------------------------------- predictions


def test_labels_of_any_type_and_probabilities(fitted, motif_data):
    X, _ = motif_data
    assert fitted.classes_.tolist() == ["neg", "pos"]
    pred = fitted.predict(X)
    assert pred.shape == (len(X),) and set(pred.tolist()) <= {"neg", "pos"}
    proba = fitted.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(proba >= 0)
    np.testing.assert_array_equal(pred, fitted.classes_[proba.argmax(axis=1)])
    np.testing.assert_allclose(np.exp(fitted.predict_log_proba(X)), proba, atol=1e-12)
    assert 0.0 <= fitted.score(X, motif_data[1]) <= 1.0


def test_integer_and_bool_labels_round_trip(motif_data):
    X, y = motif_data
    est = tiny(max_epochs=1, early_stopping=False)
    ints = np.where(y == "pos", 7, -2)
    assert est.fit(X, ints).classes_.tolist() == [-2, 7]
    assert set(est.predict(X[:5]).tolist()) <= {-2, 7}
    bools = pd.Series(y == "pos")
    assert est.fit(pd.Series(X), bools).classes_.tolist() == [False, True]


def test_rc_averaged_predictions_are_rc_invariant(fitted, motif_data):
    X, _ = motif_data
    rc = [reverse_complement(s) for s in X]
    a = fitted.predict_proba(X)
    b = fitted.predict_proba(rc)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fitted.transform(X), fitted.transform(rc), rtol=0, atol=1e-6)
    # without averaging the strands genuinely differ (the test above is not vacuous)
    single = with_prediction_params(fitted, rc_average=False)
    assert np.abs(single.predict_proba(X) - single.predict_proba(rc)).max() > 1e-6


def test_prediction_does_not_depend_on_batch_company(fitted, motif_data):
    """Padding is masked: a sequence alone gets the logits it gets in a padded batch."""
    X, _ = motif_data
    lengths = [len(s) for s in X]
    short = int(np.argmin(lengths))
    together = fitted.decision_function(X)[short]
    alone = fitted.decision_function([X[short]])[0]
    np.testing.assert_allclose(alone, together, rtol=1e-5, atol=1e-5)


def test_meanmax_pooling_doubles_the_embedding(motif_data):
    X, y = motif_data
    est = tiny(pooling="meanmax", max_epochs=1).fit(X, y)
    assert est.transform(X[:3]).shape == (3, 2 * TINY["d_model"])
    assert est.predict_proba(X[:3]).shape == (3, 2)


def test_transform_shape_and_pipeline_featurizer(fitted, motif_data):
    X, y = motif_data
    emb = fitted.transform(X)
    assert emb.shape == (len(X), fitted.config_.backbone.d_model) == (len(X), 8)
    assert emb.dtype == np.float64 and np.all(np.isfinite(emb))
    pipe = Pipeline([("emb", tiny(max_epochs=1)), ("lr", LogisticRegression())]).fit(X, y)
    assert pipe.predict(X).shape == (len(X),)


def test_accepts_lists_arrays_series_and_one_column_frames(fitted, motif_data):
    X, _ = motif_data
    ref = fitted.predict_proba(X[:6])
    for container in (
        tuple(X[:6]),
        np.array(X[:6], dtype=object),
        np.array(X[:6]),
        pd.Series(X[:6]),
        pd.DataFrame({"seq": X[:6]}),
        np.array(X[:6], dtype=object)[:, None],
    ):
        np.testing.assert_array_equal(fitted.predict_proba(container), ref)
    # soft-masked (lower-case) input is the same sequence
    np.testing.assert_array_equal(fitted.predict_proba([s.lower() for s in X[:6]]), ref)


# --------------------------------------------------------------------------- sklearn tools


def test_pipeline_cross_val_score_and_grid_search(motif_data):
    X, y = motif_data
    pipe = Pipeline(
        [
            ("upper", FunctionTransformer(lambda seqs: [s.upper() for s in seqs])),
            ("clf", tiny(max_epochs=1, early_stopping=False)),
        ]
    )
    scores = cross_val_score(pipe, X, y, cv=2)
    assert scores.shape == (2,) and np.all((0 <= scores) & (scores <= 1))
    grid = GridSearchCV(
        tiny(max_epochs=1, early_stopping=False), {"pooling": ["mean", "max"]}, cv=2
    ).fit(X, y)
    assert grid.best_params_["pooling"] in ("mean", "max")
    assert grid.predict(X[:3]).shape == (3,)


def test_soft_voting_is_a_seed_ensemble(motif_data, fitted):
    """``VotingClassifier(voting="soft")`` over seeds averages their probabilities exactly
    (the README's seed-ensemble recipe): the members are fitted as if alone."""
    X, y = motif_data
    vote = VotingClassifier(
        [("s0", tiny()), ("s1", tiny(random_state=1))], voting="soft"
    ).fit(X, y)
    other = tiny(random_state=1).fit(X, y)
    assert not np.allclose(fitted.predict_proba(X), other.predict_proba(X))
    np.testing.assert_array_equal(vote.classes_, fitted.classes_)
    np.testing.assert_allclose(
        vote.predict_proba(X), (fitted.predict_proba(X) + other.predict_proba(X)) / 2, atol=1e-6
    )


# --------------------------------------------------------------------------- options


def test_class_weight_options(motif_data):
    X, y = motif_data
    y = y.copy()
    y[:40] = "neg"  # unbalanced: 40+ neg
    n_neg, n_pos = int((y == "neg").sum()), int((y == "pos").sum())
    balanced = tiny(max_epochs=1, class_weight="balanced", early_stopping=False).fit(X, y)
    np.testing.assert_allclose(
        balanced.class_weight_, [len(y) / (2 * n_neg), len(y) / (2 * n_pos)]
    )
    np.testing.assert_allclose(
        balanced.model_.class_weight.numpy(), balanced.class_weight_, rtol=1e-6
    )
    manual = tiny(max_epochs=1, class_weight={"pos": 3.0}, early_stopping=False).fit(X, y)
    np.testing.assert_allclose(manual.class_weight_, [1.0, 3.0])
    none = tiny(max_epochs=1, early_stopping=False).fit(X, y)
    np.testing.assert_allclose(none.class_weight_, [1.0, 1.0])


def test_early_stopping_split_and_validation_data(motif_data):
    X, y = motif_data
    est = tiny(max_epochs=3, validation_size=0.25, patience=1).fit(X, y)
    assert est.n_val_samples_ == 16 and est.n_train_samples_ == 48
    assert all(r["val_loss"] is not None for r in est.history_)
    assert est.best_epoch_ is not None
    given = tiny(max_epochs=2).fit(X[:48], y[:48], validation_data=(X[48:], y[48:]))
    assert given.n_val_samples_ == 16 and given.n_train_samples_ == 48
    off = tiny(max_epochs=1, early_stopping=False).fit(X, y)
    assert off.n_val_samples_ == 0 and off.history_[0]["val_loss"] is None


def test_lr_decay_lowers_the_rate_after_each_epoch_without_improvement(motif_data):
    X, y = motif_data
    est = tiny(max_epochs=6, patience=6, validation_size=0.25, lr_decay=0.5,
               learning_rate=0.2).fit(X, y)
    lrs = [r["lr"] for r in est.history_]
    vals = [r["val_loss"] for r in est.history_]
    expected = [0.2]
    for i in range(1, len(vals)):
        improved = vals[i - 1] < min(vals[: i - 1], default=float("inf"))
        expected.append(expected[-1] * (1.0 if improved else 0.5))
    assert lrs == pytest.approx(expected)
    assert min(lrs) < 0.2  # the large rate makes the validation loss stall at least once
    no_val = tiny(max_epochs=2, early_stopping=False, lr_decay=0.5).fit(X, y)
    constant = [CLASSIFIER_DEFAULTS.learning_rate_small] * 2  # no validation split: no decay
    assert [r["lr"] for r in no_val.history_] == pytest.approx(constant)


def test_learning_rate_and_decay_are_chosen_from_the_number_of_training_sequences(
    motif_data, monkeypatch, tmp_path
):
    X, y = motif_data  # 64 sequences: below the threshold, the small-set rate, no decay
    small = tiny(max_epochs=1).fit(X, y)
    assert small.learning_rate_ == CLASSIFIER_DEFAULTS.learning_rate_small
    assert small.lr_decay_ is None
    assert small.history_[0]["lr"] == pytest.approx(CLASSIFIER_DEFAULTS.learning_rate_small)
    assert CLASSIFIER_DEFAULTS.learning_rate_large < CLASSIFIER_DEFAULTS.learning_rate_small
    # the same data counted as large (the threshold counts the sequences given to fit)
    monkeypatch.setattr(
        classifier_module, "_D",
        dataclasses.replace(CLASSIFIER_DEFAULTS, large_from_samples=len(X)),
    )
    large = tiny(max_epochs=1).fit(X, y)
    assert large.learning_rate_ == CLASSIFIER_DEFAULTS.learning_rate_large
    assert large.lr_decay_ == CLASSIFIER_DEFAULTS.lr_decay_large == 0.5
    assert large.history_[0]["lr"] == pytest.approx(CLASSIFIER_DEFAULTS.learning_rate_large)
    explicit = tiny(max_epochs=1, learning_rate=0.05, lr_decay=None).fit(X, y)
    assert explicit.learning_rate_ == 0.05 and explicit.lr_decay_ is None
    # the chosen decay reaches the optimiser: a rate large enough to stall the
    # validation loss is halved (the small-set default would keep it constant)
    stalled = tiny(max_epochs=6, patience=6, validation_size=0.25, learning_rate=0.2).fit(X, y)
    lrs = [r["lr"] for r in stalled.history_]
    assert stalled.lr_decay_ == 0.5 and min(lrs) < 0.2 and lrs[0] == pytest.approx(0.2)
    large.save(tmp_path / "clf")
    loaded = TitansSequenceClassifier.load(tmp_path / "clf")
    assert loaded.learning_rate_ == CLASSIFIER_DEFAULTS.learning_rate_large
    assert loaded.lr_decay_ == 0.5
    assert loaded.get_params()["learning_rate"] is None
    assert loaded.get_params()["lr_decay"] == "auto"


def test_max_time_stops_training_and_keeps_the_best_weights(motif_data):
    X, y = motif_data
    start = time.perf_counter()
    est = tiny(max_epochs=1000, patience=1000, validation_size=0.25, max_time=1.0).fit(X, y)
    assert time.perf_counter() - start < 60
    assert 1 <= len(est.history_) < 1000  # the wall-clock limit, not max_epochs, stopped it
    assert est.history_[-1]["val_loss"] is not None  # the cut epoch was still validated
    assert est.best_epoch_ is not None


def test_kmer_tokenizer_option(motif_data):
    X, y = motif_data
    est = tiny(max_epochs=1, tokenizer="kmer", kmer_k=3, early_stopping=False).fit(X, y)
    assert est.config_.vocab_size == 4**3 + 10
    rc = [reverse_complement(s) for s in X]
    np.testing.assert_allclose(est.predict_proba(X), est.predict_proba(rc), atol=1e-6)


def test_max_length_truncates(motif_data):
    X, y = motif_data
    est = tiny(max_epochs=1, max_length=12, early_stopping=False).fit(X, y)
    # only the first 12 bases count: changing later bases changes nothing
    tail_changed = [s[:12] + "A" * (len(s) - 12) for s in X]
    np.testing.assert_array_equal(est.predict_proba(X), est.predict_proba(tail_changed))


def test_crop_collate_feeds_random_sub_windows():
    fwd = [np.arange(10, 10 + n) for n in (1, 2, 7, 30)]
    items = [(f, -f, i) for i, f in enumerate(fwd)]
    plain = SequenceCollate(pad_id=0)(items)
    assert plain[1].sum(1).tolist() == [1, 2, 7, 30]
    collate = SequenceCollate(pad_id=0, seed=3, crop=5)
    seen_lengths, seen_starts = set(), set()
    for _ in range(200):
        ids, mask, labels = collate(items)
        assert labels.tolist() == [0, 1, 2, 3]
        for row, m, f in zip(ids, mask, fwd, strict=True):
            kept = row[m].numpy()
            assert len(f) - min(5, len(f) - 1) <= len(kept) <= len(f)  # never empty
            start = int(kept[0]) - int(f[0])
            np.testing.assert_array_equal(kept, f[start : start + len(kept)])  # contiguous
            if len(f) == 30:
                seen_lengths.add(len(kept))
                seen_starts.add(start)
    assert seen_lengths == set(range(25, 31)) and seen_starts == set(range(6))
    again = SequenceCollate(pad_id=0, seed=3, crop=5)(items)
    first = SequenceCollate(pad_id=0, seed=3, crop=5)(items)
    torch.testing.assert_close(again[0], first[0])
    with pytest.raises(ValueError, match="crop must be >= 0"):
        SequenceCollate(pad_id=0, crop=-1)


def test_both_strands_collate_pairs_each_row_with_its_reverse_strand():
    fwd = [np.arange(10, 10 + n) for n in (3, 1, 5)]
    items = [(f, 100 + f[::-1], i) for i, f in enumerate(fwd)]
    ids, mask, labels, rev_ids, rev_mask = SequenceCollate(pad_id=0, both_strands=True)(items)
    assert labels.tolist() == [0, 1, 2]
    for i, f in enumerate(fwd):
        np.testing.assert_array_equal(ids[i][mask[i]].numpy(), f)
        np.testing.assert_array_equal(rev_ids[i][rev_mask[i]].numpy(), 100 + f[::-1])
    for bad in ({"rc_augment": True}, {"crop": 2}):
        with pytest.raises(ValueError, match="both_strands"):
            SequenceCollate(pad_id=0, both_strands=True, **bad)


@pytest.mark.parametrize("rc_average", [True, False])
def test_validation_loss_scores_what_predict_returns(motif_data, rc_average):
    """The best epoch's validation loss is the log loss of ``predict_proba`` on the
    validation data: with ``rc_average`` both strands are averaged in validation too (it
    used to score the forward strand only), so early stopping and the ``"auto"`` choices
    judge the predictions the user gets."""
    X, y = motif_data
    est = tiny(max_epochs=3, patience=3, rc_average=rc_average).fit(
        X[:48], y[:48], validation_data=(X[48:], y[48:])
    )
    best = min(r["val_loss"] for r in est.history_)
    proba = est.predict_proba(X[48:])
    expected = log_loss(y[48:], proba, labels=est.classes_)
    assert best == pytest.approx(expected, rel=1e-4)
    if rc_average:  # the forward strand alone scores differently (the check has teeth)
        single = with_prediction_params(est, rc_average=False)
        alone = log_loss(y[48:], single.predict_proba(X[48:]), labels=est.classes_)
        assert abs(alone - expected) > 1e-4


def test_crop_augment_option(motif_data):
    X, y = motif_data
    base = tiny(max_epochs=1, early_stopping=False).fit(X, y).predict_proba(X)
    a = tiny(max_epochs=1, early_stopping=False, crop_augment=6).fit(X, y).predict_proba(X)
    b = tiny(max_epochs=1, early_stopping=False, crop_augment=6).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)  # seeded: reproducible
    assert not np.allclose(a, base)  # the crops changed what was trained on
    with pytest.raises(ValueError, match="'crop_augment' parameter"):
        tiny(crop_augment=-1).fit(X, y)


def test_subkmer_embedding_sums_the_prefix_embeddings():
    from titans_ts.encoders.dna import KmerTokenizer

    tok = KmerTokenizer(3)
    emb = SubkmerEmbedding(3, d=5)
    ids = torch.as_tensor([*tok.encode("ACGTTGCAN").tolist(), tok.pad_id, tok.unk_id])
    got = emb(ids[None])[0]
    table = emb.table.weight
    rows1 = {b: i for i, b in enumerate("ACGT")}  # 1-base prefixes first, then 2-base ones
    rows2 = {a + b: 4 + 4 * i + j for i, a in enumerate("ACGT") for j, b in enumerate("ACGT")}
    for t, i in enumerate(ids.tolist()):
        word = tok.vocab[i]
        if i < 4**3:
            want = table[rows1[word[0]]] + table[rows2[word[:2]]]
        else:  # [UNK] (a k-mer with N), [PAD]: nothing added
            want = torch.zeros(5)
        torch.testing.assert_close(got[t], want)
    with pytest.raises(ValueError, match="subkmer_k=1 needs k-mer tokens"):
        SequenceModelConfig(vocab_size=74, pad_id=70, n_classes=2, subkmer_k=1)
    with pytest.raises(ValueError, match="subkmer_k=4 needs"):
        SequenceModelConfig(vocab_size=74, pad_id=70, n_classes=2, subkmer_k=4)


def test_subkmer_embedding_option(motif_data, tmp_path):
    X, y = motif_data
    assert CLASSIFIER_DEFAULTS.subkmer_embedding is True
    plain = tiny(max_epochs=1, early_stopping=False, subkmer_embedding=False).fit(X, y)
    est = tiny(max_epochs=1, early_stopping=False).fit(X, y)  # on by default
    assert est.config_.subkmer_k == 4 and plain.config_.subkmer_k == 0
    n_plain = sum(p.numel() for p in plain.model_.parameters())
    n_sub = sum(p.numel() for p in est.model_.parameters())
    assert n_sub - n_plain == (4 + 16 + 64 + 1) * TINY["d_model"]
    assert not np.allclose(est.predict_proba(X), plain.predict_proba(X))
    rc = [reverse_complement(s) for s in X]
    np.testing.assert_allclose(est.predict_proba(X), est.predict_proba(rc), atol=1e-6)
    loaded = TitansSequenceClassifier.load(est.save(tmp_path / "sub"))
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    # single-base tokens have no prefixes: nothing added, no error
    bases = tiny(max_epochs=1, early_stopping=False, tokenizer="nucleotide").fit(X, y)
    assert bases.config_.subkmer_k == 0


# --------------------------------------------------------------------------- reproducibility


def test_same_random_state_gives_identical_probabilities(motif_data):
    X, y = motif_data
    a = tiny(random_state=11).fit(X, y).predict_proba(X)
    b = tiny(random_state=11).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    c = tiny(random_state=12).fit(X, y).predict_proba(X)
    assert not np.array_equal(a, c)


def test_save_load_parity(fitted, motif_data, tmp_path):
    X, _ = motif_data
    folder = fitted.save(tmp_path / "clf")
    assert (folder / "estimator.json").is_file() and (folder / "weights.pt").is_file()
    loaded = TitansSequenceClassifier.load(folder)
    assert loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(loaded.classes_, fitted.classes_)
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))
    with pytest.raises(FileNotFoundError, match="no estimator.json"):
        TitansSequenceClassifier.load(tmp_path / "missing")


def test_load_a_save_from_before_subkmer_embedding(motif_data, tmp_path):
    import json

    X, y = motif_data
    old = tiny(max_epochs=1, early_stopping=False, subkmer_embedding=False).fit(X, y)
    folder = old.save(tmp_path / "old")
    document = json.loads((folder / "estimator.json").read_text())
    del document["params"]["subkmer_embedding"]  # as written before session 33
    del document["model_config"]["subkmer_k"]
    (folder / "estimator.json").write_text(json.dumps(document))
    loaded = TitansSequenceClassifier.load(folder)
    assert loaded.subkmer_embedding is False and loaded.config_.subkmer_k == 0
    np.testing.assert_array_equal(loaded.predict_proba(X), old.predict_proba(X))


def test_save_load_dict_class_weight_and_int_labels(motif_data, tmp_path):
    X, y = motif_data
    ints = np.where(y == "pos", 1, 0)
    est = tiny(max_epochs=1, early_stopping=False, class_weight={1: 2.0}).fit(X, ints)
    loaded = TitansSequenceClassifier.load(est.save(tmp_path / "m"))
    assert loaded.class_weight == {1: 2.0}
    assert loaded.predict(X[:4]).tolist() == est.predict(X[:4]).tolist()
    assert loaded.classes_.dtype == est.classes_.dtype


def test_pretrained_classifier_weights_initialise_a_new_fit(fitted, motif_data, tmp_path):
    X, y = motif_data
    folder = fitted.save(tmp_path / "pre")
    # max_epochs=1 with learning rate ~0: the backbone stays at the pretrained weights
    est = tiny(pretrained=str(folder), max_epochs=1, learning_rate=1e-12,
               early_stopping=False, d_model=16).fit(X, y)
    assert est.config_.backbone == fitted.config_.backbone  # sizes come from the pretrained
    for key, value in fitted.model_.state_dict().items():
        if key.startswith("backbone."):
            torch.testing.assert_close(est.model_.state_dict()[key], value, rtol=0, atol=1e-9)


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "X, error, fragment",
    [
        (["ACGT", "ACGU"], ValueError, "invalid nucleotide 'U' at position 3 of sequence 1"),
        (["ACGT", "AC-T"], ValueError, "'-' at position 2 of sequence 1"),
        (["ACGT", 5], TypeError, "at index 1"),
        (["ACGT", b"ACGT"], TypeError, "at index 1"),
        (["ACGT", ""], ValueError, "sequence 1 has 0 bases"),
        ("ACGTACGT", TypeError, "wrap it in a list"),
        ([], ValueError, "got 0 sequences"),
        (np.array([["ACGT", "ACGT"]] * 2), ValueError, "1-D array"),
        (pd.DataFrame({"a": ["AC", "GT"], "b": ["AC", "GT"]}), ValueError, "one column"),
        ({"ACGT", "TTTT"}, TypeError, "list, tuple, numpy array or pandas Series"),
    ],
)
def test_bad_sequences_raise_naming_the_problem(X, error, fragment, fitted):
    with pytest.raises(error, match=fragment.replace("(", r"\(")):
        fitted.predict(X)
    if isinstance(X, list) and len(X) == 2:
        with pytest.raises(error, match=fragment.replace("(", r"\(")):
            tiny().fit(X, ["a", "b"])


def test_bad_labels_and_parameters(motif_data):
    X, y = motif_data
    with pytest.raises(ValueError, match="X has 64 sequences but y has 63"):
        tiny().fit(X, y[:-1])
    with pytest.raises(ValueError, match="at least 2 classes"):
        tiny().fit(X, ["a"] * len(X))
    with pytest.raises(ValueError, match="Unknown label type"):
        tiny().fit(X, np.linspace(0, 1, len(X)))
    with pytest.raises(ValueError, match="'variant' parameter of TitansSequenceClassifier"):
        tiny(variant="transformer").fit(X, y)
    with pytest.raises(ValueError, match="'class_weight' parameter"):
        tiny(class_weight="auto").fit(X, y)
    with pytest.raises(ValueError, match="d_model=10 must be divisible by n_heads=4"):
        tiny(d_model=10, n_heads=4).fit(X, y)
    with pytest.raises(ValueError, match="shorter than k=4"):
        tiny(tokenizer="kmer", kmer_k=4).fit(X[:3] + ["ACG"], y[:4])
    with pytest.raises(ValueError, match="not among the training classes"):
        tiny().fit(X, y, validation_data=(X[:2], ["neg", "other"]))


# --------------------------------------------------------------------------- components


def test_masked_pooling_ignores_padding_values():
    h = torch.randn(2, 5, 3)
    mask = torch.tensor([[True, True, False, False, False], [True] * 5])
    poisoned = h.clone()
    poisoned[0, 2:] = float("inf")
    torch.testing.assert_close(masked_mean(poisoned, mask)[0], h[0, :2].mean(0))
    torch.testing.assert_close(masked_max(poisoned, mask)[0], h[0, :2].amax(0))
    torch.testing.assert_close(masked_last(poisoned, mask), torch.stack([h[0, 1], h[1, 4]]))
    both = masked_pool(poisoned, mask, "meanmax")
    torch.testing.assert_close(both[0], torch.cat([h[0, :2].mean(0), h[0, :2].amax(0)]))
    with pytest.raises(ValueError, match="row 1 of mask has no real token"):
        masked_last(h, torch.tensor([[True] + [False] * 4, [False] * 5]))
    with pytest.raises(ValueError, match="row 0 of mask has no real token"):
        masked_mean(h, torch.zeros(2, 5, dtype=torch.bool))


@pytest.mark.parametrize("pooling", POOLINGS)
def test_network_logits_do_not_depend_on_padding(pooling):
    torch.manual_seed(0)
    cfg = SequenceModelConfig(
        vocab_size=9, pad_id=5, n_classes=3, pooling=pooling,
        backbone=build_sequence_backbone_config(
            variant="mag", d_model=8, n_layers=1, n_heads=2, n_persistent=2,
            memory_depth=2, memory_chunk_size=4, window=8, dropout=0.0,
        ),
    )
    model = TitansSequenceModel(cfg).eval()
    rows = [np.array([0, 1, 2, 3, 0, 1, 2]), np.array([3, 3, 1, 0, 2, 2, 1, 0, 1, 2, 3, 0, 1])]
    ids, mask = pad_batch(rows, pad_id=5)
    assert ids.shape == (2, 13) and mask.sum().item() == 20
    with torch.no_grad():
        together = model(ids, mask)
        alone = model(*pad_batch(rows[:1], pad_id=5))
    torch.testing.assert_close(alone[0], together[0], rtol=1e-5, atol=1e-6)
    assert SequenceModelConfig.from_dict(cfg.to_dict()) == cfg


# --------------------------------------------------------------------------- real data


def _gue_root() -> pathlib.Path | None:
    root = os.environ.get("TITANS_TS_DATA_DIR", "").strip()
    if not root:
        return None
    path = pathlib.Path(root).expanduser()
    return path if (path / "dna" / "gue" / "mouse" / "2").is_dir() else None


@pytest.mark.skipif(
    _gue_root() is None,
    reason="GUE data not found: set TITANS_TS_DATA_DIR to a folder holding dna/gue/mouse/2",
)
def test_tiny_real_fit_on_gue_mouse2_beats_majority():
    from titans_ts.datasets.genomics import load_gue

    splits = load_gue("mouse/2", path=_gue_root())
    rng = np.random.default_rng(0)
    train, test = splits["train"], splits["test"]
    i = rng.choice(len(train), 600, replace=False)
    j = rng.choice(len(test), 300, replace=False)
    X = [train.sequences[k] for k in i]
    Xt = [test.sequences[k] for k in j]
    y, yt = train.labels[i], test.labels[j]
    est = TitansSequenceClassifier(
        variant="lmm", d_model=32, n_layers=1, max_epochs=12, learning_rate=2e-3,
        accelerator="cpu", random_state=0,
    ).fit(X, y)
    pred = est.predict(Xt)
    majority = max(np.mean(yt == c) for c in np.unique(yt))
    accuracy = float(np.mean(pred == yt))
    assert accuracy >= majority + 0.10, (accuracy, majority)
    assert matthews_corrcoef(yt, pred) > 0.25


# --------------------------------------------------------------------------- kmer_k="auto"


def test_prefer_simpler_is_the_one_standard_error_rule():
    simple = np.array([1.0, 1.0, 1.0, 1.0])
    complex_ = np.array([0.9, 1.1, 0.8, 1.0])  # lower by 0.05 on average
    # paired difference [0.1, -0.1, 0.2, 0.0]: mean 0.05, sd sqrt(0.05 / 3), se sd / 2
    se = np.sqrt(0.05 / 3) / 2
    index, margins = _prefer_simpler([simple, complex_], margin=1.0)
    assert index == 0  # 0.05 <= 1 se = 0.0645: the simpler is kept
    np.testing.assert_allclose(margins, [(0.05, se), (0.0, 0.0)], atol=1e-12)
    assert _prefer_simpler([simple, complex_], margin=0.5)[0] == 1  # 0.05 > 0.032
    assert _prefer_simpler([simple, complex_], margin=0.0)[0] == 1  # the lowest mean
    assert _prefer_simpler([complex_, simple], margin=0.0)[0] == 0
    assert _prefer_simpler([simple, simple.copy()], margin=0.0)[0] == 0  # ties: the simpler
    # three candidates: the first within the margin of the lowest wins, not the lowest
    middle = complex_ - 0.01
    lowest = complex_ - 0.02 + np.array([0.05, -0.05, 0.05, -0.05])
    index, margins = _prefer_simpler([simple, middle, lowest], margin=1.0)
    assert index == 1 and margins[2] == (0.0, 0.0)
    assert margins[1][0] == pytest.approx(0.01)
    assert margins[1][1] == pytest.approx(np.sqrt(0.01 / 3) / 2)  # sd of [-0.04, 0.06, ...]
    with pytest.raises(ValueError, match="same length"):
        _prefer_simpler([simple, complex_[:3]])
    with pytest.raises(ValueError, match="margin must be >= 0"):
        _prefer_simpler([simple, complex_], margin=-1.0)


def test_auto_kmer_keeps_the_simpler_size_unless_the_other_wins_by_the_margin(
    motif_data, tmp_path
):
    X, y = motif_data
    # auto_margin=0: the size with the lower validation loss
    auto = tiny(kmer_k="auto", auto_margin=0.0).fit(X, y)
    scores = auto.kmer_k_scores_
    assert set(scores) == set(CLASSIFIER_DEFAULTS.kmer_k_candidates)
    assert auto.kmer_k_ == min(scores, key=scores.get)
    # the margins: the per-sequence losses average to the monitored validation loss
    margins = auto.kmer_k_margins_
    other = next(k for k in scores if k != auto.kmer_k_)
    assert margins[auto.kmer_k_] == {"difference": 0.0, "se": 0.0}
    assert margins[other]["difference"] == pytest.approx(
        scores[other] - scores[auto.kmer_k_], abs=1e-5
    )
    assert margins[other]["se"] > 0
    # the default (one standard error): the same fits, the first size unless the other's
    # loss is lower by more than one standard error of the paired difference
    first, second = CLASSIFIER_DEFAULTS.kmer_k_candidates
    kept = tiny(kmer_k="auto").fit(X, y)
    assert kept.kmer_k_scores_ == scores and kept.kmer_k_margins_ == margins
    m = margins[first]
    assert kept.kmer_k_ == (first if m["difference"] <= m["se"] else second)
    assert auto.tokenizer_.k == auto.kmer_k_
    # each candidate is seeded afresh: the chosen one is the fit with that kmer_k
    direct = tiny(kmer_k=auto.kmer_k_).fit(X, y)
    np.testing.assert_array_equal(auto.predict_proba(X), direct.predict_proba(X))
    assert direct.kmer_k_scores_ is None and direct.kmer_k_ == auto.kmer_k_
    # the other size is a real alternative: different network, different validation loss
    other = next(k for k in scores if k != auto.kmer_k_)
    alt = tiny(kmer_k=other).fit(X, y)
    assert alt.config_.vocab_size != auto.config_.vocab_size
    assert scores[other] == pytest.approx(min(r["val_loss"] for r in alt.history_))
    loaded = TitansSequenceClassifier.load(auto.save(tmp_path / "auto"))
    assert loaded.kmer_k_ == auto.kmer_k_ and loaded.kmer_k_scores_ == scores
    assert loaded.kmer_k_margins_ == margins and loaded.auto_margin == 0.0
    with pytest.raises(ValueError, match="auto_margin"):
        tiny(auto_margin=-0.5).fit(X, y)


def test_auto_kmer_needs_validation_data(motif_data):
    X, y = motif_data
    with pytest.warns(UserWarning, match="kmer_k='auto' / position_embedding='auto' choose"):
        plain = tiny(kmer_k="auto", position_embedding="auto", early_stopping=False).fit(X, y)
    assert plain.kmer_k_ == CLASSIFIER_DEFAULTS.kmer_k_candidates[0]
    assert not plain.position_embedding_ and plain.kmer_k_scores_ is None
    assert plain.position_scores_ is None
    # with validation data it works without the internal split
    est = tiny(kmer_k="auto", early_stopping=False).fit(X[:48], y[:48],
                                                         validation_data=(X[48:], y[48:]))
    assert est.n_val_samples_ == 16 and set(est.kmer_k_scores_) == {4, 6}


def test_auto_kmer_without_a_possible_validation_split_keeps_the_first_size():
    X = ["ACGTACGTAC", "TTTTACGTAA", "GGGGCCCCAA", "ACACACACGT"]
    with pytest.warns(UserWarning, match="too few to hold out"):
        est = tiny(kmer_k="auto", validation_size=0.01).fit(X, [0, 1, 0, 1])
    assert est.kmer_k_ == CLASSIFIER_DEFAULTS.kmer_k_candidates[0]
    assert est.kmer_k_scores_ is None


def test_auto_kmer_is_ignored_for_nucleotide_tokens(motif_data):
    X, y = motif_data
    est = tiny(kmer_k="auto", tokenizer="nucleotide").fit(X, y)
    assert est.kmer_k_ is None and est.kmer_k_scores_ is None


def test_kmer_k_must_be_an_int_or_auto():
    with pytest.raises(ValueError, match="kmer_k"):
        tiny(kmer_k="six").fit(["ACGTACGT"] * 4, [0, 1, 0, 1])


def test_position_embedding_option(motif_data, tmp_path):
    X, y = motif_data
    assert tiny().fit(X[:32], y[:32]).model_.position is None
    est = tiny(position_embedding=True).fit(X, y)
    longest = max(len(s) for s in X) - 4 + 1  # overlapping 4-mer tokens
    assert est.config_.max_positions == longest
    assert est.model_.position.weight.shape == (longest, est.config_.backbone.d_model)
    # positions past the longest training sequence share the last embedding
    longer = X[0] * 3
    proba = est.predict_proba([longer, X[1]])
    assert proba.shape == (2, 2) and np.isfinite(proba).all()
    # the embedding takes part: zeroing it changes the logits
    before = est.decision_function(X[:4])
    with torch.no_grad():
        est.model_.position.weight.zero_()
    assert not np.allclose(before, est.decision_function(X[:4]))
    loaded = TitansSequenceClassifier.load(est.save(tmp_path / "pos"))
    np.testing.assert_array_equal(loaded.decision_function(X[:4]), est.decision_function(X[:4]))


def test_kmer_linear_term_is_the_mean_token_score():
    torch.manual_seed(0)
    cfg = SequenceModelConfig(
        vocab_size=9, pad_id=5, n_classes=3, pooling="max", kmer_linear=True,
        backbone=build_sequence_backbone_config(
            variant="mag", d_model=8, n_layers=1, n_heads=2, n_persistent=2,
            memory_depth=2, memory_chunk_size=4, window=8, dropout=0.0,
        ),
    )
    assert SequenceModelConfig.from_dict(cfg.to_dict()) == cfg
    model = TitansSequenceModel(cfg).eval()
    assert torch.count_nonzero(model.token_scores.weight) == 0  # starts as the network alone
    with torch.no_grad():
        model.token_scores.weight.normal_()
        model.token_scores.weight[5].zero_()
    rows = [np.array([0, 1, 2, 3, 0, 1, 2]), np.array([3, 3, 1, 0, 2, 2, 1, 0, 1, 2, 3, 0, 1])]
    ids, mask = pad_batch(rows, pad_id=5)
    with torch.no_grad():
        logits = model(ids, mask)
        network = model.head.classify(model.embed(ids, mask))
    table = model.token_scores.weight.detach()
    by_hand = torch.stack([table[torch.as_tensor(r)].mean(0) for r in rows])
    torch.testing.assert_close(logits - network, by_hand, rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="kmer_linear must be a bool"):
        SequenceModelConfig(vocab_size=9, pad_id=5, n_classes=3, kmer_linear=1)


def test_kmer_linear_option(motif_data, tmp_path):
    X, y = motif_data
    assert tiny().fit(X[:32], y[:32]).model_.token_scores is None
    est = tiny(kmer_linear=True).fit(X, y)
    scores = est.model_.token_scores.weight.detach()
    assert scores.shape == (est.config_.vocab_size, 2)
    assert torch.count_nonzero(scores[est.config_.pad_id]) == 0
    assert scores.abs().max() > 1e-3  # trained away from its zero start
    before = est.decision_function(X[:4])
    with torch.no_grad():
        est.model_.token_scores.weight.zero_()
    assert not np.allclose(before, est.decision_function(X[:4]))
    est = tiny(kmer_linear=True).fit(X, y)
    loaded = TitansSequenceClassifier.load(est.save(tmp_path / "kmer_linear"))
    assert loaded.kmer_linear and loaded.config_.kmer_linear
    np.testing.assert_array_equal(loaded.decision_function(X[:4]), est.decision_function(X[:4]))


def test_bidirectional_option(motif_data, tmp_path):
    X, y = motif_data
    est = tiny(bidirectional=True).fit(X, y)
    assert est.config_.bidirectional and not tiny().fit(X[:32], y[:32]).config_.bidirectional
    # every token's state sees the whole sequence: the embeddings are the backbone's
    # two-way pass, not its causal one
    ids, mask = pad_batch([est.tokenizer_.encode(s) for s in X[:3]], est.config_.pad_id)
    model = est.model_.eval()
    with torch.no_grad():
        x = model.embedding(ids) + model.subkmers(ids)
        two_way = model.backbone.bidirectional(x, mask)
        causal, _ = model.backbone(x)
        states = model.tokens(ids, mask)
    torch.testing.assert_close(states, two_way)
    assert not torch.allclose(states, causal)
    loaded = TitansSequenceClassifier.load(est.save(tmp_path / "bidirectional"))
    assert loaded.bidirectional and loaded.config_.bidirectional
    np.testing.assert_array_equal(loaded.predict_proba(X[:8]), est.predict_proba(X[:8]))
    with pytest.raises(TypeError, match="bidirectional must be a bool"):
        SequenceModelConfig(vocab_size=9, pad_id=5, n_classes=3, bidirectional=1)


def test_auto_position_embedding_adds_one_candidate(motif_data, tmp_path):
    X, y = motif_data
    est = tiny(position_embedding="auto", auto_margin=0.0).fit(X, y)
    scores = est.position_scores_
    assert set(scores) == {False, True}
    assert est.position_embedding_ == (scores[True] < scores[False])
    assert (est.model_.position is not None) == est.position_embedding_
    margins = est.position_margins_
    assert margins[est.position_embedding_] == {"difference": 0.0, "se": 0.0}
    assert margins[not est.position_embedding_]["se"] > 0
    direct = tiny(position_embedding=est.position_embedding_).fit(X, y)
    np.testing.assert_array_equal(est.predict_proba(X), direct.predict_proba(X))
    other = tiny(position_embedding=not est.position_embedding_).fit(X, y)
    assert scores[not est.position_embedding_] == pytest.approx(
        min(r["val_loss"] for r in other.history_)
    )
    loaded = TitansSequenceClassifier.load(est.save(tmp_path / "pos_auto"))
    assert loaded.position_scores_ == scores and loaded.position_margins_ == margins
    assert loaded.position_embedding_ == est.position_embedding_
    assert loaded.search_path_ == est.search_path_ and len(est.search_path_) == 2
    # both automatic: the last comparison on each axis includes the chosen network,
    # and the choice is stable under both (the search stops at a fixed point)
    both = tiny(kmer_k="auto", position_embedding="auto").fit(X, y)
    assert set(both.kmer_k_scores_) == {4, 6} and set(both.position_scores_) == {False, True}
    assert both.position_scores_[both.position_embedding_] == both.kmer_k_scores_[both.kmer_k_]
    # the default margin keeps the positions only when they win by more than one SE
    off = both.position_margins_[False]
    assert both.position_embedding_ == (off["difference"] > off["se"])
    first = CLASSIFIER_DEFAULTS.kmer_k_candidates[0]
    m = both.kmer_k_margins_[first]
    assert both.kmer_k_ == (first if m["difference"] <= m["se"] else 6)
    direct = tiny(kmer_k=both.kmer_k_, position_embedding=both.position_embedding_).fit(X, y)
    np.testing.assert_array_equal(both.predict_proba(X), direct.predict_proba(X))


def _scripted_search(monkeypatch, losses: dict[tuple[int, bool], float], **params):
    """Run ``fit`` with every candidate network replaced by a stub whose per-sequence
    validation losses average to ``losses[(k, position)]`` (paired noise 0.01 shared by
    all candidates, 0.001 of their own: one standard error of a gap ~0.00014). Returns
    the estimator and the (k, position) fits in the order they were made."""
    calls: list[tuple[int, bool]] = []
    shares: list[float | None] = []
    shared = np.random.default_rng(0).normal(0.0, 0.01, 100)

    def fake_fit(self, tokenizer, items, y_index, classes, weights, val_raw, pre, max_time,
                 position):
        key = (int(tokenizer.k), bool(position))
        calls.append(key)
        shares.append(max_time)
        own = np.random.default_rng(len(calls)).normal(0.0, 0.001, 100)
        val_losses = losses[key] + shared + own - own.mean() - shared.mean()
        return {
            "config": dataclasses.replace(
                SequenceModelConfig(vocab_size=8, pad_id=0, n_classes=2),
                max_positions=10 if position else 0,
            ),
            "model": None, "tokenizer": tokenizer, "history": [], "best_epoch": 1,
            "val_loss": float(val_losses.mean()), "val_losses": val_losses,
            "n_train": 4, "n_val": 100, "learning_rate": 1e-3, "lr_decay": None,
        }

    monkeypatch.setattr(TitansSequenceClassifier, "_fit_tokenizer", fake_fit)
    est = tiny(**params).fit(["ACGTACGTAC", "TTTTACGTAA", "GGGGCCCCAA", "ACACACACGT"],
                             [0, 1, 0, 1])
    est.max_time_shares = shares  # what each network was given of max_time
    return est, calls


@pytest.mark.parametrize(
    ("losses", "expected", "order"),
    [
        # prom_300_tata seed 0 (session 43 dev losses): 6-mers win without positions and
        # gain from them, but 4-mers with positions are far better: the size is chosen
        # again under positions (the step the old two-step search lacked)
        ({(4, False): 0.516, (6, False): 0.481, (4, True): 0.250, (6, True): 0.343},
         (4, True), [(4, False), (6, False), (6, True), (4, True)]),
        # prom_core_all-like: positions help 4-mers and 6-mers do not win with them
        ({(4, False): 0.450, (6, False): 0.500, (4, True): 0.400, (6, True): 0.454},
         (4, True), [(4, False), (6, False), (4, True), (6, True)]),
        # positions rejected (mouse/2-, tf/2-like): three networks, as before
        ({(4, False): 0.224, (6, False): 0.200, (4, True): 0.180, (6, True): 0.205},
         (6, False), [(4, False), (6, False), (6, True)]),
        # a joint gain that neither axis shows alone is not searched for: the simplest
        ({(4, False): 0.300, (6, False): 0.300, (4, True): 0.300, (6, True): 0.100},
         (4, False), [(4, False), (6, False), (4, True)]),
    ],
)
def test_auto_search_alternates_size_and_position(monkeypatch, losses, expected, order):
    est, calls = _scripted_search(monkeypatch, losses, kmer_k="auto",
                                  position_embedding="auto")
    assert (est.kmer_k_, est.position_embedding_) == expected
    assert calls == order  # each network fitted once, in this order
    assert [(f["kmer_k"], f["position_embedding"]) for f in est.search_path_] == order
    assert [f["val_loss"] for f in est.search_path_] == pytest.approx(
        [losses[key] for key in order]
    )
    # the attributes report the last comparison on each axis, both holding the chosen one
    k, pos = expected
    assert est.kmer_k_scores_[k] == est.position_scores_[pos]
    assert est.kmer_k_scores_[k] == pytest.approx(losses[expected])
    assert est.position_margins_[pos] == {"difference": 0.0, "se": 0.0}


def test_auto_search_with_one_axis_fixed(monkeypatch):
    losses = {(4, False): 0.516, (6, False): 0.481, (4, True): 0.250, (6, True): 0.343}
    est, calls = _scripted_search(monkeypatch, losses, kmer_k="auto", position_embedding=True)
    assert calls == [(4, True), (6, True)] and est.kmer_k_ == 4 and est.position_scores_ is None
    est, calls = _scripted_search(monkeypatch, losses, kmer_k=6, position_embedding="auto")
    assert calls == [(6, False), (6, True)] and est.position_embedding_
    assert est.kmer_k_scores_ is None
    est, calls = _scripted_search(monkeypatch, losses, kmer_k=6, position_embedding=False)
    assert calls == [(6, False)] and not est.position_embedding_
    assert len(est.search_path_) == 1 and est.max_time_shares == [None]


def test_auto_search_shares_max_time_between_the_networks_it_may_train(monkeypatch):
    losses = {(4, False): 0.516, (6, False): 0.481, (4, True): 0.250, (6, True): 0.343}
    est, _ = _scripted_search(monkeypatch, losses, max_time=8.0, kmer_k="auto",
                              position_embedding="auto")
    assert est.max_time_shares == [2.0] * 4  # up to four networks: a quarter each
    est, _ = _scripted_search(monkeypatch, losses, max_time=8.0, kmer_k="auto",
                              position_embedding=False)
    assert est.max_time_shares == [4.0] * 2
