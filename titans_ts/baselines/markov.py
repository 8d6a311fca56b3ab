"""In-run baseline for DNA language models: a fixed-order Markov chain over nucleotides.

The probability of the next base given the ``order`` bases before it is estimated from
counts with additive smoothing, ``(count(context, base) + alpha) / (count(context) +
5 * alpha)`` over the five symbols ``A C G T N`` (the output classes of
:class:`~titans_ts.training.dna_lm.TitansDNAModel`); ``alpha=0.5`` is the
Krichevsky-Trofimov estimator. Bases with fewer than ``order`` bases before them (the start
of a scored sequence) use the longest context they have, so every next-base prediction of
a sequence is scored, exactly the bases :func:`~titans_ts.training.dna_lm.stream_genome`
scores. Counts are kept sparse (sorted ids, ``numpy.searchsorted``), so orders up to 26
fit in int64 ``(context, base)`` ids and memory grows with the number of distinct contexts
seen, not ``5 ** order``.

:func:`select_markov_order` picks the order on a held-out tail of the training bases, so
the test stretch is never looked at; it is the bits-per-base number a Titans DNA LM has to
beat (``benchmarks/dna_lm_reset.py`` prints it beside the model).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["MarkovDNALM", "select_markov_order"]

_SYMBOLS = 5  # A C G T N, the nucleotide codes 0..4
_MAX_ORDER = 26  # 5**27 < 2**63: every (context, next base) id fits in int64


def _check_codes(codes: np.ndarray, name: str = "codes") -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim != 1 or not np.issubdtype(codes.dtype, np.integer):
        raise TypeError(f"{name} must be a 1-D integer array of nucleotide codes 0..4 "
                        f"(titans_ts.training.dna_lm.genome_codes), got {codes.dtype} "
                        f"with shape {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() >= _SYMBOLS):
        raise ValueError(f"{name} must hold nucleotide codes 0..4 (A C G T N), found values "
                         f"{int(codes.min())}..{int(codes.max())}")
    return codes.astype(np.int64)


def _context_ids(codes: np.ndarray, order: int) -> np.ndarray:
    """Base-5 id of the ``order`` bases before each base ``i >= order``, ``(L - order,)``."""
    ids = np.zeros(len(codes) - order, dtype=np.int64)
    for j in range(order):  # the oldest base is the most significant digit
        ids = ids * _SYMBOLS + codes[j : len(codes) - order + j]
    return ids


class MarkovDNALM:
    """Order-``order`` Markov chain over nucleotide codes with additive smoothing.

    Args:
        order: bases of context, ``0 <= order <= 26`` (0: base frequencies).
        alpha: pseudo-count added to each of the 5 symbols (> 0; 0.5 = Krichevsky-Trofimov).

    Fitted attributes: ``n_bases_`` (training length), ``n_contexts_`` (distinct contexts of
    the full order seen in training).
    """

    def __init__(self, order: int = 8, alpha: float = 0.5) -> None:
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)):
            raise TypeError(f"order must be an int, got {type(order).__name__}")
        if not 0 <= order <= _MAX_ORDER:
            raise ValueError(f"order must be in [0, {_MAX_ORDER}], got {order}")
        if not alpha > 0:
            raise ValueError(f"alpha must be a positive pseudo-count, got {alpha!r}")
        self.order = int(order)
        self.alpha = float(alpha)

    def fit(self, codes: np.ndarray) -> MarkovDNALM:
        """Count every ``(context, next base)`` pair of ``codes (L,)``, for the full order
        and (for the first bases of a scored sequence) every shorter one. Returns ``self``."""
        codes = _check_codes(codes)
        if len(codes) <= self.order:
            raise ValueError(f"need more than order={self.order} bases to fit, got {len(codes)}")
        self._tables: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for k in range(self.order + 1):
            pairs = _context_ids(codes, k) * _SYMBOLS + codes[k:]
            keys, counts = np.unique(pairs, return_counts=True)
            contexts, first = np.unique(keys // _SYMBOLS, return_index=True)
            totals = np.add.reduceat(counts, first) if len(first) else counts[:0]
            self._tables.append((keys, counts, np.stack([contexts, totals])))
        self.n_bases_ = int(len(codes))
        self.n_contexts_ = int(self._tables[-1][2].shape[1])
        return self

    def _lookup(self, k: int, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keys, counts, (contexts, totals) = self._tables[k]
        pair_count = np.zeros(len(pairs), dtype=np.int64)
        context_total = np.zeros(len(pairs), dtype=np.int64)
        if len(keys):
            at = np.minimum(np.searchsorted(keys, pairs), len(keys) - 1)
            hit = keys[at] == pairs
            pair_count[hit] = counts[at[hit]]
            ctx = pairs // _SYMBOLS
            at = np.minimum(np.searchsorted(contexts, ctx), len(contexts) - 1)
            hit = contexts[at] == ctx
            context_total[hit] = totals[at[hit]]
        return pair_count, context_total

    def nats(self, codes: np.ndarray) -> np.ndarray:
        """Negative log-probability (nats) of each next base ``codes[1:]`` given the bases
        before it in ``codes`` (at most ``order`` of them), ``(L - 1,)`` float64."""
        if not hasattr(self, "_tables"):
            raise ValueError("this MarkovDNALM is not fitted yet; call fit(codes) first")
        codes = _check_codes(codes)
        out = np.empty(max(len(codes) - 1, 0), dtype=np.float64)
        for i in range(1, min(self.order, len(codes))):  # the first bases: shorter contexts
            pair = _context_ids(codes[: i + 1], i) * _SYMBOLS + codes[i]
            out[i - 1] = self._neg_log(i, pair)[0]
        k, lo = self.order, max(self.order, 1)  # bases lo.. have the full context
        if len(codes) > lo:
            pairs = _context_ids(codes, k)[lo - k :] * _SYMBOLS + codes[lo:]
            out[lo - 1 :] = self._neg_log(k, pairs)
        return out

    def _neg_log(self, k: int, pairs: np.ndarray) -> np.ndarray:
        pair_count, context_total = self._lookup(k, pairs)
        return -np.log((pair_count + self.alpha) / (context_total + _SYMBOLS * self.alpha))

    def bits_per_base(self, codes: np.ndarray) -> float:
        """Mean next-base cross-entropy of ``codes (L,)`` in bits (log2 5 = 2.32 for a model
        that knows nothing; 2.0 = uniform over ACGT)."""
        nats = self.nats(codes)
        if not len(nats):
            raise ValueError("need at least 2 bases to score a next-base prediction")
        return float(nats.mean() / math.log(2.0))


def select_markov_order(
    codes: np.ndarray,
    orders: Sequence[int] = tuple(range(1, 13)),
    *,
    validation_fraction: float = 0.1,
    alpha: float = 0.5,
) -> tuple[MarkovDNALM, dict[int, float]]:
    """Fit each order on the first ``1 - validation_fraction`` of ``codes``, score it on
    the rest, refit the best order on all of ``codes``.

    Returns ``(model, validation bits per base by order)``; the model is fitted on all of
    ``codes``, so a test stretch scored afterwards played no part in the choice.
    """
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction!r}")
    if not len(orders):
        raise ValueError("orders must name at least one Markov order")
    codes = _check_codes(codes)
    cut = int(round(len(codes) * (1 - validation_fraction)))
    scores = {
        int(k): MarkovDNALM(int(k), alpha).fit(codes[:cut]).bits_per_base(codes[cut:])
        for k in orders
    }
    best = min(scores, key=scores.__getitem__)
    return MarkovDNALM(best, alpha).fit(codes), scores
