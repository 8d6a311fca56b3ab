"""The compiled CPU kernels (``titans_ts/memory/csrc``) against the Python code they replace.

The chunked executor has two implementations of its per-chunk step (Python and the C++
build of the same op sequence) and the causal convolution two of its sum. Everything else
in the suite runs with whichever is active (the compiled one where it builds); here both are
run side by side, and the Python step is also checked against the token oracle, since it
stays the path for CUDA tensors and machines without a compiler.
"""

from __future__ import annotations

import shutil

import pytest
import torch
from _harness import assert_close, assert_runs_match, grads, make_problem, run

from titans_ts.memory import chunked, cpu_kernels
from titans_ts.memory.conv import causal_depthwise_conv

HAVE_COMPILER = shutil.which("c++") is not None or shutil.which("g++") is not None



needs_kernels = pytest.mark.skipif(
    not HAVE_COMPILER, reason="no C++ compiler: the compiled kernels cannot be built here"
)


@needs_kernels
def test_kernels_build_where_a_compiler_exists(monkeypatch):
    monkeypatch.setenv(cpu_kernels.ENV_VAR, "1")
    usable, why = cpu_kernels.status()
    assert usable, f"the compiled CPU kernels did not build: {why}"


def test_disabled_by_environment(monkeypatch):
    monkeypatch.setenv(cpu_kernels.ENV_VAR, "0")
    assert cpu_kernels.load() is None
    assert cpu_kernels.status() == (False, f"disabled by {cpu_kernels.ENV_VAR}=0")


def test_bad_environment_value_is_an_error(monkeypatch):
    monkeypatch.setenv(cpu_kernels.ENV_VAR, "yes please")
    with pytest.raises(ValueError, match="0, 1 or require"):
        cpu_kernels.load()


def _both(monkeypatch, fn):
    """``fn()`` with the Python step and with the compiled step."""
    monkeypatch.setenv(cpu_kernels.ENV_VAR, "0")
    python = fn()
    monkeypatch.setenv(cpu_kernels.ENV_VAR, "require")
    compiled = fn()
    return python, compiled


def _random_chunk(depth: int, n: int, resumed: bool, seed: int):
    """Inputs of one chunk as the executor passes them (G = B * H problems merged)."""
    g = torch.Generator().manual_seed(seed)
    G, d, mult = 3, 6, 2
    shapes = [(d, d)] if depth == 1 else (
        [(mult * d, d)] + [(mult * d, mult * d)] * (depth - 2) + [(d, mult * d)]
    )

    def rnd(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    W = [rnd(G, o, i) / i**0.5 for o, i in shapes]
    S = [0.1 * rnd(G, o, i) for o, i in shapes]
    WS = [chunked._pack(w, s) for w, s in zip(W, S)]
    Wg = [w + 0.05 * rnd(*w.shape) for w in W] if resumed else W
    q = torch.nn.functional.normalize(rnd(G, n, d), dim=-1)
    k = torch.nn.functional.normalize(rnd(G, n, d), dim=-1)
    v = rnd(G, n, d)
    rand = lambda: torch.rand(G, n, generator=g, dtype=torch.float64)  # noqa: E731
    return Wg, WS, q, k, v, 0.05 + 0.2 * rand(), 0.3 + 0.5 * rand(), 0.1 * rand()


@needs_kernels
@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("residual", [False, True], ids=["mlp", "residual"])
@pytest.mark.parametrize("tau", [None, 0.3], ids=["plain", "clipped"])
@pytest.mark.parametrize("resumed", [False, True], ids=["boundary", "resumed"])
def test_chunk_step_matches_python(depth, residual, tau, resumed):
    """One chunk: output, end state, and the backward with and without an end-state
    gradient, compiled vs Python, in float64."""
    Wg, WS, q, k, v, theta, eta, alpha = _random_chunk(depth, n=7, resumed=resumed, seed=depth)
    args = (Wg, WS, q, k, v, theta, eta, alpha, "gelu", residual)
    y0, WS0, c0 = chunked._chunk_forward(*args, keep=True, tau=tau)
    y1, WS1, c1 = cpu_kernels.chunk_forward(*args, keep=True, tau=tau)
    assert_close("y", y1, y0, 1e-12)
    for i, (a, b) in enumerate(zip(WS1, WS0)):
        assert_close(f"WS_end[{i}]", a, b, 1e-12)
    assert c1.nbytes() > 0
    g = torch.Generator().manual_seed(99)
    dy = torch.randn(y0.shape, generator=g, dtype=torch.float64)
    dWS_end = [torch.randn(w.shape, generator=g, dtype=torch.float64) for w in WS]
    for end in (None, dWS_end):
        ref = chunked._chunk_backward(Wg, WS, theta, c0, "gelu", residual, dy, end, tau)
        out = cpu_kernels.chunk_backward(Wg, WS, theta, c1, "gelu", residual, dy, end, tau)
        names = ["dWg", "dWS", "dq", "dk", "dv", "dtheta", "deta", "dalpha"]
        for name, a, b in zip(names, out, ref):
            for i, (x, y) in enumerate(zip(a, b) if isinstance(a, list) else [(a, b)]):
                assert_close(f"{name}[{i}] (end grad: {end is not None})", x, y, 1e-11)


@needs_kernels
@pytest.mark.parametrize("activation", ["gelu", "silu", "tanh", "relu"])
def test_executor_compiled_equals_python(monkeypatch, activation):
    """The whole executor (chunk loop, autograd, a stream resumed mid-chunk) either way."""
    problem = make_problem(depth=2, T=23, seed=4)

    def stream():
        first = problem.sliced(0, 9)
        y1, s1 = run(first, "chunked", chunk_size=5, activation=activation, max_grad_norm=0.8)
        rest = problem.sliced(9, 23)
        y2, s2 = run(rest, "chunked", chunk_size=5, activation=activation, max_grad_norm=0.8,
                     state=s1)
        y = torch.cat([y1, y2], dim=2)
        return [y.detach(), *[w.detach() for w in s2.weights], *grads(problem, y, s2)]

    python, compiled = _both(monkeypatch, stream)
    for i, (a, b) in enumerate(zip(compiled, python)):
        assert_close(f"output {i}", a, b, 1e-11)


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("chunk", [1, 4, 64])
def test_python_step_still_equals_reference(monkeypatch, depth, chunk):
    """The Python step (CUDA tensors, no compiler) keeps matching the token oracle."""
    monkeypatch.setenv(cpu_kernels.ENV_VAR, "0")
    problem = make_problem(depth=depth, T=19, seed=depth + chunk)
    assert_runs_match(problem, "chunked", "reference", rtol=1e-10, chunk_size=chunk,
                      max_grad_norm=0.5)


@needs_kernels
@pytest.mark.parametrize("T", [1, 2, 3, 50])
@pytest.mark.parametrize("with_cache", [False, True], ids=["zeros", "cache"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_conv_compiled_equals_python(monkeypatch, T, with_cache, dtype):
    g = torch.Generator().manual_seed(T)
    B, C, K = 2, 70, 4  # C not a multiple of the vector width

    def leaf(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype).requires_grad_()

    u, w, b = leaf(B, T, C), leaf(C, K), leaf(C)
    cache = leaf(B, K - 1, C) if with_cache else None
    coef = torch.randn(B, T, C, generator=g, dtype=torch.float64).to(dtype)

    def conv():
        out, new_cache = causal_depthwise_conv(u, w, b, cache)
        loss = (out * coef).sum() + new_cache.square().sum()
        ins = [x for x in (u, w, b, cache) if x is not None]
        return [out.detach(), new_cache.detach(), *torch.autograd.grad(loss, ins)]

    python, compiled = _both(monkeypatch, conv)
    rtol = 1e-12 if dtype == torch.float64 else 1e-5
    for name, a, b_ in zip(["out", "cache", "du", "dw", "db", "dcache"], compiled, python):
        assert a.dtype == dtype
        assert_close(name, a, b_, rtol)


def test_conv_in_bfloat16_takes_the_python_path():
    """The kernels cover float32/float64; other dtypes (CPU autocast) keep working."""
    u = torch.randn(2, 9, 6, dtype=torch.bfloat16, requires_grad=True)
    w = torch.randn(6, 4, dtype=torch.bfloat16)
    out, cache = causal_depthwise_conv(u, w, torch.zeros(6, dtype=torch.bfloat16), None)
    ref, _ = causal_depthwise_conv(u.float(), w.float(), torch.zeros(6), None)
    assert out.dtype == torch.bfloat16 and cache.shape == (2, 3, 6)
    torch.testing.assert_close(out.float(), ref, rtol=2e-2, atol=2e-2)
    out.sum().backward()
    assert u.grad is not None and u.grad.dtype == torch.bfloat16


@needs_kernels
def test_conv_kernel_rejects_mixed_dtypes():
    module = cpu_kernels.load()
    u = torch.randn(1, 5, 3)
    with pytest.raises(RuntimeError, match="share one dtype"):
        module.conv_forward(u, torch.randn(3, 4, dtype=torch.float64), torch.zeros(3),
                            torch.empty(0))


@needs_kernels
def test_one_pass_gelu_is_as_accurate_as_atens_float32():
    """gelu, gelu' and gelu'' of the float32 one-pass kernel against float64 ATen: absolute
    errors no larger than ATen's own float32 gelu makes (about 1e-6)."""
    import math

    z = torch.linspace(-12.0, 12.0, 400_001)
    act, dact, act2 = cpu_kernels.load().gelu_derivatives(z)
    zd = z.double()
    ref = [
        torch.nn.functional.gelu(zd),
        torch.ops.aten.gelu_backward(torch.ones_like(zd), zd),
        torch.exp(-0.5 * zd * zd) / math.sqrt(2 * math.pi) * (2 - zd * zd),
    ]
    aten_err = (torch.nn.functional.gelu(z).double() - ref[0]).abs().max().item()
    for name, x, r in zip(["gelu", "gelu'", "gelu''"], (act, dact, act2), ref):
        assert x.dtype == torch.float32 and torch.isfinite(x).all()
        err = (x.double() - r).abs().max().item()
        assert err <= max(1e-6, aten_err), f"{name}: max abs error {err:.2e}"
    # the far tails saturate exactly as they should
    big = cpu_kernels.load().gelu_derivatives(torch.tensor([-200.0, 200.0]))
    torch.testing.assert_close(big[0], torch.tensor([0.0, 200.0]))
    torch.testing.assert_close(big[1], torch.tensor([0.0, 1.0]))


@needs_kernels
def test_float32_training_step_compiled_close_to_python(monkeypatch):
    """float32 GELU memory (the one-pass kernel's path): compiled vs Python step."""
    problem = make_problem(depth=2, T=70, d=16, seed=8, dtype=torch.float32)

    def step():
        y, s = run(problem, "chunked", chunk_size=16, max_grad_norm=1.0)
        return [y.detach(), *[w.detach() for w in s.weights], *grads(problem, y, s)]

    python, compiled = _both(monkeypatch, step)
    for i, (a, b) in enumerate(zip(compiled, python)):
        assert_close(f"output {i}", a, b, 2e-5)


_TINY32 = torch.finfo(torch.float32).tiny


def _subnormal_count(x: torch.Tensor) -> int:
    a = x.abs()
    return int(((a > 0) & (a < _TINY32)).sum())


def _decaying_memory():
    """A float32 depth-2 memory whose weights decay through the subnormal range.

    Weights start at ~1e-30 and the forgetting gate is 0.5 per token, so after 32 tokens
    they are ~1e-30 * 2^-32 ~ 2e-40. The first 4 tokens learn (theta = 0.01: momentum of
    ~1e-32), then theta = 0 and the momentum decays by eta = 0.5 per token to ~1e-41.
    Both end subnormal in float32 unless something flushes them. Returns
    ``run(executor) -> (y, state)`` on fixed inputs.
    """
    from titans_ts.memory import run_memory

    g = torch.Generator().manual_seed(0)
    B, H, T, d = 1, 2, 32, 8
    unit = lambda: torch.nn.functional.normalize(  # noqa: E731
        torch.randn(B, H, T, d, generator=g), dim=-1)
    weights = [1e-30 * torch.randn(H, 2 * d, d, generator=g),
               1e-30 * torch.randn(H, d, 2 * d, generator=g)]
    theta = torch.zeros(B, H, T)
    theta[..., :4] = 0.01
    gates = (theta, torch.full((B, H, T), 0.5), torch.full((B, H, T), 0.5))

    def run_with(executor: str):
        return run_memory(unit(), unit(), torch.randn(B, H, T, d, generator=g), *gates,
                          weights, chunk_size=8, executor=executor)

    return run_with


@pytest.mark.parametrize("compiled", [False, pytest.param(True, marks=needs_kernels)],
                         ids=["python", "compiled"])
def test_chunked_state_has_no_subnormals(monkeypatch, compiled):
    """The chunked executor flushes subnormal chunk-end weights and momentum to zero on CPU
    (x86 computes on subnormals in microcode: a long stream slowed ~3.5x); the token oracle,
    which does not, shows the same run does produce them, and the states agree to finfo.tiny.
    (In the compiled step the FTZ guard alone would also zero most of them on the calling
    thread; the explicit flush is what covers worker threads and other CPUs.)"""
    monkeypatch.setenv(cpu_kernels.ENV_VAR, "require" if compiled else "0")
    _, ref = _decaying_memory()("reference")
    _, state = _decaying_memory()("chunked")
    for name in ("weights", "momentum"):
        ours, oracle = getattr(state, name), getattr(ref, name)
        assert sum(_subnormal_count(x) for x in oracle) > 100, name  # the oracle keeps them
        for a, b in zip(ours, oracle):
            assert _subnormal_count(a) == 0, name
            assert float(b.abs().max()) < _TINY32  # every entry had decayed below tiny ...
            assert float(a.abs().max()) == 0.0, name  # ... and ours are exactly zero


@needs_kernels
def test_compiled_step_leaves_the_callers_float_mode(monkeypatch):
    """The compiled step flushes subnormals on its own thread while it runs, then restores
    the caller's mode: subnormal arithmetic outside it is untouched."""
    monkeypatch.setenv(cpu_kernels.ENV_VAR, "require")
    _decaying_memory()("chunked")
    x = torch.full((4,), 1e-39)  # subnormal in float32
    assert _subnormal_count(x * 1.0) == 4
