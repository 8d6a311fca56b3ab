"""Key-value recall past the attention window: SWA-only vs the Titans variants.

Task (one sequence)::

    [pair_1 .. pair_P] [filler x gap] [query_1 .. query_P]

A *pair* token shows a key and its value at the same position (its embedding is
``E_key[k] + E_value[v]``), a *filler* token is drawn from a small distractor vocabulary,
a *query* token shows a key alone (``E_key[k] + E_query``) and must be answered with that
key's value. Keys within a sequence are distinct; queries come in shuffled order. Loss and
accuracy are measured on the query positions only; chance is ``1 / n_values``.

With ``gap`` larger than the attention's receptive field (``n_layers * (window - 1)``
tokens for stacked sliding windows; one segment for MAC), attention alone cannot see the
pairs: only the neural memory can carry them. Each model trains on gaps drawn uniformly
from ``[0, train_gap]`` and is evaluated on fixed held-out sets at each ``--gaps`` value
(longer than trained ones included).

Usage::

    python benchmarks/recall.py                      # table to stdout
    python benchmarks/recall.py --json results.json  # also write the numbers
    python benchmarks/recall.py --variants swa lmm --steps 300

Measured with the defaults (2-core shared CPU, one thread, seed 0; accuracy on 256 held-out
sequences per gap, chance 0.062; SWA reach 14 tokens; trained on gaps <= 32)::

    variant      gap 0    gap 16    gap 32    gap 64   gap 128   train s
    swa          0.972     0.064     0.069     0.061     0.056         9
    lmm          0.987     0.999     1.000     0.994     0.760        44
    mac          0.971     0.997     0.995     0.795     0.181       137
    mag          0.974     1.000     0.998     0.999     0.973        62
    mal          0.994     1.000     1.000     1.000     1.000        46

MAC gets 1500 steps (``--mac-steps``): with 800 it reached only ~0.6. With the memory's
inner learning rate bound at 0.05 MAC and MAL diverged (non-finite) during training;
0.02 (``--theta-max``, the MemoryConfig default) is stable here.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from titans_ts.backbone import VARIANTS, TitansBackbone, TitansConfig
from titans_ts.memory import MemoryConfig


@dataclass(frozen=True)
class RecallTask:
    """Sizes of the synthetic task."""

    n_keys: int = 16
    n_values: int = 16
    n_fillers: int = 8
    n_pairs: int = 4

    def sample(self, batch: int, gap: int, generator: torch.Generator) -> dict[str, Tensor]:
        """A batch: integer fields ``(batch, T)`` with ``T = 2 * n_pairs + gap``.

        ``kind`` is 0 for pairs, 1 for fillers, 2 for queries; ``key``/``value``/``filler``
        index the respective vocabularies (0 where unused); ``target`` is the value to
        answer at query positions and -100 elsewhere.
        """
        p = self.n_pairs
        t = 2 * p + gap
        keys = torch.rand(batch, self.n_keys, generator=generator).argsort(-1)[:, :p]
        values = torch.randint(self.n_values, (batch, p), generator=generator)
        order = torch.rand(batch, p, generator=generator).argsort(-1)
        kind = torch.ones(batch, t, dtype=torch.long)
        kind[:, :p] = 0
        kind[:, p + gap :] = 2
        key = torch.zeros(batch, t, dtype=torch.long)
        value = torch.zeros(batch, t, dtype=torch.long)
        key[:, :p] = keys
        value[:, :p] = values
        key[:, p + gap :] = keys.gather(1, order)
        filler = torch.randint(self.n_fillers, (batch, t), generator=generator)
        target = torch.full((batch, t), -100, dtype=torch.long)
        target[:, p + gap :] = values.gather(1, order)
        return {"kind": kind, "key": key, "value": value, "filler": filler, "target": target}


class RecallModel(nn.Module):
    """Factorised token embedding -> :class:`TitansBackbone` -> value logits."""

    def __init__(self, task: RecallTask, config: TitansConfig) -> None:
        super().__init__()
        d = config.d_model
        self.key = nn.Embedding(task.n_keys, d)
        self.value = nn.Embedding(task.n_values, d)
        self.filler = nn.Embedding(task.n_fillers, d)
        self.query = nn.Parameter(torch.randn(d))
        self.backbone = TitansBackbone(config)
        self.head = nn.Linear(d, task.n_values)

    def embed(self, batch: dict[str, Tensor]) -> Tensor:
        """``(B, T)`` integer fields -> ``(B, T, d)`` embeddings."""
        kind = batch["kind"].unsqueeze(-1)
        pair = self.key(batch["key"]) + self.value(batch["value"])
        query = self.key(batch["key"]) + self.query
        fill = self.filler(batch["filler"])
        return torch.where(kind == 0, pair, torch.where(kind == 1, fill, query))

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Logits ``(B, T, n_values)``."""
        y, _ = self.backbone(self.embed(batch))
        return self.head(y)


def build_config(variant: str, args: argparse.Namespace) -> TitansConfig:
    mem = MemoryConfig(
        d_model=args.d_model,
        n_heads=args.mem_heads,
        depth=args.mem_depth,
        hidden_mult=2,
        chunk_size=args.chunk_size,
        theta_max=args.theta_max,
        theta_init=args.theta_max / 2,
    )
    return TitansConfig(
        variant=variant,
        d_model=args.d_model,
        n_layers=args.n_layers,
        n_heads=args.n_heads,
        window=args.window,
        segment_len=args.segment_len,
        n_persistent=args.n_persistent,
        memory=mem,
        ffn_mult=2.0,
    )


def accuracy(model: RecallModel, batch: dict[str, Tensor]) -> float:
    with torch.no_grad():
        logits = model(batch)
    mask = batch["target"] >= 0
    return (logits.argmax(-1)[mask] == batch["target"][mask]).float().mean().item()


def train_and_eval(variant: str, task: RecallTask, args: argparse.Namespace) -> dict[str, object]:
    """Train one model with a fixed seed; return its accuracy per evaluation gap."""
    torch.manual_seed(args.seed)
    model = RecallModel(task, build_config(variant, args))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    steps = args.mac_steps if variant == "mac" and args.mac_steps else args.steps
    warm = max(1, steps // 10)

    def lr_at(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    gen = torch.Generator().manual_seed(args.seed + 1)
    start = time.perf_counter()
    model.train()
    loss_val = float("nan")
    for step in range(steps):
        gap = int(torch.randint(args.train_gap + 1, (1,), generator=gen))
        batch = task.sample(args.batch, gap, gen)
        logits = model(batch)
        loss = F.cross_entropy(logits.flatten(0, 1), batch["target"].flatten(), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        loss_val = loss.item()
        if args.verbose and (step % 50 == 0 or step == steps - 1):
            print(f"  [{variant}] step {step:4d} gap {gap:3d} loss {loss_val:.3f}", flush=True)
    train_s = time.perf_counter() - start
    model.eval()
    eval_gen = torch.Generator().manual_seed(10_000 + args.seed)
    acc = {g: accuracy(model, task.sample(args.eval_batch, g, eval_gen)) for g in args.gaps}
    return {
        "variant": variant,
        "steps": steps,
        "accuracy": acc,
        "train_seconds": train_s,
        "final_loss": loss_val,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--variants", nargs="+", default=["swa", "lmm", "mac", "mag", "mal"], choices=VARIANTS
    )
    p.add_argument("--gaps", nargs="+", type=int, default=[0, 16, 32, 64, 128])
    p.add_argument("--train-gap", type=int, default=32, help="train gaps ~ U[0, train_gap]")
    p.add_argument("--steps", type=int, default=800)
    p.add_argument(
        "--mac-steps",
        type=int,
        default=1500,
        help="training steps for MAC (it learns the task more slowly; 0 = --steps)",
    )
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--eval-batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--d-model", type=int, default=32)
    p.add_argument("--n-layers", type=int, default=2)
    p.add_argument("--n-heads", type=int, default=2)
    p.add_argument("--window", type=int, default=8)
    p.add_argument("--segment-len", type=int, default=8)
    p.add_argument("--n-persistent", type=int, default=2)
    p.add_argument("--mem-heads", type=int, default=2)
    p.add_argument("--mem-depth", type=int, default=2)
    p.add_argument("--chunk-size", type=int, default=8)
    p.add_argument(
        "--theta-max",
        type=float,
        default=0.02,
        help="memory inner learning-rate bound (theta_init = theta_max / 2)",
    )
    p.add_argument("--n-pairs", type=int, default=4)
    p.add_argument("--n-values", type=int, default=16, help="also the number of keys")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    task = RecallTask(n_keys=args.n_values, n_values=args.n_values, n_pairs=args.n_pairs)
    reach = args.n_layers * (args.window - 1)
    print(
        f"recall: {task.n_pairs} pairs, {task.n_values} values (chance {1 / task.n_values:.3f}); "
        f"window {args.window} x {args.n_layers} layers (SWA reach {reach} tokens), "
        f"MAC segment {args.segment_len}; train gaps U[0, {args.train_gap}], {args.steps} steps "
        f"({args.mac_steps or args.steps} for MAC)",
        flush=True,
    )
    results = []
    for variant in args.variants:
        results.append(train_and_eval(variant, task, args))
        r = results[-1]
        print(
            f"  {variant}: trained in {r['train_seconds']:.0f}s, loss {r['final_loss']:.3f}",
            flush=True,
        )
    head = f"{'variant':<8}" + "".join(f"{'gap ' + str(g):>10}" for g in args.gaps)
    head += f"{'train s':>10}"
    print(head)
    for r in results:
        acc = r["accuracy"]
        print(
            f"{r['variant']:<8}"
            + "".join(f"{acc[g]:>10.3f}" for g in args.gaps)
            + f"{r['train_seconds']:>10.0f}"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "task": asdict(task), "results": results}, fh, indent=2)
    return results


if __name__ == "__main__":
    main()
