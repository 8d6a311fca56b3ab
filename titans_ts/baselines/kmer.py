"""In-run k-mer baseline for DNA classification: k-mer counts + logistic regression.

Features: overlapping k-mer counts for every ``k`` in ``[k_min, k_max]`` (default 3–6),
concatenated into one sparse matrix of ``sum(4**k)`` columns (k-mers containing ``N`` are
dropped). These are the counts ``sklearn``'s ``CountVectorizer(analyzer="char",
ngram_range=(3, 6))`` would give on ``ACGT`` text, built with the vectorised
:class:`~titans_ts.encoders.dna.KmerTokenizer` instead. Optional transforms: ``"log1p"`` or
row ``"l2"`` normalisation (default ``"none"``: raw counts).

Model: multinomial logistic regression (``lbfgs``), one fit per ``C`` of a grid in ascending
order with warm starts. ``C`` is chosen by MCC on the dev split; without a dev split, on a
stratified 10% of train held out with ``seed``, after which the model is refitted on all of
train. Reported: MCC ×100 and accuracy ×100 on test.

CLI (GUE tasks, data found through ``TITANS_TS_DATA_DIR`` or ``--data-dir``)::

    python -m titans_ts.baselines.kmer --task prom/prom_core_all
    python -m titans_ts.baselines.kmer --task tf/0 --task mouse/0 --json results.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, matthews_corrcoef
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import normalize

from titans_ts.datasets.genomics import SequenceSplit, load_gue
from titans_ts.encoders.dna import MAX_K, KmerTokenizer

__all__ = [
    "DEFAULT_CS",
    "KmerBaselineResult",
    "KmerLogisticBaseline",
    "kmer_count_matrix",
    "main",
    "run_kmer_baseline",
]

DEFAULT_CS = (1e-3, 1e-2, 1e-1, 1.0)
"""Inverse regularisation strengths tried, ascending."""

Transform = Literal["none", "log1p", "l2"]


def kmer_count_matrix(sequences: Sequence[str], k_min: int = 3, k_max: int = 6) -> sp.csr_matrix:
    """Overlapping k-mer counts for ``k = k_min..k_max``, concatenated.

    Args:
        sequences: ``N`` DNA strings (validated by the tokenizer: lower case and IUPAC codes
            are accepted, anything else raises ``ValueError``).

    Returns:
        ``(N, sum_k 4**k)`` CSR matrix, float64 counts; column ``offset_k + id`` counts the
        k-mer with :class:`KmerTokenizer` id ``id``, ``offset_k = sum_{j<k} 4**j`` over
        ``j >= k_min``. k-mers containing ``N`` are not counted.
    """
    if not (1 <= k_min <= k_max <= MAX_K):
        raise ValueError(f"need 1 <= k_min <= k_max <= {MAX_K}, got k_min={k_min}, k_max={k_max}")
    blocks = []
    for k in range(k_min, k_max + 1):
        tokenizer = KmerTokenizer(k)
        packed = tokenizer.encode_packed(sequences)
        rows = np.repeat(np.arange(len(packed), dtype=np.int64), packed.lengths)
        keep = packed.ids < tokenizer.n_kmers
        data = np.ones(int(keep.sum()), dtype=np.float64)
        blocks.append(
            sp.csr_matrix(
                (data, (rows[keep], packed.ids[keep])), shape=(len(packed), tokenizer.n_kmers)
            )
        )
    return sp.hstack(blocks, format="csr")


def _transform(matrix: sp.csr_matrix, transform: Transform) -> sp.csr_matrix:
    if transform == "none":
        return matrix
    if transform == "log1p":
        return matrix.log1p()
    if transform == "l2":
        return normalize(matrix, norm="l2")
    raise ValueError(f"transform must be 'none', 'log1p' or 'l2', got {transform!r}")


def _mcc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(matthews_corrcoef(y_true, y_pred))


class KmerLogisticBaseline:
    """k-mer counts + logistic regression with ``C`` chosen on validation data.

    Args:
        k_min, k_max: k-mer lengths used (inclusive).
        Cs: inverse regularisation strengths tried (sorted ascending internally).
        transform: ``"none"`` (raw counts), ``"log1p"`` or ``"l2"`` (row normalisation).
        max_iter: ``lbfgs`` iteration cap per ``C``.
        seed: seed of the 10% hold-out when ``fit`` gets no validation data.

    Fitted attributes: ``model_`` (``LogisticRegression``), ``C_`` (chosen), ``val_mcc_``
    (``{C: MCC on validation}``).
    """

    def __init__(
        self,
        k_min: int = 3,
        k_max: int = 6,
        Cs: Sequence[float] = DEFAULT_CS,
        transform: Transform = "none",
        max_iter: int = 2000,
        seed: int = 0,
    ) -> None:
        self.k_min = k_min
        self.k_max = k_max
        self.Cs = Cs
        self.transform = transform
        self.max_iter = max_iter
        self.seed = seed

    def _features(self, sequences: Sequence[str]) -> sp.csr_matrix:
        return _transform(kmer_count_matrix(sequences, self.k_min, self.k_max), self.transform)

    def _fit_path(
        self, X: sp.csr_matrix, y: np.ndarray, X_val: sp.csr_matrix, y_val: np.ndarray
    ) -> tuple[LogisticRegression, float, dict[float, float]]:
        """Fit every C (ascending, warm-started); return the best model, its C, all scores."""
        scores: dict[float, float] = {}
        models: dict[float, LogisticRegression] = {}
        model = LogisticRegression(max_iter=self.max_iter, warm_start=True)
        for C in sorted({float(c) for c in self.Cs}):
            model.set_params(C=C)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X, y)
            scores[C] = _mcc(y_val, model.predict(X_val))
            models[C] = copy.deepcopy(model)
        best = max(scores, key=lambda c: (scores[c], -c))  # ties: stronger regularisation
        return models[best], best, scores

    def fit(
        self,
        sequences: Sequence[str],
        labels: np.ndarray,
        val_sequences: Sequence[str] | None = None,
        val_labels: np.ndarray | None = None,
    ) -> KmerLogisticBaseline:
        """Fit on ``sequences``/``labels``; choose ``C`` on the validation pair (or a 10% split).

        Args:
            sequences: ``N`` training strings; labels: ``(N,)`` ints.
            val_sequences / val_labels: validation data, both or neither.
        """
        if not self.Cs:
            raise ValueError("Cs must hold at least one value")
        if (val_sequences is None) != (val_labels is None):
            raise ValueError("pass both val_sequences and val_labels, or neither")
        y = np.asarray(labels)
        X = self._features(sequences)
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"got {X.shape[0]} sequences but {y.shape[0]} labels")
        if val_sequences is None:
            index = np.arange(len(y))
            fit_idx, val_idx = train_test_split(
                index, test_size=0.1, random_state=self.seed, stratify=y
            )
            _, best, scores = self._fit_path(X[fit_idx], y[fit_idx], X[val_idx], y[val_idx])
            model = LogisticRegression(C=best, max_iter=self.max_iter)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X, y)  # refit on all of train at the chosen C
        else:
            X_val = self._features(val_sequences)
            model, best, scores = self._fit_path(X, y, X_val, np.asarray(val_labels))
        self.model_ = model
        self.C_ = best
        self.val_mcc_ = scores
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise RuntimeError("this KmerLogisticBaseline is not fitted yet; call fit first")

    def predict(self, sequences: Sequence[str]) -> np.ndarray:
        """``(N,)`` predicted labels."""
        self._check_fitted()
        return self.model_.predict(self._features(sequences))

    def predict_proba(self, sequences: Sequence[str]) -> np.ndarray:
        """``(N, n_classes)`` class probabilities, columns in ``model_.classes_`` order."""
        self._check_fitted()
        return self.model_.predict_proba(self._features(sequences))


@dataclass(frozen=True)
class KmerBaselineResult:
    """Test scores of the k-mer baseline (MCC and accuracy ×100)."""

    task: str
    mcc: float
    accuracy: float
    C: float
    val_mcc: dict[float, float]
    selection: str
    n_train: int
    n_test: int
    k_min: int
    k_max: int
    transform: str
    seconds: float
    #: label values in the column order of ``test_proba``
    classes: np.ndarray | None = field(default=None, repr=False, compare=False)
    #: ``(n_test, n_classes)`` test probabilities (e.g. to average with another model's)
    test_proba: np.ndarray | None = field(default=None, repr=False, compare=False)


def run_kmer_baseline(
    train: SequenceSplit,
    test: SequenceSplit,
    dev: SequenceSplit | None = None,
    *,
    k_min: int = 3,
    k_max: int = 6,
    Cs: Sequence[float] = DEFAULT_CS,
    transform: Transform = "none",
    max_iter: int = 2000,
    seed: int = 0,
) -> KmerBaselineResult:
    """Train on ``train`` (C chosen on ``dev`` if given, else on 10% of train), score ``test``."""
    start = time.perf_counter()
    baseline = KmerLogisticBaseline(k_min, k_max, Cs, transform, max_iter, seed)
    if dev is None:
        baseline.fit(train.sequences, train.labels)
    else:
        baseline.fit(train.sequences, train.labels, dev.sequences, dev.labels)
    features = baseline._features(test.sequences)
    pred = baseline.model_.predict(features)
    proba = baseline.model_.predict_proba(features)
    y = test.labels
    val_mcc = {c: round(100.0 * v, 2) for c, v in baseline.val_mcc_.items()}
    return KmerBaselineResult(
        task=train.name,
        mcc=100.0 * _mcc(y, pred),
        accuracy=100.0 * float(accuracy_score(y, pred)),
        C=baseline.C_,
        val_mcc=val_mcc,
        selection="dev" if dev is not None else "10% of train",
        n_train=len(train),
        n_test=len(test),
        k_min=k_min,
        k_max=k_max,
        transform=transform,
        seconds=time.perf_counter() - start,
        classes=np.asarray(baseline.model_.classes_),
        test_proba=proba,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: run the baseline on GUE tasks and print MCC/accuracy."""
    parser = argparse.ArgumentParser(
        prog="python -m titans_ts.baselines.kmer",
        description="k-mer counts + logistic regression on GUE tasks (MCC x100, accuracy x100)",
    )
    parser.add_argument(
        "--task", action="append", required=True,
        help="GUE task such as prom/prom_core_all, tf/0, mouse/2 (repeatable)",
    )
    parser.add_argument(
        "--data-dir", default=None,
        help="data folder holding dna/gue/ (default: $TITANS_TS_DATA_DIR, then the cache)",
    )
    parser.add_argument("--k-min", type=int, default=3)
    parser.add_argument("--k-max", type=int, default=6)
    parser.add_argument("--C", type=float, nargs="+", default=list(DEFAULT_CS), dest="Cs")
    parser.add_argument("--transform", choices=("none", "log1p", "l2"), default="none")
    parser.add_argument("--max-iter", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    results = []
    for task in args.task:
        splits = load_gue(task, path=args.data_dir)
        result = run_kmer_baseline(
            splits["train"], splits["test"], splits["dev"],
            k_min=args.k_min, k_max=args.k_max, Cs=args.Cs, transform=args.transform,
            max_iter=args.max_iter, seed=args.seed,
        )
        results.append(result)
        print(
            f"{task}: MCC {result.mcc:.2f}  accuracy {result.accuracy:.2f}  "
            f"(C={result.C:g} chosen on {result.selection}; dev MCC {result.val_mcc}; "
            f"k={args.k_min}-{args.k_max}, transform={args.transform}, "
            f"{result.seconds:.0f} s, source {splits['train'].source})",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as handle:
            arrays = ("classes", "test_proba")  # scores only; probabilities stay out
            json.dump(
                [{k: v for k, v in asdict(r).items() if k not in arrays} for r in results],
                handle, indent=2, default=str,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
