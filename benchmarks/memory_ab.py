"""Paired A/B timing of ``NeuralMemory`` at two git revisions, in one process.

On a shared VM, separate runs of the same code swing by 15-20 % within minutes, more than
most single optimisations gain. This script imports the layer twice (the working tree and
``--base``, a git revision extracted to a temporary folder and imported under another
package name), gives both the same weights, and alternates their steps (ABBA order) so that
slow phases of the machine hit both alike. Reported: median step time of each, the median of
the per-pair ratios ``base / new`` (> 1: the working tree is faster) and the largest output
difference (the two should compute the same function)::

    python benchmarks/memory_ab.py --base HEAD~1                     # fwd+bwd, 2 threads
    python benchmarks/memory_ab.py --base main --phase fwd --threads 1 --pairs 20
"""

from __future__ import annotations

import argparse
import importlib
import io
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _shape_args, also if loaded by path
from _shape_args import add_shape_args, memory_config_kwargs  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
BASE_PACKAGE = "titans_ts_base"


def extract_base(rev: str, into: Path) -> None:
    """Write ``titans_ts/`` at git revision ``rev`` to ``into/titans_ts_base/``, imports
    rewritten to the new package name."""
    try:
        blob = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", rev, "titans_ts"],
            check=True, capture_output=True,
        ).stdout
    except subprocess.CalledProcessError as err:
        raise SystemExit(f"git archive {rev!r} failed: {err.stderr.decode().strip()}") from None
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        try:
            tar.extractall(into, filter="data")
        except TypeError:  # Python < 3.10.12 / 3.11.4: no extraction filters
            tar.extractall(into)  # noqa: S202 - our own repository's archive
    (into / "titans_ts").rename(into / BASE_PACKAGE)
    pattern = re.compile(r"\btitans_ts\b")
    for path in (into / BASE_PACKAGE).rglob("*.py"):
        path.write_text(pattern.sub(BASE_PACKAGE, path.read_text()))


def build(package: str, config_kwargs: dict) -> torch.nn.Module:
    memory = importlib.import_module(f"{package}.memory")
    return memory.NeuralMemory(memory.MemoryConfig(**config_kwargs))


def _run_pairs(args: argparse.Namespace, kwargs: dict):
    """Alternate base and working-tree steps; ``(times, max output diff, load result)``."""
    torch.manual_seed(0)
    new = build("titans_ts", kwargs)
    base = build(BASE_PACKAGE, kwargs)
    missing = base.load_state_dict(new.state_dict(), strict=False)
    x = torch.randn(args.batch, args.seq_len, args.d_model)

    def step(layer: torch.nn.Module) -> tuple[float, torch.Tensor]:
        start = time.perf_counter()
        if args.phase == "fwd":
            with torch.no_grad():
                y = layer(x)[0]
        else:
            y = layer(x)[0]
            y.square().mean().backward()
        return time.perf_counter() - start, y.detach()

    for _ in range(args.warmup):
        step(base)
        step(new)
    times: dict[str, list[float]] = {"base": [], "new": []}
    diff = 0.0
    for i in range(args.pairs):
        order = (("base", base), ("new", new)) if i % 2 == 0 else (("new", new), ("base", base))
        outs = {}
        for name, layer in order:
            seconds, outs[name] = step(layer)
            times[name].append(seconds)
        diff = max(diff, float((outs["base"] - outs["new"]).abs().max()))
    return times, diff, missing


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="git revision to compare the working tree with")
    ap.add_argument("--phase", choices=("fwd", "fwdbwd"), default="fwdbwd")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--pairs", type=int, default=12, help="timed steps of each side")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=2048)
    add_shape_args(ap)
    args = ap.parse_args(argv)
    if args.pairs < 2:
        ap.error("--pairs must be >= 2")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    kwargs = memory_config_kwargs(args)
    with tempfile.TemporaryDirectory() as tmp:
        extract_base(args.base, Path(tmp))
        sys.path.insert(0, tmp)
        try:
            times, diff, missing = _run_pairs(args, kwargs)
        finally:
            sys.path.remove(tmp)
            for name in [m for m in sys.modules if m.split(".")[0] == BASE_PACKAGE]:
                del sys.modules[name]
    ratios = [b / n for b, n in zip(times["base"], times["new"])]
    tokens = args.batch * args.seq_len
    result = {
        "base": args.base,
        "phase": args.phase,
        "threads": torch.get_num_threads(),
        "base_median_s": statistics.median(times["base"]),
        "new_median_s": statistics.median(times["new"]),
        "base_tokens_per_s": tokens / statistics.median(times["base"]),
        "new_tokens_per_s": tokens / statistics.median(times["new"]),
        "paired_speedup": statistics.median(ratios),
        "pair_ratios": [round(r, 3) for r in ratios],
        "max_abs_output_diff": diff,
        "state_dict_mismatch": bool(missing.missing_keys or missing.unexpected_keys),
    }
    print(
        f"{args.phase} B={args.batch} T={args.seq_len}, {result['threads']} threads, "
        f"{args.pairs} pairs: base ({args.base}) {result['base_tokens_per_s']:,.0f} tok/s, "
        f"working tree {result['new_tokens_per_s']:,.0f} tok/s; base/new per pair median "
        f"{result['paired_speedup']:.3f} (> 1: working tree faster); max |output diff| {diff:.2e}"
    )
    return result


if __name__ == "__main__":
    main()
