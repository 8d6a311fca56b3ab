"""Command-line flags for the memory layer's shape, shared by the speed benchmarks.

Defaults are issue 2's standard configuration: d_model 256, 4 heads of 64, depth-2 memory
with hidden multiplier 4, chunk 64.
"""

from __future__ import annotations

import argparse

STANDARD = {
    "d_model": 256, "heads": 4, "head_dim": 64, "depth": 2, "hidden_mult": 4, "chunk_size": 64,
}


def add_shape_args(parser: argparse.ArgumentParser) -> None:
    """``--d-model --heads --head-dim --depth --hidden-mult --chunk-size`` (all int)."""
    for name, default in STANDARD.items():
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=default)


def memory_config_kwargs(args: argparse.Namespace) -> dict:
    """The parsed flags as ``MemoryConfig`` keyword arguments."""
    return {
        "d_model": args.d_model, "n_heads": args.heads, "head_dim": args.head_dim,
        "depth": args.depth, "hidden_mult": args.hidden_mult, "chunk_size": args.chunk_size,
    }
