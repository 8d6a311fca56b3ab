"""LossModule's optimiser and learning-rate decay, and the LossHistory callback."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from titans_ts.training.lightning import LossHistory, LossModule


class _Scalar(nn.Module):
    """One weight ``w``; ``loss(target) = mean((w - target)^2)``."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def loss(self, target: torch.Tensor) -> torch.Tensor:
        return ((self.w - target) ** 2).mean()


def _fit(lr_decay: float | None, epochs: int = 4) -> list[dict]:
    # training pulls w towards +1 while the validation target is -1, so the validation
    # loss gets worse every epoch after the first
    train = DataLoader(TensorDataset(torch.ones(8)), batch_size=4)
    val = DataLoader(TensorDataset(-torch.ones(8)), batch_size=8)
    history = LossHistory()
    trainer = pl.Trainer(
        max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[history],
    )
    trainer.fit(LossModule(_Scalar(), 0.1, lr_decay=lr_decay), train, val)
    return history.records


def test_constant_learning_rate_without_decay() -> None:
    assert [r["lr"] for r in _fit(None)] == pytest.approx([0.1] * 4)


def test_lr_decay_multiplies_the_rate_after_each_epoch_without_improvement() -> None:
    records = _fit(0.5)
    vals = [r["val_loss"] for r in records]
    assert all(b > a for a, b in zip(vals, vals[1:]))  # never improves after epoch 0
    assert [r["lr"] for r in records] == pytest.approx([0.1, 0.1, 0.05, 0.025])


@pytest.mark.parametrize("bad", [0.0, 1.0, 1.5, -0.1])
def test_lr_decay_outside_open_unit_interval_is_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="lr_decay"):
        LossModule(_Scalar(), 0.1, lr_decay=bad)


def test_model_without_loss_is_rejected() -> None:
    with pytest.raises(TypeError, match="loss"):
        LossModule(nn.Linear(1, 1), 0.1)


class _Counter(nn.Module):
    """``stream_loss`` whose state counts the steps of the current stream (and records what
    it was given); ``loss`` is the fresh-state loss."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.given: list[tuple[float | None, bool]] = []

    def stream_loss(self, x, y, state=None):
        self.given.append((None if state is None else float(state),
                           state is not None and state.requires_grad))
        new = (torch.zeros(()) if state is None else state) + 1 + 0 * self.w
        return ((self.w - y) ** 2).mean(), new

    def loss(self, x, y):
        return self.stream_loss(x, y)[0]


def test_stateful_module_carries_a_detached_state_and_resets_it() -> None:
    from titans_ts.training.lightning import StatefulLossModule

    model = _Counter()
    batches = [(torch.ones(2, 3), torch.ones(2, 3), r) for r in (True, False, False, True, False)]
    trainer = pl.Trainer(
        max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )
    module = StatefulLossModule(model, 0.1)
    trainer.fit(module, DataLoader(batches, batch_size=None))
    given = [g for g, _ in model.given]
    assert given == [None, 1.0, 2.0, None, 1.0] * 2  # carried, dropped on reset
    assert not any(grad for _, grad in model.given)  # detached before it is passed on
    assert module._state is None  # nothing kept alive after fitting
    model.given.clear()
    # a validation batch with reset False is still scored from a fresh state
    trainer.validate(module, DataLoader(batches[1:2], batch_size=None), verbose=False)
    assert model.given == [(None, False)]
    with pytest.raises(TypeError, match="stream_loss"):
        StatefulLossModule(_Scalar(), 0.1)
