"""Checksum-verified fetching of dataset files, with a short timeout and atomic writes."""

from __future__ import annotations

import hashlib
import logging
import os
import tarfile
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from zoo.datasets.errors import DatasetUnavailable

log = logging.getLogger("actlab.engine.datasets")
TIMEOUT_S = 15.0


def fetch(url: str, dest: Path, *, md5: str, extract_to: Path | None = None) -> bool:
    """Download `url` to `dest` if its MD5 matches; False (logged) on any failure.

    Failures are not raised here: the caller's `require` reports every missing file at once.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".part")
    try:
        digest = hashlib.md5()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
            while chunk := resp.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != md5:
            log.warning("checksum mismatch for %s: got %s", url, digest.hexdigest())
            return False
        os.replace(tmp, dest)
        if extract_to is not None:
            with tarfile.open(dest) as tar:
                tar.extractall(extract_to, filter="data")
        return True
    except (OSError, tarfile.TarError) as exc:
        log.warning("could not fetch %s: %s", url, exc)
        return False
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _shown(folder: Path) -> str:
    """`<data_dir>/datasets/...`: the folder without the server's own path."""
    parts = folder.parts
    inner = parts[parts.index("datasets") :] if "datasets" in parts else parts[-1:]
    return "<data_dir>/" + "/".join(inner)


def require(
    name: str, folder: Path, paths: Sequence[Path | None], expected: Sequence[str]
) -> list[Path]:
    """Every path, or DatasetUnavailable naming the missing files and the directory."""
    missing = [e for p, e in zip(paths, expected, strict=False) if p is None]
    if missing:
        raise DatasetUnavailable(
            # Relative to the data directory: a message reaches API clients, a path must not.
            f"dataset {name!r} is not available: missing {', '.join(missing)} in "
            f"{_shown(folder)} "
            "(place the files there, or set download: true on a machine that is online)"
        )
    return [p for p in paths if p is not None]
