"""Metrics: agreement with scikit-learn, numpy/torch parity, batch-size independence."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import matthews_corrcoef, mean_absolute_error, mean_squared_error

from titans_ts.metrics import (
    MCCAccumulator,
    RegressionAccumulator,
    blocked_paired_test,
    confusion_matrix_update,
    mae,
    mcc,
    mcc_compute,
    mse,
)

RNG = np.random.default_rng(0)
PRED = RNG.normal(size=(37, 24, 5))
TARGET = RNG.normal(size=(37, 24, 5))


def test_mse_mae_match_sklearn_and_hand_values() -> None:
    assert mse([1.0, 2.0, 4.0], [1.0, 0.0, 1.0]) == pytest.approx(13 / 3)
    assert mae([1.0, 2.0, 4.0], [1.0, 0.0, 1.0]) == pytest.approx(5 / 3)
    flat_p, flat_t = PRED.reshape(-1), TARGET.reshape(-1)
    assert mse(PRED, TARGET) == pytest.approx(mean_squared_error(flat_t, flat_p), rel=1e-12)
    assert mae(PRED, TARGET) == pytest.approx(mean_absolute_error(flat_t, flat_p), rel=1e-12)


def test_torch_inputs_match_numpy_including_grad_and_float32() -> None:
    p = torch.tensor(PRED, dtype=torch.float32, requires_grad=True)
    t = torch.tensor(TARGET, dtype=torch.float32)
    expected = mse(PRED.astype(np.float32), TARGET.astype(np.float32))
    assert isinstance(mse(p, t), float)
    assert mse(p, t) == pytest.approx(expected, rel=1e-6)
    assert mae(p, t) == pytest.approx(mae(PRED.astype(np.float32), TARGET.astype(np.float32)),
                                      rel=1e-6)


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"same shape, got \(2, 3\) and \(3, 2\)"):
        mse(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="same shape"):
        mae(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="no values were accumulated"):
        RegressionAccumulator().compute()


@pytest.mark.parametrize("batch_size", [1, 4, 16, 37])
def test_accumulator_independent_of_batch_size(batch_size: int) -> None:
    acc = RegressionAccumulator()
    for start in range(0, len(PRED), batch_size):
        acc.update(torch.from_numpy(PRED[start : start + batch_size]),
                   TARGET[start : start + batch_size])
    got = acc.compute()
    # a mean of per-batch means would differ here: the last batch is smaller
    assert got["mse"] == pytest.approx(mse(PRED, TARGET), rel=1e-12)
    assert got["mae"] == pytest.approx(mae(PRED, TARGET), rel=1e-12)
    assert acc.count == PRED.size


def test_accumulator_merge_reset_pickle() -> None:
    a = RegressionAccumulator().update(PRED[:10], TARGET[:10])
    b = RegressionAccumulator().update(PRED[10:], TARGET[10:])
    merged = pickle.loads(pickle.dumps(a)).merge(b)
    assert merged.compute()["mse"] == pytest.approx(mse(PRED, TARGET), rel=1e-12)
    merged.reset()
    assert merged.count == 0


def test_mcc_binary_and_multiclass_match_sklearn() -> None:
    y_true = RNG.integers(0, 2, size=500)
    y_pred = np.where(RNG.random(500) < 0.8, y_true, 1 - y_true)
    assert mcc(y_true, y_pred) == pytest.approx(matthews_corrcoef(y_true, y_pred), rel=1e-12)
    y_true = RNG.integers(0, 4, size=500)
    y_pred = np.where(RNG.random(500) < 0.6, y_true, RNG.integers(0, 4, size=500))
    assert mcc(y_true, y_pred) == pytest.approx(matthews_corrcoef(y_true, y_pred), rel=1e-12)
    assert mcc([0, 1, 1, 0], [0, 1, 1, 0]) == 1.0
    assert mcc([0, 1, 1, 0], [1, 0, 0, 1]) == -1.0
    assert mcc([0, 1, 1, 0], [1, 1, 1, 1]) == 0.0  # undefined -> 0, like scikit-learn


@pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")  # sklearn's
@settings(max_examples=40, deadline=None)
@given(
    labels=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=1, max_size=60),
    cut=st.integers(0, 60),
)
def test_mcc_streaming_equals_whole(labels: list[tuple[int, int]], cut: int) -> None:
    y_true = np.array([t for t, _ in labels])
    y_pred = np.array([p for _, p in labels])
    acc = MCCAccumulator(num_classes=3)
    acc.update(torch.from_numpy(y_true[:cut]), torch.from_numpy(y_pred[:cut]))
    acc.update(y_true[cut:], y_pred[cut:])
    expected = matthews_corrcoef(y_true, y_pred)
    assert acc.compute() == pytest.approx(expected, abs=1e-12)


def test_mcc_errors() -> None:
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        confusion_matrix_update([0, 2], [0, 1], num_classes=2)
    with pytest.raises(ValueError, match="argmax"):
        mcc(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="integer class labels"):
        mcc([0.5, 1.0], [0, 1])
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        MCCAccumulator(num_classes=1)
    with pytest.raises(ValueError, match="empty"):
        mcc_compute(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="cannot merge"):
        MCCAccumulator(2).merge(MCCAccumulator(3))


# --------------------------------------------------------------------------- paired test


def test_blocked_paired_test_averages_within_blocks_then_tests_the_block_means() -> None:
    from scipy import stats

    base = np.array([3.0, 1.0, 4.0, 2.0, 5.0, 4.0])
    new = np.array([1.0, 1.0, 2.0, 2.0, 1.0, 2.0])
    blocks = np.array([7, 7, 2, 2, 9, 9])  # gains per block: 1, 1, 3 (labels unordered)
    got = blocked_paired_test(base, new, blocks)
    gains = np.array([1.0, 1.0, 3.0])
    t = gains.mean() / (gains.std(ddof=1) / np.sqrt(3))
    assert got.n_blocks == 3
    assert got.mean_gain == pytest.approx(5 / 3)
    assert got.t == pytest.approx(t)
    assert got.p == pytest.approx(stats.t.sf(t, 2))
    # the same items without blocking count six samples and look more certain
    assert blocked_paired_test(base, new, np.arange(6)).p < got.p


def test_blocked_paired_test_sign_and_degenerate_cases() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=200) ** 2
    worse = blocked_paired_test(base, base + 0.5 + rng.normal(0, 0.01, 200), np.arange(200) // 10)
    assert worse.t < 0 and worse.p > 0.99
    same_gain = blocked_paired_test([2.0, 3.0], [1.0, 2.0], [0, 1])  # no spread
    assert same_gain.t == np.inf and same_gain.p == 0.0
    one_block = blocked_paired_test([2.0, 3.0], [1.0, 1.0], [0, 0])
    assert one_block.n_blocks == 1 and one_block.p == 1.0  # nothing to test with
    with pytest.raises(ValueError, match="same length"):
        blocked_paired_test([1.0, 2.0], [1.0], [0, 1])
    with pytest.raises(ValueError, match="at least one"):
        blocked_paired_test([], [], [])
