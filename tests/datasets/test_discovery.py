"""Discovery order, cache location, downloads from a local HTTP server (never the internet)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import pathlib
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from titans_ts.datasets.discovery import (
    cache_dir,
    data_dir,
    download_file,
    resolve_data_path,
    sha256_file,
)

REL = "ETT-small/toy.csv"
PAYLOAD = b"date,a\n2020-01-01 00:00:00,1.0\n"


@pytest.fixture
def isolated_env(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """No data dir set, cache under tmp_path/cache."""
    monkeypatch.delenv("TITANS_TS_DATA_DIR", raising=False)
    monkeypatch.setenv("TITANS_TS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def _write(path: pathlib.Path, data: bytes = PAYLOAD) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def http_root(tmp_path: pathlib.Path) -> Iterator[tuple[str, pathlib.Path]]:
    """Serve tmp_path/www on 127.0.0.1 from a thread; yields (base_url, folder)."""
    root = tmp_path / "www"
    root.mkdir()

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------- folders


def test_cache_dir_precedence(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TITANS_TS_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("TITANS_TS_CACHE_DIR")
    assert cache_dir() == tmp_path / "xdg" / "titans_ts"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "titans_ts"


def test_data_dir_unset_and_set(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TITANS_TS_DATA_DIR", raising=False)
    assert data_dir() is None
    monkeypatch.setenv("TITANS_TS_DATA_DIR", "")
    assert data_dir() is None
    monkeypatch.setenv("TITANS_TS_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.setenv("MY_DATA", str(tmp_path / "other"))
    assert data_dir("MY_DATA") == tmp_path / "other"


# --------------------------------------------------------------------------- lookup order


def test_order_explicit_then_env_then_cache(
    isolated_env: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp = isolated_env
    in_cache = _write(tmp / "cache" / REL)
    assert resolve_data_path(REL, download=False) == in_cache

    in_env = _write(tmp / "env" / REL)
    monkeypatch.setenv("TITANS_TS_DATA_DIR", str(tmp / "env"))
    assert resolve_data_path(REL, download=False) == in_env

    explicit_dir = _write(tmp / "explicit" / REL)
    assert resolve_data_path(REL, path=tmp / "explicit", download=False) == explicit_dir
    # explicit file, with a different name, is used as is
    explicit_file = _write(tmp / "somewhere" / "my.csv")
    assert resolve_data_path(REL, path=explicit_file, download=False) == explicit_file
    # a folder holding the bare file name also works
    bare = _write(tmp / "flat" / "toy.csv")
    assert resolve_data_path(REL, path=tmp / "flat", download=False) == bare


def test_custom_env_var(isolated_env: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = _write(isolated_env / "mine" / REL)
    monkeypatch.setenv("MY_DATA", str(isolated_env / "mine"))
    assert resolve_data_path(REL, env_var="MY_DATA", download=False) == found


def test_alternatives_tried_in_each_location(isolated_env: pathlib.Path) -> None:
    plain = _write(isolated_env / "cache" / "weather" / "weather.csv")
    got = resolve_data_path(
        "weather/weather.csv.gz", alternatives=["weather/weather.csv"], download=False
    )
    assert got == plain


def test_explicit_path_miss_does_not_fall_back(
    isolated_env: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(isolated_env / "env" / REL)
    monkeypatch.setenv("TITANS_TS_DATA_DIR", str(isolated_env / "env"))
    empty = isolated_env / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError) as info:
        resolve_data_path(REL, path=empty, download=False)
    message = str(info.value)
    assert str(empty / REL) in message
    assert "path=" in message


def test_not_found_message_lists_every_place(
    isolated_env: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TITANS_TS_DATA_DIR", str(isolated_env / "env"))
    with pytest.raises(FileNotFoundError) as info:
        resolve_data_path(REL, download=False)
    message = str(info.value)
    assert str(isolated_env / "env" / REL) in message
    assert str(isolated_env / "cache" / REL) in message
    assert "TITANS_TS_DATA_DIR" in message and "path=" in message
    assert "No download URL" in message


def test_not_found_when_env_unset_says_so(isolated_env: pathlib.Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"\$TITANS_TS_DATA_DIR \(not set\)"):
        resolve_data_path(REL, url="http://127.0.0.1:9/x.csv", download=False)


def test_absolute_relative_rejected(isolated_env: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="path=..."):
        resolve_data_path(isolated_env / "abs.csv")


# --------------------------------------------------------------------------- downloads


def test_download_into_cache_with_checksum(
    isolated_env: pathlib.Path, http_root: tuple[str, pathlib.Path]
) -> None:
    base, root = http_root
    _write(root / "toy.csv")
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    got = resolve_data_path(REL, url=f"{base}/toy.csv", sha256=digest.upper())
    assert got == isolated_env / "cache" / REL
    assert got.read_bytes() == PAYLOAD
    assert sha256_file(got) == digest
    assert [p.name for p in got.parent.iterdir()] == ["toy.csv"]  # no temp file left behind
    # second call finds the cached file without the server
    (root / "toy.csv").unlink()
    assert resolve_data_path(REL, url=f"{base}/toy.csv", sha256=digest) == got


def test_download_checksum_mismatch_deletes_and_names_digests(
    isolated_env: pathlib.Path, http_root: tuple[str, pathlib.Path]
) -> None:
    base, root = http_root
    _write(root / "toy.csv")
    wrong = "0" * 64
    actual = hashlib.sha256(PAYLOAD).hexdigest()
    with pytest.raises(ValueError) as info:
        resolve_data_path(REL, url=f"{base}/toy.csv", sha256=wrong)
    assert wrong in str(info.value) and actual in str(info.value)
    target_dir = isolated_env / "cache" / "ETT-small"
    assert not (target_dir / "toy.csv").exists()
    assert list(target_dir.iterdir()) == []  # temp file removed too


def test_download_http_error_becomes_file_not_found(
    isolated_env: pathlib.Path, http_root: tuple[str, pathlib.Path]
) -> None:
    base, _ = http_root
    with pytest.raises(FileNotFoundError) as info:
        resolve_data_path(REL, url=f"{base}/missing.csv")
    message = str(info.value)
    assert "404" in message and f"{base}/missing.csv" in message
    assert not (isolated_env / "cache" / REL).exists()


def test_download_file_rejects_bad_inputs(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="scheme 'ftp'"):
        download_file("ftp://example.org/x.csv", tmp_path / "x.csv")
    with pytest.raises(ValueError, match="64 hexadecimal"):
        download_file("http://127.0.0.1:9/x.csv", tmp_path / "x.csv", sha256="abc")


def test_package_import_is_light() -> None:
    code = (
        "import sys, titans_ts.datasets as d; "
        "heavy = [m for m in ('torch', 'numpy', 'pandas', 'polars') if m in sys.modules]; "
        "assert not heavy, heavy; "
        "assert callable(d.resolve_data_path)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=pathlib.Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
