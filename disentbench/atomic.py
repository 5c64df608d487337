"""Atomic file writes: temporary file in the same folder, flush + fsync, rename over the target.

A reader (or a run killed half-way) therefore sees either the old file or the new one, never a
truncated mix. The file gets the permissions a plain `open(path, "w")` would give it (0o666 less
the umask), so a results folder shared by a team is readable by the team.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Why not tempfile.mkstemp: it creates 0o600 on purpose (a private file in a shared /tmp), and the
# rename carries that mode onto runs.csv, scores.json, checkpoints... Reading the umask to chmod
# afterwards has its own problems: os.umask can only be read by setting it, a process-wide change
# that races with any thread creating a file meanwhile; /proc/self/status exists on Linux only; and
# a chmod would ignore a folder's default ACL. Creating the file with mode 0o666 instead lets the
# kernel apply the umask (or the default ACL) atomically, exactly as for a plain open().
NEW_FILE_MODE = 0o666
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
_TMP_ATTEMPTS = 100


def _create_temp(folder: Path, name: str) -> Path:
    """Create an empty, new (O_EXCL) hidden file next to the target and return its path."""
    for _ in range(_TMP_ATTEMPTS):
        tmp = folder / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, _TMP_FLAGS, NEW_FILE_MODE)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"no unused temporary name for {folder / name} after {_TMP_ATTEMPTS} tries")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces `path` atomically, on error it is removed.

    Whatever writes to the temporary path (open, pandas, torch.save) reuses the file, so the
    result has the mode the file was created with: 0o666 less the umask."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp(path.parent, path.name)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
