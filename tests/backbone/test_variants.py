"""Titans variants: causality, streaming == whole sequence, persistent tokens, gradients,
constant-size state, and MAC's dataflow against a dense per-segment reference."""

from __future__ import annotations

import math

import pytest
import torch

from titans_ts.backbone import VARIANTS, BackboneState, TitansBackbone, TitansConfig
from titans_ts.memory import MemoryConfig

DT = torch.float64
D = 16
T = 23
SEG = 6  # MAC segment length
CHUNK = 4  # memory chunk size
WINDOW = 5


def make(variant: str, seed: int = 0, n_persistent: int = 3, **kw: object) -> TitansBackbone:
    torch.manual_seed(seed)
    cfg = TitansConfig(
        variant=variant,
        d_model=D,
        n_layers=2,
        n_heads=2,
        window=WINDOW,
        segment_len=SEG,
        n_persistent=n_persistent,
        attn_block=4,
        memory=MemoryConfig(d_model=D, n_heads=2, depth=2, hidden_mult=2, chunk_size=CHUNK),
        **kw,
    )
    return TitansBackbone(cfg).to(DT).eval()


def inputs(t: int = T, b: int = 2, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, D, generator=g, dtype=DT)


def run_pieces(model: TitansBackbone, x: torch.Tensor, cuts: tuple[int, ...]) -> torch.Tensor:
    bounds = [0, *cuts, x.shape[1]]
    state, outs = None, []
    for a, e in zip(bounds[:-1], bounds[1:], strict=True):
        y, state = model(x[:, a:e], state)
        outs.append(y)
        assert state.position == e
    return torch.cat(outs, 1)


def state_numel(state: BackboneState) -> int:
    total = 0
    for layer in state.layers:
        for part in (layer.memory, layer.segment_memory):
            if part is not None:
                run = part.run
                tensors = [*run.weights, *run.momentum, *(run.grad_weights or [])]
                tensors += [c for c in (part.conv_cache, part.retrieve_cache) if c is not None]
                total += sum(t.numel() for t in tensors)
        if layer.attention is not None:
            total += sum(t.numel() for t in vars(layer.attention).values())
        if layer.prefix is not None:
            total += layer.prefix.numel()
    return total


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("t", [5, 6, 9, 16])
def test_causal(variant: str, t: int) -> None:
    model = make(variant)
    x = inputs()
    y, _ = model(x)
    x2 = x.clone()
    x2[:, t:] += torch.randn_like(x2[:, t:])
    y2, _ = model(x2)
    torch.testing.assert_close(y2[:, :t], y[:, :t], rtol=0, atol=1e-12)
    assert (y2[:, t] - y[:, t]).abs().max() > 1e-6  # the perturbation is seen from t on


# cuts aligned with segments (6, 12), chunks (4, 8, 12), the window (5, 10) and with none
CUTS = [(1,), (4,), (5,), (6,), (7,), (12,), (13,), (22,), (2, 3, 11), (6, 8, 18), (10, 15, 20)]


@pytest.mark.parametrize("variant", VARIANTS)
def test_stream_equals_whole(variant: str) -> None:
    model = make(variant)
    x = inputs()
    want, state = model(x)
    assert state.position == T
    for cuts in CUTS:
        got = run_pieces(model, x, cuts)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-10, msg=f"cuts={cuts}")


@pytest.mark.parametrize("variant", VARIANTS)
def test_token_by_token_equals_whole(variant: str) -> None:
    model = make(variant, n_persistent=0)
    x = inputs(t=14, b=1)
    want, _ = model(x)
    got = run_pieces(model, x, tuple(range(1, 14)))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10)


@pytest.mark.parametrize("variant", VARIANTS)
def test_state_has_constant_size(variant: str) -> None:
    model = make(variant)
    x = inputs(t=168, b=1)
    sizes = {}
    state = None
    with torch.inference_mode():
        for a in range(0, 168, 7):
            _, state = model(x[:, a : a + 7], state)
            sizes[a + 7] = state_numel(state)
    # 84 and 168 have the same phase w.r.t. segments, chunks and the window
    assert sizes[84] == sizes[168]
    assert max(sizes.values()) == max(v for k, v in sizes.items() if k <= 84)


@pytest.mark.parametrize("variant", VARIANTS)
def test_persistent_tokens_matter_and_stay_fixed(variant: str) -> None:
    model = make(variant)
    model.train()  # dropout is 0; train mode must not update anything either
    x = inputs()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    y, state = model(x)
    y_stream = run_pieces(model, x, (7, 13))
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]), f"{n} changed during forward"
    assert state.position == T  # persistent tokens are not stream tokens
    with torch.no_grad():
        for block in model.blocks:
            block.persistent.add_(0.5)
    y2, _ = model(x)
    assert (y2[:, -1] - y[:, -1]).abs().max() > 1e-6  # visible at the last position
    torch.testing.assert_close(y_stream, y, rtol=0, atol=1e-10)


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradients_reach_every_parameter(variant: str) -> None:
    model = make(variant)
    model.train()
    x = inputs()
    y, _ = model(x)
    w = torch.randn_like(y)
    (y * w).sum().backward()
    for n, p in model.named_parameters():
        assert p.grad is not None, f"{n} got no gradient"
        assert p.grad.abs().max() > 0, f"{n} got an all-zero gradient"


@pytest.mark.parametrize("variant", ["mac", "mag"])
def test_truncated_bptt_with_detached_state(variant: str) -> None:
    model = make(variant)
    model.train()
    x = inputs()
    _, state = model(x[:, :9])
    y, _ = model(x[:, 9:], state.detach())
    y.square().mean().backward()
    for block in model.blocks:
        assert block.memory.to_qkv.weight.grad.abs().max() > 0
        # the initial memory weights only act at stream start, before the cut
        assert all(w.grad is None for w in block.memory.memory_weights)


def test_mac_matches_dense_per_segment_reference() -> None:
    """One MAC block computed segment by segment with explicit dense attention loops:
    ``h`` is read at the weights the previous segment ended with, token ``j`` attends to
    ``P``, ``h_{<=j}`` and ``u_{<=j}``, and the memory is then updated with ``norm(y)``."""
    model = make("mac")
    block = model.blocks[0]
    attn, mem = block.attn, block.memory
    x = inputs(t=2 * SEG + 3)
    got, _ = block(x, 0, None)

    u = block.norm_in(x)
    p = block.persistent
    state, outs = None, []
    for a in range(0, x.shape[1], SEG):
        us = u[:, a : a + SEG]
        n = us.shape[1]
        h, rs = mem.retrieve(us, state)
        q = attn.queries(us, a)
        kx, vx = attn.keys_values(us, a)
        kh, vh = attn.keys_values(h, a)
        kp, vp = attn.keys_values(p.expand(x.shape[0], -1, -1), None)
        ys = torch.empty_like(q)
        for j in range(n):
            kk = torch.cat((kp, kh[..., : j + 1, :], kx[..., : j + 1, :]), -2)
            vv = torch.cat((vp, vh[..., : j + 1, :], vx[..., : j + 1, :]), -2)
            s = q[..., j : j + 1, :] @ kk.transpose(-1, -2) / math.sqrt(q.shape[-1])
            ys[..., j : j + 1, :] = torch.softmax(s, -1) @ vv
        y = attn.merge(ys)
        m, state = mem(block.norm_mem(y), rs)
        outs.append(block.gate(y, m))
    want = block.ffn_residual(x + torch.cat(outs, 1))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def _reverse_real(x: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    out = x.clone()
    for row, n in enumerate(lengths):
        out[row, :n] = x[row, :n].flip(0)
    return out


@pytest.mark.parametrize("variant", VARIANTS)
def test_bidirectional_sees_both_sides_and_ignores_padding(variant: str) -> None:
    model = make(variant)
    lengths = [T, 14]
    x = inputs()
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
    y = model.bidirectional(x, mask)
    # reversing each row's real tokens reverses the output (shared weights, averaged ways)
    y_rev = model.bidirectional(_reverse_real(x, lengths), mask)
    torch.testing.assert_close(y_rev, _reverse_real(y, lengths), rtol=0, atol=1e-12)
    # the real tokens do not see padding, however long or whatever it holds
    x_pad = x.clone()
    x_pad[1, 14:] = 1e3
    torch.testing.assert_close(model.bidirectional(x_pad, mask)[1, :14], y[1, :14],
                               rtol=0, atol=1e-12)
    alone = model.bidirectional(x[1:, :14], mask[1:, :14])
    torch.testing.assert_close(alone[0], y[1, :14], rtol=1e-10, atol=1e-12)
    # not causal: a change at position 7 reaches every earlier position (within two
    # attention windows: "swa" has no memory to carry it further)
    x_late = x.clone()
    x_late[:, 7] += 1.0
    moved = (model.bidirectional(x_late, mask) - y).abs().amax(-1)
    assert (moved[:, :8] > 1e-6).all()
    # and it is not the causal forward of the same blocks
    causal, _ = model(x)
    assert (causal[:, 0] - y[:, 0]).abs().max() > 1e-6


def test_bidirectional_checks_mask() -> None:
    model = make("mag")
    x = inputs(t=6, b=1)
    with pytest.raises(ValueError, match="bool tensor of shape"):
        model.bidirectional(x, torch.ones(1, 6))
    with pytest.raises(ValueError, match="prefix of each row"):
        model.bidirectional(x, torch.tensor([[False, True, True, True, True, True]]))
    with pytest.raises(ValueError, match="d_model=16"):
        model.bidirectional(torch.zeros(1, 6, 8, dtype=DT), torch.ones(1, 6, dtype=torch.bool))


def test_backbone_checks_inputs() -> None:
    model = make("mag")
    with pytest.raises(ValueError, match="d_model=16"):
        model(torch.zeros(1, 3, 8, dtype=DT))
    _, state = make("lmm", n_persistent=0)(inputs())
    with pytest.raises(ValueError, match="layer states"):
        model(inputs(), BackboneState(state.layers[:1], state.position))
    y, s = model(inputs(t=0))
    assert y.shape == (2, 0, D) and s.position == 0


def test_config_validation_names_field_and_allowed_values() -> None:
    with pytest.raises(ValueError, match=r"variant='xyz'.*one of \('lmm', 'mac'"):
        TitansConfig(variant="xyz")
    with pytest.raises(ValueError, match="window=0"):
        TitansConfig(window=0)
    with pytest.raises(ValueError, match="n_heads=3.*divisor of d_model=64"):
        TitansConfig(n_heads=3)
    with pytest.raises(ValueError, match="memory=.*d_model=64"):
        TitansConfig(memory=MemoryConfig(d_model=32))
    with pytest.raises(ValueError, match="dropout=1.5"):
        TitansConfig(dropout=1.5)
    with pytest.raises(ValueError, match="n_persistent=-1"):
        TitansConfig(n_persistent=-1)
    cfg = TitansConfig(d_model=32, n_heads=4)
    assert cfg.memory.d_model == 32
    assert cfg.replace(variant="mal").variant == "mal"
