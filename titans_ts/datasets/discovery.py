"""Find local copies of data files, or download them once into a user cache.

Lookup order used by :func:`resolve_data_path` (first hit wins):

1. ``path=`` given explicitly: a file (used as is) or a directory containing ``relative``
   (or containing ``relative``'s file name directly). An explicit path that does not hold the
   file is an error; the function never silently falls back to another location.
2. ``$TITANS_TS_DATA_DIR/relative`` (the environment variable name is configurable).
3. ``<cache>/relative`` where ``<cache>`` is :func:`cache_dir`: ``$TITANS_TS_CACHE_DIR``,
   else ``$XDG_CACHE_HOME/titans_ts``, else ``~/.cache/titans_ts``.
4. If ``download`` and a ``url`` is given: download into ``<cache>/relative`` atomically
   (temporary file in the same folder, then rename), verifying ``sha256`` when given.

Only the standard library (``urllib``) is used for downloads. Nothing is read from the
environment at import time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence

__all__ = [
    "CACHE_ENV_VAR",
    "DATA_ENV_VAR",
    "cache_dir",
    "data_dir",
    "download_file",
    "resolve_data_path",
    "sha256_file",
]

logger = logging.getLogger(__name__)

DATA_ENV_VAR = "TITANS_TS_DATA_DIR"
"""Environment variable naming a folder laid out like the shared data folder."""

CACHE_ENV_VAR = "TITANS_TS_CACHE_DIR"
"""Environment variable overriding the download cache folder."""

_CHUNK_BYTES = 1 << 20
_ALLOWED_SCHEMES = ("http", "https", "file")


def _expand(value: str | os.PathLike) -> pathlib.Path:
    return pathlib.Path(os.path.expandvars(os.fspath(value))).expanduser()


def data_dir(env_var: str = DATA_ENV_VAR) -> pathlib.Path | None:
    """Return the data folder named by ``$env_var``, or ``None`` when it is unset or empty.

    The folder is not required to exist; ``~`` and ``$VARS`` in the value are expanded.
    """
    value = os.environ.get(env_var, "").strip()
    return _expand(value) if value else None


def cache_dir() -> pathlib.Path:
    """Return the user cache folder for downloads (not created here).

    ``$TITANS_TS_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/titans_ts``, else
    ``~/.cache/titans_ts``.
    """
    value = os.environ.get(CACHE_ENV_VAR, "").strip()
    if value:
        return _expand(value)
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg:
        return _expand(xdg) / "titans_ts"
    return pathlib.Path.home() / ".cache" / "titans_ts"


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_sha256(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    if not isinstance(sha256, str):
        raise TypeError(f"sha256 must be a hex string or None, got {type(sha256).__name__}")
    normalized = sha256.strip().lower()
    if len(normalized) != 64 or any(c not in "0123456789abcdef" for c in normalized):
        raise ValueError(
            f"sha256 must be 64 hexadecimal characters (as printed by `sha256sum`), got {sha256!r}"
        )
    return normalized


def download_file(
    url: str,
    destination: str | os.PathLike,
    *,
    sha256: str | None = None,
    timeout: float = 60.0,
) -> pathlib.Path:
    """Download ``url`` to ``destination`` atomically, optionally verifying its SHA-256.

    The body is streamed into a temporary file next to ``destination`` and renamed into place
    only when complete (and, if ``sha256`` is given, only when its digest matches), so an
    interrupted or corrupt download never leaves a file at ``destination``.

    Args:
        url: ``http``, ``https`` or ``file`` URL.
        destination: final file path; parent folders are created.
        sha256: expected hex digest, or ``None`` to skip verification.
        timeout: socket timeout in seconds.

    Returns:
        ``destination`` as a :class:`pathlib.Path`.

    Raises:
        ValueError: unsupported URL scheme, malformed ``sha256``, or digest mismatch (the
            downloaded file is deleted; the message names the expected and actual digests).
        urllib.error.URLError / OSError: network or file-system failures, unchanged.
    """
    scheme = urllib.parse.urlparse(url).scheme.lower()
    if scheme not in _ALLOWED_SCHEMES:
        raise ValueError(
            f"cannot download {url!r}: scheme {scheme!r} is not supported; "
            f"use one of {', '.join(_ALLOWED_SCHEMES)}"
        )
    expected = _check_sha256(sha256)
    destination = pathlib.Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".part", dir=destination.parent
    )
    tmp_path = pathlib.Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            for block in iter(lambda: resp.read(_CHUNK_BYTES), b""):
                digest.update(block)
                out.write(block)
        actual = digest.hexdigest()
        if expected is not None and actual != expected:
            raise ValueError(
                f"checksum mismatch for {url}: expected sha256 {expected}, got {actual}; "
                "the downloaded file was deleted. The upstream file may have changed: "
                "download it yourself and pass path=... or set TITANS_TS_DATA_DIR."
            )
        os.replace(tmp_path, destination)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    logger.info("downloaded %s to %s (sha256 %s)", url, destination, actual)
    return destination


def _candidates_in(folder: pathlib.Path, names: Sequence[pathlib.Path]) -> list[pathlib.Path]:
    return [folder / name for name in names]


def resolve_data_path(
    relative: str | os.PathLike,
    *,
    path: str | os.PathLike | None = None,
    url: str | None = None,
    sha256: str | None = None,
    download: bool = True,
    env_var: str = DATA_ENV_VAR,
    alternatives: Sequence[str | os.PathLike] = (),
) -> pathlib.Path:
    """Locate a data file, downloading it into the user cache as a last resort.

    Args:
        relative: path of the file relative to a data folder, e.g. ``"ETT-small/ETTh1.csv"``.
            Must be relative.
        path: explicit file, or folder containing ``relative`` (or its bare file name).
            When given, it is the only place searched, and a miss raises.
        url: where to download the file from when it is not found locally.
        sha256: expected hex digest of the download (local files are not hashed).
        download: allow downloading (needs ``url``).
        env_var: environment variable naming the data folder.
        alternatives: other relative names accepted for the same file at each location (e.g.
            ``"weather/weather.csv"`` next to ``"weather/weather.csv.gz"``), tried after
            ``relative`` in the same folder. Downloads always go to ``relative``.

    Returns:
        The path of an existing file.

    Raises:
        ValueError: ``relative`` is absolute, or a download's checksum does not match.
        FileNotFoundError: nothing found; the message lists every place looked at and how to
            provide the file.
    """
    rel = pathlib.Path(relative)
    names = [rel, *(pathlib.Path(a) for a in alternatives)]
    for name in names:
        if name.is_absolute() or name.anchor:
            raise ValueError(
                f"relative must be a path inside a data folder, got absolute {str(name)!r}; "
                "pass an absolute file or folder as path=... instead"
            )
    looked: list[str] = []

    if path is not None:
        explicit = _expand(path)
        if explicit.is_file():
            logger.info("using %s (explicit path)", explicit)
            return explicit
        candidates = _candidates_in(explicit, names)
        candidates += [explicit / n.name for n in names if explicit / n.name not in candidates]
        for candidate in candidates:
            if candidate.is_file():
                logger.info("using %s (explicit path)", candidate)
                return candidate
        where = "\n".join(f"  - {c}" for c in [explicit, *candidates])
        raise FileNotFoundError(
            f"path={str(path)!r} does not contain {str(rel)!r}. Looked at:\n{where}\n"
            f"Pass path= pointing at the file itself or at a folder containing {str(rel)!r}."
        )

    env_folder = data_dir(env_var)
    if env_folder is None:
        looked.append(f"${env_var} (not set)")
    else:
        for candidate in _candidates_in(env_folder, names):
            if candidate.is_file():
                logger.info("using %s (from $%s)", candidate, env_var)
                return candidate
            looked.append(f"{candidate} (from ${env_var})")

    cache = cache_dir()
    for candidate in _candidates_in(cache, names):
        if candidate.is_file():
            logger.info("using %s (cache)", candidate)
            return candidate
        looked.append(f"{candidate} (cache)")

    download_note = ""
    if download and url is not None:
        target = cache / rel
        try:
            return download_file(url, target, sha256=sha256)
        except (urllib.error.URLError, OSError) as err:
            download_note = f"Downloading {url} to {target} failed: {err}\n"
    elif url is None:
        download_note = "No download URL is known for this file.\n"
    else:
        download_note = f"Download from {url} was disabled (download=False).\n"

    where = "\n".join(f"  - {entry}" for entry in looked)
    raise FileNotFoundError(
        f"could not find data file {str(rel)!r}. Looked at:\n{where}\n{download_note}"
        f"Provide it by setting {env_var} to a folder containing {str(rel)!r}, "
        f"by passing path=... (the file or its folder), or by placing it under {cache}."
    )

