"""Side-by-side speed and memory of our ``NeuralMemory`` and PyPI ``titans-pytorch`` 0.5.5.

What is compared
----------------
* ours: ``titans_ts.memory.NeuralMemory(MemoryConfig(d_model=256, n_heads=4, head_dim=64,
  depth=2, hidden_mult=4, chunk_size=64))``, called as ``y, state = mem(x)``.
* the port: ``titans_pytorch.NeuralMemory(dim=256, chunk_size=64, heads=4, dim_head=64)``
  with every other argument at its default (its default memory is a depth-2 MLP with
  expansion factor 4, wrapped in a LayerNorm + residual), called as
  ``retrieved, state = mem(x)``.

Both take ``x`` of shape ``(B, T, 256)`` in float32 on the CPU. For every sequence length
``T`` and batch ``B`` three phases are measured, each in a **fresh subprocess** (so the peak
resident set size, ``resource.getrusage(RUSAGE_SELF).ru_maxrss``, belongs to that one
configuration and phase), with ``torch.set_num_threads`` left at torch's default:

* ``fwd``: forward under ``torch.no_grad()`` (the headline "forward" figure);
* ``fwd_autograd``: forward with autograd recording (graph built, then dropped);
* ``fwdbwd``: forward, ``loss = y.square().mean()``, ``loss.backward()`` into every parameter.

Each phase runs ``--warmup`` untimed iterations, then ``--repeats`` timed ones; the median
gives tokens/s (``B * T / median_seconds``). The peak RSS of the ``fwd`` and ``fwdbwd``
processes is reported as the whole process's peak (including the ``import torch`` baseline)
and as the growth over the RSS measured right after the model and input were built.

The port is never a dependency of this project
----------------------------------------------
It lives in a throwaway virtual environment that sees the system's packages (and so the
system's CPU torch; the ``torch==<system version>`` pin keeps pip from fetching another)::

    python -m venv --system-site-packages /tmp/titans_pytorch_env
    /tmp/titans_pytorch_env/bin/pip install titans-pytorch==0.5.5 torch==2.13.0

``--setup`` runs exactly those two steps (pinning the torch version this interpreter has)
and then goes on with the benchmark. ``--port-python`` names the port's interpreter
(default ``/tmp/titans_pytorch_env/bin/python``). Our side runs under this interpreter with
the repository root on ``PYTHONPATH``.

Usage
-----
The issue's comparison (T=2048 batch 4; T from 2k to 32k at batch 1 for flatness; the peak
memory at T=32k batch 1)::

    python benchmarks/compare_titans_pytorch.py --setup --issue

Smaller pieces::

    python benchmarks/compare_titans_pytorch.py --seq-lens 2048 --batch 4
    python benchmarks/compare_titans_pytorch.py --seq-lens 32768 --batch 1 --phases fwdbwd
    python benchmarks/compare_titans_pytorch.py --configs 2048x4,32768x1 --json
    python benchmarks/compare_titans_pytorch.py --impls port --seq-lens 2048 --repeats 2
    python benchmarks/compare_titans_pytorch.py --configs 2048x1,32768x1 --glibc-keep-freed

Each line reports the timed steps' minor page faults per token. glibc serves blocks of
32 MiB and more (at T = 32k one (1, T, 256) float32 tensor) by ``mmap`` and unmaps them
on free, so every step faults them in again; ``--glibc-keep-freed`` runs both sides with
the README's allocator settings, which keep freed memory in the heap.

``--json`` prints one JSON object per line: one per (T, batch) row with both sides and the
ratios, then one ``"summary"`` object with the throughput flatness of each side.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _shape_args, also if loaded by path
from _shape_args import add_shape_args  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORT_ENV = Path("/tmp/titans_pytorch_env")
PORT_SPEC = "titans-pytorch==0.5.5"
IMPLS = ("ours", "port")
PHASES = ("fwd", "fwd_autograd", "fwdbwd")
ISSUE_CONFIGS = "2048x4,2048x1,4096x1,8192x1,16384x1,32768x1"


# --------------------------------------------------------------------------------------
# worker: one implementation, one (T, B), one phase, in its own process
# --------------------------------------------------------------------------------------


def _build(spec: dict):
    import torch

    if spec["impl"] == "ours":
        from titans_ts.memory import MemoryConfig, NeuralMemory

        extra = {"executor": spec["executor"]} if spec.get("executor") else {}
        cfg = MemoryConfig(
            d_model=spec["d_model"],
            n_heads=spec["heads"],
            head_dim=spec["head_dim"],
            depth=spec["depth"],
            hidden_mult=spec["hidden_mult"],
            chunk_size=spec["chunk_size"],
            **extra,
        )
        mem = NeuralMemory(cfg)
    else:
        from titans_pytorch import NeuralMemory

        kwargs = {}
        if (spec["depth"], spec["hidden_mult"]) != (2, 4):  # its default MLP is depth 2, x4
            kwargs["default_model_kwargs"] = {
                "depth": spec["depth"],
                "expansion_factor": float(spec["hidden_mult"]),
            }
        mem = NeuralMemory(
            dim=spec["d_model"],
            chunk_size=spec["chunk_size"],
            heads=spec["heads"],
            dim_head=spec["head_dim"],
            **kwargs,
        )
    return mem.to(dtype=torch.float32)


def _own_cpu_s() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _own_sys_s() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def _cpu_busy_s() -> float | None:
    """Seconds of CPU time spent by the whole machine (all cores, all processes) so far."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _worker(spec: dict) -> dict:
    import resource

    import torch

    def rss_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    mem = _build(spec)
    batch, seq_len = spec["batch"], spec["seq_len"]
    x = torch.randn(batch, seq_len, spec["d_model"], dtype=torch.float32)
    phase = spec["phase"]
    rss_setup = rss_mb()

    def step() -> torch.Tensor:
        if phase == "fwd":
            with torch.no_grad():
                y = mem(x)[0]
        elif phase == "fwd_autograd":
            y = mem(x)[0]
        else:
            mem.zero_grad(set_to_none=True)
            y = mem(x)[0]
            y.square().mean().backward()
        return y

    for _ in range(spec["warmup"]):
        step()
    times = []
    y = None
    busy0, own0, wall0 = _cpu_busy_s(), _own_cpu_s(), time.perf_counter()
    sys0 = _own_sys_s()
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(spec["repeats"]):
        y = None  # drop the previous output (and its autograd graph) before the next step
        t0 = time.perf_counter()
        y = step()
        times.append(time.perf_counter() - t0)
    busy1, own1, wall1 = _cpu_busy_s(), _own_cpu_s(), time.perf_counter()
    sys1 = _own_sys_s()
    faults1 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    # cores kept busy by *other* processes while we were timing (0 = machine to ourselves)
    others = None
    if busy0 is not None and busy1 is not None:
        others = max(0.0, ((busy1 - busy0) - (own1 - own0)) / (wall1 - wall0))
    median = statistics.median(times)
    out = {
        "impl": spec["impl"],
        "phase": phase,
        "seq_len": seq_len,
        "batch": batch,
        "tokens_per_s": batch * seq_len / median,
        "best_tokens_per_s": batch * seq_len / min(times),
        "median_s": median,
        "min_s": min(times),
        "times_s": times,
        "peak_rss_mb": rss_mb(),
        "rss_setup_mb": rss_setup,
        "out_shape": list(y.shape),
        "out_finite": bool(torch.isfinite(y).all()),
        "n_params": sum(p.numel() for p in mem.parameters()),
        "torch": torch.__version__,
        "torch_file": torch.__file__,
        "threads": torch.get_num_threads(),
        "other_busy_cores": others,
        "own_cpu_cores": (own1 - own0) / (wall1 - wall0),
        # kernel time (page faults of large fresh allocations show up here)
        "own_sys_cores": (sys1 - sys0) / (wall1 - wall0),
        # minor page faults of the timed steps per token: memory the allocator handed back
        # to the kernel and had to fault in again (see --glibc-keep-freed)
        "minor_faults_per_token": (faults1 - faults0) / (spec["repeats"] * batch * seq_len),
        "python": sys.executable,
    }
    if phase == "fwdbwd":
        out["params_with_grad"] = sum(p.grad is not None for p in mem.parameters())
        out["params_total"] = sum(1 for _ in mem.parameters())
    return out


# --------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------


def _setup_port_env(env_dir: Path) -> None:
    from importlib.metadata import version

    torch_version = version("torch").split("+")[0]
    py = env_dir / "bin" / "python"
    if not py.exists():
        cmd = [sys.executable, "-m", "venv", "--system-site-packages", str(env_dir)]
        print("+", " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True, stdout=sys.stderr)
    cmd = [str(env_dir / "bin" / "pip"), "install", PORT_SPEC, f"torch=={torch_version}"]
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    probe = "import torch, titans_pytorch; print(torch.__version__, torch.__file__)"
    got = subprocess.run([str(py), "-c", probe], check=True, capture_output=True, text=True)
    print("port env torch:", got.stdout.strip(), file=sys.stderr)
    if str(env_dir.resolve()) in got.stdout:
        print(
            "WARNING: the port's venv has its own torch; timings are not comparable",
            file=sys.stderr,
        )


#: glibc settings of ``--glibc-keep-freed``: every allocation from the heap (no mmap, which
#: glibc uses for blocks of 32 MiB and more whatever the threshold) and freed memory kept
GLIBC_KEEP_FREED = {
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": "4294967296",
    "MALLOC_TOP_PAD_": "268435456",
}


def _run_one(python: str, spec: dict, timeout: float, extra_env: dict | None = None) -> dict:
    env = dict(os.environ)
    env.update(extra_env or {})
    if spec["impl"] == "ours":
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
    cmd = [python, str(Path(__file__).resolve()), "--_worker", json.dumps(spec)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO_ROOT
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    except OSError as exc:
        return {"error": f"cannot start {python}: {exc}"}
    wall = time.perf_counter() - t0
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            res = json.loads(line)
            res["process_wall_s"] = wall
            return res
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    why = f"exit {proc.returncode}" if proc.returncode >= 0 else f"signal {-proc.returncode}"
    return {"error": f"{why}: " + " | ".join(tail)}


def _parse_configs(args) -> list[tuple[int, int]]:
    if args.issue:
        text = ISSUE_CONFIGS
    elif args.configs:
        text = args.configs
    else:
        return [(t, b) for b in args.batch for t in args.seq_lens]
    out = []
    for item in text.split(","):
        t, b = item.lower().split("x")
        out.append((int(t), int(b)))
    return out


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--_worker", help=argparse.SUPPRESS)
    ap.add_argument(
        "--setup",
        action="store_true",
        help=f"create the port's venv and pip install {PORT_SPEC} into it first",
    )
    ap.add_argument(
        "--port-python",
        default=str(DEFAULT_PORT_ENV / "bin" / "python"),
        help="interpreter that has titans-pytorch installed (default: %(default)s)",
    )
    ap.add_argument("--impls", default="ours,port", help="comma list of ours,port")
    ap.add_argument("--seq-lens", type=int, nargs="+", default=[2048, 4096, 8192, 16384, 32768])
    ap.add_argument(
        "--batch",
        type=int,
        nargs="+",
        default=[4],
        help="batch sizes (cross product with --seq-lens)",
    )
    ap.add_argument(
        "--configs", help="explicit TxB list, e.g. 2048x4,32768x1 (overrides --seq-lens/--batch)"
    )
    ap.add_argument(
        "--issue", action="store_true", help=f"the issue's configurations: {ISSUE_CONFIGS}"
    )
    ap.add_argument("--phases", default=",".join(PHASES), help="comma list of " + ",".join(PHASES))
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument(
        "--glibc-keep-freed",
        action="store_true",
        help="run both sides with " + " ".join(f"{k}={v}" for k, v in GLIBC_KEEP_FREED.items())
        + " (no per-step page faults; the README's CPU tip)",
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--rounds", type=int, default=1,
        help="run each (ours, port) pair this many times back to back; the tables show the "
        "median over rounds and the median of the per-round ratios (robust on a noisy machine)",
    )
    add_shape_args(ap)
    ap.add_argument("--executor", default=None, help="our MemoryConfig.executor (default: its own)")
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch.set_num_threads in the workers (0: leave torch's default)",
    )
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per subprocess")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    args = ap.parse_args(argv)

    if args._worker:
        print(json.dumps(_worker(json.loads(args._worker))), flush=True)
        return 0

    if args.rounds < 1:
        ap.error("--rounds must be >= 1")
    impls = [i for i in args.impls.split(",") if i]
    phases = [p for p in args.phases.split(",") if p]
    for bad in set(impls) - set(IMPLS):
        ap.error(f"unknown impl {bad!r}")
    for bad in set(phases) - set(PHASES):
        ap.error(f"unknown phase {bad!r}")
    if args.setup:
        _setup_port_env(Path(args.port_python).parent.parent)
    python_of = {"ours": sys.executable, "port": args.port_python}
    configs = _parse_configs(args)

    rows = []
    for seq_len, batch in configs:
        row = {"seq_len": seq_len, "batch": batch}
        for impl in impls:
            row[impl] = {}
        for phase in phases:
            per_round: dict[str, list[float]] = {impl: [] for impl in impls}
            for _round in range(args.rounds):
                for impl in impls:  # alternate sides so that background load hits both alike
                    spec = {
                        "impl": impl,
                        "phase": phase,
                        "seq_len": seq_len,
                        "batch": batch,
                        "d_model": args.d_model,
                        "heads": args.heads,
                        "head_dim": args.head_dim,
                        "depth": args.depth,
                        "hidden_mult": args.hidden_mult,
                        "chunk_size": args.chunk_size,
                        "executor": args.executor,
                        "warmup": args.warmup,
                        "repeats": args.repeats,
                        "threads": args.threads,
                    }
                    res = _run_one(
                        python_of[impl], spec, args.timeout,
                        GLIBC_KEEP_FREED if args.glibc_keep_freed else None,
                    )
                    side = row[impl]
                    if "error" in res:
                        side[f"{phase}_error"] = res["error"]
                        tag = f"[{impl} T={seq_len} B={batch} {phase}]"
                        print(f"{tag} {res['error']}", file=sys.stderr)
                        continue
                    per_round[impl].append(res["tokens_per_s"])
                    side[f"{phase}_round_tokens_per_s"] = list(per_round[impl])
                    side[f"{phase}_tokens_per_s"] = statistics.median(per_round[impl])
                    # over rounds: the best step, the highest peak; times of the last round
                    best = side.get(f"{phase}_best_tokens_per_s", 0.0)
                    side[f"{phase}_best_tokens_per_s"] = max(best, res["best_tokens_per_s"])
                    side[f"{phase}_times_s"] = res["times_s"]
                    peak = max(side.get(f"{phase}_peak_rss_mb", 0.0), res["peak_rss_mb"])
                    growth = res["peak_rss_mb"] - res["rss_setup_mb"]
                    side[f"{phase}_peak_rss_mb"] = peak
                    side[f"{phase}_rss_growth_mb"] = max(
                        side.get(f"{phase}_rss_growth_mb", growth), growth
                    )
                    side[f"{phase}_out_finite"] = res["out_finite"]
                    side[f"{phase}_other_busy_cores"] = res["other_busy_cores"]
                    side[f"{phase}_own_cpu_cores"] = res["own_cpu_cores"]
                    side[f"{phase}_own_sys_cores"] = res["own_sys_cores"]
                    side[f"{phase}_minor_faults_per_token"] = res["minor_faults_per_token"]
                    for key in ("torch", "threads", "n_params", "params_with_grad", "params_total"):
                        if key in res:
                            side[key] = res[key]
                    print(
                        f"[{impl} T={seq_len} B={batch} {phase}] {res['tokens_per_s']:,.0f} tok/s"
                        f"  peak {res['peak_rss_mb']:,.0f} MB"
                        f"  {res['minor_faults_per_token']:.2f} faults/token"
                        f"  ({res['process_wall_s']:.0f} s,"
                        f" others busy {_fmt(res['other_busy_cores'], '.2f')} cores)",
                        file=sys.stderr,
                    )
        if "ours" in row and "port" in row:
            for phase in PHASES:
                key = f"{phase}_tokens_per_s"
                row[f"{phase}_speedup"] = _ratio(row["ours"].get(key), row["port"].get(key))
                pairs = zip(
                    row["ours"].get(f"{phase}_round_tokens_per_s", []),
                    row["port"].get(f"{phase}_round_tokens_per_s", []),
                )
                ratios = [a / b for a, b in pairs if b]
                if ratios:  # each round's ours/port, measured back to back
                    row[f"{phase}_round_speedups"] = ratios
                    row[f"{phase}_paired_speedup"] = statistics.median(ratios)
            for phase in ("fwd", "fwdbwd"):
                for what in ("peak_rss_mb", "rss_growth_mb"):
                    key = f"{phase}_{what}"
                    row[f"{key}_ours_over_port"] = _ratio(
                        row["ours"].get(key), row["port"].get(key)
                    )
        rows.append(row)
        if args.json:
            print(json.dumps(row), flush=True)

    # flatness: tokens/s at the longest T over the shortest T, per batch size and side
    summary = {"summary": True, "glibc_keep_freed": args.glibc_keep_freed, "flatness": {}}
    for batch in sorted({b for _, b in configs}):
        lens = sorted(r["seq_len"] for r in rows if r["batch"] == batch)
        if len(lens) < 2:
            continue
        lo = next(r for r in rows if r["batch"] == batch and r["seq_len"] == lens[0])
        hi = next(r for r in rows if r["batch"] == batch and r["seq_len"] == lens[-1])
        for impl in impls:
            for phase in phases:
                key = f"{phase}_tokens_per_s"
                r = _ratio(hi[impl].get(key), lo[impl].get(key))
                if r is not None:
                    summary["flatness"][f"{impl}_{phase}_B{batch}_T{lens[-1]}_over_T{lens[0]}"] = r
    if args.json:
        print(json.dumps(summary), flush=True)
        return 0

    _print_table(rows, impls, phases)
    print("ours/port: > 1 means ours is faster (tok/s rows), < 1 means ours uses less (MB rows);")
    print("'+MB' is the peak RSS minus the RSS right after building the model and the input.")
    if summary["flatness"]:
        print("\nthroughput at the longest T / at the shortest T (1.0 = flat):")
        for key, val in summary["flatness"].items():
            print(f"  {key:<44} {val:6.2f}")
    return 0


def _print_table(rows: list[dict], impls: list[str], phases: list[str]) -> None:
    both = impls == ["ours", "port"] or impls == ["port", "ours"]
    names = {"fwd": "fwd no-grad", "fwd_autograd": "fwd autograd", "fwdbwd": "fwd+bwd"}
    head = f"{'T':>6} {'B':>2}  {'measure':<22}"
    head += "".join(f"{i:>12}" for i in impls) + (f"{'ours/port':>11}" if both else "")
    print(head)
    print("-" * len(head))
    for row in rows:
        lines = []
        for phase in phases:
            lines.append((phase, f"{names[phase]} tok/s", f"{phase}_tokens_per_s"))
            lines.append((phase, f"{names[phase]} best tok/s", f"{phase}_best_tokens_per_s"))
        for phase in ("fwd", "fwdbwd"):
            if phase in phases:
                lines.append((phase, f"{names[phase]} peak MB", f"{phase}_peak_rss_mb"))
                lines.append((phase, f"{names[phase]} +MB", f"{phase}_rss_growth_mb"))
        for phase, label, key in lines:
            text = f"{row['seq_len']:>6} {row['batch']:>2}  {label:<22}"
            for impl in impls:
                v = row[impl].get(key)
                failed = f"{phase}_error" in row[impl]
                text += f"{'ERR' if failed else _fmt(v, ',.0f'):>12}"
            if both:
                r = _ratio(row["ours"].get(key), row["port"].get(key))
                text += f"{_fmt(r, '.2f'):>11}"
            print(text)
        for phase in phases:
            ratios = row.get(f"{phase}_round_speedups")
            if ratios and len(ratios) > 1:
                each = ", ".join(f"{r:.2f}" for r in ratios)
                print(
                    f"{row['seq_len']:>6} {row['batch']:>2}  {names[phase]} ours/port per round:"
                    f" {each}; median {row[f'{phase}_paired_speedup']:.2f}"
                )
        loads = [
            max(
                (v for k, v in row[i].items() if k.endswith("_other_busy_cores") and v is not None),
                default=None,
            )
            for i in impls
        ]
        text = f"{row['seq_len']:>6} {row['batch']:>2}  {'others busy (cores)':<22}"
        print(text + "".join(f"{_fmt(v, '.2f'):>12}" for v in loads))
        for impl in impls:
            for key, val in row[impl].items():
                if key.endswith("_error"):
                    print(f"{'':>10}{impl} {key[:-6]}: {val}")
                if key.endswith("_out_finite") and not val:
                    print(f"{'':>10}{impl} {key[:-11]}: output has NaN/inf")
        print()


if __name__ == "__main__":
    sys.exit(main())
