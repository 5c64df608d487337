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

from disentbench.atomic import atomic_path
from disentbench.choices import SOURCES, or_list
from disentbench.errors import BenchError


@dataclass(frozen=True)
class RemoteFile:
    """An official dataset file: its name, where to get it, and its checksum."""

    dataset: str
    filename: str
    url: str
    algorithm: str  # "md5" or "sha256"
    #: the published checksum; None when none is known, and the first use then records one
    digest: str | None
    size: int | None = None
    #: the folder the reference library keeps this file in (e.g. "small_norb"), searched as well
    subdir: str = ""

    def how_to_get(self) -> str:
        """What a one-line error tells the user to do about a missing or bad file."""
        return f"run `python -m disentbench.datasets download {self.dataset}` or fetch it from {self.url}"


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


def find_file(filename: str, data_dir: str | os.PathLike | None = None, subdir: str = "") -> Path | None:
    """The first `filename` in the search directories (each also in its `subdir`, the reference
    library's layout, so a folder prepared for it can be used as it is)."""
    for d in search_dirs(data_dir):
        for p in (d / filename, d / subdir / filename) if subdir else (d / filename,):
            if p.is_file():
                return p
    return None


def not_found(remote: RemoteFile, data_dir: str | os.PathLike | None = None, needed_by: str = "") -> BenchError:
    """The one-line error for a missing official file: its name, where it was looked for, how to get it."""
    where = ", ".join(str(d) for d in search_dirs(data_dir))
    return BenchError(
        f"{needed_by or remote.dataset}: {remote.filename} not found (looked in {where}); {remote.how_to_get()}, "
        f"and put it in --data-dir, $DISENTBENCH_DATA or the cache"
    )


def require_file(remote: RemoteFile, source: str, data_dir: str | os.PathLike | None = None) -> Path:
    """The official file of a dataset that has no procedural stand-in, or a one-line error."""
    if source not in SOURCES:
        raise BenchError(f"unknown source {source!r}; choose {or_list(SOURCES)}")
    if source == "procedural":
        raise BenchError(
            f"{remote.dataset} has no procedural stand-in: it needs the official file {remote.filename} "
            f"({remote.how_to_get()}); drop --source procedural for it"
        )
    path = find_file(remote.filename, data_dir, remote.subdir)
    if path is None:
        raise not_found(remote, data_dir)
    return path


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


def verify_file(path: str | os.PathLike, remote: RemoteFile) -> str:
    """The file's checksum, or a one-line BenchError when it is not the official one.

    A successful check is remembered next to the file (keyed on size and mtime), so a large file is
    hashed once, on first use, not on every run. Without a published checksum the first use records
    one (`record_checksum`) and later uses are compared with it.
    """
    if remote.digest is None:
        return record_checksum(path, remote)
    path = Path(path)
    stat = path.stat()
    stamp = path.with_name(path.name + f".{remote.algorithm}-ok")
    key = f"{remote.digest} {stat.st_size} {stat.st_mtime_ns}"
    try:
        if stamp.read_text().strip() == key:
            return remote.digest
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
    return remote.digest


def record_checksum(path: str | os.PathLike, remote: RemoteFile) -> str:
    """Checksum on first use, for files whose publisher gives none: the digest is written next to the
    file (`<file>.<algorithm>-recorded`, with its size and mtime) and every later use whose size or
    mtime differs is hashed again and compared with it, so a file that changed or got truncated
    after its first use is a one-line error instead of silently different data."""
    path = Path(path)
    stat = path.stat()
    stamp = path.with_name(path.name + f".{remote.algorithm}-recorded")
    try:
        recorded, size, mtime = stamp.read_text().split()
        if (int(size), int(mtime)) == (stat.st_size, stat.st_mtime_ns):
            return recorded
    except (OSError, ValueError):
        recorded = None
    got = file_digest(path, remote.algorithm)
    if recorded is not None and got != recorded:
        raise BenchError(
            f"{path}: {remote.algorithm} {got} differs from {recorded}, recorded on its first use in {stamp.name}: "
            f"the file changed since; if it is corrupt, {remote.how_to_get()}; if you replaced it on purpose, "
            f"delete {stamp}"
        )
    try:
        stamp.write_text(f"{got} {stat.st_size} {stat.st_mtime_ns}\n")
    except OSError:
        pass  # read-only data directory: nothing recorded, hashed again next time
    return got


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
                    f"copy {remote.filename} into {target_dir} by hand (dsprites and shapes3d also run "
                    f"without it, on their procedural stand-ins)"
                ) from None
        got = file_digest(tmp, remote.algorithm)
        if remote.digest is not None and got != remote.digest:
            raise BenchError(
                f"downloaded {remote.filename} has {remote.algorithm} {got}, expected {remote.digest}; "
                f"try again later or fetch it by hand from {remote.url}"
            )
    _remember(target, remote, got)
    return target


def _remember(path: Path, remote: RemoteFile, digest: str) -> None:
    """Write the stamp a verification would write, for a file just hashed (no second pass over it)."""
    stat = path.stat()
    suffix = "recorded" if remote.digest is None else "ok"
    try:
        path.with_name(f"{path.name}.{remote.algorithm}-{suffix}").write_text(
            f"{digest} {stat.st_size} {stat.st_mtime_ns}\n"
        )
    except OSError:
        pass
