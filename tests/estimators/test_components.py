"""Building blocks under the forecaster: heads, pinball loss, lazy windows, the network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from titans_ts.heads import PointHead, QuantileHead, pinball_loss
from titans_ts.training import (
    ForecastModelConfig,
    SeriesWindows,
    TitansForecastModel,
    build_backbone_config,
    split_window_ranges,
)


def test_head_shapes_and_monotone_quantiles():
    z = torch.randn(5, 4, 8)
    assert PointHead(4, 8, horizon=6, n_targets=3)(z).shape == (5, 6, 3)
    q = QuantileHead(4, 8, horizon=6, quantiles=[0.1, 0.5, 0.9], n_targets=2)(z)
    assert q.shape == (5, 6, 2, 3)
    assert (q.diff(dim=-1) >= 0).all()
    with pytest.raises(ValueError, match=r"head input must have shape \(B, 4, 8\)"):
        PointHead(4, 8, horizon=6)(torch.randn(5, 3, 8))


def test_pinball_loss_values():
    pred = torch.tensor([[0.0, 1.0]])  # quantiles 0.1 and 0.9 of target 2
    target = torch.tensor([2.0])
    # errors 2 and 1: 0.1*2 and 0.9*1
    assert pinball_loss(pred, target, [0.1, 0.9]).item() == pytest.approx((0.2 + 0.9) / 2)
    # over-prediction: error -1 -> (q - 1) * -1
    assert pinball_loss(torch.tensor([[3.0]]), target, [0.25]).item() == pytest.approx(0.75)


def test_series_windows_index_arithmetic():
    series = [
        np.arange(20, dtype=np.float32)[:, None],
        100 + np.arange(13, dtype=np.float32)[:, None],
    ]
    ds = SeriesWindows(series, lookback=4, horizon=2)
    assert len(ds) == (20 - 6 + 1) + (13 - 6 + 1)
    brute = [(k, s) for k, a in enumerate(series) for s in range(len(a) - 6 + 1)]
    for i, (k, s) in enumerate(brute):
        x, y = ds[i]
        assert ds.locate(i) == (k, s)
        np.testing.assert_array_equal(x.numpy(), series[k][s : s + 4])
        np.testing.assert_array_equal(y.numpy(), series[k][s + 4 : s + 6])
    # windows are views of the stored series, not copies
    assert ds[3][0].untyped_storage().data_ptr() == ds.series[0].untyped_storage().data_ptr()
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_train_and_validation_targets_do_not_overlap():
    train, val = split_window_ranges([50, 20], lookback=8, horizon=4, val_sizes=[10, 2])
    assert train[0] == (0, 50 - 10 - 12) and val[0] == (50 - 10 - 8, 50 - 12)
    # train targets end before the validation part; validation targets lie inside it
    assert train[0][1] + 8 + 4 <= 40 and val[0][0] + 8 >= 40
    assert val[1] == (0, -1) and train[1] == (0, 20 - 12)  # 2 < horizon: no validation


def _config(mixing: bool, quantiles=None) -> ForecastModelConfig:
    backbone = build_backbone_config(
        variant="mag", d_model=8, n_layers=1, n_heads=2, n_tokens=4, n_persistent=2,
        memory_depth=2, memory_chunk_size=8, dropout=0.0,
    )
    return ForecastModelConfig(lookback=24, horizon=6, n_channels=3, patch_len=8, stride=8,
                               channel_mixing=mixing, quantiles=quantiles, backbone=backbone)


def test_channel_independent_network_treats_channels_alike():
    torch.manual_seed(0)
    model = TitansForecastModel(_config(False, (0.2, 0.8))).eval()
    x = torch.randn(2, 24, 3)
    out = model(x)
    perm = model(x[:, :, [2, 0, 1]])
    torch.testing.assert_close(perm.point, out.point[:, :, [2, 0, 1]])
    torch.testing.assert_close(perm.quantiles, out.quantiles[:, :, [2, 0, 1]])
    # one channel alone gives the same forecast as inside the batch of channels
    torch.testing.assert_close(model(x[:, :, 1:2]).point, out.point[:, :, 1:2])


def test_revin_makes_forecasts_scale_equivariant():
    torch.manual_seed(0)
    model = TitansForecastModel(_config(True)).eval()
    x = torch.randn(2, 24, 3)
    base = model(x).point
    torch.testing.assert_close(model(3.0 * x + 5.0).point, 3.0 * base + 5.0, rtol=1e-4,
                               atol=1e-4)
    shape, dtype = model.describe_inputs(batch_size=4)["x"]
    assert model(torch.zeros(shape, dtype=dtype)).point.shape == (4, 6, 3)
    with pytest.raises(ValueError, match="built for 3 channels"):
        model(torch.randn(2, 24, 2))


def test_config_json_round_trip():
    import json

    cfg = _config(True, (0.1, 0.9))
    assert ForecastModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
