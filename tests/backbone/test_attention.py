"""Block-wise sliding-window and MAC segment attention against naive dense references."""

from __future__ import annotations

import math

import pytest
import torch

from titans_ts.backbone.attention import (
    SegmentAttention,
    SlidingWindowAttention,
    apply_rope,
    segment_attention,
    segment_mask,
    sliding_window_attention,
)

DT = torch.float64


def naive_window_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    window: int,
    kp: torch.Tensor | None,
    vp: torch.Tensor | None,
) -> torch.Tensor:
    """Dense T x T reference: query t sees keys s with t - window < s <= t, plus the prefix."""
    b, h, t, d = q.shape
    out = torch.empty_like(q)
    for i in range(t):
        keys, vals = [], []
        if kp is not None:
            keys.append(kp)
            vals.append(vp)
        lo = max(0, i - window + 1)
        keys.append(k[..., lo : i + 1, :])
        vals.append(v[..., lo : i + 1, :])
        kk, vv = torch.cat(keys, -2), torch.cat(vals, -2)
        w = torch.softmax(q[..., i : i + 1, :] @ kk.transpose(-1, -2) / math.sqrt(d), -1)
        out[..., i : i + 1, :] = w @ vv
    return out


def naive_segment_attention(
    q: torch.Tensor,
    hk: torch.Tensor,
    hv: torch.Tensor,
    xk: torch.Tensor,
    xv: torch.Tensor,
    kp: torch.Tensor | None,
    vp: torch.Tensor | None,
) -> torch.Tensor:
    """Per-query loop over a whole segment: token j sees P, h_0..h_j and x_0..x_j."""
    d = q.shape[-1]
    out = torch.empty_like(q)
    for j in range(q.shape[-2]):
        keys = ([kp] if kp is not None else []) + [hk[..., : j + 1, :], xk[..., : j + 1, :]]
        vals = ([vp] if vp is not None else []) + [hv[..., : j + 1, :], xv[..., : j + 1, :]]
        kk, vv = torch.cat(keys, -2), torch.cat(vals, -2)
        w = torch.softmax(q[..., j : j + 1, :] @ kk.transpose(-1, -2) / math.sqrt(d), -1)
        out[..., j : j + 1, :] = w @ vv
    return out


def rand(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=DT)


@pytest.mark.parametrize(
    "t,window,block,n_p",
    [
        (1, 4, 64, 0),
        (17, 4, 5, 3),
        (33, 8, 8, 2),
        (40, 1, 7, 0),
        (50, 64, 16, 1),
        (29, 6, 64, 4),
    ],
)
def test_sliding_window_matches_dense(t: int, window: int, block: int, n_p: int) -> None:
    torch.manual_seed(t)
    q, k, v = rand(2, 3, t, 8), rand(2, 3, t, 8), rand(2, 3, t, 8)
    kp = vp = None
    if n_p:
        kp, vp = rand(2, 3, n_p, 8), rand(2, 3, n_p, 8)
    want = naive_window_attention(q, k, v, window, kp, vp)
    got, cache = sliding_window_attention(
        q, k, v, window=window, k_prefix=kp, v_prefix=vp, block=block
    )
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    assert cache.k.shape[-2] == min(window - 1, t)


@pytest.mark.parametrize("splits", [(5,), (1, 2, 3), (8, 9), (16,), (3, 20, 21)])
def test_sliding_window_streams(splits: tuple[int, ...]) -> None:
    torch.manual_seed(1)
    t, window = 30, 8
    q, k, v = rand(1, 2, t, 4), rand(1, 2, t, 4), rand(1, 2, t, 4)
    kp, vp = rand(1, 2, 2, 4), rand(1, 2, 2, 4)
    want = naive_window_attention(q, k, v, window, kp, vp)
    bounds = [0, *splits, t]
    cache, outs = None, []
    for a, e in zip(bounds[:-1], bounds[1:], strict=True):
        o, cache = sliding_window_attention(
            q[..., a:e, :],
            k[..., a:e, :],
            v[..., a:e, :],
            window=window,
            cache=cache,
            k_prefix=kp,
            v_prefix=vp,
            block=3,
        )
        outs.append(o)
        assert cache.k.shape[-2] <= window - 1
    torch.testing.assert_close(torch.cat(outs, -2), want, rtol=0, atol=1e-12)


def test_sliding_window_never_builds_a_t_by_t_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    import titans_ts.backbone.attention as attn

    seen: list[tuple[int, ...]] = []
    real = attn.F.scaled_dot_product_attention

    def spy(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kw: object) -> torch.Tensor:
        seen.append(tuple(kw["attn_mask"].shape))
        return real(q, k, v, **kw)

    monkeypatch.setattr(attn.F, "scaled_dot_product_attention", spy)
    t, window, block = 1000, 16, 32
    q = torch.randn(1, 1, t, 4)
    sliding_window_attention(q, q, q, window=window, block=block)
    assert max(r * c for r, c in seen) <= block * (window - 1 + block)


def test_segment_mask_is_the_design_mask() -> None:
    m = segment_mask(3, 2, 1, torch.device("cpu"))  # queries are segment tokens 2, 3, 4
    n = 5
    assert m.shape == (3, 1 + 2 * n)
    for r, j in enumerate(range(2, 5)):
        assert m[r, 0]
        for i in range(n):
            assert bool(m[r, 1 + i]) == (i <= j)  # h_i
            assert bool(m[r, 1 + n + i]) == (i <= j)  # x_i


@pytest.mark.parametrize("n_p", [0, 3])
def test_segment_attention_matches_dense_and_streams(n_p: int) -> None:
    torch.manual_seed(2)
    c = 9
    q, hk, hv, xk, xv = (rand(2, 2, c, 4) for _ in range(5))
    kp = vp = None
    if n_p:
        kp, vp = rand(2, 2, n_p, 4), rand(2, 2, n_p, 4)
    want = naive_segment_attention(q, hk, hv, xk, xv, kp, vp)
    got = segment_attention(q, hk, hv, xk, xv, k_prefix=kp, v_prefix=vp)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    # a segment split in pieces, earlier keys given through the running prefix of k/v
    outs = []
    for a, e in ((0, 4), (4, 5), (5, 9)):
        outs.append(
            segment_attention(
                q[..., a:e, :],
                hk[..., :e, :],
                hv[..., :e, :],
                xk[..., :e, :],
                xv[..., :e, :],
                k_prefix=kp,
                v_prefix=vp,
            )
        )
    torch.testing.assert_close(torch.cat(outs, -2), want, rtol=0, atol=1e-12)


def test_segment_attention_module_streams() -> None:
    torch.manual_seed(3)
    mod = SegmentAttention(8, 2, 0.0, True).double()
    x, h, p = rand(2, 7, 8), rand(2, 7, 8), rand(2, 2, 8)
    want, _ = mod(x, h, 14, p, None)
    a, cache = mod(x[:, :3], h[:, :3], 14, p, None)
    b, cache = mod(x[:, 3:], h[:, 3:], 17, p, cache)
    torch.testing.assert_close(torch.cat((a, b), 1), want, rtol=0, atol=1e-12)
    assert cache.length == 7


def test_rope_scores_depend_on_relative_position_only() -> None:
    torch.manual_seed(4)
    q, k = rand(1, 1, 1, 8), rand(1, 1, 1, 8)
    s1 = apply_rope(q, 10) @ apply_rope(k, 7).transpose(-1, -2)
    s2 = apply_rope(q, 1_000_003) @ apply_rope(k, 1_000_000).transpose(-1, -2)
    torch.testing.assert_close(s1, s2, rtol=0, atol=1e-9)
    s3 = apply_rope(q, 11) @ apply_rope(k, 7).transpose(-1, -2)
    assert not torch.allclose(s1, s3)


def test_window_module_prefix_is_visible_beyond_the_window() -> None:
    torch.manual_seed(5)
    mod = SlidingWindowAttention(8, 2, 3, block=4).double()
    x = rand(1, 20, 8)
    p = rand(1, 2, 8)
    y1, _ = mod(x, 0, p)
    y2, _ = mod(x, 0, p + 1.0)
    assert (y1[:, -1] - y2[:, -1]).abs().max() > 1e-6
    x2 = x.clone()
    x2[:, :16] += 1.0  # outside the window of the last token (it sees 17, 18, 19)
    y3, _ = mod(x2, 0, p)
    torch.testing.assert_close(y3[:, -1], y1[:, -1], rtol=0, atol=1e-12)
