"""Fused Triton executor == chunked executor: outputs, state and gradients of every input.

Two modes, chosen by ``TITANS_TS_TRITON_DEVICE``:

- ``cpu`` (default): the kernels run on CPU tensors under the Triton interpreter
  (``TRITON_INTERPRET=1`` is set here, before anything imports the kernels). Tiny shapes:
  the interpreter executes every tile operation in NumPy.
- ``cuda``: the compiled kernels run on the GPU (``benchmarks/gpu_check.sh``); the same
  comparisons, with the chunked executor on the GPU as the oracle.

Every test that claims Triton ran checks the kernel launch counter, so a silent fallback
to another executor fails the test.
"""

from __future__ import annotations

import os

DEVICE = os.environ.get("TITANS_TS_TRITON_DEVICE", "cpu")
if DEVICE == "cpu":
    # must happen before triton's @jit decorates the kernels (they import lazily)
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from _harness import (  # noqa: E402
    NAMES,
    Problem,
    assert_close,
    grads,
    make_problem,
    probe_loss,
)

from titans_ts.memory import MemoryRunState, run_memory, select_executor  # noqa: E402
from titans_ts.memory import triton as memory_triton  # noqa: E402
from titans_ts.memory.chunked import chunked_run_memory  # noqa: E402

_ok, _why = memory_triton.triton_available()
if not _ok:
    pytest.skip(f"Triton executor tests need triton: {_why}", allow_module_level=True)
if DEVICE == "cuda" and not torch.cuda.is_available():
    pytest.skip("TITANS_TS_TRITON_DEVICE=cuda but CUDA is not available", allow_module_level=True)
if DEVICE not in ("cpu", "cuda"):
    pytest.skip(
        f"TITANS_TS_TRITON_DEVICE={DEVICE!r}: expected 'cpu' or 'cuda'", allow_module_level=True
    )

from titans_ts.memory.triton import fused_chunk  # noqa: E402

if DEVICE == "cpu" and not fused_chunk.INTERPRETER:
    pytest.skip(
        "the Triton kernels were imported without TRITON_INTERPRET=1 and cannot run on CPU",
        allow_module_level=True,
    )

# float32 everywhere; the chunked executor is float32 too, so this is round-off only.
RTOL = 1e-4


def on_device(problem: Problem) -> Problem:
    """The same problem with fresh leaf tensors on the test device."""
    def mv(x: torch.Tensor) -> torch.Tensor:
        return x.detach().to(DEVICE).requires_grad_(x.requires_grad)

    return Problem(*[mv(x) for x in (problem.q, problem.k, problem.v, problem.theta,
                                     problem.eta, problem.alpha)],
                   [mv(w) for w in problem.weights])


def problem32(**kwargs: object) -> Problem:
    return on_device(make_problem(dtype=torch.float32, **kwargs))


class Launches:
    """Context manager: asserts the Triton kernels were launched inside the block."""

    def __init__(self, forward: int = 1, backward: int = 0) -> None:
        self.want = {"forward": forward, "backward": backward}

    def __enter__(self) -> Launches:
        self.before = memory_triton.launch_counts()
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            return
        after = memory_triton.launch_counts()
        for kind, want in self.want.items():
            got = sum(
                n - self.before.get(name, 0) for name, n in after.items() if name.startswith(kind)
            )
            assert got >= want, f"expected >= {want} {kind} kernel launches, saw {got}"


def split_run(problem: Problem, splits: list[int], executor: str, **kwargs: object):
    """Run the stream in pieces cut at ``splits`` carrying the state; concatenated output."""
    T = problem.q.shape[2]
    edges = [0, *splits, T]
    state, ys = None, []
    for a, b in zip(edges[:-1], edges[1:]):
        p = problem.sliced(a, b)
        y, state = run_memory(
            p.q, p.k, p.v, p.theta, p.eta, p.alpha, p.weights,
            executor=executor, state=state, **kwargs,
        )
        ys.append(y)
    return torch.cat(ys, dim=2), state


def assert_match(
    problem: Problem, splits: list[int] | None = None, executor: str = "triton",
    **kwargs: object,
) -> None:
    """Triton (named, or chosen by ``executor="auto"``) vs chunked on the same stream
    (optionally cut into pieces): outputs, final state (incl. open-chunk start weights) and
    gradients of every input."""
    splits = splits or []
    with Launches(forward=1 + len(splits), backward=1 + len(splits)):
        y1, s1 = split_run(problem, splits, executor, **kwargs)
        g1 = grads(problem, y1, s1)
    y0, s0 = split_run(problem, splits, "chunked", **kwargs)
    g0 = grads(problem, y0, s0)
    assert y1.dtype == problem.q.dtype and y1.device == problem.q.device
    assert s1.position == s0.position
    assert (s1.grad_weights is None) == (s0.grad_weights is None)
    assert_close("y", y1, y0, RTOL)
    for i, (a, b) in enumerate(zip(s1.weights, s0.weights)):
        assert_close(f"state.weights[{i}]", a, b, RTOL)
    for i, (a, b) in enumerate(zip(s1.momentum, s0.momentum)):
        assert_close(f"state.momentum[{i}]", a, b, RTOL)
    if s0.grad_weights is not None:
        for i, (a, b) in enumerate(zip(s1.grad_weights, s0.grad_weights)):
            assert_close(f"state.grad_weights[{i}]", a, b, RTOL)
    names = NAMES + [f"weights[{i}]" for i in range(len(problem.weights))]
    for name, a, b in zip(names, g1, g0):
        assert_close(f"d/d{name}", a, b, RTOL)


@pytest.mark.parametrize("depth", [1, 2], ids=lambda d: f"depth{d}")
@pytest.mark.parametrize("chunk", [5, 8, 16], ids=lambda c: f"b{c}")
def test_matches_chunked(depth: int, chunk: int) -> None:
    """Several chunk sizes, incl. one that is not a power of two and a partial last chunk."""
    problem = problem32(B=2, H=2, T=29, d=16, depth=depth, mult=2, seed=10 * depth + chunk)
    assert_match(problem, chunk_size=chunk)


@pytest.mark.parametrize("depth", [1, 2], ids=lambda d: f"depth{d}")
@pytest.mark.parametrize(
    "momentum,forgetting", [(False, False), (True, False), (False, True)],
    ids=["no-momentum-no-forget", "momentum-only", "forget-only"],
)
def test_gates_switched_off(depth: int, momentum: bool, forgetting: bool) -> None:
    """eta = 0 and alpha = 0 exactly: zero products must not produce NaN or wrong grads."""
    problem = problem32(B=1, H=2, T=19, d=16, depth=depth, mult=2, seed=7,
                        momentum=momentum, forgetting=forgetting)
    assert_match(problem, chunk_size=8)


@pytest.mark.parametrize(
    "activation,residual", [("silu", True), ("tanh", False), ("relu", False)],
    ids=["silu-residual", "tanh", "relu"],
)
def test_activations_and_residual(activation: str, residual: bool) -> None:
    problem = problem32(B=1, H=1, T=21, d=16, depth=2, mult=4, seed=13)
    assert_match(problem, chunk_size=8, activation=activation, residual=residual)


def test_residual_depth1_and_odd_head_width() -> None:
    """d = 12 (padded to a 16-wide block) and a residual linear memory."""
    problem = problem32(B=1, H=2, T=18, d=12, depth=1, seed=17)
    assert_match(problem, chunk_size=8, residual=True)


@pytest.mark.parametrize("depth", [1, 2], ids=lambda d: f"depth{d}")
@pytest.mark.parametrize("splits", [[3, 13], [8, 16]], ids=["mid-chunk", "aligned"])
def test_streaming_state(depth: int, splits: list[int]) -> None:
    """Pieces with a carried state (resume mid-chunk with grad_weights, or on boundaries),
    gradients flowing through the carried state into earlier pieces."""
    problem = problem32(B=1, H=2, T=27, d=16, depth=depth, mult=2, seed=31 + depth)
    assert_match(problem, splits=splits, chunk_size=8)


def test_streaming_equals_one_call() -> None:
    """Triton in three pieces equals Triton in one call (any split point, state carried)."""
    problem = problem32(B=1, H=1, T=23, d=16, depth=2, mult=2, seed=5, requires_grad=False)
    with Launches(forward=4):
        y_full, s_full = split_run(problem, [], "triton", chunk_size=8)
        y, s = split_run(problem, [2, 11, 19], "triton", chunk_size=8)
    assert_close("y", y, y_full, RTOL)
    for a, b in zip(s.weights + s.momentum, s_full.weights + s_full.momentum):
        assert_close("state", a, b, RTOL)
    assert s.position == 23 and s.grad_weights is not None


def test_hidden_tiles_and_partial_tile() -> None:
    """Hidden width 40 in tiles of 16 (two full tiles and a partial one), d = 20 masked in
    a 32-wide block: the tile loops and masks of the depth-2 kernels."""
    p = make_problem(B=1, H=2, T=19, d=20, depth=2, mult=2, dtype=torch.float32, seed=41)
    p = on_device(p)
    ws = [w.detach().unsqueeze(0) for w in p.weights]
    st = MemoryRunState(  # resumed 3 tokens into a chunk, with its own start weights
        weights=[w.clone().requires_grad_() for w in ws],
        momentum=[(0.01 * torch.ones_like(w)).requires_grad_() for w in ws],
        grad_weights=[(1.1 * w).requires_grad_() for w in ws],
        position=3,
    )
    args = (p.q, p.k, p.v, p.theta, p.eta, p.alpha, p.weights)
    leaves = [p.q, p.k, p.v, p.theta, p.eta, p.alpha, *st.weights, *st.momentum, *st.grad_weights]
    with Launches(forward=1, backward=1):
        y1, s1 = fused_chunk.fused_chunk_run_memory(*args, chunk_size=8, state=st, block_hidden=16)
        g1 = torch.autograd.grad(probe_loss(y1, s1), leaves)
    y0, s0 = chunked_run_memory(*args, chunk_size=8, state=st)
    g0 = torch.autograd.grad(probe_loss(y0, s0), leaves)
    assert_close("y", y1, y0, RTOL)
    for i, (a, b) in enumerate(zip(g1, g0)):
        assert_close(f"grad[{i}]", a, b, RTOL)


def test_bfloat16_inputs() -> None:
    """bf16 in, bf16 out (float32 accumulation inside), gradients in bf16."""
    p32 = make_problem(B=1, H=2, T=20, d=16, depth=2, mult=2, dtype=torch.float32, seed=9)
    p = on_device(p32)
    p = Problem(*[x.detach().to(torch.bfloat16).requires_grad_() for x in
                  (p.q, p.k, p.v, p.theta, p.eta, p.alpha)],
                [w.detach().to(torch.bfloat16).requires_grad_() for w in p.weights])
    with Launches(forward=1, backward=1):
        y1, s1 = split_run(p, [], "triton", chunk_size=8)
        g1 = grads(p, y1, s1)
    y0, s0 = split_run(p, [], "chunked", chunk_size=8)
    g0 = grads(p, y0, s0)
    assert y1.dtype == torch.bfloat16
    assert s1.weights[0].dtype == torch.float32  # state stays in the accumulation dtype
    assert_close("y", y1.float(), y0.float(), 1e-2)
    for name, a, b in zip(NAMES + ["weights[0]", "weights[1]"], g1, g0):
        assert a.dtype == torch.bfloat16
        assert_close(f"d/d{name}", a.float(), b.float(), 2e-2)


def test_inference_path_without_autograd(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under no_grad the forward keeps two state slots instead of one per chunk."""
    problem = problem32(B=2, H=1, T=26, d=16, depth=2, mult=2, seed=3)
    slots: list[int] = []
    original = fused_chunk._memory_fwd

    def spy(*args: object, **kwargs: object):
        out = original(*args, **kwargs)
        slots.append(out[1][0].shape[1])
        return out

    monkeypatch.setattr(fused_chunk, "_memory_fwd", spy)
    with torch.no_grad(), Launches(forward=1):
        y1, s1 = split_run(problem, [], "triton", chunk_size=8)
    split_run(problem, [], "triton", chunk_size=8)
    assert slots == [2, 4 + 1]  # 26 tokens in chunks of 8: 4 chunks, 5 boundary states
    y0, s0 = split_run(problem, [], "chunked", chunk_size=8)
    assert_close("y", y1, y0, RTOL)
    for a, b in zip(s1.weights + s1.momentum, s0.weights + s0.momentum):
        assert_close("state", a, b, RTOL)


def test_supports_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    q = torch.zeros(1, 2, 4, 16, device=DEVICE)
    w2 = [torch.zeros(2, 64, 16), torch.zeros(2, 16, 64)]
    ok, why = memory_triton.supports(q, w2, chunk_size=64)
    assert ok, why
    ok, why = memory_triton.supports(q.bfloat16(), w2)
    assert ok, why
    cases = [
        (q.double(), w2, None, "float64"),
        (q, [torch.zeros(2, 32, 16), torch.zeros(2, 32, 32), torch.zeros(2, 16, 32)], None,
         "depth 3"),
        (torch.zeros(1, 2, 4, 256, device=DEVICE), [torch.zeros(2, 256, 256)], None, "d=256"),
        (q, [torch.zeros(2, 128, 16), torch.zeros(2, 16, 128)], None, "hidden width 128"),
        (q, w2, 128, "chunk_size=128"),
        (torch.zeros(1, 2, 4, 128, device=DEVICE),
         [torch.zeros(2, 256, 128), torch.zeros(2, 128, 256)], None, "for depth 2"),
        (torch.zeros(1, 2, 4, 16, device="meta"), w2, None, "inputs on meta"),
    ]
    q64 = torch.zeros(1, 2, 4, 64, device=DEVICE)
    w64 = [torch.zeros(2, 256, 64), torch.zeros(2, 64, 256)]
    assert memory_triton.supports(q64, w64, 64)[0]  # the standard shape, with gradients too
    for qq, ww, chunk, needle in cases:
        ok, why = memory_triton.supports(qq, ww, chunk_size=chunk)
        assert not ok and needle in why, (needle, why)
    monkeypatch.setattr(memory_triton, "triton_available", lambda: (False, "no triton here"))
    assert memory_triton.supports(q, w2) == (False, "no triton here")


def test_auto_executor_choice() -> None:
    q = torch.zeros(1, 2, 4, 16, device=DEVICE)
    w = [torch.zeros(2, 32, 16), torch.zeros(2, 16, 32)]
    name, why = select_executor("auto", q, w)
    if DEVICE == "cuda":
        assert name == "triton", why
    else:
        assert name == "chunked" and "CUDA" in why


def test_unsupported_problems_raise_instead_of_falling_back() -> None:
    p = problem32(B=1, H=1, T=6, d=8, depth=3, mult=2, seed=1, requires_grad=False)
    with pytest.raises(ValueError, match="depth"):
        split_run(p, [], "triton", chunk_size=4)
    p = problem32(B=1, H=1, T=6, d=8, depth=1, seed=1, requires_grad=False)
    with pytest.raises(ValueError, match="chunk_size"):
        split_run(p, [], "triton", chunk_size=128)
    p64 = on_device(make_problem(B=1, H=1, T=6, d=8, depth=1, seed=1, requires_grad=False))
    with pytest.raises(TypeError, match="float32"):
        split_run(p64, [], "triton", chunk_size=4)
    wide = problem32(B=1, H=1, T=6, d=80, depth=2, mult=1, seed=1, requires_grad=False)
    with pytest.raises(ValueError, match="depth-2"):
        split_run(wide, [], "triton", chunk_size=4)


# ---------------------------------------------------------------------------- clipping


def _tau_clipping_some(problem: Problem, chunk: int, residual: bool = False) -> float:
    """A ``max_grad_norm`` that clips some of the first chunk's tokens but not all."""
    from test_clipping import _mixed_tau

    cpu = Problem(*[x.detach().cpu().double() for x in (problem.q, problem.k, problem.v,
                                                         problem.theta, problem.eta,
                                                         problem.alpha)],
                  [w.detach().cpu().double() for w in problem.weights])
    return _mixed_tau(cpu, chunk, residual)


@pytest.mark.parametrize(
    "depth,activation,residual,splits",
    [(1, "gelu", False, []), (1, "gelu", True, [5]), (2, "gelu", False, []),
     (2, "silu", True, []), (2, "gelu", False, [3, 13])],
    ids=["depth1", "depth1-residual-split", "depth2", "depth2-silu-residual",
         "depth2-mid-chunk-splits"],
)
def test_clipping_matches_chunked(
    depth: int, activation: str, residual: bool, splits: list[int]
) -> None:
    """Per-token gradient clipping (``max_grad_norm``) in the kernels, forward and backward
    (the factor is differentiated), against the chunked executor, with a bound that clips
    some tokens and not others; the clipped run must differ from the unclipped one."""
    problem = problem32(B=1, H=2, T=21, d=16, depth=depth, mult=2, seed=61 + depth)
    tau = _tau_clipping_some(problem, 8, residual)
    kw = dict(chunk_size=8, activation=activation, residual=residual)
    assert_match(problem, splits=splits, max_grad_norm=tau, **kw)
    with torch.no_grad():
        y_clip, _ = split_run(problem, splits, "triton", max_grad_norm=tau, **kw)
        y_plain, _ = split_run(problem, splits, "triton", **kw)
    assert (y_clip - y_plain).abs().max().item() > 1e-3


# ---------------------------------------------------------------------- shared memory


def test_shared_memory_check_message() -> None:
    """The pre-launch check names the kernel, both sizes and the way out."""
    from titans_ts.memory.triton.gates import ChunkLayout

    plan = fused_chunk._Plan([(256, 64), (64, 256)], 64, ChunkLayout.build(0, 128, 64),
                             "gelu", False, False, "ieee", max_grad_norm=1.0)
    fused_chunk.check_shared_memory(plan, {"forward": 98_304, "backward": 147_456}, 232_448,
                                    "an H100")
    want = r"backward kernel .* 144 KiB .* allows 99 KiB; use executor='chunked'"
    with pytest.raises(memory_triton.SharedMemoryError, match=want):
        fused_chunk.check_shared_memory(plan, {"forward": 98_304, "backward": 147_456},
                                        101_376, "a GPU")


def test_auto_falls_back_when_the_kernels_do_not_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    """executor='auto' on a GPU whose shared memory is too small: a warning and the chunked
    executor's result. An explicit executor='triton' skips the check (its launch fails as
    Triton's own error); the executor with preflight=True raises."""
    import titans_ts.memory.run as run_module

    def too_small(plan: object, device: object) -> None:
        raise memory_triton.SharedMemoryError("the Triton forward kernel needs 144 KiB ...")

    monkeypatch.setattr(fused_chunk, "_check_device", too_small)
    monkeypatch.setattr(run_module, "select_executor", lambda *a, **k: ("triton", "test"))
    p = problem32(B=1, H=2, T=11, d=16, depth=2, mult=2, seed=3, requires_grad=False)
    with pytest.warns(RuntimeWarning, match="runs 'chunked'"):
        y, _ = split_run(p, [], "auto", chunk_size=4, max_grad_norm=1.0)
    y0, _ = chunked_run_memory(p.q, p.k, p.v, p.theta, p.eta, p.alpha, p.weights,
                               chunk_size=4, max_grad_norm=1.0)
    assert torch.equal(y, y0)
    with Launches(forward=1):
        split_run(p, [], "triton", chunk_size=4)
    with pytest.raises(memory_triton.SharedMemoryError):
        memory_triton.triton_run_memory(p.q, p.k, p.v, p.theta, p.eta, p.alpha, p.weights,
                                        chunk_size=4, preflight=True)


@pytest.mark.skipif(DEVICE != "cuda", reason="the real pre-launch check needs a CUDA card")
def test_auto_at_the_library_shape_on_this_card() -> None:
    """The library's own memory shape (d 64, depth 2, hidden 256, chunk 64, per-token
    clipping at the default bound 1.0) through ``executor="auto"`` on the card: the
    pre-launch shared-memory check passes (no fallback warning), both kernels launch, and
    outputs, state and every gradient equal the chunked executor's. A mid-chunk split
    carries the state through a partial chunk."""
    import warnings

    problem = problem32(B=2, H=2, T=150, d=64, depth=2, mult=4, seed=71)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert_match(problem, splits=[100], executor="auto", chunk_size=64, max_grad_norm=1.0)


def test_device_shared_memory_limit_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """The card's per-block limit comes from PyTorch's device properties, else from Triton's
    driver query (a GPU run found ``triton.compiler.max_shared_mem`` gone in Triton 3.6)."""
    import types

    import triton.runtime

    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda i: types.SimpleNamespace(shared_memory_per_block_optin=232_448))
    assert fused_chunk.device_shared_memory_limit(0) == 232_448
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: types.SimpleNamespace())
    utils = types.SimpleNamespace(get_device_properties=lambda i: {"max_shared_mem": 101_376})
    monkeypatch.setattr(triton.runtime, "driver",
                        types.SimpleNamespace(active=types.SimpleNamespace(utils=utils)))
    assert fused_chunk.device_shared_memory_limit(0) == 101_376
