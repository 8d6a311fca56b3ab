"""Probe: validate and keep an exponential moving average (EMA) of the classifier's weights.

Runs ``recipes/genomics.py`` unchanged except that every fit with a validation split also
carries Lightning's :class:`~lightning.pytorch.callbacks.EMAWeightAveraging` (updated after
every optimiser step): the validation loss each epoch is the averaged weights', and the
best-weights keeper stores the averaged weights. Training itself is untouched (the raw
weights and their training losses are the same as without it, same seed), so a run pairs
exactly with the plain recipe run of the same seed. Not a library option: measured in
``docs/results.md`` (session 19) without a test-MCC gain.

    python benchmarks/genomics_ema_probe.py --decay 0.999 -- --device cpu --threads 1 \\
        --no-baseline --tasks tf/0 --set kmer_k=6 --set position_embedding=False \\
        --set max_time=1500 --seeds 0 --save-proba --out results/ema19 --tag tf0_k6_ema999_s0
"""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import EMAWeightAveraging

from titans_ts.estimators import _base
from titans_ts.training.lightning import BestWeights

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "genomics.py"


class EpochEndBestWeights(BestWeights):
    """:class:`BestWeights` that reads ``val_loss`` at ``on_validation_epoch_end``, i.e. while
    the EMA callback (placed after it) still has the averaged weights swapped in."""

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        BestWeights.on_validation_end(self, trainer, pl_module)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        pass


def install(decay: float) -> None:
    """Make every estimator fit with validation keep the best EMA weights."""
    make = _base.TitansBaseEstimator._make_fit_trainer

    def with_ema(self: Any, root_dir: str, has_validation: bool, max_time: float | None):
        trainer, history, best = make(self, root_dir, has_validation, max_time)
        if best is not None:
            callbacks = trainer.callbacks
            at = callbacks.index(best)
            best = EpochEndBestWeights("val_loss")
            callbacks[at : at + 1] = [best, EMAWeightAveraging(decay=decay)]
        return trainer, history, best

    _base.TitansBaseEstimator._make_fit_trainer = with_ema


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decay", type=float, default=0.999, help="EMA decay per step")
    parser.add_argument("recipe_args", nargs=argparse.REMAINDER,
                        help="arguments of recipes/genomics.py, after --")
    args = parser.parse_args(argv)
    if not 0.0 < args.decay < 1.0:
        parser.error(f"--decay must be in (0, 1), got {args.decay}")
    install(args.decay)
    rest = args.recipe_args[1:] if args.recipe_args[:1] == ["--"] else args.recipe_args
    sys.argv = [str(RECIPE), *rest]
    runpy.run_path(str(RECIPE), run_name="__main__")


if __name__ == "__main__":
    main()
