"""RevIN, patching and channel-independent reshaping."""

from __future__ import annotations

import pytest
import torch

from titans_ts.encoders.timeseries import (
    Patching,
    RevIN,
    from_channel_independent,
    to_channel_independent,
)


@pytest.mark.parametrize("center", ["mean", "last"])
@pytest.mark.parametrize("affine", [False, True])
def test_revin_round_trip(center: str, affine: bool) -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 50, 3, dtype=torch.float64) * 7 + 11
    revin = RevIN(3, affine=affine, center=center).double()
    if affine:
        with torch.no_grad():
            revin.weight.copy_(torch.tensor([0.5, 2.0, -1.5]))
            revin.bias.copy_(torch.tensor([0.1, -0.3, 2.0]))
    y, stats = revin.normalize(x)
    assert y.shape == x.shape and stats.center.shape == (4, 1, 3) == stats.scale.shape
    torch.testing.assert_close(revin.denormalize(y, stats), x, rtol=1e-9, atol=1e-9)


def test_revin_statistics_per_instance_and_channel() -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 64, 3) * torch.tensor([1.0, 5.0, 0.1]) + torch.tensor([3.0, -2.0, 9.0])
    y, stats = RevIN(3, affine=False).normalize(x)
    torch.testing.assert_close(y.mean(dim=1), torch.zeros(2, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(dim=1, unbiased=False), torch.ones(2, 3), atol=1e-3, rtol=0)
    torch.testing.assert_close(stats.center[:, 0], x.mean(dim=1))
    y_last, stats_last = RevIN(3, affine=False, center="last").normalize(x)
    torch.testing.assert_close(y_last[:, -1], torch.zeros(2, 3))
    torch.testing.assert_close(stats_last.center[:, 0], x[:, -1])


def test_revin_denormalizes_other_lengths_and_trains_affine() -> None:
    torch.manual_seed(2)
    revin = RevIN(2)
    x = torch.randn(3, 40, 2) + 4
    y, stats = revin(x)
    forecast = revin.denormalize(torch.zeros(3, 7, 2), stats)  # a horizon of 7 steps
    assert forecast.shape == (3, 7, 2)
    torch.testing.assert_close(forecast, stats.center.expand(3, 7, 2), atol=1e-4, rtol=0)
    y.sum().backward()
    assert revin.weight.grad is not None and revin.bias.grad is not None


def test_revin_errors() -> None:
    with pytest.raises(ValueError, match=r"shape \(\.\.\., time, 3\), got \(2, 5, 4\)"):
        RevIN(3).normalize(torch.zeros(2, 5, 4))
    with pytest.raises(ValueError, match="center must be 'mean' or 'last'"):
        RevIN(3, center="median")
    with pytest.raises(ValueError, match="num_features must be a positive int"):
        RevIN(0)


def test_patching_matches_patchtst_layout() -> None:
    x = torch.arange(2 * 3 * 10, dtype=torch.float32).reshape(2, 3, 10)
    patch = Patching(patch_len=4, stride=2, pad_end=True)
    out = patch(x)
    # padded length 12 -> (12 - 4) // 2 + 1 = 5 patches
    assert out.shape == (2, 3, 5, 4) and patch.num_patches(10) == 5
    torch.testing.assert_close(out[1, 2, 0], x[1, 2, 0:4])
    torch.testing.assert_close(out[1, 2, 3], x[1, 2, 6:10])
    last = x[1, 2, -1]
    torch.testing.assert_close(out[1, 2, 4], torch.stack([x[1, 2, 8], x[1, 2, 9], last, last]))


def test_patching_without_padding_and_96_lookback() -> None:
    x = torch.randn(2, 7, 96)
    assert Patching(16, 8, pad_end=False)(x).shape == (2, 7, 11, 16)
    assert Patching(16, 8)(x).shape == (2, 7, 12, 16)  # PatchTST's 12 patches for L = 96
    assert Patching(16, 16, pad_end=False)(x).reshape(2, 7, 96).equal(x)


def test_patching_errors() -> None:
    with pytest.raises(ValueError, match="shorter than patch_len=16"):
        Patching(16, 4, pad_end=False)(torch.zeros(1, 10))
    with pytest.raises(ValueError, match="stride must be a positive int"):
        Patching(4, 0)


def test_channel_independent_round_trip_and_order() -> None:
    x = torch.randn(4, 30, 3)
    folded = to_channel_independent(x)
    assert folded.shape == (12, 30)
    torch.testing.assert_close(folded[1 * 3 + 2], x[1, :, 2])  # row b*C + c
    torch.testing.assert_close(from_channel_independent(folded, 3), x)
    with pytest.raises(ValueError, match="not a multiple of n_channels=5"):
        from_channel_independent(folded, 5)
    with pytest.raises(ValueError, match=r"\(batch, time, channels\)"):
        to_channel_independent(torch.zeros(3, 4))


def test_revin_inverse_with_near_zero_affine_weight_is_finite() -> None:
    revin = RevIN(2)
    with torch.no_grad():
        revin.weight.copy_(torch.tensor([0.0, -1e-9]))
    x = torch.randn(1, 10, 2)
    y, stats = revin.normalize(x)
    assert torch.isfinite(revin.denormalize(y, stats)).all()
