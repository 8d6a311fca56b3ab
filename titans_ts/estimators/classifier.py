"""``TitansSequenceClassifier``: scikit-learn style classification of DNA sequences.

Quick start::

    from titans_ts.estimators import TitansSequenceClassifier
    clf = TitansSequenceClassifier(random_state=0).fit(sequences, labels)
    clf.predict(new_sequences)            # labels of the type given to fit
    clf.predict_proba(new_sequences)      # (n, n_classes), columns follow clf.classes_
    clf.transform(new_sequences)          # (n, d_model) pooled embeddings (2 d_model: meanmax)

Data handling:

* ``X``: a list / tuple / 1-D array / pandas Series of DNA strings (or a one-column 2-D
  array or frame). Lengths may differ: batches are right-padded and masked. Lower case
  (soft-masked) is upper-cased, IUPAC ambiguity codes become ``N``; any other character
  raises a ``ValueError`` naming the sequence index, character and position (the
  tokenizer's rules, DESIGN.md §4); a non-string raises ``TypeError`` naming the index.
* ``y``: any hashable label type (ints, strings, bools...); ``classes_`` is the sorted
  unique labels, ``predict`` returns them, ``predict_proba`` columns follow them.
* Reverse complement: ``rc_augment`` feeds every training sequence on a random strand;
  ``rc_average`` averages the logits (and the ``transform`` embeddings) of both strands at
  prediction, which makes predictions exactly reverse-complement invariant.
* Early stopping: a stratified ``validation_size`` part of the training data (or
  ``fit(..., validation_data=(X_val, y_val))``) is scored each epoch; training stops
  after ``patience`` epochs without improvement of the validation loss and the best
  weights are kept. The validation loss is that of what ``predict_proba`` returns (with
  ``rc_average``, of both strands' mean logits), and so are the ``"auto"`` choices.
* ``pretrained``: the folder of a saved :class:`~titans_ts.estimators.TitansDNALM` (or of a
  saved classifier); its tokenizer, embedding and backbone initialise the network (the
  size parameters then come from it; ``dropout`` is this classifier's) and a new head is
  trained.

All defaults live in :data:`CLASSIFIER_DEFAULTS` (:class:`ClassifierDefaults`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from torch.utils.data import DataLoader

from titans_ts.backbone import VARIANTS
from titans_ts.estimators._base import Interval, Options, TitansBaseEstimator
from titans_ts.heads.classification import POOLINGS
from titans_ts.training.lightning import LossModule
from titans_ts.training.sequence import (
    SequenceCollate,
    SequenceModelConfig,
    TitansSequenceModel,
    TokenizedSequences,
    build_sequence_backbone_config,
    make_tokenizer,
    predict_logits,
    sequence_embeddings,
    tokenize_both_strands,
    tokenizer_spec,
)

__all__ = [
    "CLASSIFIER_DEFAULTS",
    "CLASSIFIER_FORMAT_VERSION",
    "ClassifierDefaults",
    "TitansSequenceClassifier",
    "check_sequences",
]

#: Version of the :meth:`TitansSequenceClassifier.save` directory layout.
CLASSIFIER_FORMAT_VERSION = 1
_FORMAT_NAME = "titans_ts.TitansSequenceClassifier"


@dataclass(frozen=True)
class ClassifierDefaults:
    """The one place where :class:`TitansSequenceClassifier` defaults are set.

    Sizes chosen from the data when the parameter is ``None``:

    * ``d_model``: ``d_model`` (32) whatever the data size.
    * ``learning_rate``: ``learning_rate_small`` (1e-3) below ``large_from_samples``
      (10,000) sequences passed to ``fit``, else ``learning_rate_large`` (3e-4).
    * ``lr_decay="auto"``: none below ``large_from_samples``, else ``lr_decay_large``
      (0.5: the rate halves after every epoch whose validation loss does not improve).
      Session 36 (CPU, seed 0, the network each task's default chose, with / without,
      identical epochs until the first stall; lowest dev loss / test MCC): prom_core_all
      0.3947 / 68.08 against 0.4057 / 66.08, prom_core_notata 0.3510 / 68.05 against
      0.3567 / 68.15, tf/0 0.4506 / 67.37 against 0.4500 / 66.25, tf/1 0.4897 / 72.74
      against 0.4835 / 71.98: dev loss lower on two, level on one, higher on one (mixed;
      kept for prom_core_all, where ``patience`` had stopped every network at epoch 7
      on dev-loss swings of up to 0.04 at the constant 3e-4).

      Until session 35 sets of >= 5,000 got width 64 at 1e-3. Width 32 at 3e-4, end-to-end
      default fits (CPU, batch 32, seed 0): prom_core_notata test MCC 68.15 (dev 0.3567)
      against 65.72 (dev 0.3740) for the same network at width 64 / 1e-3; tf/1 71.98
      against the older width-64 row's 71.14 (H100, batch 128, sub-k-mers off); tf/0
      6-mers dev loss 0.4500 vs 0.4521 and, over three seeds, test MCC 66.44 +/- 0.53
      against 65.09 +/- 0.41 (width 64, sub-k-mers off); tf/2 6-mers dev 0.4695 vs 0.4688
      but test 65.67 vs 67.29. An epoch takes about half the time
      (~130 s vs ~275 s on tf/0, 1 thread); the lower rate needs more epochs, so a fit costs
      about the same. The rate's threshold sits between mouse/0 (6,478 sequences: at width
      32, lr 1e-3 dev loss 0.4108 / test 60.76 against 3e-4's 0.4248 / 58.28) and tf/2
      (19,000). Figures and commands: ``docs/results.md``.
    * ``window``: ``min(window, longest training sequence in tokens)``: attention never
      needs to look further back than a sequence, and GUE / Genomic Benchmarks sequences
      (70-500 nt) mostly fit the cap, beyond which the neural memory carries the context.
    * ``memory_chunk_size``: ``min(memory_chunk_size, window)``; chunks of 16-64 keep the
      inner loop stable at the memory's default ``theta_max=0.02``.

    Measured on a shared 2-core CPU (1 thread): a training step of 32 sequences of 101 nt
    takes ~65 ms at width 32 (MAG, 1 layer), ~150 ms at width 64.

    Tokenizer: overlapping k-mers, ``kmer_k="auto"``: 4-mers and 6-mers are both trained;
    the 6-mer network is kept when its validation loss is lower by more than one standard
    error (``auto_margin``, below), else the 4-mer one. No single size wins: on the nine GUE
    tasks at full train (H100, batch 128, max pooling, lowest dev loss 4-mers vs 6-mers)
    6-mers won tf/0 (0.4433 vs 0.4597), tf/2 (0.4824 vs 0.5102), mouse/0 (0.4191 vs
    0.4652) and mouse/2 (0.2334 vs 0.2625), 4-mers prom_core_all, prom_core_notata,
    prom_core_tata, prom_300_tata and tf/1; the size with the lower dev loss also had the
    higher test MCC on 8 of the 9 (not mouse/2), up to +13 MCC (prom_core_tata) and +7.3
    (tf/2). Earlier (mouse/2, CPU, 6 epochs, test MCC): nucleotides 56.5, 3-mers 70.0,
    4-mers 79.3, 6-mers 77.5; per-base tokens left the loss at chance for the first epochs
    on mouse/0, so they are not candidates. 5-mers had the lowest dev loss on tf/0, mouse/0
    and mouse/2 but, chosen the same way, moved test MCC by +2.2, -2.7 and +0.6 (CPU, one
    seed): no gain for a third fit, so not a candidate either. Set an int ``kmer_k`` to halve
    the fit time.

    Position embedding: ``"auto"`` (the chosen k-mer size is fitted once more with a learned
    absolute-position embedding, kept when its validation loss is lower by more than one
    standard error). CPU, batch 32, lowest
    dev loss with / without: prom_300_tata 0.3297 / 0.5215 (test MCC 71.69 / 42.52; the k-mer
    baseline 44.92, DNABERT-2 71.59), prom_core_tata 0.3114 / 0.3802 (73.72 / 64.47), but
    mouse/2 0.2563 / 0.2411 and mouse/0 (6-mers) 0.4407 / 0.4349: TSS-aligned promoter
    windows want it, TF-binding windows do not, so it is chosen per task.

    ``auto_margin``: 1 (the one-standard-error rule for both ``"auto"`` choices). On GUE's
    1,000-sequence dev splits one standard error of a paired dev-loss gap is 0.005-0.010;
    the lowest-loss rule (``auto_margin=0``) had picked tf/2's positions on a 0.0017 gap
    (0.2 standard error) and tf/0's 6-mers on 0.0050 (0.5). End to end, seed 0 (CPU,
    session 40), test MCC with the rule / the lowest-loss choice: tf/0 67.10 (4-mers) /
    65.12 (6-mers), tf/2 66.23 (no positions) / 63.44, tf/2 seed 1 67.54 / 63.35, mouse/2
    86.59 (no positions) / 83.15; tf/1 72.58 (4-mers + positions; the old rule's 6-mer
    choice was not fitted). The other GUE rows' recorded gaps are wide enough that the
    rule would very likely not change them (prom_core_tata re-run in session 41: the same
    choices, 4-mers at 6.0 and positions at 1.8 standard errors). Seeds 1 of tf/0 and tf/1
    (session 41) chose what the lowest loss chooses (tf/0: 6-mers at 1.6 standard errors,
    test 63.71; tf/1: 4-mers, no positions, 71.33); later seeds' choices: ``docs/results.md``.
    The search (session 44): when positions are kept, the size is chosen again with them
    (the other size fitted with positions: a fourth network), and so on while a choice
    changes. The two-step search before it chose the size without positions only: on
    prom_300_tata it kept 6-mers on seeds 0 and 1 (4-mers 1.7-1.9 standard errors higher
    without positions), whereas with positions the 4-mer network's dev loss is far lower
    (0.2503 / 0.2848 vs 0.3431 / 0.3429; test MCC 84.5 / 80.8 against 69.7 / 71.9). The
    fourth network left every other recorded choice as it was: 6-mers + positions had the
    higher dev loss on prom_core_tata (three seeds), prom_core_notata, prom_core_all, tf/1
    and prom_300_tata seed 2; tasks whose positions were rejected (tf/0, tf/2, mouse/0,
    mouse/2) train the same three networks as before.

    Pooling: ``"max"``. Chosen on the lowest dev loss (never test) over nine GUE runs, max vs
    mean pooling: max lower on mouse/0 (twice: 0.4545 vs 0.4914 at batch 32 on CPU, 0.4652
    vs 0.5071 at batch 128 on an H100), mouse/2 (0.2411 vs 0.2629), tf/1 (0.5059 vs 0.5218)
    and tf/2 (0.5102 vs 0.5164); tied on prom_300_tata (0.5665 vs 0.5668); higher on
    prom_core_tata (0.3802 vs 0.3551), prom_core_all (10,000-sequence subsample, CPU: 0.4729
    vs 0.4521) and tf/0 (0.4597 vs 0.4572, with 220 s of training against 360 s). Max
    suits "is the motif anywhere" tasks (TF binding); mean stays the better choice for core
    promoters. ``"meanmax"`` was worse than both on prom_core_tata (0.4022) and between them
    on mouse/0 (0.4580). Figures and commands: ``docs/results.md``.

    Sub-k-mer embeddings: on (``subkmer_embedding=True``): each k-mer token's embedding is
    the sum of its own and its 1 .. k-1-base prefixes' (CPU, session 33, same seeds with /
    without, lowest dev loss then test MCC): 6-mers on mouse/0 (6,478 training sequences)
    lower dev loss in 3 of 3 seeds and test MCC 59.39 +/- 0.98 against 56.64 +/- 1.35;
    mouse/2 (2,620) lower dev loss in 5 of 5 (test 84.88 vs 82.61); prom_core_tata (4-mers
    with positions) 2 of 2 (test 78.02 vs 71.84); on tf/0 (32,378) level (6-mers 0.4521 vs
    0.4520, 4-mers 0.4639 vs 0.4597). A 6-mer table (4,096 rows) is sparse on small data
    sets; the prefixes share what k-mers with a common start have in common.

    Variant: ``"mag"``. Sessions 38, 39 and 45 trained MAC (``variant="mac"``) in place of
    MAG on the network each default row uses, same seeds (CPU): MAC's dev loss was lower in
    17 of 23 pairs, its test MCC higher in 12 of 23. Three-seed means, MAC - MAG: ahead on
    prom_core_notata (+1.00: 68.81 +/- 0.77, above DNABERT-2's 68.04 on every seed), mouse/0
    (+1.89), prom_core_tata (+1.69) and tf/0 (+1.25); behind on prom_core_all (-0.17), tf/2
    (-3.83, 6-mers: test log loss higher on all three seeds while the 1,000-sequence dev split
    ranked MAC lower once, level once, higher once) and mouse/2 (-3.87); tf/1 one seed
    (-0.18). Four tasks each way, 7-25 % more time per epoch: MAC is a per-task setting
    (prom_core_notata), not the default. The memory alone (``"lmm"``) and attention alone
    (``"swa"``) did not beat MAG's test MCC on tf/0.
    Figures and commands: ``docs/results.md``.
    """

    tokenizer: str = "kmer"
    variant: str = "mag"
    d_model: int = 32
    n_layers: int = 2
    n_heads: int = 2
    n_persistent: int = 4
    memory_depth: int = 2
    memory_chunk_size: int = 32
    window: int = 128
    pooling: str = "max"
    dropout: float = 0.1
    max_epochs: int = 20
    batch_size: int = 32
    learning_rate_small: float = 1e-3
    learning_rate_large: float = 3e-4
    large_from_samples: int = 10000
    weight_decay: float = 0.01
    gradient_clip_val: float | None = 1.0
    lr_decay_large: float | None = 0.5
    validation_size: float = 0.1
    patience: int = 3
    kmer_k: int | str = "auto"
    kmer_k_candidates: tuple[int, ...] = (4, 6)
    position_embedding: bool | str = "auto"
    auto_margin: float = 1.0
    subkmer_embedding: bool = True
    predict_batch_size: int = 256


#: Defaults of :class:`TitansSequenceClassifier` (see :class:`ClassifierDefaults`).
CLASSIFIER_DEFAULTS = ClassifierDefaults()
_D = CLASSIFIER_DEFAULTS


# --------------------------------------------------------------------------- input checks


def check_sequences(X: Any, caller: str = "TitansSequenceClassifier") -> list[Any]:
    """``X`` as a list of its items (not yet validated as DNA; the tokenizer does that).

    Accepts a list/tuple, a 1-D numpy array, a pandas Series, or a 2-D array/frame with
    exactly one column. Raises :class:`TypeError` for a single string or other containers
    and :class:`ValueError` for an empty or multi-column input.
    """
    if isinstance(X, (str, bytes)):
        raise TypeError(
            f"{caller} expects a list/array/Series of DNA strings, got a single "
            f"{type(X).__name__}; wrap it in a list: [seq]"
        )
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is not None and isinstance(X, pd.DataFrame):
        if X.shape[1] != 1:
            raise ValueError(
                f"{caller} expects one column of sequences, got a DataFrame with "
                f"{X.shape[1]} columns {list(X.columns)[:5]}; pass df['<column>']"
            )
        X = X.iloc[:, 0]
    if pd is not None and isinstance(X, pd.Series):
        items = X.tolist()
    elif isinstance(X, np.ndarray):
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim != 1:
            raise ValueError(
                f"{caller} expects a 1-D array of sequences, got shape {X.shape}; pass a "
                "1-D array or a list of strings"
            )
        items = X.tolist()
    elif isinstance(X, (list, tuple)):
        items = list(X)
    else:
        raise TypeError(
            f"{caller} expects a list, tuple, numpy array or pandas Series of DNA strings, "
            f"got {type(X).__name__}; convert it with list(...)"
        )
    if not items:
        raise ValueError(f"{caller} got 0 sequences; pass at least one")
    return items


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


class TitansSequenceClassifier(ClassifierMixin, TitansBaseEstimator):
    """Titans DNA sequence classifier with a scikit-learn interface.

    Parameters (all optional; ``None`` sizes are chosen from the data, see
    :class:`ClassifierDefaults`):
        tokenizer: ``"nucleotide"`` (one token per base) or ``"kmer"`` (``kmer_k``-mers,
            overlapping unless ``kmer_overlapping=False``).
        kmer_k: k-mer size (1-8), or ``"auto"`` (default): fit one network per size in
            ``CLASSIFIER_DEFAULTS.kmer_k_candidates`` (4 and 6) and choose on the
            validation loss (the early-stopping split or ``validation_data``): the first
            size is kept unless another's loss is lower by more than ``auto_margin``
            standard errors. With both ``"auto"`` defaults a fit trains three networks, or
            four when positions are kept (``max_time`` is shared between four); ``kmer_k=4,
            position_embedding=False`` trains one.
        max_length: keep only the first ``max_length`` bases of longer sequences
            (``None``: whole sequences).
        variant: Titans backbone, one of ``"lmm"``, ``"mac"``, ``"mag"``, ``"mal"``,
            ``"swa"``.
        d_model, n_layers, n_heads, n_persistent: backbone width, depth, heads and
            persistent-memory tokens.
        memory_depth, memory_chunk_size: layers of the neural memory MLP and tokens per
            memory chunk.
        window: sliding-window attention span in tokens (also the MAC segment length).
        pooling: ``"mean"``, ``"max"`` or ``"meanmax"`` (both, concatenated) over the real
            tokens, or ``"last"`` (the last real token's state: position-aware relative to
            the sequence end).
        position_embedding: ``"auto"`` (default), True or False: add a learned embedding
            of each token's absolute position (from the sequence start; as many positions
            as the longest training sequence has tokens, later ones share the last), for
            tasks where *where* a motif sits in a fixed window matters (e.g. promoter
            windows aligned on the TSS); ``"auto"``: after the k-mer size is chosen, fit
            that size once more with it and keep it when its validation loss is lower by
            more than ``auto_margin`` standard errors (one more network); when kept with
            ``kmer_k="auto"``, the size is chosen again with positions (the other size
            fitted with them: a fourth network), and so on while a choice changes.
        auto_margin: how the ``"auto"`` choices weigh validation noise, in standard errors
            of the paired per-sequence loss difference (both networks scored on the same
            validation sequences): the simpler network (fewer k-mer letters, no position
            embedding) is kept unless the other's mean loss is lower by more than
            ``auto_margin`` of them (the one-standard-error rule; default 1). 0: the lower
            mean loss, however small the gap.
        kmer_linear: also learn a linear model of the sequence's k-mer (token) frequencies,
            added to the network's logits and trained with it (the k-mer baseline's model
            class inside the classifier; off by default: one seed each on the CPU, it
            lowered the validation loss on mouse/0 and prom_core_tata and raised it on
            tf/0 and mouse/2; docs/results.md).
        bidirectional: every backbone block reads each sequence left to right and right to
            left with the same weights and averages the two, so each token's state sees the
            whole sequence (not only its left); twice the compute. Off by default (causal,
            as the streaming backbone and a pretrained DNA language model are): on the CPU
            it raised test MCC on the promoter sets (prom_core_tata, prom_core_notata) and
            mouse/0 and lowered it on tf/0 and mouse/2, within seed noise but on one
            prom_core_notata seed (docs/results.md, session 46).
        subkmer_embedding: add to every k-mer token's embedding learned embeddings of its
            prefixes of 1 .. k-1 bases (k-mers that share a prefix share part of their
            embedding; :class:`~titans_ts.training.sequence.SubkmerEmbedding`). Used with
            k-mer tokens of ``k >= 2`` (ignored for single bases and 1-mers). On by
            default: it lowered the validation loss of 6-mer networks on the small GUE
            mouse tasks and left tf/0 level (:class:`ClassifierDefaults`).
        dropout: dropout in the backbone and on the pooled vector.
        max_epochs, batch_size, learning_rate, weight_decay, gradient_clip_val:
            optimisation (AdamW); ``learning_rate=None`` (default) is chosen from the number
            of training sequences (:class:`ClassifierDefaults`).
        lr_decay: ``None`` (constant learning rate), a factor in (0, 1) that multiplies
            the learning rate after every epoch whose validation loss does not improve
            (needs a validation split; ignored without one), or ``"auto"`` (default): 0.5
            from 10,000 training sequences, none below (:class:`ClassifierDefaults`).
        max_time: wall-clock limit of training in seconds (``None``: none); training stops
            at the first batch past it, validates once more and keeps the best weights.
            Fits that stop on time are not reproducible run to run.
        class_weight: ``None`` (equal), ``"balanced"`` (inverse class frequency) or
            ``{label: weight}`` (missing labels weigh 1), in the cross-entropy.
        rc_augment: train on a random strand of every sequence.
        crop_augment: with ``> 0``, every training sequence loses a random number of
            tokens, up to ``crop_augment`` (never all), from its two ends, a fresh random
            sub-window each time it is drawn (with overlapping k-mers, bases); validation
            and prediction see whole sequences. 0 (default): off.
        rc_average: average both strands' logits / embeddings at prediction.
        early_stopping, validation_size, patience: hold out a stratified fraction (float)
            or count (int) of the training data and stop when its loss stops improving.
        pretrained: folder of a saved ``TitansDNALM`` or ``TitansSequenceClassifier``
            whose embedding and backbone initialise the network.
        accelerator, devices: as in Lightning (``"cpu"``, ``"gpu"``, ``"auto"``...).
        random_state: seed; with an int two fits on CPU give identical probabilities.
        verbose: progress bar and model summary during fit.

    Fitted attributes:
        classes_, n_classes_, model_ (network, eval mode), config_
        (:class:`~titans_ts.training.sequence.SequenceModelConfig`), tokenizer_,
        max_length_, class_weight_ (per class, in ``classes_`` order), history_ (per-epoch
        losses), best_epoch_, kmer_k_ (the k-mer size used; None for nucleotides),
        kmer_k_scores_ (``{k: best validation loss}`` of the ``"auto"`` candidates, else
        None), kmer_k_margins_ (``{k: {"difference": d, "se": s}}``: each candidate's
        validation loss minus the lowest one and the standard error of that paired
        difference, else None), position_embedding_ (used or not), position_scores_
        (``{False: loss, True: loss}`` with ``position_embedding="auto"``, else None),
        position_margins_ (as ``kmer_k_margins_``, keyed False / True), search_path_
        (every network trained, in order: ``{"kmer_k", "position_embedding",
        "val_loss"}``; one entry when nothing was chosen), n_train_samples_,
        n_val_samples_, learning_rate_ (the initial learning rate used), lr_decay_ (the
        decay factor used, None for none), seed_.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "tokenizer": [Options(("nucleotide", "kmer"))],
        "kmer_k": [Interval(Integral, 1, 8), Options(("auto",))],
        "kmer_overlapping": ["boolean"],
        "max_length": [Interval(Integral, 1, None), None],
        "variant": [Options(tuple(VARIANTS))],
        "d_model": [Interval(Integral, 2, None), None],
        "n_layers": [Interval(Integral, 1, None)],
        "n_heads": [Interval(Integral, 1, None)],
        "n_persistent": [Interval(Integral, 0, None)],
        "memory_depth": [Interval(Integral, 1, None)],
        "memory_chunk_size": [Interval(Integral, 1, None)],
        "window": [Interval(Integral, 1, None), None],
        "pooling": [Options(POOLINGS)],
        "position_embedding": ["boolean", Options(("auto",))],
        "auto_margin": [Interval(Real, 0, None, closed="left")],
        "kmer_linear": ["boolean"],
        "bidirectional": ["boolean"],
        "subkmer_embedding": ["boolean"],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "max_epochs": [Interval(Integral, 1, None)],
        "max_time": [Interval(Real, 0, None, closed="neither"), None],
        "batch_size": [Interval(Integral, 1, None)],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), None],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "gradient_clip_val": [Interval(Real, 0, None, closed="neither"), None],
        "lr_decay": [Interval(Real, 0, 1, closed="neither"), Options(("auto",)), None],
        "class_weight": [Options(("balanced",)), dict, None],
        "rc_augment": ["boolean"],
        "crop_augment": [Interval(Integral, 0, None)],
        "rc_average": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_size": [Interval(Real, 0, 1, closed="neither"), Interval(Integral, 1, None)],
        "patience": [Interval(Integral, 1, None)],
        "pretrained": [str, os.PathLike, None],
        "accelerator": [Options(("auto", "cpu", "gpu", "cuda", "mps"))],
        "devices": [Interval(Integral, 1, None), Options(("auto",)), list],
        "random_state": [Interval(Integral, 0, 2**32 - 1), np.random.Generator, None],
        "verbose": ["boolean"],
    }

    def __init__(
        self,
        *,
        tokenizer: str = _D.tokenizer,
        kmer_k: int | str = _D.kmer_k,
        kmer_overlapping: bool = True,
        max_length: int | None = None,
        variant: str = _D.variant,
        d_model: int | None = None,
        n_layers: int = _D.n_layers,
        n_heads: int = _D.n_heads,
        n_persistent: int = _D.n_persistent,
        memory_depth: int = _D.memory_depth,
        memory_chunk_size: int = _D.memory_chunk_size,
        window: int | None = None,
        pooling: str = _D.pooling,
        position_embedding: bool | str = _D.position_embedding,
        auto_margin: float = _D.auto_margin,
        kmer_linear: bool = False,
        bidirectional: bool = False,
        subkmer_embedding: bool = _D.subkmer_embedding,
        dropout: float = _D.dropout,
        max_epochs: int = _D.max_epochs,
        max_time: float | None = None,
        batch_size: int = _D.batch_size,
        learning_rate: float | None = None,
        weight_decay: float = _D.weight_decay,
        gradient_clip_val: float | None = _D.gradient_clip_val,
        lr_decay: float | str | None = "auto",
        class_weight: str | dict | None = None,
        rc_augment: bool = True,
        crop_augment: int = 0,
        rc_average: bool = True,
        early_stopping: bool = True,
        validation_size: float | int = _D.validation_size,
        patience: int = _D.patience,
        pretrained: str | os.PathLike | None = None,
        accelerator: str = "auto",
        devices: int | str | list[int] = 1,
        random_state: int | np.random.Generator | None = None,
        verbose: bool = False,
    ) -> None:
        self.tokenizer = tokenizer
        self.kmer_k = kmer_k
        self.kmer_overlapping = kmer_overlapping
        self.max_length = max_length
        self.variant = variant
        self.d_model = d_model
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.n_persistent = n_persistent
        self.memory_depth = memory_depth
        self.memory_chunk_size = memory_chunk_size
        self.window = window
        self.pooling = pooling
        self.position_embedding = position_embedding
        self.auto_margin = auto_margin
        self.kmer_linear = kmer_linear
        self.bidirectional = bidirectional
        self.subkmer_embedding = subkmer_embedding
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.max_time = max_time
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.gradient_clip_val = gradient_clip_val
        self.lr_decay = lr_decay
        self.class_weight = class_weight
        self.rc_augment = rc_augment
        self.crop_augment = crop_augment
        self.rc_average = rc_average
        self.early_stopping = early_stopping
        self.validation_size = validation_size
        self.patience = patience
        self.pretrained = pretrained
        self.accelerator = accelerator
        self.devices = devices
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.non_deterministic = not (
            self.accelerator == "cpu"
            or (self.accelerator == "auto" and not torch.cuda.is_available())
        )
        return tags

    # ------------------------------------------------------------------ validation

    def _check_settings(self, d_model: int) -> None:
        self._validate_params()
        if d_model % self.n_heads or (d_model // self.n_heads) % 2:
            raise ValueError(
                f"{type(self).__name__}: d_model={d_model} must be divisible by "
                f"n_heads={self.n_heads} with an even per-head width (rotary embeddings); "
                "e.g. d_model=32, n_heads=2"
            )

    def _labels(self, y: Any, n: int) -> np.ndarray:
        if y is None:
            raise ValueError(f"{type(self).__name__}.fit needs labels y (got None)")
        arr = y.to_numpy() if hasattr(y, "to_numpy") else np.asarray(y)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise ValueError(
                f"y must be 1-D (one label per sequence), got shape {arr.shape}; "
                "multi-output classification is not supported"
            )
        if len(arr) != n:
            raise ValueError(f"X has {n} sequences but y has {len(arr)} labels; pass one each")
        check_classification_targets(arr)
        return arr

    def _tokenize(self, items: list[Any], tokenizer: Any, max_length: int | None) -> Any:
        return tokenize_both_strands(tokenizer, items, max_length=max_length)

    def _encode_labels(self, y: np.ndarray, classes: np.ndarray) -> np.ndarray:
        index = np.searchsorted(classes, y)
        index = np.clip(index, 0, len(classes) - 1)
        unknown = np.flatnonzero(classes[index] != y)
        if unknown.size:
            i = int(unknown[0])
            raise ValueError(
                f"validation label {y[i]!r} (row {i}) is not among the training classes "
                f"{classes.tolist()[:10]}"
            )
        return index.astype(np.int64)

    # ------------------------------------------------------------------ fit

    def fit(
        self, X: Any, y: Any, *, validation_data: tuple[Any, Any] | None = None
    ) -> TitansSequenceClassifier:
        """Fit on DNA strings ``X`` (``n`` of them) and labels ``y`` (``n``); returns ``self``.

        Args:
            X: sequences (see the module docstring for accepted containers).
            y: one label per sequence, any sortable label type.
            validation_data: ``(X_val, y_val)`` used for early stopping instead of a
                split of ``X`` (e.g. GUE's dev split).
        """
        name = type(self).__name__
        self._validate_params()
        items = check_sequences(X, name)
        y_arr = self._labels(y, len(items))
        try:
            classes, y_index = np.unique(y_arr, return_inverse=True)
        except TypeError as err:
            raise TypeError(
                f"labels of mixed types cannot be sorted ({err}); use labels of one type"
            ) from err
        if classes.dtype == object and all(isinstance(c, str) for c in classes):
            classes = classes.astype(str)
        if len(classes) < 2:
            raise ValueError(
                f"{name} needs at least 2 classes in y, got only {classes.tolist()!r}"
            )
        y_index = y_index.reshape(-1).astype(np.int64)

        pre = _load_pretrained(self.pretrained) if self.pretrained is not None else None
        if pre is not None and isinstance(self.kmer_k, Integral):
            spec = pre["tokenizer"]
            if spec["kind"] != "kmer" or int(spec["k"]) != int(self.kmer_k):
                raise ValueError(
                    f"kmer_k={self.kmer_k} but pretrained={str(self.pretrained)!r} reads "
                    f"{spec}; the tokenizer comes from the pretrained network: leave kmer_k "
                    "at 'auto' or set it to the pretrained one"
                )
        weights = compute_class_weight(
            self.class_weight, classes=classes, y=classes[y_index]
        ) if self.class_weight is not None else np.ones(len(classes))
        val_raw = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError("validation_data must be a pair (X_val, y_val)")
            v_items = check_sequences(validation_data[0], name)
            v_y = self._encode_labels(self._labels(validation_data[1], len(v_items)), classes)
            val_raw = (v_items, v_y)

        auto_k = pre is None and self.tokenizer == "kmer" and self.kmer_k == "auto"
        auto_pos = self.position_embedding == "auto"
        if (auto_k or auto_pos) and val_raw is None and not self.early_stopping:
            warnings.warn(
                f"{name}: kmer_k='auto' / position_embedding='auto' choose on validation "
                f"data, and there is none (early_stopping=False, no validation_data): using "
                f"kmer_k={_D.kmer_k_candidates[0]} and no position embedding. Pass "
                "validation_data=(X_val, y_val) or set them explicitly to silence this.",
                UserWarning,
                stacklevel=2,
            )
            auto_k = auto_pos = False
        if pre is not None:
            sizes = [pre["tokenizer"]]
        elif auto_k:
            sizes = [{"kind": "kmer", "k": k, "overlapping": self.kmer_overlapping}
                     for k in _D.kmer_k_candidates]
        else:
            k = _D.kmer_k_candidates[0] if self.kmer_k == "auto" else self.kmer_k
            sizes = [{"kind": self.tokenizer, "k": k, "overlapping": self.kmer_overlapping}]
        positions = [False, True] if auto_pos else [self.position_embedding is True]
        # every (size, position) network is fitted at most once: max_time is shared by all
        n_fits = len(sizes) * len(positions)
        share = None if self.max_time is None else float(self.max_time) / n_fits
        fitted: dict[tuple[int, bool], dict[str, Any]] = {}

        def fit_one(size: int, position: bool) -> dict[str, Any]:
            if (size, position) not in fitted:
                fitted[size, position] = self._fit_tokenizer(
                    make_tokenizer(**sizes[size]), items, y_index, classes, weights,
                    val_raw, pre, share, position,
                )
            return fitted[size, position]

        def best(keys: list[tuple[int, bool]]) -> tuple[int, list[tuple[float, float]] | None]:
            fits = [fit_one(*key) for key in keys]
            # too few sequences to hold out a validation split (fit warned): the first one
            if len(fits) < 2 or any(f["val_losses"] is None for f in fits):
                return 0, None
            return _prefer_simpler([f["val_losses"] for f in fits], float(self.auto_margin))

        # Coordinate search over (size, position), simplest first: the size (without
        # positions when they are to be chosen too), then positions on that size, then
        # the size again under that setting, and so on while a choice changes (a setting
        # visited before ends it); every network is fitted at most once. The third step
        # is the one the first two missed: on prom_300_tata 6-mers won without positions
        # but 4-mers with positions were far better (docs/results.md, session 43).
        self.kmer_k_scores_ = self.kmer_k_margins_ = None
        self.position_scores_ = self.position_margins_ = None
        state = (0, positions[0])
        seen = {state}
        while True:
            before = state
            if len(sizes) > 1:
                keys = [(i, state[1]) for i in range(len(sizes))]
                index, margins = best(keys)
                state = keys[index]
                if margins is not None:
                    ks = [int(fitted[key]["tokenizer"].k) for key in keys]
                    self.kmer_k_scores_ = {
                        k: float(fitted[key]["val_loss"]) for k, key in zip(ks, keys)
                    }
                    self.kmer_k_margins_ = {k: _margin_dict(m) for k, m in zip(ks, margins)}
            if len(positions) > 1:
                keys = [(state[0], p) for p in positions]
                index, margins = best(keys)
                state = keys[index]
                if margins is not None:
                    self.position_scores_ = {
                        p: float(fitted[key]["val_loss"]) for p, key in zip(positions, keys)
                    }
                    self.position_margins_ = {
                        p: _margin_dict(m) for p, m in zip(positions, margins)
                    }
            if state == before or state in seen:
                break
            seen.add(state)
        chosen = fit_one(*state)  # fitted already unless nothing was to be chosen
        self.search_path_ = [
            {"kmer_k": getattr(f["tokenizer"], "k", None), "position_embedding": position,
             "val_loss": None if f["val_loss"] is None else float(f["val_loss"])}
            for (_, position), f in fitted.items()
        ]

        self.classes_ = classes
        self.n_classes_ = len(classes)
        self.config_ = chosen["config"]
        self.model_ = chosen["model"]
        self.tokenizer_ = chosen["tokenizer"]
        self.kmer_k_ = getattr(chosen["tokenizer"], "k", None)
        self.position_embedding_ = chosen["config"].max_positions > 0
        self.max_length_ = self.max_length
        self.class_weight_ = np.asarray(weights, dtype=np.float64)
        self.history_ = chosen["history"]
        self.best_epoch_ = chosen["best_epoch"]
        self.n_train_samples_ = chosen["n_train"]
        self.n_val_samples_ = chosen["n_val"]
        self.learning_rate_ = chosen["learning_rate"]
        self.lr_decay_ = chosen["lr_decay"]
        return self

    def _fit_tokenizer(
        self,
        tokenizer: Any,
        items: list[Any],
        y_index: np.ndarray,
        classes: np.ndarray,
        weights: np.ndarray,
        val_raw: tuple[list[Any], np.ndarray] | None,
        pre: dict[str, Any] | None,
        max_time: float | None,
        position: bool,
    ) -> dict[str, Any]:
        """One network trained on ``tokenizer``'s tokens (seeded afresh, so a candidate of
        ``kmer_k="auto"`` equals the fit with that ``kmer_k``). Returns the config, model
        (CPU, eval mode), tokenizer, history, best epoch, best validation loss (None
        without validation) and the train / validation sizes."""
        forward, reverse = self._tokenize(items, tokenizer, self.max_length)
        data = TokenizedSequences(forward, reverse, y_index)
        val_given = None
        if val_raw is not None:
            v_fwd, v_rev = self._tokenize(val_raw[0], tokenizer, self.max_length)
            val_given = TokenizedSequences(v_fwd, v_rev, val_raw[1])

        # ---- sizes from the data
        large = len(data) >= _D.large_from_samples
        learning_rate = self.learning_rate if self.learning_rate is not None else (
            _D.learning_rate_large if large else _D.learning_rate_small
        )
        lr_decay = self.lr_decay if self.lr_decay != "auto" else (
            _D.lr_decay_large if large else None
        )
        if pre is not None:  # sizes from the pretrained network, regularisation from here
            backbone = dataclasses.replace(pre["backbone"], dropout=float(self.dropout))
        else:
            d_model = self.d_model if self.d_model is not None else _D.d_model
            self._check_settings(d_model)
            longest = int(forward.lengths.max())
            window = self.window if self.window is not None else max(1, min(_D.window, longest))
            backbone = build_sequence_backbone_config(
                variant=self.variant,
                d_model=d_model,
                n_layers=self.n_layers,
                n_heads=self.n_heads,
                n_persistent=self.n_persistent,
                memory_depth=self.memory_depth,
                memory_chunk_size=min(self.memory_chunk_size, window),
                window=window,
                dropout=float(self.dropout),
            )
        config = SequenceModelConfig(
            vocab_size=tokenizer.vocab_size,
            pad_id=tokenizer.pad_id,
            n_classes=len(classes),
            pooling=self.pooling,
            head_dropout=float(self.dropout),
            backbone=backbone,
            max_positions=int(forward.lengths.max()) if position else 0,
            kmer_linear=bool(self.kmer_linear),
            bidirectional=bool(self.bidirectional),
            subkmer_k=self._subkmer_k(tokenizer),
        )

        with self._fit_context() as (seed, root):
            # ---- validation split (seeded: inside the fit context)
            if val_given is not None:
                train, val = data, val_given
            elif self.early_stopping:
                train, val = self._split(data, y_index, seed)
            else:
                train, val = data, None
            has_val = val is not None and len(val) > 0
            model = TitansSequenceModel(config)
            if pre is not None:
                _init_from_pretrained(model, pre["state"])
            model.set_class_weight(weights)
            module = LossModule(
                model, learning_rate, self.weight_decay,
                lr_decay=lr_decay if has_val else None,
            )
            collate = SequenceCollate(
                tokenizer.pad_id, bool(self.rc_augment), seed, crop=int(self.crop_augment)
            )
            generator = torch.Generator().manual_seed(seed)
            train_loader = DataLoader(
                train, batch_size=self.batch_size, shuffle=True, generator=generator,
                collate_fn=collate,
            )
            val_loader = None
            if has_val:
                val_loader = DataLoader(
                    val, batch_size=_D.predict_batch_size, shuffle=False,
                    # scored as predict() scores: both strands' mean with rc_average
                    collate_fn=SequenceCollate(
                        tokenizer.pad_id, both_strands=bool(self.rc_average)
                    ),
                )
            trainer, history, best = self._make_fit_trainer(root, has_val, max_time=max_time)
            trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader)
        model = module.model.to("cpu").eval()
        return {
            "config": config,
            "model": model,
            "tokenizer": tokenizer,
            "history": history.records,
            "best_epoch": None if best is None else best.best_epoch,
            "val_loss": None if best is None else best.best_score,
            "val_losses": (
                self._sequence_losses(model, val, weights)
                if best is not None and best.best_score is not None else None
            ),
            "n_train": len(train),
            "n_val": len(val) if has_val else 0,
            "learning_rate": float(learning_rate),
            "lr_decay": lr_decay if has_val else None,
        }

    def _sequence_losses(
        self, model: TitansSequenceModel, val: TokenizedSequences, weights: np.ndarray
    ) -> np.ndarray:
        """Per-sequence validation losses ``(n_val,)`` of the restored (best) network, as
        the validation loss scores them: class-weighted cross-entropy of the logits
        ``predict`` uses (both strands' mean with ``rc_average``), scaled so that their
        mean is the weighted mean the early stopping monitors."""
        logits = predict_logits(
            model, val.forward, val.reverse if self.rc_average else None,
            batch_size=_D.predict_batch_size,
        )
        labels = np.asarray(val.labels, dtype=np.int64)
        losses = torch.nn.functional.cross_entropy(
            torch.from_numpy(logits), torch.from_numpy(labels), reduction="none"
        ).numpy()
        w = np.asarray(weights, dtype=np.float64)[labels]
        return losses * w / w.mean()

    def _subkmer_k(self, tokenizer: Any) -> int:
        """``SequenceModelConfig.subkmer_k``: the k-mer size with ``subkmer_embedding`` and
        k-mer tokens of ``k >= 2``, else 0."""
        k = int(getattr(tokenizer, "k", 1))
        return k if self.subkmer_embedding and k >= 2 else 0

    def _split(
        self, data: TokenizedSequences, y_index: np.ndarray, seed: int
    ) -> tuple[TokenizedSequences, TokenizedSequences | None]:
        """Stratified hold-out for early stopping (plain random when a class is too small)."""
        n = len(data)
        size = self.validation_size
        n_val = int(round(size * n)) if isinstance(size, float) else int(size)
        n_classes = int(y_index.max()) + 1
        if n_val < 1 or n - n_val < n_classes:
            warnings.warn(
                f"{type(self).__name__}: {n} sequences are too few to hold out "
                f"validation_size={size!r}; training for max_epochs without early stopping",
                UserWarning,
                stacklevel=4,
            )
            return data, None
        counts = np.bincount(y_index, minlength=n_classes)
        stratify = y_index if counts.min() >= 2 and n_val >= n_classes else None
        idx = np.arange(n)
        train_idx, val_idx = train_test_split(
            idx, test_size=n_val, stratify=stratify, random_state=seed % 2**32
        )
        return data.subset(np.sort(train_idx)), data.subset(np.sort(val_idx))

    # ------------------------------------------------------------------ prediction

    def _strands(self, X: Any) -> tuple[Any, Any]:
        self._check_fitted()
        items = check_sequences(X, type(self).__name__)
        forward, reverse = self._tokenize(items, self.tokenizer_, self.max_length_)
        return forward, (reverse if self.rc_average else None)

    def decision_function(self, X: Any) -> np.ndarray:
        """Class logits ``(n, n_classes)`` (mean of both strands' with ``rc_average``)."""
        forward, reverse = self._strands(X)
        return predict_logits(
            self.model_, forward, reverse, batch_size=_D.predict_batch_size,
            device=self._device(),
        )

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` (softmax of :meth:`decision_function`);
        columns follow ``classes_`` and every row sums to 1."""
        logits = self.decision_function(X)
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log of :meth:`predict_proba` ``(n, n_classes)``."""
        logits = self.decision_function(X)
        logits = logits - logits.max(axis=1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels ``(n,)`` (values of ``classes_``)."""
        logits = self.decision_function(X)  # checks fitting first
        return self.classes_[np.argmax(logits, axis=1)]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy of :meth:`predict` on ``(X, y)``."""
        return super().score(X, y, sample_weight=sample_weight)

    def transform(self, X: Any) -> np.ndarray:
        """Pooled sequence embeddings, float64 ``(n, d_model)`` (``(n, 2 d_model)`` with
        ``pooling="meanmax"``): the head's input, the mean of both strands' with
        ``rc_average``; e.g. as features for another estimator."""
        forward, reverse = self._strands(X)
        return sequence_embeddings(
            self.model_, forward, reverse, batch_size=_D.predict_batch_size,
            device=self._device(),
        )

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike) -> pathlib.Path:
        """Write a versioned directory: ``estimator.json`` (format version, parameters,
        model config, tokenizer, classes, fitted metadata) and ``weights.pt``. Returns the
        directory path."""
        self._check_fitted()
        folder = pathlib.Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        params = self.get_params(deep=False)
        if params["random_state"] is not None and not isinstance(params["random_state"], int):
            params["random_state"] = self.seed_
        if params["pretrained"] is not None:
            params["pretrained"] = os.fspath(params["pretrained"])
        if isinstance(params["class_weight"], dict):
            params["class_weight"] = {
                "__pairs__": [[_jsonable(k), float(v)] for k, v in params["class_weight"].items()]
            }
        document = {
            "format": _FORMAT_NAME,
            "format_version": CLASSIFIER_FORMAT_VERSION,
            "params": params,
            "model_config": self.config_.to_dict(),
            "tokenizer": tokenizer_spec(self.tokenizer_),
            "fitted": {
                "classes_": {
                    "dtype": self.classes_.dtype.str if self.classes_.dtype != object else "O",
                    "values": [_jsonable(c) for c in self.classes_.tolist()],
                },
                "max_length_": self.max_length_,
                "class_weight_": self.class_weight_.tolist(),
                "history_": self.history_,
                "best_epoch_": self.best_epoch_,
                "kmer_k_": self.kmer_k_,
                "kmer_k_scores_": None if self.kmer_k_scores_ is None else {
                    str(k): v for k, v in self.kmer_k_scores_.items()
                },
                "position_scores_": None if self.position_scores_ is None else {
                    str(k).lower(): v for k, v in self.position_scores_.items()
                },
                "kmer_k_margins_": None if self.kmer_k_margins_ is None else {
                    str(k): v for k, v in self.kmer_k_margins_.items()
                },
                "position_margins_": None if self.position_margins_ is None else {
                    str(k).lower(): v for k, v in self.position_margins_.items()
                },
                "search_path_": self.search_path_,
                "n_train_samples_": self.n_train_samples_,
                "n_val_samples_": self.n_val_samples_,
                "learning_rate_": self.learning_rate_,
                "lr_decay_": self.lr_decay_,
                "seed_": self.seed_,
            },
        }
        try:
            text = json.dumps(document, indent=2)
        except TypeError as err:
            raise TypeError(
                f"cannot save: a parameter or class label is not JSON-serialisable ({err}); "
                "use plain Python values (str, int, float, bool) for labels and parameters"
            ) from err
        (folder / "estimator.json").write_text(text)
        torch.save(self.model_.state_dict(), folder / "weights.pt")
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike) -> TitansSequenceClassifier:
        """Load a directory written by :meth:`save` (works in a fresh process)."""
        document = _read_document(path, _FORMAT_NAME, CLASSIFIER_FORMAT_VERSION)
        params = dict(document["params"])
        cw = params.get("class_weight")
        if isinstance(cw, dict) and "__pairs__" in cw:
            params["class_weight"] = {k: v for k, v in cw["__pairs__"]}
        config = SequenceModelConfig.from_dict(document["model_config"])
        # saved before the parameter existed (off then): say what the network has
        params.setdefault("subkmer_embedding", config.subkmer_k > 0)
        # saved before auto_margin existed: the lowest validation loss was kept
        params.setdefault("auto_margin", 0.0)
        est = cls(**params)
        fitted = document["fitted"]
        model = TitansSequenceModel(config)
        state = torch.load(
            pathlib.Path(path) / "weights.pt", map_location="cpu", weights_only=True
        )
        model.load_state_dict(state)
        classes = fitted["classes_"]
        est.classes_ = np.array(
            classes["values"], dtype=object if classes["dtype"] == "O" else classes["dtype"]
        )
        est.n_classes_ = len(est.classes_)
        est.config_ = config
        est.model_ = model.eval()
        est.tokenizer_ = make_tokenizer(**document["tokenizer"])
        est.max_length_ = fitted["max_length_"]
        est.class_weight_ = np.asarray(fitted["class_weight_"], dtype=np.float64)
        est.history_ = fitted["history_"]
        est.best_epoch_ = fitted["best_epoch_"]
        est.kmer_k_ = getattr(est.tokenizer_, "k", None)
        scores = fitted.get("kmer_k_scores_")
        est.kmer_k_scores_ = None if scores is None else {int(k): v for k, v in scores.items()}
        est.position_embedding_ = config.max_positions > 0
        scores = fitted.get("position_scores_")
        est.position_scores_ = None if scores is None else {
            k == "true": v for k, v in scores.items()
        }
        margins = fitted.get("kmer_k_margins_")  # absent in files saved before the margin
        est.kmer_k_margins_ = None if margins is None else {
            int(k): v for k, v in margins.items()
        }
        margins = fitted.get("position_margins_")
        est.position_margins_ = None if margins is None else {
            k == "true": v for k, v in margins.items()
        }
        # absent in files saved before the search was recorded
        est.search_path_ = fitted.get("search_path_")
        est.n_train_samples_ = fitted["n_train_samples_"]
        est.n_val_samples_ = fitted["n_val_samples_"]
        # files written before learning_rate could be None: the explicit parameter
        est.learning_rate_ = fitted.get("learning_rate_", document["params"].get("learning_rate"))
        # files written before lr_decay could be "auto": the explicit parameter
        est.lr_decay_ = fitted.get("lr_decay_", document["params"].get("lr_decay"))
        est.seed_ = fitted["seed_"]
        return est


# --------------------------------------------------------------------------- helpers


def _prefer_simpler(
    losses: Sequence[np.ndarray], margin: float = 1.0
) -> tuple[int, list[tuple[float, float]]]:
    """Pick among candidate networks by their per-sequence validation losses, simplest
    first: the first candidate whose mean loss exceeds the lowest mean by no more than
    ``margin`` standard errors of the paired difference (the "one-standard-error rule";
    ``margin=0``: the lowest mean loss, ties to the simpler).

    Args:
        losses: one ``(n_val,)`` array per candidate, all on the same validation
            sequences in the same order, in order of preference (simplest first).
        margin: how many standard errors a more complex candidate must win by (>= 0).

    Returns:
        ``(index, margins)``: the chosen candidate and, per candidate, ``(difference,
        se)``: its mean loss minus the lowest one and the standard error of that paired
        difference (``(0.0, 0.0)`` for the lowest itself).
    """
    arrays = [np.asarray(a, dtype=np.float64) for a in losses]
    if not arrays or any(a.ndim != 1 or a.shape != arrays[0].shape for a in arrays):
        raise ValueError(
            "_prefer_simpler needs one 1-D loss array per candidate, all of the same length "
            f"(the same validation sequences), got shapes {[a.shape for a in arrays]}"
        )
    if margin < 0:
        raise ValueError(f"margin must be >= 0 standard errors, got {margin}")
    lowest = int(np.argmin([a.mean() for a in arrays]))
    n = arrays[0].size
    margins = []
    for a in arrays:
        d = a - arrays[lowest]
        se = float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
        margins.append((float(d.mean()), se))
    # the lowest itself always qualifies (difference 0), so next() finds one
    chosen = next(i for i, (difference, se) in enumerate(margins) if difference <= margin * se)
    return chosen, margins


def _margin_dict(margin: tuple[float, float]) -> dict[str, float]:
    return {"difference": margin[0], "se": margin[1]}


def _read_document(path: str | os.PathLike, format_name: str, version: int) -> dict[str, Any]:
    folder = pathlib.Path(path)
    file = folder / "estimator.json"
    if not file.is_file():
        raise FileNotFoundError(f"{str(folder)!r} is not a saved model (no estimator.json)")
    document = json.loads(file.read_text())
    if document.get("format") != format_name:
        raise ValueError(f"{file} holds {document.get('format')!r}, not {format_name!r}")
    if document.get("format_version") != version:
        raise ValueError(
            f"{file} has format_version {document.get('format_version')}; this titans_ts "
            f"reads version {version}"
        )
    return document


#: Saved formats whose embedding + backbone can initialise a classifier.
_PRETRAINED_FORMATS: tuple[str, ...] = (
    "titans_ts.TitansDNALM",
    _FORMAT_NAME,
)


def _load_pretrained(path: str | os.PathLike) -> dict[str, Any]:
    """Tokenizer spec, backbone config and the ``embedding.*`` / ``backbone.*`` weights of a
    saved ``TitansDNALM`` or ``TitansSequenceClassifier`` folder."""
    from titans_ts.training.sequence import backbone_config_from_dict

    folder = pathlib.Path(path)
    file = folder / "estimator.json"
    if not file.is_file():
        raise FileNotFoundError(
            f"pretrained={str(folder)!r} is not a saved TitansDNALM or "
            "TitansSequenceClassifier folder (no estimator.json)"
        )
    document = json.loads(file.read_text())
    if document.get("format") not in _PRETRAINED_FORMATS:
        raise ValueError(
            f"pretrained={str(folder)!r} holds {document.get('format')!r}; expected one of "
            f"{_PRETRAINED_FORMATS}"
        )
    state = torch.load(folder / "weights.pt", map_location="cpu", weights_only=True)
    keep = {k: v for k, v in state.items() if k.startswith(("embedding.", "backbone."))}
    return {
        "tokenizer": document["tokenizer"],
        "backbone": backbone_config_from_dict(document["model_config"]["backbone"]),
        "state": keep,
    }


def _init_from_pretrained(model: TitansSequenceModel, state: dict[str, torch.Tensor]) -> None:
    missing, unexpected = model.load_state_dict(state, strict=False)
    bad = [k for k in missing if k.startswith(("embedding.", "backbone."))]
    if bad or unexpected:
        raise ValueError(
            f"pretrained weights do not fit the network: missing {bad[:5]}, unexpected "
            f"{list(unexpected)[:5]}"
        )
