"""Next-nucleotide language model on the streaming Titans backbone (no Lightning here).

Network (:class:`TitansDNAModel`): token embedding → :class:`TitansBackbone` → linear head
over the 5 bases ``A C G T N``. The input token at base ``t`` is the base itself
(:class:`NucleotideTokenizer` ids, ``kmer_k=None``) or the overlapping k-mer that ends at
base ``t`` (:class:`KmerTokenizer` ids, ``kmer_k=k``; :func:`input_ids`), so a k-mer model
still predicts one base at a time and is scored in bits per base. It shares the
``embedding.*`` / ``backbone.*`` parameter names and the tokenizer ids of
:class:`~titans_ts.training.sequence.TitansSequenceModel`, so a trained language model
initialises a classifier with the same tokenizer.

Shapes:

* ``ids``: ``(B, T)`` int64 input ids (:func:`input_ids` of the bases);
* logits: ``(B, T, 5)``, row ``t`` predicting base ``t + 1``;
* training pairs (:class:`GenomeWindows`): inputs ``(B, T)`` = ids of bases ``i .. i+T-1``,
  targets ``(B, T)`` = nucleotide codes of bases ``i+1 .. i+T``;
* stateful training (:class:`GenomeStreams`, truncated back-propagation through time): each
  of ``B`` batch rows reads consecutive windows of one random stretch of the genome, with
  the backbone state carried (detached) from one optimiser step to the next.

Streaming (:func:`stream_genome`): the genome is fed in fixed-size pieces with the backbone
state carried between them (memory weights, momentum, attention cache), in
``torch.inference_mode`` so no graph is kept; memory use stays flat in the genome length.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset, Sampler

from titans_ts.backbone import BackboneState, TitansBackbone, TitansConfig
from titans_ts.encoders.dna import KmerTokenizer, NucleotideTokenizer
from titans_ts.training.sequence import Tokenizer, backbone_config_from_dict, make_tokenizer

__all__ = [
    "N_BASES",
    "DNALMConfig",
    "EpochSteps",
    "GenomeStreams",
    "GenomeWindows",
    "StreamReport",
    "TitansDNAModel",
    "base_nats",
    "genome_codes",
    "input_ids",
    "stream_genome",
]

#: Output classes of the language model: the bases ``A C G T N`` (ids 0..4).
N_BASES = 5
_LN2 = math.log(2.0)


def genome_codes(
    sequences: list[str] | str, *, with_starts: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Nucleotide ids ``(L,)`` uint8 in ``0..4`` of one string or several joined end to end
    (validated by :class:`NucleotideTokenizer`: bad characters name sequence and position).

    With ``with_starts=True`` also returns the records' 0-based start offsets ``(R,)``
    int64 (what :func:`input_ids` needs so that no k-mer spans two records)."""
    tok = NucleotideTokenizer()
    if isinstance(sequences, str):
        codes, starts = tok.encode(sequences).astype(np.uint8), np.zeros(1, dtype=np.int64)
    else:
        packed = tok.encode_packed(sequences)
        codes, starts = packed.ids.astype(np.uint8), np.asarray(packed.cu_seqlens[:-1], np.int64)
    return (codes, starts) if with_starts else codes


def input_ids(
    codes: np.ndarray, kmer_k: int | None = None, starts: np.ndarray | None = None
) -> np.ndarray:
    """Model input id of every base ``(L,)`` int64 for nucleotide codes ``(L,)``.

    ``kmer_k=None``: the base's own nucleotide id. ``kmer_k=k``: the id of the overlapping
    k-mer ending at the base (:meth:`KmerTokenizer.ids_ending_at`; ``[UNK]`` for the first
    ``k - 1`` bases of each record in ``starts``).
    """
    codes = np.asarray(codes)
    if kmer_k is None:
        return codes.astype(np.int64)
    return KmerTokenizer(kmer_k).ids_ending_at(codes, starts)


@dataclass(frozen=True)
class DNALMConfig:
    """Everything needed to rebuild a :class:`TitansDNAModel` (JSON round-trips).

    Attributes:
        vocab_size: input ids (the tokenizer's vocabulary: 9 for nucleotides, ``4**k + 10``
            for k-mers); set by :meth:`for_tokenizer`.
        pad_id: id of ``[PAD]``.
        backbone: the Titans backbone.
        kmer_k: ``None`` (input tokens are bases) or ``k`` (overlapping k-mers ending at
            each base, ``1 <= k <= 8``).
    """

    vocab_size: int = 9
    pad_id: int = 5
    backbone: TitansConfig = field(default_factory=TitansConfig)
    kmer_k: int | None = None

    @classmethod
    def for_tokenizer(cls, backbone: TitansConfig, kmer_k: int | None = None) -> DNALMConfig:
        """The config whose vocabulary and pad id are those of the tokenizer ``kmer_k``."""
        tok = cls(kmer_k=kmer_k).tokenizer()
        return cls(vocab_size=tok.vocab_size, pad_id=tok.pad_id, backbone=backbone,
                   kmer_k=kmer_k)

    def tokenizer(self) -> Tokenizer:
        """The input tokenizer (what a classifier started from this model must use)."""
        if self.kmer_k is None:
            return make_tokenizer("nucleotide")
        return make_tokenizer("kmer", k=self.kmer_k, overlapping=True)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DNALMConfig:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        backbone = backbone_config_from_dict(data.pop("backbone"))
        return cls(**data, backbone=backbone)


class TitansDNAModel(nn.Module):
    """Causal next-nucleotide model: ``forward(ids (B, T), state) -> (logits (B, T, 5), state)``."""

    def __init__(self, config: DNALMConfig) -> None:
        super().__init__()
        self.config = config
        d = config.backbone.d_model
        self.embedding = nn.Embedding(config.vocab_size, d, padding_idx=config.pad_id)
        nn.init.normal_(self.embedding.weight, std=0.02)
        with torch.no_grad():
            self.embedding.weight[config.pad_id].zero_()
        self.backbone = TitansBackbone(config.backbone)
        self.lm_head = nn.Linear(d, N_BASES)

    def describe_inputs(self, batch_size: int = 1, length: int = 1) -> dict[str, tuple]:
        """Input contract: ``ids (B, T)`` int64."""
        return {"ids": ((batch_size, length), torch.int64)}

    def forward(
        self, ids: Tensor, state: BackboneState | None = None
    ) -> tuple[Tensor, BackboneState]:
        if ids.dim() != 2:
            raise ValueError(f"ids must have shape (B, T), got {tuple(ids.shape)}")
        h, state = self.backbone(self.embedding(ids), state)
        return self.lm_head(h), state

    def loss(self, inputs: Tensor, targets: Tensor) -> Tensor:
        """Mean next-base cross-entropy in nats: ``inputs (B, T)`` ids of bases ``i..i+T-1``,
        ``targets (B, T)`` nucleotide codes of bases ``i+1..i+T``."""
        return self.stream_loss(inputs, targets)[0]

    def stream_loss(
        self, inputs: Tensor, targets: Tensor, state: BackboneState | None = None
    ) -> tuple[Tensor, BackboneState]:
        """:meth:`loss` of a window that continues ``state`` (``None``: a fresh stream);
        also returns the state after the window (truncated back-propagation through time
        detaches it before the next call)."""
        if inputs.dim() != 2 or inputs.shape != targets.shape:
            raise ValueError(
                f"inputs and targets must both have shape (B, T), got {tuple(inputs.shape)} "
                f"and {tuple(targets.shape)}"
            )
        logits, state = self(inputs, state)
        return F.cross_entropy(logits.reshape(-1, N_BASES), targets.reshape(-1)), state


def _codes_and_ids(codes: np.ndarray, ids: np.ndarray | None) -> tuple[Tensor, Tensor]:
    """Nucleotide codes and model input ids ``(L,)`` as int64 tensors (ids default to the
    codes) for the training datasets."""
    if ids is not None and len(ids) != len(codes):
        raise ValueError(f"ids has {len(ids)} entries for {len(codes)} bases")
    codes_t = torch.from_numpy(np.asarray(codes, dtype=np.int64))
    return codes_t, codes_t if ids is None else torch.from_numpy(np.asarray(ids, np.int64))


class GenomeWindows(Dataset):
    """Every window of ``length`` next-base predictions in ``codes``: item ``i`` is
    ``(input ids (length,), target codes (length,))`` for bases ``i..i+length-1`` →
    ``i+1..i+length``, both int64 (cut lazily, memory flat).

    Args:
        codes: nucleotide ids ``(L,)`` (:func:`genome_codes`).
        length: predictions per window (``context_length``).
        ids: model input ids ``(L,)`` (:func:`input_ids`); default the codes themselves.
    """

    def __init__(self, codes: np.ndarray, length: int, ids: np.ndarray | None = None) -> None:
        if len(codes) < length + 1:
            raise ValueError(
                f"the sequence has {len(codes)} bases, fewer than context_length + 1 = "
                f"{length + 1}; pass a longer sequence or a shorter context_length"
            )
        self.codes, self.ids = _codes_and_ids(codes, ids)
        self.length = int(length)

    def __len__(self) -> int:
        return len(self.codes) - self.length

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        end = index + self.length
        return self.ids[index:end], self.codes[index + 1 : end + 1]


class GenomeStreams(Dataset):
    """Consecutive training windows for truncated back-propagation through time.

    An epoch is ``n_steps`` optimiser steps grouped in episodes of ``carry`` steps. At the
    first step of an episode each of the ``rows`` batch rows draws a random start ``o``
    (uniform over the starts where ``carry * length + 1`` bases fit); step ``j`` of the
    episode gives that row the window of bases ``o + j * length ..`` (``length``
    predictions, as :class:`GenomeWindows`), so every row reads on where its previous step
    stopped and a state carried between steps is the state of that row's own stream.

    Item ``(epoch, step)`` (what :class:`EpochSteps` yields) is ``(inputs (rows, length),
    targets (rows, length), reset)``: int64 tensors and a bool, true at the first step of
    an episode (drop the carried state there). Starts come from
    ``numpy.random.default_rng([seed, epoch, episode])``: reproducible whatever the order
    of access. ``carry=1`` gives independent random windows.

    **Repeats** (``repeat_fraction > 0``): a genome read once gives a memory little reason
    to memorise (held-out E. coli has ~2 % of bases in repeats whose nearest copy lies
    >= 512 bases back). Each row's episode stream then has stretches overwritten, left to
    right, by exact copies of earlier stretches of the same stream: lengths uniform in
    ``repeat_length``, gaps between copies uniform with the mean that makes copies about
    ``repeat_fraction`` of the stream, the distance back to the source log-uniform (near
    copies as common per octave as far ones). Predicting a copy pays only through what the
    state kept of the original. Inputs and targets still follow one stream
    (:meth:`positions`); for k-mer ids the first k - 1 inputs of a copy hold k-mers of
    the bases before its source.

    Args:
        codes: nucleotide ids ``(L,)`` (:func:`genome_codes`).
        length: predictions per window (``context_length``).
        rows: batch rows (streams read side by side).
        carry: windows per episode (steps the state is carried across), ``>= 1``.
        ids: model input ids ``(L,)`` (:func:`input_ids`); default the codes themselves.
        seed: seed of the starts (and of the repeats).
        repeat_fraction: share of each stream overwritten by copies, in ``[0, 0.5]``.
        repeat_length: ``(shortest, longest)`` copy in bases (capped at half a stream).
    """

    def __init__(
        self, codes: np.ndarray, length: int, rows: int, carry: int,
        ids: np.ndarray | None = None, seed: int = 0, repeat_fraction: float = 0.0,
        repeat_length: tuple[int, int] = (32, 1024),
    ) -> None:
        for name, value in (("length", length), ("rows", rows), ("carry", carry)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not 0.0 <= float(repeat_fraction) <= 0.5:
            raise ValueError(f"repeat_fraction must be in [0, 0.5], got {repeat_fraction!r}")
        lo, hi = (int(x) for x in repeat_length)
        if not 1 <= lo <= hi:
            raise ValueError(f"repeat_length must be (shortest, longest) with "
                             f"1 <= shortest <= longest, got {repeat_length!r}")
        span = int(carry) * int(length) + 1
        if len(codes) < span:
            raise ValueError(
                f"the sequence has {len(codes)} bases, fewer than the {span} that "
                f"{carry} consecutive windows of {length} bases need (+1); pass a longer "
                "sequence, fewer carried windows or a shorter context_length"
            )
        self.codes, self.ids = _codes_and_ids(codes, ids)
        self.length, self.rows, self.carry = int(length), int(rows), int(carry)
        self.seed = int(seed)
        self.span = span
        self.repeat_fraction = float(repeat_fraction)
        self.repeat_length = (min(lo, span // 2), min(hi, span // 2))
        self._n_starts = len(codes) - span + 1
        self._cached: tuple[tuple[int, int], Tensor] | None = None

    def starts(self, epoch: int, episode: int) -> np.ndarray:
        """First base of each row's stream in that episode, ``(rows,)`` int64."""
        rng = np.random.default_rng([self.seed, int(epoch), int(episode)])
        return rng.integers(0, self._n_starts, size=self.rows)

    def positions(self, epoch: int, episode: int) -> Tensor:
        """Genome position of every base of each row's episode stream, ``(rows, carry *
        length + 1)`` int64: ``start + arange`` with the repeats' copies written in."""
        key = (int(epoch), int(episode))
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        pos = self.starts(*key)[:, None] + np.arange(self.span)
        lo, hi = self.repeat_length
        if self.repeat_fraction > 0:
            rng = np.random.default_rng([self.seed, *key, 1])
            f = self.repeat_fraction
            mean_gap = (lo + hi) / 2 * (1 - f) / f  # so copies fill ~f of the stream
            for row in pos:
                cursor = int(rng.integers(0, 2 * mean_gap + 1))
                while True:
                    m = int(rng.integers(lo, hi + 1))
                    cursor = max(cursor, m)  # a source must fit before the copy
                    if cursor + m > self.span:
                        break
                    # distance from the source's end to the copy: log-uniform in [1, room]
                    room = cursor - m + 1
                    back = int(np.exp(rng.uniform(0.0, np.log(room))))
                    src = cursor - m - min(back, room) + 1
                    row[cursor : cursor + m] = row[src : src + m]
                    cursor += m + int(rng.integers(0, 2 * mean_gap + 1))
        positions = torch.from_numpy(pos)
        self._cached = (key, positions)
        return positions

    def __getitem__(self, index: tuple[int, int]) -> tuple[Tensor, Tensor, bool]:
        epoch, step = index
        episode, j = divmod(int(step), self.carry)
        cols = self.positions(epoch, episode)[:, j * self.length : (j + 1) * self.length + 1]
        return self.ids[cols[:, :-1]], self.codes[cols[:, 1:]], j == 0


class EpochSteps(Sampler):
    """Yields ``(epoch, step)`` for ``step`` in ``0 .. n_steps - 1`` in order (the items of
    :class:`GenomeStreams`, loaded with ``batch_size=None``); Lightning calls
    :meth:`set_epoch` before every epoch."""

    def __init__(self, n_steps: int) -> None:
        self.n_steps = int(n_steps)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n_steps

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((self.epoch, s) for s in range(self.n_steps))


@dataclass
class StreamReport:
    """One progress line of :func:`stream_genome`.

    Attributes:
        bases: bases scored so far.
        bits_per_base: mean next-base cross-entropy in bits over those bases.
        bases_per_second: throughput so far.
        peak_rss_mb: peak resident memory of the process (``ru_maxrss``), MiB.
    """

    bases: int
    bits_per_base: float
    bases_per_second: float
    peak_rss_mb: float


def _peak_rss_mb() -> float:
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _piece_nats(
    model: TitansDNAModel,
    codes: np.ndarray,
    starts: np.ndarray | None,
    piece_length: int,
    device: torch.device | str,
    reset_every: int | None,
) -> Iterator[tuple[int, Tensor]]:
    """The scoring loop of :func:`stream_genome` and :func:`base_nats`: yields
    ``(piece start, next-base nats (n,) float32 on the CPU)`` piece by piece."""
    if piece_length < 1:
        raise ValueError(f"piece_length must be >= 1, got {piece_length}")
    if reset_every is not None:
        if isinstance(reset_every, bool) or not isinstance(reset_every, numbers.Integral):
            raise TypeError(f"reset_every must be an int number of bases or None, "
                            f"got {type(reset_every).__name__}")
        if reset_every < 1:
            raise ValueError(f"reset_every must be a positive number of bases or None, "
                             f"got {reset_every}")
        reset_every = int(reset_every)
    device = torch.device(device)
    model = model.to(device).eval()
    codes_t = torch.from_numpy(np.asarray(codes, dtype=np.int64))
    ids_t = torch.from_numpy(input_ids(codes, model.config.kmer_k, starts))
    state: BackboneState | None = None
    with torch.inference_mode():
        last = len(codes_t) - 1
        start = 0
        while start < last:
            end = min(start + piece_length, last)
            if reset_every is not None:
                if start % reset_every == 0:
                    state = None
                end = min(end, (start // reset_every + 1) * reset_every)
            inputs = ids_t[start:end].to(device)
            targets = codes_t[start + 1 : end + 1].to(device)
            logits, state = model(inputs[None], state)
            yield start, F.cross_entropy(logits[0], targets, reduction="none").cpu()
            start = end


def stream_genome(
    model: TitansDNAModel,
    codes: np.ndarray,
    *,
    starts: np.ndarray | None = None,
    piece_length: int = 4096,
    report_every: int = 500_000,
    device: torch.device | str = "cpu",
    reset_every: int | None = None,
) -> Iterator[StreamReport]:
    """Score every next base of ``codes (L,)`` with one carried stream state.

    The sequence goes through the model in pieces of ``piece_length`` bases under
    ``torch.inference_mode``; piece ``j`` reads bases ``[jP, (j+1)P)`` and is scored on
    bases ``[jP + 1, (j+1)P]``, so all ``L - 1`` next-base predictions are scored as in one
    call on the whole sequence (the carried state makes pieces equal to one call). Yields a
    :class:`StreamReport` every ``report_every`` bases and a final one. A k-mer model reads
    :func:`input_ids` of ``codes`` (``starts``: record offsets, default one record).

    ``reset_every=R`` drops the state at bases ``0, R, 2R, ...`` of ``codes`` (pieces end
    there; counted over the concatenated records, not per record), so base ``i`` is
    predicted from bases ``[R * floor((i - 1) / R), i)`` only: the scores of separate calls
    on ``codes[jR : (j+1)R + 1]`` (for a k-mer model the first k - 1 inputs after a reset
    still hold the k-mers that span it, where a separate call would read ``[UNK]``).
    A model trained on independent ``context_length``-base windows has never seen a
    longer-running memory; on held-out E. coli such a model scored better with
    ``R = context_length`` than with the carried state, while a statefully trained one
    (:class:`GenomeStreams`) scores best carried (figures in ``docs/results.md``,
    "Whole-genome streaming"). ``None``: carry the state throughout.
    """
    total_nats = 0.0
    scored = 0
    start_time = time.perf_counter()
    next_report = report_every
    last = len(codes) - 1
    for start, nats in _piece_nats(model, codes, starts, piece_length, device, reset_every):
        total_nats += float(nats.double().sum())
        scored += len(nats)
        if scored >= next_report or start + len(nats) >= last:
            elapsed = max(time.perf_counter() - start_time, 1e-9)
            yield StreamReport(
                bases=scored,
                bits_per_base=total_nats / scored / _LN2,
                bases_per_second=scored / elapsed,
                peak_rss_mb=_peak_rss_mb(),
            )
            next_report += report_every


def base_nats(
    model: TitansDNAModel,
    codes: np.ndarray,
    *,
    starts: np.ndarray | None = None,
    piece_length: int = 4096,
    device: torch.device | str = "cpu",
    reset_every: int | None = None,
) -> np.ndarray:
    """Per-base scores of :func:`stream_genome` (same arguments, same state handling):
    the next-base cross-entropy of ``codes[1:]`` in nats, ``(L - 1,)`` float64 (the
    model's "surprise" along the sequence; its mean / ln 2 is ``bits_per_base``).
    Shaped like :meth:`titans_ts.baselines.markov.MarkovDNALM.nats`, so the two can be
    compared base by base."""
    out = np.empty(max(len(codes) - 1, 0), dtype=np.float64)
    for start, nats in _piece_nats(model, codes, starts, piece_length, device, reset_every):
        out[start : start + len(nats)] = nats.numpy()
    return out
