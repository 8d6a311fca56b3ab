"""Next-nucleotide language model on the streaming Titans backbone (no Lightning here).

Network (:class:`TitansDNAModel`): nucleotide embedding → :class:`TitansBackbone` →
linear head over the 5 bases ``A C G T N``. It shares the ``embedding.*`` / ``backbone.*``
parameter names of :class:`~titans_ts.training.sequence.TitansSequenceModel`, so a trained
language model initialises a classifier.

Shapes:

* ``ids``: ``(B, T)`` int64 nucleotide ids in ``0..4`` (:class:`NucleotideTokenizer`);
* logits: ``(B, T, 5)``, row ``t`` predicting base ``t + 1``;
* training windows: ``(B, T + 1)`` (inputs ``[:, :-1]``, targets ``[:, 1:]``).

Streaming (:func:`stream_genome`): the genome is fed in fixed-size pieces with the backbone
state carried between them (memory weights, momentum, attention cache), in
``torch.inference_mode`` so no graph is kept; memory use stays flat in the genome length.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from titans_ts.backbone import BackboneState, TitansBackbone, TitansConfig
from titans_ts.encoders.dna import NucleotideTokenizer
from titans_ts.training.sequence import backbone_config_from_dict

__all__ = [
    "N_BASES",
    "DNALMConfig",
    "GenomeWindows",
    "StreamReport",
    "TitansDNAModel",
    "genome_codes",
    "stream_genome",
]

#: Output classes of the language model: the bases ``A C G T N`` (ids 0..4).
N_BASES = 5
_LN2 = math.log(2.0)


def genome_codes(sequences: list[str] | str) -> np.ndarray:
    """Nucleotide ids ``(L,)`` uint8 in ``0..4`` of one string or several joined end to end
    (validated by :class:`NucleotideTokenizer`: bad characters name sequence and position)."""
    tok = NucleotideTokenizer()
    if isinstance(sequences, str):
        return tok.encode(sequences).astype(np.uint8)
    return tok.encode_packed(sequences).ids.astype(np.uint8)


@dataclass(frozen=True)
class DNALMConfig:
    """Everything needed to rebuild a :class:`TitansDNAModel` (JSON round-trips).

    Attributes:
        vocab_size: input ids (the nucleotide tokenizer's 9; only ``0..4`` occur in genomes).
        pad_id: id of ``[PAD]``.
        backbone: the Titans backbone.
    """

    vocab_size: int = 9
    pad_id: int = 5
    backbone: TitansConfig = field(default_factory=TitansConfig)

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

    def loss(self, windows: Tensor) -> Tensor:
        """Mean next-base cross-entropy in nats over ``windows (B, T + 1)``."""
        if windows.dim() != 2 or windows.shape[1] < 2:
            raise ValueError(f"windows must have shape (B, T + 1 >= 2), got {tuple(windows.shape)}")
        logits, _ = self(windows[:, :-1])
        return F.cross_entropy(logits.reshape(-1, N_BASES), windows[:, 1:].reshape(-1))


class GenomeWindows(Dataset):
    """Every window of ``length + 1`` consecutive bases of ``codes``: item ``i`` is the
    ``(length + 1,)`` int64 tensor starting at base ``i`` (cut lazily, memory flat)."""

    def __init__(self, codes: np.ndarray, length: int) -> None:
        if len(codes) < length + 1:
            raise ValueError(
                f"the sequence has {len(codes)} bases, fewer than context_length + 1 = "
                f"{length + 1}; pass a longer sequence or a shorter context_length"
            )
        self.codes = torch.from_numpy(np.asarray(codes, dtype=np.int64))
        self.length = int(length)

    def __len__(self) -> int:
        return len(self.codes) - self.length

    def __getitem__(self, index: int) -> tuple[Tensor]:
        return (self.codes[index : index + self.length + 1],)


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


def stream_genome(
    model: TitansDNAModel,
    codes: np.ndarray,
    *,
    piece_length: int = 4096,
    report_every: int = 500_000,
    device: torch.device | str = "cpu",
) -> Iterator[StreamReport]:
    """Score every next base of ``codes (L,)`` with one carried stream state.

    The sequence goes through the model in pieces of ``piece_length`` bases under
    ``torch.inference_mode``; piece ``j`` reads bases ``[jP, (j+1)P)`` and is scored on
    bases ``[jP + 1, (j+1)P]``, so all ``L - 1`` next-base predictions are scored as in one
    call on the whole sequence (the carried state makes pieces equal to one call). Yields a
    :class:`StreamReport` every ``report_every`` bases and a final one.
    """
    if piece_length < 1:
        raise ValueError(f"piece_length must be >= 1, got {piece_length}")
    device = torch.device(device)
    model = model.to(device).eval()
    codes_t = torch.from_numpy(np.asarray(codes, dtype=np.int64))
    total_nats = 0.0
    scored = 0
    state: BackboneState | None = None
    start_time = time.perf_counter()
    next_report = report_every
    with torch.inference_mode():
        for start in range(0, len(codes_t) - 1, piece_length):
            piece = codes_t[start : start + piece_length + 1].to(device)
            inputs, targets = piece[:-1], piece[1:]
            logits, state = model(inputs[None], state)
            nats = F.cross_entropy(logits[0], targets, reduction="sum")
            total_nats += float(nats)
            scored += len(targets)
            if scored >= next_report or start + piece_length >= len(codes_t) - 1:
                elapsed = max(time.perf_counter() - start_time, 1e-9)
                yield StreamReport(
                    bases=scored,
                    bits_per_base=total_nats / scored / _LN2,
                    bases_per_second=scored / elapsed,
                    peak_rss_mb=_peak_rss_mb(),
                )
                next_report += report_every
