"""Command-line flags for the memory layer's shape, and the executor's inputs at that shape,
shared by the speed benchmarks.

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


def executor_inputs(layer, batch: int, seq_len: int) -> list:
    """Leaf inputs of ``run_memory`` at the shapes ``layer`` (a ``NeuralMemory``) gives its
    executor: ``[q, k, v, theta, eta, alpha, *weights]``; q, k unit rows, v standard normal,
    the gates at their initial values, the layer's initial memory weights (cloned)."""
    import torch  # here: compare_titans_pytorch.py's parent process never imports torch

    c = layer.config
    shape = (batch, c.n_heads, seq_len, c.head_dim)
    q, k = (torch.nn.functional.normalize(torch.randn(shape), dim=-1) for _ in "qk")
    v = torch.randn(shape)
    gates = [init * torch.ones(shape[:3]) for init in (c.theta_init, c.eta_init, c.alpha_init)]
    weights = [w.detach().clone() for w in layer.memory_weights]
    return [t.requires_grad_(True) for t in (q, k, v, *gates, *weights)]
