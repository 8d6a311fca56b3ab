"""``TitansDNALM``: next-nucleotide pretraining on a genome, scored in bits per base.

Quick start::

    from titans_ts.estimators import TitansDNALM, TitansSequenceClassifier
    lm = TitansDNALM(random_state=0).fit("genome.fna.gz")   # FASTA path or list of strings
    lm.bits_per_base("genome.fna.gz")                       # streamed, carried state
    # to initialise a classifier (which always starts from a fresh state), pretrain on
    # independent windows so the memory's initial weights are trained at every step
    lm = TitansDNALM(carry_windows=1, random_state=0).fit("genome.fna.gz")
    lm.save("lm")
    clf = TitansSequenceClassifier(pretrained="lm").fit(X, y)  # starts from the LM weights

Training reads windows of ``context_length`` next-base predictions (all records of a FASTA,
or all strings of a list, are joined; lower case is upper-cased, IUPAC codes become ``N``)
and minimises the next-base cross-entropy. By default (``carry_windows=128``) each batch row
reads consecutive windows of one random stretch, one per optimiser step, with the backbone
state carried between them (truncated back-propagation through time), so the memory learns
from the long-running states that streaming produces; ``carry_windows=1`` draws independent
random windows. The input token at each base is the base
(``kmer_k=None``) or the overlapping k-mer ending there (``kmer_k=k``, never spanning two
records): a k-mer model initialises a classifier that uses the same k-mers, e.g.
``TitansDNALM(kmer_k=6, variant="mag", d_model=64)`` for the classifier's 6-mer tokens
(``recipes/genomics_pretrain.py`` does this on GUE training sequences). Evaluation streams
the whole sequence through the model in pieces with the backbone state carried
(:func:`~titans_ts.training.dna_lm.stream_genome`), so the memory sees everything before
each base, not only a window.

All defaults live in :data:`DNALM_DEFAULTS` (:class:`DNALMDefaults`).
"""

from __future__ import annotations

import json
import math
import os
import pathlib
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler

from titans_ts.backbone import VARIANTS
from titans_ts.estimators._base import Interval, Options, TitansBaseEstimator
from titans_ts.estimators.classifier import _jsonable, _read_document
from titans_ts.training.dna_lm import (
    DNALMConfig,
    EpochSteps,
    GenomeStreams,
    GenomeWindows,
    StreamReport,
    TitansDNAModel,
    base_nats,
    genome_codes,
    input_ids,
    stream_genome,
)
from titans_ts.training.lightning import LossHistory, LossModule, StatefulLossModule
from titans_ts.training.sequence import build_sequence_backbone_config, tokenizer_spec

__all__ = ["DNALM_DEFAULTS", "DNALM_FORMAT_VERSION", "DNALMDefaults", "TitansDNALM"]

DNALM_FORMAT_VERSION = 1
_FORMAT_NAME = "titans_ts.TitansDNALM"


@dataclass(frozen=True)
class DNALMDefaults:
    """The one place where :class:`TitansDNALM` defaults are set.

    ``context_length`` 512 with ``window`` 128: attention sees the last 128 bases, the neural
    memory (chunks of 32) carries the rest, which is what streaming a whole genome relies
    on. ``carry_windows`` 128: each of the 16 batch rows reads 128 consecutive windows
    (65,536 bases, the whole epoch) with the state carried, so the memory is trained on the
    long-running states that streamed scoring (:meth:`TitansDNALM.bits_per_base`) gives it.
    ``windows_per_epoch * max_epochs`` = 16,384 windows of 512 bases (~8.4 M bases) at
    learning rate 3e-3: ~7 minutes on one CPU core. On held-out E. coli (fit on 2 Mbp) this
    scores 1.940-1.944 bits/base streamed, where independent windows at learning rate 1e-3
    (the previous defaults, measured at 3 epochs) scored 1.996-2.002 and an order-5 Markov
    chain 1.944; 16 epochs reach 1.935 (``docs/results.md``, "Stateful training and the
    Markov baseline").
    """

    variant: str = "lmm"
    d_model: int = 32
    n_layers: int = 2
    n_heads: int = 2
    n_persistent: int = 4
    memory_depth: int = 2
    memory_chunk_size: int = 32
    window: int = 128
    dropout: float = 0.0
    context_length: int = 512
    windows_per_epoch: int = 2048
    max_epochs: int = 8
    batch_size: int = 16
    learning_rate: float = 3e-3
    weight_decay: float = 0.01
    gradient_clip_val: float | None = 1.0
    piece_length: int = 4096
    kmer_k: int | None = None
    carry_windows: int = 128
    repeat_fraction: float = 0.0
    memory_theta_max: float | None = None


DNALM_DEFAULTS = DNALMDefaults()
_D = DNALM_DEFAULTS


def _read_codes(X: Any) -> tuple[np.ndarray, np.ndarray]:
    """Nucleotide ids ``(L,)`` of a FASTA path, a string or a list of strings (joined) and
    the records' start offsets ``(R,)``."""
    # a str is a path when it names a file or contains a path character; else it is DNA
    if isinstance(X, os.PathLike) or (
        isinstance(X, str) and (os.path.isfile(X) or any(c in X for c in "/\\."))
    ):
        from titans_ts.encoders.seqio import read_fasta

        path = pathlib.Path(X)
        if not path.is_file():
            raise FileNotFoundError(
                f"{str(path)!r} is not a file; pass a FASTA path (plain or .gz), a DNA "
                "string or a list of DNA strings"
            )
        return genome_codes(list(read_fasta(path).values()), with_starts=True)
    if isinstance(X, (str, list, tuple)):
        return genome_codes(X if isinstance(X, str) else list(X), with_starts=True)
    raise TypeError(
        f"expected a FASTA path, a DNA string or a list of DNA strings, got {type(X).__name__}"
    )


class TitansDNALM(TitansBaseEstimator):
    """Next-nucleotide Titans language model with a scikit-learn style interface.

    Parameters (see :class:`DNALMDefaults`):
        variant, d_model, n_layers, n_heads, n_persistent, memory_depth, memory_chunk_size,
        window, dropout: the backbone (as in :class:`TitansSequenceClassifier`).
        kmer_k: input tokens: ``None`` bases, or ``k`` in ``[1, 8]`` overlapping k-mers
            ending at each base (the classifier's ``kmer_k``); the output is always the next
            base.
        context_length: bases per training window.
        carry_windows: ``1`` trains on independent random windows. ``n > 1`` trains
            statefully (truncated back-propagation through time): each batch row reads
            ``n`` consecutive windows of one random stretch, one per optimiser step, with
            the backbone state carried (detached) from step to step
            (:class:`~titans_ts.training.dna_lm.GenomeStreams`), so the memory is trained
            on states up to ``n * context_length`` bases old, as streaming scoring uses it.
            ``ceil(windows_per_epoch / batch_size)`` steps per epoch either way; runs on
            one device. Capped at the number of whole windows the training sequence holds
            (``carry_windows_``). Parameters that act only on a fresh state (the memory's
            initial weights, persistent tokens) get gradient only on an episode's first
            step, so pretrain a classifier's initialisation with ``carry_windows=1``.
        repeat_fraction: share of every training stream overwritten by exact copies of its
            own earlier stretches (32-1,024 bases, log-uniform distance back;
            :class:`~titans_ts.training.dna_lm.GenomeStreams`), ``0`` to ``0.5``: the
            genome alone rarely rewards the memory for memorising what it read. Any value
            above 0 trains on streams (one device) even with ``carry_windows=1``. On the
            CPU budget (d_model 32-64, <= 8,192 steps) no model learned to use the copies
            (``docs/results.md``, "Does the memory memorise at test time?"), so it is off.
        memory_theta_max: cap of the memory's inner learning rate (``None``: the memory's
            default, 0.02); how fast test-time updates can write what was read.
        windows_per_epoch, max_epochs, batch_size, learning_rate, weight_decay,
        gradient_clip_val: optimisation (AdamW; fresh random windows every epoch).
        max_time: wall-clock limit of training in seconds (``None``: none); training stops
            after the step that crosses it, whatever ``max_epochs`` says.
        accelerator, devices, random_state, verbose: as in the other estimators.

    Fitted attributes:
        model_ (:class:`~titans_ts.training.dna_lm.TitansDNAModel`, eval mode), config_,
        history_ (per-epoch training loss in nats), n_bases_ (training sequence length),
        train_bits_per_base_ (last epoch's training loss in bits), carry_windows_ (the
        consecutive windows used: ``carry_windows`` capped at ``(n_bases_ - 1) //
        context_length``), seed_.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "variant": [Options(tuple(VARIANTS))],
        "d_model": [Interval(Integral, 2, None)],
        "n_layers": [Interval(Integral, 1, None)],
        "n_heads": [Interval(Integral, 1, None)],
        "n_persistent": [Interval(Integral, 0, None)],
        "memory_depth": [Interval(Integral, 1, None)],
        "memory_chunk_size": [Interval(Integral, 1, None)],
        "window": [Interval(Integral, 1, None)],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "context_length": [Interval(Integral, 1, None)],
        "windows_per_epoch": [Interval(Integral, 1, None)],
        "max_epochs": [Interval(Integral, 1, None)],
        "batch_size": [Interval(Integral, 1, None)],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "gradient_clip_val": [Interval(Real, 0, None, closed="neither"), None],
        "accelerator": [Options(("auto", "cpu", "gpu", "cuda", "mps"))],
        "devices": [Interval(Integral, 1, None), Options(("auto",)), list],
        "random_state": [Interval(Integral, 0, 2**32 - 1), np.random.Generator, None],
        "verbose": ["boolean"],
        "kmer_k": [Interval(Integral, 1, 8), None],
        "max_time": [Interval(Real, 0, None, closed="neither"), None],
        "carry_windows": [Interval(Integral, 1, None)],
        "repeat_fraction": [Interval(Real, 0, 0.5, closed="both")],
        "memory_theta_max": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(
        self,
        *,
        variant: str = _D.variant,
        d_model: int = _D.d_model,
        n_layers: int = _D.n_layers,
        n_heads: int = _D.n_heads,
        n_persistent: int = _D.n_persistent,
        memory_depth: int = _D.memory_depth,
        memory_chunk_size: int = _D.memory_chunk_size,
        window: int = _D.window,
        dropout: float = _D.dropout,
        context_length: int = _D.context_length,
        windows_per_epoch: int = _D.windows_per_epoch,
        max_epochs: int = _D.max_epochs,
        batch_size: int = _D.batch_size,
        learning_rate: float = _D.learning_rate,
        weight_decay: float = _D.weight_decay,
        gradient_clip_val: float | None = _D.gradient_clip_val,
        accelerator: str = "auto",
        devices: int | str | list[int] = 1,
        random_state: int | np.random.Generator | None = None,
        verbose: bool = False,
        kmer_k: int | None = _D.kmer_k,
        max_time: float | None = None,
        carry_windows: int = _D.carry_windows,
        repeat_fraction: float = _D.repeat_fraction,
        memory_theta_max: float | None = _D.memory_theta_max,
    ) -> None:
        self.variant = variant
        self.d_model = d_model
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.n_persistent = n_persistent
        self.memory_depth = memory_depth
        self.memory_chunk_size = memory_chunk_size
        self.window = window
        self.dropout = dropout
        self.context_length = context_length
        self.windows_per_epoch = windows_per_epoch
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.gradient_clip_val = gradient_clip_val
        self.accelerator = accelerator
        self.devices = devices
        self.random_state = random_state
        self.verbose = verbose
        self.kmer_k = kmer_k
        self.max_time = max_time
        self.carry_windows = carry_windows
        self.repeat_fraction = repeat_fraction
        self.memory_theta_max = memory_theta_max

    def fit(self, X: Any, y: None = None) -> TitansDNALM:
        """Pretrain on ``X``: a FASTA path (plain or gzip; records joined), a DNA string or
        a list of DNA strings. ``y`` is ignored. Returns ``self``."""
        self._validate_params()
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ValueError(
                f"TitansDNALM: d_model={self.d_model} must be divisible by "
                f"n_heads={self.n_heads} with an even per-head width; e.g. d_model=32, n_heads=2"
            )
        codes, starts = _read_codes(X)
        # as many consecutive windows as the sequence holds (1: the window path, whose
        # error names a sequence shorter than one window)
        carry = max(1, min(int(self.carry_windows), (len(codes) - 1) // self.context_length))
        one_device = self.devices == 1 or (isinstance(self.devices, list)
                                           and len(self.devices) == 1)
        streamed = carry > 1 or self.repeat_fraction > 0
        if streamed and not one_device:
            raise ValueError(
                f"TitansDNALM: carry_windows={self.carry_windows} and repeat_fraction="
                f"{self.repeat_fraction} train one stream per batch row in order on one "
                f"device, got devices={self.devices!r}; pass devices=1 (or one device id), "
                "or carry_windows=1 and repeat_fraction=0 to train on independent windows "
                "across devices"
            )
        config = DNALMConfig.for_tokenizer(
            kmer_k=None if self.kmer_k is None else int(self.kmer_k),
            backbone=build_sequence_backbone_config(
                variant=self.variant,
                d_model=self.d_model,
                n_layers=self.n_layers,
                n_heads=self.n_heads,
                n_persistent=self.n_persistent,
                memory_depth=self.memory_depth,
                memory_chunk_size=min(self.memory_chunk_size, self.window),
                window=self.window,
                dropout=float(self.dropout),
                memory_theta_max=self.memory_theta_max,
            )
        )
        with self._fit_context() as (seed, root):
            ids = input_ids(codes, config.kmer_k, starts)
            model = TitansDNAModel(config)
            if not streamed:
                data = GenomeWindows(codes, self.context_length, ids=ids)
                module = LossModule(model, self.learning_rate, self.weight_decay)
                # every epoch draws fresh windows from a seeded generator (reproducible fits)
                sampler = RandomSampler(
                    data, num_samples=min(self.windows_per_epoch, len(data)),
                    generator=torch.Generator().manual_seed(seed),
                )
                loader = DataLoader(data, batch_size=self.batch_size, sampler=sampler)
            else:
                streams = GenomeStreams(codes, self.context_length, self.batch_size, carry,
                                        ids=ids, seed=seed,
                                        repeat_fraction=self.repeat_fraction)
                module = StatefulLossModule(model, self.learning_rate, self.weight_decay)
                steps = math.ceil(self.windows_per_epoch / self.batch_size)
                loader = DataLoader(streams, batch_size=None, sampler=EpochSteps(steps))
            history = LossHistory()
            trainer = self._make_trainer(
                max_epochs=self.max_epochs,
                max_time=self.max_time,
                root_dir=root,
                callbacks=[history],
                gradient_clip_val=self.gradient_clip_val,
                has_validation=False,
            )
            trainer.fit(module, train_dataloaders=loader)
        self.model_ = module.model.to("cpu").eval()
        self.config_ = config
        self.history_ = history.records
        self.n_bases_ = int(len(codes))
        self.carry_windows_ = carry
        last = self.history_[-1]["train_loss"] if self.history_ else None
        self.train_bits_per_base_ = None if last is None else float(last) / math.log(2.0)
        return self

    def stream(
        self, X: Any, *, piece_length: int = _D.piece_length, report_every: int = 500_000,
        reset_every: int | None = None,
    ) -> list[StreamReport]:
        """Stream ``X`` (FASTA path / string / strings) through the model with carried state
        in ``piece_length``-base pieces; returns the progress reports (the last covers all
        bases). ``reset_every``: drop the state every that many bases (see
        :func:`~titans_ts.training.dna_lm.stream_genome`; for a model fitted with
        ``carry_windows=1``, ``context_length`` matches training), None = carry it
        throughout (what the default stateful training prepares the model for)."""
        self._check_fitted()
        codes, starts = _read_codes(X)
        return list(
            stream_genome(
                self.model_, codes, starts=starts, piece_length=piece_length,
                report_every=report_every, device=self._device(), reset_every=reset_every,
            )
        )

    def bits_per_base(
        self, X: Any, *, piece_length: int = _D.piece_length, reset_every: int | None = None
    ) -> float:
        """Mean next-base cross-entropy of ``X`` in bits (2.0 = uniform over ACGT);
        ``reset_every`` as in :meth:`stream`."""
        reports = self.stream(X, piece_length=piece_length, report_every=10**18,
                              reset_every=reset_every)
        return reports[-1].bits_per_base

    def nats(
        self, X: Any, *, piece_length: int = _D.piece_length, reset_every: int | None = None
    ) -> np.ndarray:
        """Next-base cross-entropy of every base after the first, in nats: ``(L - 1,)``
        float64 for the ``L`` bases of ``X`` (records joined as in :meth:`stream`), scored
        with the same carried state as :meth:`stream`; ``reset_every`` likewise. The mean
        over a stretch / ln 2 is its bits per base; high values mark what the model did not
        expect. Shaped like :meth:`titans_ts.baselines.markov.MarkovDNALM.nats`."""
        self._check_fitted()
        codes, starts = _read_codes(X)
        return base_nats(self.model_, codes, starts=starts, piece_length=piece_length,
                         device=self._device(), reset_every=reset_every)

    def score(self, X: Any, y: None = None) -> float:
        """Negative bits per base (greater is better, like scikit-learn scores)."""
        return -self.bits_per_base(X)

    def save(self, path: str | os.PathLike) -> pathlib.Path:
        """Write ``estimator.json`` + ``weights.pt`` to a folder; returns it. The folder can
        be passed as ``TitansSequenceClassifier(pretrained=folder)``."""
        self._check_fitted()
        folder = pathlib.Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        params = self.get_params(deep=False)
        if params["random_state"] is not None and not isinstance(params["random_state"], int):
            params["random_state"] = self.seed_
        document = {
            "format": _FORMAT_NAME,
            "format_version": DNALM_FORMAT_VERSION,
            "params": params,
            "model_config": self.config_.to_dict(),
            "tokenizer": tokenizer_spec(self.config_.tokenizer()),
            "fitted": {
                "history_": self.history_,
                "n_bases_": self.n_bases_,
                "train_bits_per_base_": _jsonable(self.train_bits_per_base_),
                "carry_windows_": self.carry_windows_,
                "seed_": self.seed_,
            },
        }
        (folder / "estimator.json").write_text(json.dumps(document, indent=2))
        torch.save(self.model_.state_dict(), folder / "weights.pt")
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike) -> TitansDNALM:
        """Load a folder written by :meth:`save`."""
        document = _read_document(path, _FORMAT_NAME, DNALM_FORMAT_VERSION)
        est = cls(**document["params"])
        config = DNALMConfig.from_dict(document["model_config"])
        model = TitansDNAModel(config)
        model.load_state_dict(
            torch.load(pathlib.Path(path) / "weights.pt", map_location="cpu", weights_only=True)
        )
        fitted = document["fitted"]
        est.model_ = model.eval()
        est.config_ = config
        est.history_ = fitted["history_"]
        est.n_bases_ = fitted["n_bases_"]
        est.train_bits_per_base_ = fitted["train_bits_per_base_"]
        est.carry_windows_ = fitted.get("carry_windows_", 1)  # saves before session 26
        est.seed_ = fitted["seed_"]
        return est
