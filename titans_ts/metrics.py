"""Evaluation metrics: MSE, MAE, MCC as pure functions plus streaming accumulators.

Layout follows torchmetrics' split: ``*_update`` functions turn one batch into sufficient
statistics (sums and counts, or a confusion matrix), ``*_compute`` functions turn statistics
into the metric, and the small accumulator classes only hold the statistics. Sums are
accumulated in float64, so a metric over all windows does not depend on how the windows are
batched (up to float64 rounding).

Inputs may be numpy arrays, Python sequences or torch tensors (any device, with or without
grad); torch inputs are reduced on their own device and only scalars are moved to the host.
Results are Python floats. For a differentiable training loss use ``torch.nn.functional``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = [
    "BlockedPairedTest",
    "MCCAccumulator",
    "blocked_paired_test",
    "RegressionAccumulator",
    "confusion_matrix_update",
    "mae",
    "mcc",
    "mcc_compute",
    "mse",
    "regression_compute",
    "regression_update",
]


def _is_torch(value: Any) -> bool:
    module = type(value).__module__
    return module.startswith("torch") and hasattr(value, "detach")


# --------------------------------------------------------------------------- regression


def regression_update(prediction: Any, target: Any) -> tuple[float, float, int]:
    """Sufficient statistics of one batch: ``(Σ (p - t)², Σ |p - t|, number of elements)``.

    Args:
        prediction, target: arrays/tensors of the same shape, e.g. ``(B, H, C)``.

    Raises:
        ValueError: shapes differ (no broadcasting, to catch transposed axes).
    """
    if _is_torch(prediction) or _is_torch(target):
        import torch

        p = torch.as_tensor(prediction).detach()
        t = torch.as_tensor(target, device=p.device).detach()
        if p.shape != t.shape:
            raise ValueError(
                f"prediction and target must have the same shape, got {tuple(p.shape)} "
                f"and {tuple(t.shape)}"
            )
        diff = p.to(torch.float64) - t.to(torch.float64)
        return float((diff * diff).sum()), float(diff.abs().sum()), int(diff.numel())
    p_np = np.asarray(prediction, dtype=np.float64)
    t_np = np.asarray(target, dtype=np.float64)
    if p_np.shape != t_np.shape:
        raise ValueError(
            f"prediction and target must have the same shape, got {p_np.shape} and {t_np.shape}"
        )
    diff = p_np - t_np
    return float(np.square(diff).sum()), float(np.abs(diff).sum()), int(diff.size)


def regression_compute(sum_sq: float, sum_abs: float, count: int) -> dict[str, float]:
    """``{"mse": sum_sq / count, "mae": sum_abs / count}``; raises if ``count == 0``."""
    if count <= 0:
        raise ValueError("no values were accumulated; call update() with non-empty batches")
    return {"mse": sum_sq / count, "mae": sum_abs / count}


def mse(prediction: Any, target: Any) -> float:
    """Mean squared error over all elements (float64 accumulation)."""
    return regression_compute(*regression_update(prediction, target))["mse"]


def mae(prediction: Any, target: Any) -> float:
    """Mean absolute error over all elements (float64 accumulation)."""
    return regression_compute(*regression_update(prediction, target))["mae"]


@dataclasses.dataclass
class RegressionAccumulator:
    """Streaming MSE and MAE over any number of batches.

    Example:
        >>> acc = RegressionAccumulator()
        >>> for x, y in batches:                      # doctest: +SKIP
        ...     acc.update(model(x), y)
        >>> acc.compute()                             # doctest: +SKIP
        {'mse': ..., 'mae': ...}
    """

    sum_sq: float = 0.0
    sum_abs: float = 0.0
    count: int = 0

    def update(self, prediction: Any, target: Any) -> RegressionAccumulator:
        """Add one batch; returns ``self``."""
        sq, ab, n = regression_update(prediction, target)
        self.sum_sq += sq
        self.sum_abs += ab
        self.count += n
        return self

    def merge(self, other: RegressionAccumulator) -> RegressionAccumulator:
        """Add another accumulator's statistics (e.g. from another worker); returns ``self``."""
        self.sum_sq += other.sum_sq
        self.sum_abs += other.sum_abs
        self.count += other.count
        return self

    def compute(self) -> dict[str, float]:
        """``{"mse": ..., "mae": ...}`` over everything seen since the last reset."""
        return regression_compute(self.sum_sq, self.sum_abs, self.count)

    def reset(self) -> None:
        """Forget all batches."""
        self.sum_sq, self.sum_abs, self.count = 0.0, 0.0, 0


# --------------------------------------------------------------------------- MCC


def _labels(values: Any, name: str) -> np.ndarray:
    if _is_torch(values):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array of class labels, got shape {array.shape}; "
            "take argmax over the class axis of scores first"
        )
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.bool_):
            return array.astype(np.int64)
        rounded = array.astype(np.int64)
        if not np.array_equal(rounded, array):
            raise ValueError(f"{name} must hold integer class labels, got dtype {array.dtype}")
        array = rounded
    return array.astype(np.int64, copy=False)


def confusion_matrix_update(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """Confusion matrix ``(K, K)`` (rows true class, columns predicted) of one batch.

    Raises:
        ValueError: different lengths or a label outside ``[0, num_classes)``.
    """
    t = _labels(y_true, "y_true")
    p = _labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same length, got {t.size} and {p.size}")
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= num_classes):
        raise ValueError(
            f"labels must be in [0, {num_classes}), got range "
            f"[{min(t.min(), p.min())}, {max(t.max(), p.max())}]; raise num_classes"
        )
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def mcc_compute(confusion: np.ndarray) -> float:
    """Matthews correlation coefficient (multiclass, Gorodkin's R_K) of a confusion matrix.

    Returns 0.0 when it is undefined (all predictions or all labels in one class), like
    scikit-learn's ``matthews_corrcoef``.
    """
    c = np.asarray(confusion, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"confusion must be a square (K, K) matrix, got shape {c.shape}")
    total = c.sum()
    if total == 0:
        raise ValueError("the confusion matrix is empty; call update() with non-empty batches")
    true_counts = c.sum(axis=1)
    pred_counts = c.sum(axis=0)
    correct = np.trace(c)
    cov_tp = correct * total - true_counts @ pred_counts
    cov_pp = total**2 - pred_counts @ pred_counts
    cov_tt = total**2 - true_counts @ true_counts
    denominator = np.sqrt(cov_pp * cov_tt)
    return 0.0 if denominator == 0 else float(cov_tp / denominator)


def mcc(y_true: Any, y_pred: Any, num_classes: int | None = None) -> float:
    """Matthews correlation coefficient of integer labels (binary or multiclass)."""
    t = _labels(y_true, "y_true")
    p = _labels(y_pred, "y_pred")
    if num_classes is None:
        num_classes = int(max(t.max(initial=0), p.max(initial=0))) + 1
    return mcc_compute(confusion_matrix_update(t, p, num_classes))


@dataclasses.dataclass
class MCCAccumulator:
    """Streaming MCC: accumulates a ``(num_classes, num_classes)`` confusion matrix."""

    num_classes: int = 2
    confusion: np.ndarray = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int):
            raise TypeError(f"num_classes must be an int, got {type(self.num_classes).__name__}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
        self.reset()

    def update(self, y_true: Any, y_pred: Any) -> MCCAccumulator:
        """Add one batch of labels; returns ``self``."""
        self.confusion += confusion_matrix_update(y_true, y_pred, self.num_classes)
        return self

    def merge(self, other: MCCAccumulator) -> MCCAccumulator:
        """Add another accumulator's confusion matrix; returns ``self``."""
        if other.num_classes != self.num_classes:
            raise ValueError(
                f"cannot merge accumulators with {other.num_classes} and "
                f"{self.num_classes} classes"
            )
        self.confusion += other.confusion
        return self

    def compute(self) -> float:
        """MCC over everything seen since the last reset."""
        return mcc_compute(self.confusion)

    def reset(self) -> None:
        """Forget all batches."""
        self.confusion = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)


# --------------------------------------------------------------------------- paired test


@dataclasses.dataclass(frozen=True)
class BlockedPairedTest:
    """Result of :func:`blocked_paired_test`.

    Attributes:
        mean_gain: mean of the per-block gains (``base - new``; positive: ``new`` is better).
        t: t statistic of that mean (``inf``/``-inf`` when every block gains the same).
        p: one-sided p-value of "``new`` is not better" (Student t, ``n_blocks - 1`` dof;
            1.0 with fewer than two blocks).
        n_blocks: number of blocks.
    """

    mean_gain: float
    t: float
    p: float
    n_blocks: int


def blocked_paired_test(base: Any, new: Any, blocks: Any) -> BlockedPairedTest:
    """One-sided paired t-test that ``new`` errors are lower than ``base`` errors when
    neighbouring errors are correlated (overlapping forecast windows).

    The per-item gains ``base - new`` are averaged within each block (e.g. ``H``
    consecutive windows, which share most of their targets), and the block means are
    treated as independent samples.

    Args:
        base, new: per-item errors, 1-D, same length (e.g. per-window MSE of two models).
        blocks: per-item block labels (any integers), same length.
    """
    b = np.asarray(base, dtype=np.float64).ravel()
    n = np.asarray(new, dtype=np.float64).ravel()
    ids = np.asarray(blocks).ravel()
    if not (b.shape == n.shape == ids.shape):
        raise ValueError(
            f"base, new and blocks must have the same length, got {b.size}, {n.size}, "
            f"{ids.size}"
        )
    if b.size == 0:
        raise ValueError("blocked_paired_test needs at least one item")
    _, inverse = np.unique(ids, return_inverse=True)
    counts = np.bincount(inverse)
    gains = np.bincount(inverse, weights=b - n) / counts
    k = int(gains.size)
    mean = float(gains.mean())
    if k < 2:
        return BlockedPairedTest(mean, float("nan"), 1.0, k)
    sd = float(gains.std(ddof=1))
    if sd == 0.0:
        t = 0.0 if mean == 0.0 else float(np.copysign(np.inf, mean))
    else:
        t = mean / (sd / np.sqrt(k))
    from scipy.stats import t as student_t

    return BlockedPairedTest(mean, float(t), float(student_t.sf(t, k - 1)), k)
