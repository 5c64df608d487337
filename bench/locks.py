"""Per-cell locks, so two runners on one results folder never run the same cell twice.

A lock is a file created with O_EXCL holding the owner's host, pid and start time; its mtime is a
heartbeat refreshed while the cell trains. A lock is stale (and taken over, with a warning) when
its owner process is gone on this host, or when its heartbeat is older than `stale_seconds`
(an owner on another host of a cluster that died without cleaning up).
"""

from __future__ import annotations

import json
import os
import socket
import time
import warnings
from pathlib import Path

LOCK = "lock"
STALE_SECONDS = 30 * 60


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CellLock:
    def __init__(self, cell_dir: Path, stale_seconds: float = STALE_SECONDS):
        self.path = Path(cell_dir) / LOCK
        self.stale_seconds = stale_seconds
        self.held = False

    def _owner(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def is_stale(self) -> bool:
        owner = self._owner()
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return True
        if owner is None:
            return age > 60  # a lock file being written right now is younger than that
        if owner.get("host") == socket.gethostname():
            return not _pid_alive(int(owner.get("pid", -1)))
        return age > self.stale_seconds

    def acquire(self) -> bool:
        """True if this process now holds the lock; False if a live runner holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)  # umask applies, no x bits
            except FileExistsError:
                if not self.is_stale():
                    return False
                warnings.warn(f"taking over the stale lock {self.path} ({self._owner()})", RuntimeWarning, stacklevel=2)
                try:
                    self.path.unlink()
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as f:
                json.dump({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}, f)
            self.held = True
            return True
        return False

    def heartbeat(self) -> None:
        if self.held:
            try:
                os.utime(self.path)
            except FileNotFoundError:
                pass

    def release(self) -> None:
        if self.held:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            self.held = False

    def __enter__(self) -> CellLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
