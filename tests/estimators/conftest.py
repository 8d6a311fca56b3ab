"""Shared fixtures: tiny CPU settings and small frames, fitted models reused per module.

TINY is the one table of fast constructor settings (each odd choice commented); fits with
it take a few seconds on 2 shared cores.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np
import pandas as pd
import pytest

from titans_ts.datasets import make_synthetic, to_long
from titans_ts.estimators import TitansForecaster

TINY: dict = {
    "horizon": 6,
    "lookback": 24,
    "d_model": 8,  # smallest width with an even head width for rotary embeddings (2 heads)
    "n_heads": 2,
    "n_layers": 1,
    "n_persistent": 2,
    "memory_chunk_size": 8,  # >= the 4 patch tokens: one memory chunk per window
    "patch_len": 8,
    "stride": 8,
    "max_epochs": 2,
    "windows_per_epoch": 96,  # 3 batches per epoch
    "batch_size": 32,
    "validation_size": 12,
    "patience": 1,
    # 148 training steps are ~25 horizons of 6: train the network all the same (the
    # default min_train_horizons=32 would ship the linear start; tested on its own)
    "min_train_horizons": 0,
    "accelerator": "cpu",  # bit-identical fits are promised on CPU only
    "random_state": 0,
}


def tiny(**changes) -> TitansForecaster:
    """A TitansForecaster with TINY settings, some overridden."""
    return TitansForecaster(**{**TINY, **changes})


@pytest.fixture(scope="session")
def wide_df() -> pd.DataFrame:
    """Hourly wide frame: ``date`` + 2 variables ``x0``, ``OT``, 160 rows."""
    return make_synthetic(n_steps=160, n_channels=2, seed=1)


@pytest.fixture(scope="session")
def long_df(wide_df: pd.DataFrame) -> pd.DataFrame:
    """The same data in long layout (``unique_id, ds, y``)."""
    return to_long(wide_df)


@pytest.fixture(scope="session")
def fitted_wide(wide_df: pd.DataFrame) -> TitansForecaster:
    """TINY model with quantiles fit on the pandas wide frame (do not mutate)."""
    return tiny(quantiles=[0.1, 0.5, 0.9]).fit(wide_df)


@pytest.fixture(scope="session")
def fitted_long(long_df: pd.DataFrame) -> TitansForecaster:
    """TINY model with quantiles fit on the pandas long frame (do not mutate)."""
    return tiny(quantiles=[0.1, 0.5, 0.9]).fit(long_df)


@pytest.fixture(scope="session")
def make_tiny():
    """Factory: ``make_tiny(**changes)`` -> TINY TitansForecaster."""
    return tiny


@pytest.fixture(scope="session")
def helpers():
    """Namespace of conversion/assertion helpers (test modules cannot import conftest)."""

    class _Helpers:
        to_polars = staticmethod(to_polars)
        polars_to_pandas = staticmethod(polars_to_pandas)
        assert_frames_equal = staticmethod(assert_frames_equal)
        ett_path = staticmethod(ett_path)

    return _Helpers


def to_polars(frame: pd.DataFrame):
    """pandas -> polars without pyarrow (column by column through NumPy)."""
    pl = pytest.importorskip("polars")
    return pl.DataFrame({c: frame[c].to_numpy() for c in frame.columns})


def polars_to_pandas(frame) -> pd.DataFrame:
    """polars -> pandas without pyarrow."""
    return pd.DataFrame({c: frame[c].to_numpy() for c in frame.columns})


def ett_path() -> pathlib.Path | None:
    root = os.environ.get("TITANS_TS_DATA_DIR", "").strip()
    if not root:
        return None
    path = pathlib.Path(root).expanduser() / "ETT-small" / "ETTh1.csv"
    return path if path.is_file() else None


def assert_frames_equal(a: pd.DataFrame, b: pd.DataFrame, *, exact: bool = True) -> None:
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    for c in a.columns:
        x, y = a[c].to_numpy(), b[c].to_numpy()
        if np.issubdtype(np.asarray(x).dtype, np.floating):
            if exact:
                np.testing.assert_array_equal(x, y, err_msg=c)
            else:
                np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6, err_msg=c)
        else:
            assert list(pd.Series(x).astype(str)) == list(pd.Series(y).astype(str)), c
