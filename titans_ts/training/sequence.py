"""The DNA sequence classification network and its data plumbing (no Lightning here).

Network (:class:`TitansSequenceModel`): token embedding → :class:`TitansBackbone` →
masked pooling over real tokens → linear head (:mod:`titans_ts.heads.classification`).

Shapes:

* ``ids``: ``(B, T)`` int64 token ids, right-padded with the tokenizer's ``pad_id``;
* ``mask``: ``(B, T)`` bool, ``True`` on real tokens;
* ``labels``: ``(B,)`` int64 class indices in ``0 .. K-1``;
* pooled embeddings ``(B, d_model)``, logits ``(B, K)``.

Variable-length batches: the backbone is causal, so the state at a real position never
depends on the padding to its right, and pooling ignores padded positions; a sequence gets
the same logits in any batch (up to float rounding of different matmul shapes).

Reverse complement (DESIGN.md §4): both strands are tokenised once
(:func:`tokenize_both_strands`). In training :class:`SequenceCollate` feeds each sequence
on a random strand (``rc_augment``); at prediction :func:`predict_logits` runs the forward
strands and the reverse strands as two passes over identically shaped batches and averages
the logits (``rc_average``), so ``predict(X)`` and ``predict(rc(X))`` agree exactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from titans_ts.backbone import TitansBackbone, TitansConfig
from titans_ts.encoders.dna import KmerTokenizer, NucleotideTokenizer, PackedTokens
from titans_ts.encoders.dna import reverse_complement as reverse_complement_str
from titans_ts.heads.classification import POOLINGS, ClassificationHead, masked_mean
from titans_ts.memory import MemoryConfig

__all__ = [
    "SequenceCollate",
    "SequenceModelConfig",
    "SubkmerEmbedding",
    "TitansSequenceModel",
    "TokenizedSequences",
    "build_sequence_backbone_config",
    "make_tokenizer",
    "tokenizer_spec",
    "pad_batch",
    "predict_logits",
    "sequence_embeddings",
    "tokenize_both_strands",
]

Tokenizer = NucleotideTokenizer | KmerTokenizer


# --------------------------------------------------------------------------- tokenizers


def make_tokenizer(kind: str, k: int = 3, overlapping: bool = True) -> Tokenizer:
    """``"nucleotide"`` → :class:`NucleotideTokenizer`; ``"kmer"`` → :class:`KmerTokenizer`."""
    if kind == "nucleotide":
        return NucleotideTokenizer()
    if kind == "kmer":
        return KmerTokenizer(int(k), overlapping=bool(overlapping))
    raise ValueError(f"tokenizer must be 'nucleotide' or 'kmer', got {kind!r}")


def tokenizer_spec(tokenizer: Tokenizer) -> dict[str, Any]:
    """:func:`make_tokenizer` keyword arguments that rebuild ``tokenizer`` (JSON-safe)."""
    if isinstance(tokenizer, KmerTokenizer):
        return {"kind": "kmer", "k": int(tokenizer.k), "overlapping": bool(tokenizer.overlapping)}
    if isinstance(tokenizer, NucleotideTokenizer):
        return {"kind": "nucleotide"}
    raise TypeError(f"expected a NucleotideTokenizer or KmerTokenizer, got {tokenizer!r}")


def tokenize_both_strands(
    tokenizer: Tokenizer,
    sequences: Sequence[str],
    *,
    max_length: int | None = None,
    min_tokens: int = 1,
) -> tuple[PackedTokens, PackedTokens]:
    """Token ids of every sequence and of its reverse complement.

    Args:
        tokenizer: a DNA tokenizer.
        sequences: ``N`` DNA strings (validated by the tokenizer: a bad character raises
            :class:`ValueError` naming the sequence index, character and position; a
            non-``str`` raises :class:`TypeError` naming the index).
        max_length: keep only the first ``max_length`` bases of longer sequences (the
            reverse strand is that of the kept bases, so both strands see the same bases).
        min_tokens: sequences that yield fewer tokens raise :class:`ValueError`.

    Returns:
        ``(forward, reverse)`` :class:`PackedTokens`, ``N`` rows each, row ``i`` of
        ``reverse`` being the tokens of ``reverse_complement(sequences[i])``.
    """
    if max_length is not None:
        sequences = [s[:max_length] if isinstance(s, str) else s for s in sequences]
    forward = tokenizer.encode_packed(sequences)  # validates first: errors name the index
    short = np.flatnonzero(forward.lengths < min_tokens)
    if short.size:
        i = int(short[0])
        k = getattr(tokenizer, "k", 1)
        raise ValueError(
            f"sequence {i} has {len(sequences[i])} bases, giving {int(forward.lengths[i])} "
            f"tokens with {tokenizer!r} (at least {min_tokens} needed; {short.size} such "
            f"sequences); remove empty sequences"
            + (f" or those shorter than k={k}" if k > 1 else "")
        )
    reverse = tokenizer.encode_packed([reverse_complement_str(s) for s in sequences])
    return forward, reverse


def pad_batch(rows: Sequence[np.ndarray], pad_id: int) -> tuple[Tensor, Tensor]:
    """Right-pad 1-D id arrays into ``ids (B, T)`` int64 and ``mask (B, T)`` bool tensors."""
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    width = int(lengths.max()) if len(rows) else 0
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
    mask = np.arange(width)[None, :] < lengths[:, None]
    return torch.from_numpy(ids), torch.from_numpy(mask)


# --------------------------------------------------------------------------- data


class TokenizedSequences(Dataset):
    """Both strands' tokens (and labels) of ``N`` sequences; item ``i`` is
    ``(forward_ids (T_i,), reverse_ids (T_i',), label)`` (label ``-1`` when unlabelled)."""

    def __init__(
        self, forward: PackedTokens, reverse: PackedTokens, labels: np.ndarray | None = None
    ) -> None:
        if len(forward) != len(reverse):
            raise ValueError(f"{len(forward)} forward rows but {len(reverse)} reverse rows")
        if labels is not None and len(labels) != len(forward):
            raise ValueError(f"{len(labels)} labels for {len(forward)} sequences")
        self.forward = forward
        self.reverse = reverse
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.forward)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, int]:
        label = -1 if self.labels is None else int(self.labels[index])
        return self.forward[index], self.reverse[index], label

    def subset(self, indices: np.ndarray) -> TokenizedSequences:
        """A new dataset with rows ``indices`` (in that order)."""
        indices = np.asarray(indices, dtype=np.int64)
        return TokenizedSequences(
            _take(self.forward, indices),
            _take(self.reverse, indices),
            None if self.labels is None else self.labels[indices],
        )


def _take(packed: PackedTokens, indices: np.ndarray) -> PackedTokens:
    lengths = packed.lengths[indices]
    cu = np.zeros(len(indices) + 1, dtype=np.int64)
    np.cumsum(lengths, out=cu[1:])
    if len(indices) == 0:
        return PackedTokens(np.zeros(0, dtype=np.int64), cu)
    starts = packed.cu_seqlens[:-1][indices]
    flat = np.repeat(starts - cu[:-1], lengths) + np.arange(int(cu[-1]), dtype=np.int64)
    return PackedTokens(packed.ids[flat], cu)


class SequenceCollate:
    """Collate ``(forward, reverse, label)`` items into ``(ids, mask, labels)`` tensors.

    With ``rc_augment`` each item is fed on a random strand (probability ½ each); with
    ``crop > 0`` each item (on the strand fed) then loses ``n`` tokens, ``n`` uniform in
    ``0 .. min(crop, T_i - 1)``, split uniformly at random between its start and its end
    (with overlapping k-mers a token is a base, so this is a random sub-window of the
    sequence). Both draw from one generator seeded with ``seed`` (the loader runs in the
    main process, so a fit is reproducible); without either, items pass unchanged.

    With ``both_strands`` (validation of a model that predicts with ``rc_average``) each
    batch is ``(ids, mask, labels, rev_ids, rev_mask)``: the forward strands and, row for
    row, the reverse strands, for :meth:`TitansSequenceModel.loss` to score the mean of the
    two strands' logits, as prediction does. Not combinable with ``rc_augment``/``crop``.
    """

    def __init__(
        self,
        pad_id: int,
        rc_augment: bool = False,
        seed: int = 0,
        crop: int = 0,
        *,
        both_strands: bool = False,
    ) -> None:
        if int(crop) < 0:
            raise ValueError(f"crop must be >= 0 tokens, got {crop}")
        if both_strands and (rc_augment or crop):
            raise ValueError("both_strands feeds whole sequences on both strands: it cannot "
                             "be combined with rc_augment or crop")
        self.pad_id = int(pad_id)
        self.rc_augment = bool(rc_augment)
        self.crop = int(crop)
        self.both_strands = bool(both_strands)
        self.rng = np.random.default_rng(seed)

    def __call__(
        self, items: Sequence[tuple[np.ndarray, np.ndarray, int]]
    ) -> tuple[Tensor, ...]:
        labels = torch.tensor([label for _, _, label in items], dtype=torch.long)
        if self.both_strands:
            ids, mask = pad_batch([fwd for fwd, _, _ in items], self.pad_id)
            rev_ids, rev_mask = pad_batch([rev for _, rev, _ in items], self.pad_id)
            return ids, mask, labels, rev_ids, rev_mask
        if self.rc_augment:
            flip = self.rng.random(len(items)) < 0.5
            rows = [rev if f else fwd for (fwd, rev, _), f in zip(items, flip, strict=True)]
        else:
            rows = [fwd for fwd, _, _ in items]
        if self.crop:
            rows = [self._crop(row) for row in rows]
        ids, mask = pad_batch(rows, self.pad_id)
        return ids, mask, labels

    def _crop(self, row: np.ndarray) -> np.ndarray:
        n = int(self.rng.integers(0, min(self.crop, len(row) - 1) + 1))
        start = int(self.rng.integers(0, n + 1))
        return row[start : len(row) - (n - start)]


# --------------------------------------------------------------------------- network


@dataclass(frozen=True)
class SequenceModelConfig:
    """Everything needed to rebuild a :class:`TitansSequenceModel` (JSON round-trips).

    Attributes:
        vocab_size: number of token ids (the tokenizer's ``vocab_size``).
        pad_id: id of ``[PAD]`` (its embedding is kept at zero).
        n_classes: number of classes ``K`` (>= 2).
        pooling: one of :data:`~titans_ts.heads.classification.POOLINGS`.
        head_dropout: dropout on the pooled vector.
        backbone: the Titans backbone; its ``d_model`` is the token width.
        max_positions: with ``> 0``, a learned absolute-position embedding for token
            positions ``0 .. max_positions - 1`` (counted from each sequence's start; later
            positions share the last one) is added to the token embeddings; 0: none (the
            backbone only sees relative positions).
        kmer_linear: add a linear model of the sequence's token frequencies to the logits:
            a learned score per token and class, averaged over the real tokens (with k-mer
            tokens, logistic regression on k-mer frequencies, the model class of the
            k-mer baseline, trained jointly with the network). Starts at zero.
        subkmer_k: with ``k >= 2`` (the tokens are overlapping ``k``-mers with the
            :class:`~titans_ts.encoders.dna.KmerTokenizer` id layout), every k-mer token's
            embedding also gets learned embeddings of its prefixes of 1 .. k-1 bases (so
            k-mers sharing a prefix share part of their embedding, and every shorter
            j-mer of the sequence is represented); other tokens (``[UNK]``, specials) get
            none. 0: off.
        bidirectional: read each sequence both ways in every backbone block (shared weights,
            outputs averaged: :meth:`~titans_ts.backbone.TitansBackbone.bidirectional`), so
            every token's state sees the whole sequence; False: left to right only (causal).
    """

    vocab_size: int
    pad_id: int
    n_classes: int
    pooling: str = "mean"
    head_dropout: float = 0.0
    backbone: TitansConfig = field(default_factory=TitansConfig)
    max_positions: int = 0
    kmer_linear: bool = False
    subkmer_k: int = 0
    bidirectional: bool = False

    def __post_init__(self) -> None:
        for name, low in (("vocab_size", 1), ("pad_id", 0), ("n_classes", 2),
                          ("max_positions", 0), ("subkmer_k", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(
                    f"SequenceModelConfig.{name}={value!r} is invalid: expected an int >= {low}."
                )
        if self.pad_id >= self.vocab_size:
            raise ValueError(f"pad_id={self.pad_id} is outside vocab_size={self.vocab_size}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        for name in ("kmer_linear", "bidirectional"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.subkmer_k == 1 or 4**self.subkmer_k > self.vocab_size:
            raise ValueError(
                f"subkmer_k={self.subkmer_k} needs k-mer tokens with k >= 2 whose 4**k k-mer "
                f"ids fit vocab_size={self.vocab_size}; use 0 for other tokenizers"
            )
        if not isinstance(self.backbone, TitansConfig):
            raise TypeError(f"backbone must be a TitansConfig, got {type(self.backbone).__name__}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (nested backbone and memory configs as dicts)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SequenceModelConfig:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        backbone = backbone_config_from_dict(data.pop("backbone"))
        return cls(**data, backbone=backbone)


def backbone_config_from_dict(data: dict[str, Any]) -> TitansConfig:
    """Inverse of ``dataclasses.asdict(TitansConfig)`` (memory config included)."""
    data = dict(data)
    memory = data.pop("memory", None)
    return TitansConfig(**data, memory=None if memory is None else MemoryConfig(**memory))


def build_sequence_backbone_config(
    *,
    variant: str,
    d_model: int,
    n_layers: int,
    n_heads: int,
    n_persistent: int,
    memory_depth: int,
    memory_chunk_size: int,
    window: int,
    dropout: float,
    memory_theta_max: float | None = None,
) -> TitansConfig:
    """A :class:`TitansConfig` for token streams: sliding-window attention over ``window``
    tokens (also the MAC segment length) and a neural memory with ``memory_chunk_size``
    tokens per chunk and inner learning rate at most ``memory_theta_max`` (None: the
    memory's default ``theta_max``, which is stable for chunks up to 64)."""
    extra = {} if memory_theta_max is None else {"theta_max": float(memory_theta_max)}
    return TitansConfig(
        variant=variant,
        d_model=d_model,
        n_layers=n_layers,
        n_heads=n_heads,
        window=window,
        segment_len=window,
        n_persistent=n_persistent,
        memory=MemoryConfig(
            d_model=d_model, n_heads=n_heads, depth=memory_depth, chunk_size=memory_chunk_size,
            **extra,
        ),
        dropout=dropout,
    )


class SubkmerEmbedding(nn.Module):
    """Sum of learned embeddings of a k-mer token's prefixes of 1 .. k-1 bases.

    With the :class:`~titans_ts.encoders.dna.KmerTokenizer` layout (k-mer ids ``0 ..
    4**k - 1``, base-4 with the first base most significant) the ``j``-base prefix of id
    ``i`` is ``i >> 2 (k - j)``. Ids ``>= 4**k`` ([UNK], single bases, specials, padding)
    get zeros.

    Args:
        k: the tokens' k-mer size (>= 2).
        d: embedding width.

    ``forward(ids (B, T) int64) -> (B, T, d)``.
    """

    def __init__(self, k: int, d: int) -> None:
        super().__init__()
        if k < 2:
            raise ValueError(f"SubkmerEmbedding needs k >= 2, got {k}")
        self.k = int(k)
        sizes = [4**j for j in range(1, k)]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.register_buffer("offsets", torch.as_tensor(offsets, dtype=torch.int64), False)
        self.register_buffer(
            "shifts", torch.as_tensor([2 * (k - j) for j in range(1, k)]), False
        )
        self.zero_row = int(sum(sizes))
        self.table = nn.Embedding(self.zero_row + 1, d, padding_idx=self.zero_row)
        nn.init.normal_(self.table.weight, std=0.02)
        with torch.no_grad():
            self.table.weight[self.zero_row].zero_()

    def forward(self, ids: Tensor) -> Tensor:
        rows = (ids[..., None] >> self.shifts) + self.offsets  # (B, T, k-1)
        rows = rows.masked_fill((ids >= 4**self.k)[..., None], self.zero_row)
        return self.table(rows).sum(-2)


class TitansSequenceModel(nn.Module):
    """Token embedding → Titans backbone → masked pooling → linear classifier.

    Args:
        config: a :class:`SequenceModelConfig`.

    The ``class_weight`` buffer ``(K,)`` (ones by default) weighs the cross-entropy of
    :meth:`loss`; set it with :meth:`set_class_weight`.
    """

    def __init__(self, config: SequenceModelConfig) -> None:
        super().__init__()
        self.config = config
        d = config.backbone.d_model
        self.embedding = nn.Embedding(config.vocab_size, d, padding_idx=config.pad_id)
        nn.init.normal_(self.embedding.weight, std=0.02)
        with torch.no_grad():
            self.embedding.weight[config.pad_id].zero_()
        self.subkmers = None
        if config.subkmer_k:
            self.subkmers = SubkmerEmbedding(config.subkmer_k, d)
        self.position = None
        if config.max_positions > 0:
            self.position = nn.Embedding(config.max_positions, d)
            nn.init.normal_(self.position.weight, std=0.02)
        self.backbone = TitansBackbone(config.backbone)
        self.head = ClassificationHead(d, config.n_classes, config.pooling, config.head_dropout)
        self.token_scores = None
        if config.kmer_linear:
            self.token_scores = nn.Embedding(
                config.vocab_size, config.n_classes, padding_idx=config.pad_id
            )
            nn.init.zeros_(self.token_scores.weight)
        self.register_buffer("class_weight", torch.ones(config.n_classes))

    def set_class_weight(self, weight: Sequence[float] | np.ndarray | None) -> None:
        """Cross-entropy weight per class ``(K,)``; ``None`` restores equal weights."""
        k = self.config.n_classes
        value = torch.ones(k) if weight is None else torch.as_tensor(
            np.asarray(weight, dtype=np.float32)
        )
        if value.shape != (k,) or not bool(torch.all(value >= 0)):
            raise ValueError(f"class weights must be {k} non-negative numbers, got {weight!r}")
        self.class_weight.copy_(value.to(self.class_weight))

    def describe_inputs(self, batch_size: int = 1, length: int = 1) -> dict[str, tuple]:
        """Input contract: ``ids (B, T)`` int64, ``mask (B, T)`` bool."""
        return {
            "ids": ((batch_size, length), torch.int64),
            "mask": ((batch_size, length), torch.bool),
        }

    def _check(self, ids: Tensor, mask: Tensor) -> None:
        if ids.dim() != 2 or mask.shape != ids.shape:
            raise ValueError(
                f"ids and mask must both have shape (B, T), got {tuple(ids.shape)} and "
                f"{tuple(mask.shape)}"
            )
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be a bool tensor, got {mask.dtype}")

    def tokens(self, ids: Tensor, mask: Tensor) -> Tensor:
        """Backbone states ``(B, T, d_model)`` of ``ids (B, T)`` (padding included; with
        ``config.bidirectional`` the two-way pass, else the causal one)."""
        self._check(ids, mask)
        x = self.embedding(ids)
        if self.subkmers is not None:
            x = x + self.subkmers(ids)
        if self.position is not None:
            n = self.position.num_embeddings
            where = torch.arange(ids.shape[1], device=ids.device).clamp_max(n - 1)
            x = x + self.position(where)
        if self.config.bidirectional:
            return self.backbone.bidirectional(x, mask)
        h, _ = self.backbone(x)
        return h

    def embed(self, ids: Tensor, mask: Tensor) -> Tensor:
        """Pooled sequence embeddings ``(B, d_model)``."""
        return self.head.pool(self.tokens(ids, mask), mask)

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        """Class logits ``(B, K)`` of ``ids (B, T)`` with ``mask (B, T)``."""
        logits = self.head.classify(self.embed(ids, mask))
        if self.token_scores is not None:
            logits = logits + masked_mean(self.token_scores(ids), mask)
        return logits

    def loss(
        self,
        ids: Tensor,
        mask: Tensor,
        labels: Tensor,
        rev_ids: Tensor | None = None,
        rev_mask: Tensor | None = None,
    ) -> Tensor:
        """Class-weighted cross-entropy (weighted mean over the batch) of ``labels (B,)``;
        with ``rev_ids (B, T') / rev_mask`` (the reverse strands, row for row) of the mean
        of both strands' logits, the logits ``rc_average`` predicts with."""
        logits = self(ids, mask)
        if rev_ids is not None:
            if rev_mask is None:
                raise ValueError("rev_ids needs rev_mask")
            logits = 0.5 * (logits + self(rev_ids, rev_mask))
        if labels.shape != logits.shape[:1]:
            raise ValueError(f"labels must have shape (B,)={logits.shape[:1]}, got {labels.shape}")
        return F.cross_entropy(logits, labels, weight=self.class_weight.to(logits.dtype))


# --------------------------------------------------------------------------- inference


def _batched_pass(
    fn: Callable[[Tensor, Tensor], Tensor],
    packed: PackedTokens,
    order: np.ndarray,
    batch_size: int,
    pad_id: int,
    device: torch.device,
) -> np.ndarray:
    """Apply ``fn(ids, mask) -> (B, F)`` to rows of ``packed`` in ``order``, batched;
    returns ``(N, F)`` float64 rows in the original order."""
    out: np.ndarray | None = None
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        ids, mask = pad_batch([packed[int(i)] for i in rows], pad_id)
        values = fn(ids.to(device), mask.to(device)).float().cpu().numpy()
        if out is None:
            out = np.empty((len(order), values.shape[1]), dtype=np.float64)
        out[rows] = values
    if out is None:
        raise ValueError("no sequences to run")
    return out


def _length_order(packed: PackedTokens) -> np.ndarray:
    """Row order by decreasing length (stable), so batches hold similar lengths."""
    return np.argsort(-packed.lengths, kind="stable")


@torch.no_grad()
def _two_strand_pass(
    model: TitansSequenceModel,
    fn: Callable[[Tensor, Tensor], Tensor],
    forward: PackedTokens,
    reverse: PackedTokens | None,
    batch_size: int,
    device: torch.device,
) -> np.ndarray:
    model.to(device).eval()
    pad = model.config.pad_id
    order = _length_order(forward)
    a = _batched_pass(fn, forward, order, batch_size, pad, device)
    if reverse is None:
        return a
    # same order and batch composition for the reverse strand (lengths are equal for
    # nucleotide/overlapping tokens), so swapping the strands swaps a and b exactly
    b = _batched_pass(fn, reverse, order, batch_size, pad, device)
    return 0.5 * (a + b)


def predict_logits(
    model: TitansSequenceModel,
    forward: PackedTokens,
    reverse: PackedTokens | None = None,
    *,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Logits ``(N, K)`` float64; with ``reverse`` the mean of both strands' logits."""
    return _two_strand_pass(model, model, forward, reverse, batch_size, torch.device(device))


def sequence_embeddings(
    model: TitansSequenceModel,
    forward: PackedTokens,
    reverse: PackedTokens | None = None,
    *,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Pooled embeddings ``(N, d_model)`` float64; with ``reverse`` the mean of both strands'."""
    return _two_strand_pass(
        model, model.embed, forward, reverse, batch_size, torch.device(device)
    )
