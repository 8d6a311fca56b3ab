"""Stream the whole E. coli 536 genome (4.94 Mbp) through a Titans DNA language model.

Inference mode, fixed-size pieces, backbone state carried between pieces (one stream from
the first base to the last). Prints bits per base, bases/s and peak RSS every
``--report-every`` bases; peak RSS must stay flat while the stream advances (nothing grows
with the genome length except the scored-base counter).

The model is first pretrained briefly on random windows of the genome's first 2 Mbp
(``--fit-windows``, 0 = untrained), so the bits per base are in-sample: this is a streaming
throughput / memory benchmark, not a held-out language-modelling result.

Denormal floats: after the pretraining fit most memory weights decay through the subnormal
float32 range during the stream (x86 computes on subnormals in microcode). The library
flushes them itself since session 25 (see ``chunked._flush_subnormals_``): on the first
512 kbp the stream ran at 8,708 bases/s before that fix, ~30k after. ``--flush-denormals``
additionally calls ``torch.set_flush_denormal(True)`` (it sets the calling thread's mode)
for comparison; by default the benchmark measures what a user gets.

    python benchmarks/ecoli_stream.py [--genome PATH] [--piece-length 4096] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import time

import torch

from titans_ts.estimators import TitansDNALM
from titans_ts.training.dna_lm import genome_codes, stream_genome


def _default_genome() -> pathlib.Path:
    root = os.environ.get("TITANS_TS_DATA_DIR", "").strip()
    here = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
    base = pathlib.Path(root) if root else here
    return base / "dna" / "genomes" / "NC_008253.fna.gz"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genome", type=pathlib.Path, default=_default_genome())
    parser.add_argument("--piece-length", type=int, default=4096)
    parser.add_argument("--report-every", type=int, default=500_000)
    parser.add_argument("--fit-windows", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flush-denormals", action="store_true",
                        help="also set torch.set_flush_denormal(True) (for comparison)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    # True where the CPU supports flush-to-zero (x86 with SSE3)
    flushed = torch.set_flush_denormal(True) if args.flush_denormals else False

    from titans_ts.encoders.seqio import read_fasta

    t0 = time.perf_counter()
    codes = genome_codes(list(read_fasta(args.genome).values()))
    print(f"genome {args.genome.name}: {len(codes):,} bases, read+tokenised in "
          f"{time.perf_counter() - t0:.2f}s", flush=True)
    accelerator = "cpu" if args.device == "cpu" else "gpu"
    lm = TitansDNALM(random_state=args.seed, accelerator=accelerator,
                     windows_per_epoch=max(1, args.fit_windows), max_epochs=1)
    if args.fit_windows > 0:
        t0 = time.perf_counter()
        lm.fit([codes_to_str(codes[: min(len(codes), 2_000_000)])])
        print(f"pretrained on {args.fit_windows} windows of {lm.context_length} bases in "
              f"{time.perf_counter() - t0:.1f}s; train bits/base {lm.train_bits_per_base_:.4f}",
              flush=True)
        model = lm.model_
    else:
        from titans_ts.training.dna_lm import DNALMConfig, TitansDNAModel
        from titans_ts.training.sequence import build_sequence_backbone_config

        torch.manual_seed(args.seed)
        d = lm
        model = TitansDNAModel(DNALMConfig(backbone=build_sequence_backbone_config(
            variant=d.variant, d_model=d.d_model, n_layers=d.n_layers, n_heads=d.n_heads,
            n_persistent=d.n_persistent, memory_depth=d.memory_depth,
            memory_chunk_size=d.memory_chunk_size, window=d.window, dropout=0.0)))
    cfg = model.config.backbone
    print(f"model: {cfg.variant} d_model={cfg.d_model} n_layers={cfg.n_layers} "
          f"window={cfg.window} memory chunk={cfg.memory.chunk_size}; "
          f"piece_length={args.piece_length}; threads={args.threads}; device={args.device}; "
          f"torch.set_flush_denormal={flushed}",
          flush=True)
    print(f"{'bases':>12} {'bits/base':>10} {'bases/s':>10} {'peak RSS MiB':>13}", flush=True)
    last = None
    for report in stream_genome(model, codes, piece_length=args.piece_length,
                                report_every=args.report_every, device=args.device):
        print(f"{report.bases:>12,} {report.bits_per_base:>10.4f} "
              f"{report.bases_per_second:>10,.0f} {report.peak_rss_mb:>13.1f}", flush=True)
        last = report
    assert last is not None
    print(f"done: {last.bases:,} bases, {last.bits_per_base:.4f} bits/base, "
          f"{last.bases_per_second:,.0f} bases/s, peak RSS {last.peak_rss_mb:.1f} MiB")
    return 0


def codes_to_str(codes) -> str:
    """ACGTN string of nucleotide ids (the training entry point takes strings)."""
    import numpy as np

    return np.frombuffer(b"ACGTN", dtype=np.uint8)[codes].tobytes().decode("ascii")


if __name__ == "__main__":
    raise SystemExit(main())
