"""Fixtures for tests that need the real benchmark files.

They are found through ``TITANS_TS_DATA_DIR`` (the shared data folder layout); a test that
needs a missing file is skipped with the reason, never failed.
"""

from __future__ import annotations

import os
import pathlib

import pytest


def _data_root() -> pathlib.Path | None:
    value = os.environ.get("TITANS_TS_DATA_DIR", "").strip()
    return pathlib.Path(value).expanduser() if value else None


@pytest.fixture(scope="session")
def data_root() -> pathlib.Path:
    """The ``TITANS_TS_DATA_DIR`` folder; skips when unset or missing."""
    root = _data_root()
    if root is None:
        pytest.skip("TITANS_TS_DATA_DIR is not set; point it at the shared data folder")
    if not root.is_dir():
        pytest.skip(f"TITANS_TS_DATA_DIR={root} is not a folder")
    return root


@pytest.fixture(scope="session")
def require_file(data_root: pathlib.Path):
    """``require_file("ETT-small/ETTh1.csv")`` returns the path or skips when missing."""

    def _require(*relatives: str) -> pathlib.Path:
        for relative in relatives:
            candidate = data_root / relative
            if candidate.is_file():
                return candidate
        pytest.skip(f"none of {relatives} found under TITANS_TS_DATA_DIR={data_root}")

    return _require
