"""Where dataset files live, how they are verified and how they are fetched.

Search order: an explicit data_dir (the --data-dir flag), the DISENTBENCH_DATA environment
variable, then the per-user cache directory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from disentbench.bench.atomic import atomic_path
from disentbench.bench.choices import SOURCES, or_list
from disentbench.bench.errors import BenchError


@dataclass(frozen=True)
class RemoteFile:
    """An official dataset file: its name, where to get it, and its checksum."""

    dataset: str
    filename: str
    url: str
    algorithm: str  # "md5" or "sha256"
    digest: str
    size: int | None = None


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "disentbench"


def search_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    dirs: list[Path] = []
    if data_dir:
        dirs.append(Path(data_dir))
    env = os.environ.get("DISENTBENCH_DATA")
    if env:
        dirs.append(Path(env))
    dirs.append(cache_dir())
    return dirs


def find_file(filename: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    for d in search_dirs(data_dir):
        p = d / filename
        if p.is_file():
            return p
    return None


def choose_source(remote: RemoteFile, source: str, data_dir, official, procedural):
    """The dataset for `source`: "procedural" -> procedural(); "official" -> official(path) or a
    one-line error when the file is missing; "auto" -> the official file when found, else procedural()."""
    if source not in SOURCES:
        raise BenchError(f"unknown source {source!r}; choose {or_list(SOURCES)}")
    path = None if source == "procedural" else find_file(remote.filename, data_dir)
    if path is not None:
        return official(path)
    if source == "official":
        raise BenchError(
            f"{remote.filename} not found in --data-dir, $DISENTBENCH_DATA or the cache; "
            f"run `python -m disentbench.datasets download {remote.dataset}` or use --source procedural"
        )
    return procedural()


def file_digest(path: str | os.PathLike, algorithm: str, chunk: int = 1 << 22) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_file(path: str | os.PathLike, remote: RemoteFile) -> None:
    """Raise a one-line BenchError when the file's checksum is not the official one.

    A successful check is remembered next to the file (keyed on size and mtime), so a large file is
    hashed once, on first use, not on every run.
    """
    path = Path(path)
    stat = path.stat()
    stamp = path.with_name(path.name + f".{remote.algorithm}-ok")
    key = f"{remote.digest} {stat.st_size} {stat.st_mtime_ns}"
    try:
        if stamp.read_text().strip() == key:
            return
    except OSError:
        pass
    got = file_digest(path, remote.algorithm)
    if got != remote.digest:
        raise BenchError(
            f"{path}: {remote.algorithm} checksum mismatch (got {got}, expected {remote.digest}); "
            f"the file is corrupt or not the official one: delete it and run "
            f"`python -m disentbench.datasets download {remote.dataset}` or fetch it from {remote.url} "
            f"(or pass --no-verify for a re-packed file)"
        )
    try:
        stamp.write_text(key + "\n")
    except OSError:
        pass  # read-only data directory: we simply hash again next time


def download(remote: RemoteFile, data_dir: str | os.PathLike | None = None, timeout: float = 30.0) -> Path:
    """Fetch an official file into data_dir (or the cache), verify it, and move it into place atomically."""
    target_dir = Path(data_dir) if data_dir else cache_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / remote.filename
    with atomic_path(target) as tmp:  # a failed or corrupt download never replaces anything
        with open(tmp, "wb") as out:
            try:
                with urllib.request.urlopen(remote.url, timeout=timeout) as response:
                    shutil.copyfileobj(response, out, length=1 << 22)
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                reason = getattr(exc, "reason", exc)
                raise BenchError(
                    f"could not download {remote.url} ({reason}); the network is unreachable from here: "
                    f"copy {remote.filename} into {target_dir} by hand, or run without it to use the "
                    f"procedural stand-in"
                ) from None
        got = file_digest(tmp, remote.algorithm)
        if got != remote.digest:
            raise BenchError(
                f"downloaded {remote.filename} has {remote.algorithm} {got}, expected {remote.digest}; "
                f"try again later or fetch it by hand from {remote.url}"
            )
    return target
