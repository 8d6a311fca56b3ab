"""Thin Lightning shell around a network exposing ``loss(x, y)``, plus small callbacks.

The steps only call ``model.loss`` and log; all modelling lives in the ``nn.Module``
(:class:`~titans_ts.training.forecasting.TitansForecastModel`).
"""

from __future__ import annotations

import copy
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor, nn

__all__ = ["BestWeights", "LossHistory", "LossModule", "StatefulLossModule"]


class LossModule(pl.LightningModule):
    """Train any ``nn.Module`` with a ``loss(*batch) -> scalar`` method using AdamW.

    Logs ``train_loss`` (epoch mean) and ``val_loss`` (epoch mean).

    Args:
        model: the network; ``model.loss(*batch)`` must return a scalar tensor.
        learning_rate: AdamW learning rate.
        weight_decay: AdamW weight decay.
        lr_decay: ``None`` (constant learning rate) or a factor in (0, 1): multiply the
            learning rate by it after every epoch whose ``val_loss`` does not improve on
            the best so far (``ReduceLROnPlateau`` with patience 0); needs validation data.
    """

    def __init__(
        self,
        model: nn.Module,
        learning_rate: float,
        weight_decay: float = 0.0,
        lr_decay: float | None = None,
    ) -> None:
        super().__init__()
        if not callable(getattr(model, "loss", None)):
            raise TypeError(f"{type(model).__name__} has no loss(...) method")
        if lr_decay is not None and not 0.0 < float(lr_decay) < 1.0:
            raise ValueError(f"lr_decay must be None or in (0, 1), got {lr_decay!r}")
        self.model = model
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay)
        self.lr_decay = None if lr_decay is None else float(lr_decay)

    def forward(self, *args: Any) -> Any:
        return self.model(*args)

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        loss = self.model.loss(*batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(batch[0]))
        return loss

    def validation_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        loss = self.model.loss(*batch)
        self.log("val_loss", loss, on_step=False, on_epoch=True, batch_size=len(batch[0]))
        return loss

    def configure_optimizers(self) -> Any:
        params = [p for p in self.model.parameters() if p.requires_grad]  # frozen parts stay
        optimizer = torch.optim.AdamW(params, lr=self.learning_rate, weight_decay=self.weight_decay)
        if self.lr_decay is None:
            return optimizer
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=self.lr_decay, patience=0, threshold=0.0
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": plateau, "monitor": "val_loss", "interval": "epoch"},
        }


class StatefulLossModule(LossModule):
    """:class:`LossModule` for truncated back-propagation through time.

    Batches are ``(inputs, targets, reset)`` (e.g.
    :class:`~titans_ts.training.dna_lm.GenomeStreams`); the model's
    ``stream_loss(inputs, targets, state) -> (loss, state)`` continues the state of the
    previous training step, detached, so gradients stop at the step boundary while the
    state itself runs on. ``reset`` true drops the state (a new stream starts); so does a
    new epoch. Needs a single device and batches served in stream order. Validation
    batches ``(inputs, targets, ...)`` are scored from a fresh state.
    """

    def __init__(self, model: nn.Module, learning_rate: float, weight_decay: float = 0.0) -> None:
        super().__init__(model, learning_rate, weight_decay)
        if not callable(getattr(model, "stream_loss", None)):
            raise TypeError(f"{type(model).__name__} has no stream_loss(inputs, targets, state)")
        self._state: Any = None

    def on_train_epoch_start(self) -> None:
        self._state = None

    def training_step(self, batch: tuple[Tensor, Tensor, Any], batch_idx: int) -> Tensor:
        inputs, targets, reset = batch
        if bool(reset):
            self._state = None
        loss, state = self.model.stream_loss(inputs, targets, self._state)
        self._state = state.detach()
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(inputs))
        return loss

    def validation_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        return super().validation_step(tuple(batch[:2]), batch_idx)

    def on_train_end(self) -> None:
        self._state = None  # do not keep the last step's tensors alive after fitting


class BestWeights(pl.Callback):
    """Keep an in-memory copy of the weights with the best ``monitor`` value and restore it
    when fitting ends (early stopping without checkpoint files on disk).

    Attributes:
        best_score: best value seen (``None`` before the first validation).
        best_epoch: epoch (0-based) of that value.
    """

    def __init__(self, monitor: str = "val_loss") -> None:
        self.monitor = monitor
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self._state: dict[str, Tensor] | None = None

    def offer(self, score: float, module: nn.Module, epoch: int) -> None:
        """Keep ``module``'s weights if ``score`` beats the best so far (e.g. the untrained
        model's validation loss as ``epoch=-1``, so training must improve on it)."""
        if self.best_score is None or score < self.best_score:
            self.best_score = float(score)
            self.best_epoch = int(epoch)
            self._state = {
                k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()
            }

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        self.offer(float(value), pl_module, int(trainer.current_epoch))

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._state is not None:
            pl_module.load_state_dict(copy.deepcopy(self._state))


class LossHistory(pl.Callback):
    """Record ``{"epoch", "train_loss", "val_loss", "lr"}`` per finished training epoch
    (``lr``: the first parameter group's learning rate used in that epoch)."""

    def __init__(self) -> None:
        self.records: list[dict[str, float | int | None]] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = trainer.callback_metrics
        train = metrics.get("train_loss")
        val = metrics.get("val_loss")
        self.records.append(
            {
                "epoch": int(trainer.current_epoch),
                "train_loss": None if train is None else float(train),
                "val_loss": None if val is None else float(val),
                "lr": float(trainer.optimizers[0].param_groups[0]["lr"])
                if trainer.optimizers
                else None,
            }
        )
