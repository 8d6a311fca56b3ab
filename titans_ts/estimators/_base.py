"""Shared plumbing of the scikit-learn style estimators (forecaster, sequence classifier).

* Declarative parameter constraints (:class:`Interval`, :class:`Options`, types, ``None``,
  ``"boolean"``) listed per estimator in ``_parameter_constraints`` and checked when
  ``fit`` starts, with one message template (scikit-learn's):
  ``The 'name' parameter of Est must be <allowed>. Got <value> instead.``
* :class:`TitansBaseEstimator`: ``BaseEstimator`` + that validation, ``NotFittedError``
  checks, seeding and a silent, reproducible Lightning trainer (:meth:`_make_trainer`,
  :meth:`_fit_context`), and the torch device that ``accelerator``/``devices`` name.

Nothing here knows about forecasting; a new estimator only declares its constraints and
uses these helpers.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import numbers
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from titans_ts.training.seeding import deterministic_algorithms, resolve_seed, seed_everything

__all__ = [
    "Interval",
    "NotFittedError",
    "Options",
    "TitansBaseEstimator",
    "quiet_lightning",
    "resolve_device",
    "validate_params",
]


# --------------------------------------------------------------------------- constraints


@dataclass(frozen=True)
class Interval:
    """Numbers of ``kind`` (``numbers.Integral`` or ``numbers.Real``) in an interval.

    ``closed`` is ``"both"``, ``"left"``, ``"right"`` or ``"neither"``; ``None`` bounds are
    infinite. Booleans are never accepted as numbers.
    """

    kind: type
    left: float | None
    right: float | None
    closed: str = "both"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, self.kind):
            return False
        if isinstance(value, numbers.Real) and np.isnan(float(value)):
            return False
        if self.left is not None:
            if value < self.left or (value == self.left and self.closed in ("right", "neither")):
                return False
        if self.right is not None:
            if value > self.right or (value == self.right and self.closed in ("left", "neither")):
                return False
        return True

    def __str__(self) -> str:
        kind = "an int" if self.kind is numbers.Integral else "a float"
        lo = "-inf" if self.left is None else f"{self.left}"
        hi = "inf" if self.right is None else f"{self.right}"
        lb = "[" if self.closed in ("both", "left") and self.left is not None else "("
        rb = "]" if self.closed in ("both", "right") and self.right is not None else ")"
        return f"{kind} in the range {lb}{lo}, {hi}{rb}"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values (compared with ``==``)."""

    values: tuple[Any, ...]

    def accepts(self, value: Any) -> bool:
        try:
            return any(type(value) is type(v) and bool(value == v) for v in self.values)
        except (TypeError, ValueError):  # e.g. an array compared element-wise
            return False

    def __str__(self) -> str:
        return "one of {" + ", ".join(repr(v) for v in self.values) + "}"


def _accepts(constraint: Any, value: Any) -> bool:
    if constraint is None:
        return value is None
    if constraint == "boolean":
        return isinstance(value, (bool, np.bool_))
    if isinstance(constraint, (Interval, Options)):
        return constraint.accepts(value)
    if isinstance(constraint, type):
        if constraint is not bool and isinstance(value, (bool, np.bool_)):
            return False
        return isinstance(value, constraint)
    if isinstance(constraint, tuple) and all(isinstance(c, type) for c in constraint):
        return isinstance(value, constraint) and not isinstance(value, (bool, np.bool_))
    raise TypeError(f"unknown parameter constraint {constraint!r}")


def _describe(constraint: Any) -> str:
    if constraint is None:
        return "None"
    if constraint == "boolean":
        return "a bool"
    if isinstance(constraint, (Interval, Options)):
        return str(constraint)
    if isinstance(constraint, type):
        return f"an instance of {constraint.__name__!r}"
    return "an instance of " + " or ".join(repr(c.__name__) for c in constraint)


def validate_params(
    constraints: dict[str, Sequence[Any]], params: dict[str, Any], caller: str
) -> None:
    """Check every parameter named in ``constraints`` against its allowed forms.

    Raises:
        ValueError: ``The 'name' parameter of caller must be <allowed>. Got <value!r>
            instead.`` (the scikit-learn template; TypeError is not used so that grid
            searches report bad values uniformly).
    """
    for name, allowed in constraints.items():
        if name not in params:
            continue
        value = params[name]
        if any(_accepts(c, value) for c in allowed):
            continue
        descriptions = [_describe(c) for c in allowed]
        text = (
            descriptions[0]
            if len(descriptions) == 1
            else ", ".join(descriptions[:-1]) + " or " + descriptions[-1]
        )
        raise ValueError(
            f"The {name!r} parameter of {caller} must be {text}. Got {value!r} instead."
        )


# --------------------------------------------------------------------------- silence


_LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning")
_QUIET_WARNINGS = (
    r".*does not have many workers.*",
    r".*num_workers.*",
    r".*smaller than the logging interval.*",
    r".*GPU available.*",
    r".*TPU available.*",
    r".*`max_epochs` was not set.*",
    r".*LightningModule.*has parameters that were not used.*",
    r".*Checkpoint directory.*exists and is not empty.*",
    r".*Consider setting `persistent_workers=True`.*",
    r".*The number of training batches.*",
    r".*Total length of `.*` across ranks is zero.*",
    r".*isinstance\(treespec, LeafSpec\).*",
)


@contextlib.contextmanager
def quiet_lightning(verbose: bool = False) -> Iterator[None]:
    """Silence Lightning's informational logging and its data-loader advice warnings
    (unless ``verbose``); the previous logger levels and warning filters are restored."""
    if verbose:
        yield
        return
    saved = {}
    for name in _LIGHTNING_LOGGERS:
        log = logging.getLogger(name)
        saved[name] = log.level
        log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for pattern in _QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            try:  # Lightning's own "possible user mistake" category
                from lightning.fabric.utilities.warnings import PossibleUserWarning

                warnings.filterwarnings("ignore", category=PossibleUserWarning)
            except ImportError:  # pragma: no cover - depends on the Lightning version
                pass
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


# --------------------------------------------------------------------------- devices


def resolve_device(accelerator: str, devices: int | str | Sequence[int]) -> torch.device:
    """The torch device that ``accelerator``/``devices`` (Lightning's meaning) put the
    model on for prediction: the first selected device."""
    index = 0
    if isinstance(devices, Sequence) and not isinstance(devices, str) and len(devices) > 0:
        index = int(devices[0])
    if accelerator == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", index)
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if accelerator in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"accelerator={accelerator!r} but torch sees no CUDA device; use "
                "accelerator='cpu' (or 'auto')"
            )
        return torch.device("cuda", index)
    if accelerator == "mps":
        return torch.device("mps")
    return torch.device("cpu")


# --------------------------------------------------------------------------- base class


class TitansBaseEstimator(BaseEstimator):
    """Base of the titans_ts estimators (scikit-learn conventions).

    Subclasses declare ``_parameter_constraints`` and have ``accelerator``, ``devices``,
    ``random_state`` and ``verbose`` parameters; ``__init__`` only stores arguments.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {}

    def _validate_params(self) -> None:
        """Check the constructor arguments against ``_parameter_constraints``."""
        validate_params(
            self._parameter_constraints, self.get_params(deep=False), type(self).__name__
        )

    def _check_fitted(self) -> None:
        """Raise :class:`NotFittedError` unless ``fit`` has run."""
        check_is_fitted(
            self,
            msg=(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            ),
        )

    def _device(self) -> torch.device:
        return resolve_device(self.accelerator, self.devices)

    @contextlib.contextmanager
    def _fit_context(self) -> Iterator[tuple[int, str]]:
        """Seed everything from ``random_state`` and make CPU training deterministic.

        Yields ``(seed, root_dir)``: the seed used (also stored as ``seed_``) and a
        temporary directory for anything a Trainer insists on writing (removed afterwards,
        so nothing such as ``lightning_logs/`` appears in the working directory).
        """
        seed = resolve_seed(self.random_state)
        self.seed_ = seed
        on_cpu = self._device().type == "cpu"
        with contextlib.ExitStack() as stack:
            root = stack.enter_context(tempfile.TemporaryDirectory(prefix="titans_ts_"))
            stack.enter_context(quiet_lightning(bool(self.verbose)))
            if on_cpu:
                stack.enter_context(deterministic_algorithms(True))
            seed_everything(seed)
            yield seed, root

    def _make_fit_trainer(
        self, root_dir: str, has_validation: bool, max_time: float | None
    ) -> tuple[Any, Any, Any]:
        """Trainer for ``fit`` with the loss history and, with a validation split, the
        in-memory best-weights keeper and early stopping on ``val_loss`` (``patience``).

        Returns ``(trainer, history, best_or_None)``; uses the estimator's ``max_epochs``,
        ``patience`` and ``gradient_clip_val``, and ``max_time`` (seconds; ``None``: no
        limit; the estimator's, or a share of it when one fit trains several networks).
        When ``max_time`` runs out mid-epoch, Lightning still runs that epoch's
        validation, so the best weights include the partial epoch.
        """
        from titans_ts.training.lightning import BestWeights, LossHistory

        history = LossHistory()
        callbacks: list[Any] = [history]
        best = None
        if has_validation:
            from lightning.pytorch.callbacks import EarlyStopping

            best = BestWeights("val_loss")
            callbacks += [
                best,
                EarlyStopping("val_loss", patience=self.patience, mode="min", verbose=False),
            ]
        trainer = self._make_trainer(
            max_epochs=self.max_epochs,
            max_time=max_time,
            root_dir=root_dir,
            callbacks=callbacks,
            gradient_clip_val=self.gradient_clip_val,
            has_validation=has_validation,
        )
        return trainer, history, best

    def _make_trainer(
        self,
        *,
        max_epochs: int,
        root_dir: str,
        max_time: float | None = None,
        callbacks: Sequence[Any] = (),
        gradient_clip_val: float | None = None,
        has_validation: bool = True,
    ) -> Any:
        """A Lightning ``Trainer``: silent unless ``verbose`` (progress bar and model
        summary only then), no logger, no checkpoint files, everything under ``root_dir``,
        deterministic on CPU, on ``accelerator``/``devices``."""
        import lightning.pytorch as pl

        on_cpu = self._device().type == "cpu"
        return pl.Trainer(
            accelerator=self.accelerator,
            devices=self.devices,
            max_epochs=max_epochs,
            max_time=None if max_time is None else datetime.timedelta(seconds=float(max_time)),
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=bool(self.verbose),
            enable_model_summary=bool(self.verbose),
            callbacks=list(callbacks),
            default_root_dir=root_dir,
            deterministic=True if on_cpu else "warn",
            gradient_clip_val=gradient_clip_val,
            num_sanity_val_steps=0,
            limit_val_batches=None if has_validation else 0,
            log_every_n_steps=1,
        )
