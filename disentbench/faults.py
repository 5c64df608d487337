"""Named fault points for crash-consistency tests (docs/reliability.md); inert unless a test arms one.

`fault_point(name)` marks a place where a crash must lose nothing. It does nothing unless the
environment variable DISENTBENCH_FAULT (read once, at import) or `arm()` names that point:

    DISENTBENCH_FAULT=NAME[:COUNT[:ACTION]]

At the COUNT-th hit of NAME in this process (default 1) the ACTION happens: `kill` (default) sends
SIGKILL to this process, as a power cut or the kernel's out-of-memory killer would; `enospc` raises
OSError(ENOSPC), as a full disk would. The normal path costs one test of a module-level boolean.
Worker processes inherit the variable, and each counts its own hits.
"""

from __future__ import annotations

import errno
import os
import signal

ENV = "DISENTBENCH_FAULT"
ACTIONS = ("kill", "enospc")

#: every named point, and where it is (the tests kill the run at each one)
POINTS: dict[str, str] = {
    "train_step": "inside the training loop, right after a step's update (bench/training.py)",
    "after_log": "a logging step's train_log.csv row written, its checkpoint not yet (bench/training.py)",
    "after_checkpoint": "a periodic checkpoint written, the next train_log.csv row not yet (bench/training.py)",
    "write:checkpoint": "a checkpoint's temporary file written, not yet renamed over the old one",
    "scoring": "the final scores of a cell computed, metric by metric, scores.json not yet written",
    "write:scores": "scores.json's temporary file written, not yet renamed",
    "write:runs_csv": "runs.csv's temporary file written, not yet renamed",
    "write:leaderboard": "a leaderboard file's (leaderboard.md/.csv) temporary file written, not yet renamed",
    "write:report": "report.html's temporary file written, not yet renamed",
    "write:curve": "curve.csv's or curves.csv's temporary file written, not yet renamed",
    "curve_point": "a learning-curve point scored from its kept checkpoint, not yet in curve.csv",
    "rescore": "`rescore`: a cell's new scores.json written, the other cells and runs.csv not yet",
}

#: the kind of file an atomic write replaces, by file name (the `write:KIND` points)
_KINDS = {
    "scores.json": "scores",
    "runs.csv": "runs_csv",
    "leaderboard.md": "leaderboard",
    "leaderboard.csv": "leaderboard",
    "report.html": "report",
    "curve.csv": "curve",
    "curves.csv": "curve",
}


def parse(spec: str) -> tuple[str, int, str] | None:
    """`NAME[:COUNT[:ACTION]]` -> (name, count, action); None for an empty spec."""
    spec = spec.strip()
    if not spec:
        return None
    parts = spec.split(":")
    if parts[0] == "write" and len(parts) > 1:  # the write:KIND names hold a colon themselves
        parts = [f"write:{parts[1]}", *parts[2:]]
    name, count, action = parts[0], int(parts[1]) if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else "kill"
    if name not in POINTS or count < 1 or action not in ACTIONS:
        raise ValueError(f"{ENV}={spec!r}: want NAME[:COUNT[:ACTION]], NAME one of {', '.join(POINTS)}")
    return name, count, action


class _Armed:
    def __init__(self, target: tuple[str, int, str] | None):
        self.target = target
        self.hits = 0


_STATE = _Armed(parse(os.environ.get(ENV, "")))
#: True while a point is armed: callers with work to do before `fault_point` test this first
ARMED = _STATE.target is not None


def arm(spec: str | None) -> None:
    """Arm `spec` (NAME[:COUNT[:ACTION]]) in this process, or disarm with None; hits count from zero."""
    global _STATE, ARMED
    _STATE = _Armed(parse(spec or ""))
    ARMED = _STATE.target is not None


def file_kind(name: str) -> str:
    """The `write:KIND` kind of a file name: checkpoint (*.pt), scores, runs_csv, leaderboard, report,
    curve, or file."""
    return "checkpoint" if name.endswith(".pt") else _KINDS.get(name, "file")


def fault_point(name: str, path: str | os.PathLike | None = None) -> None:
    """Crash here if this point is armed and this is its COUNT-th hit; else nothing."""
    if not ARMED or _STATE.target[0] != name:
        return
    _STATE.hits += 1
    if _STATE.hits != _STATE.target[1]:
        return
    if _STATE.target[2] == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), None if path is None else str(path))
    os.kill(os.getpid(), signal.SIGKILL)
