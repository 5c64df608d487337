"""Atomic file writes: temporary file in the same folder, flush + fsync, rename over the target.

A reader (or a run killed half-way) therefore sees either the old file or the new one, never a
truncated mix. The file gets the permissions a plain `open(path, "w")` would give it (0o666 less
the umask), so a results folder shared by a team is readable by the team.
"""

from __future__ import annotations

import glob
import json
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from disentbench import faults
from disentbench.errors import DiskFull, is_disk_full

# Why not tempfile.mkstemp: it creates 0o600 on purpose (a private file in a shared /tmp), and the
# rename carries that mode onto runs.csv, scores.json, checkpoints... Reading the umask to chmod
# afterwards has its own problems: os.umask can only be read by setting it, a process-wide change
# that races with any thread creating a file meanwhile; /proc/self/status exists on Linux only; and
# a chmod would ignore a folder's default ACL. Creating the file with mode 0o666 instead lets the
# kernel apply the umask (or the default ACL) atomically, exactly as for a plain open().
NEW_FILE_MODE = 0o666
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
_TMP_ATTEMPTS = 100


def _owner_tag() -> str:
    """`host~pid` of this process, in its temporary files' names (no dots: the name is split on them)."""
    return f"{socket.gethostname().replace('.', '_')}~{os.getpid()}"


def _create_temp(folder: Path, name: str) -> Path:
    """Create an empty, new (O_EXCL) hidden file next to the target and return its path:
    `.NAME.HOST~PID.TOKEN.tmp`, so a later writer can tell a killed process's leftover."""
    for _ in range(_TMP_ATTEMPTS):
        tmp = folder / f".{name}.{_owner_tag()}.{secrets.token_hex(6)}.tmp"
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
    result has the mode the file was created with: 0o666 less the umask. A full disk (ENOSPC or
    EDQUOT, or any failure of the writer when the folder's device has no space left) raises
    `DiskFull` naming `path`; the old file is left as it was."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _create_temp(path.parent, path.name)
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFull(path) from exc
        raise
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        if faults.ARMED:  # crash-consistency tests: stop between the written file and the rename
            faults.fault_point(f"write:{faults.file_kind(path.name)}", path)
        os.replace(tmp, path)
        _sweep_leftovers(path.parent, path.name)
    except Exception as exc:
        if is_disk_full(exc) or (not isinstance(exc, DiskFull) and _no_space(path.parent)):
            raise DiskFull(path) from exc
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _sweep_leftovers(folder: Path, name: str) -> None:
    """Remove the temporary files of `name` left by killed processes of this host (a SIGKILL between
    the write and the rename leaves one; a checkpoint's can be large)."""
    host = socket.gethostname().replace(".", "_")
    for tmp in folder.glob(f".{glob.escape(name)}.{glob.escape(host)}~*.tmp"):
        pid = tmp.name[len(name) + len(host) + 3 :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            try:
                tmp.unlink()
            except OSError:
                pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _no_space(folder: Path) -> bool:
    """Whether the device holding `folder` is full (a writer such as torch.save reports ENOSPC as a
    RuntimeError without the errno)."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):  # no statvfs on Windows
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
