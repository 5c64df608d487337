"""Stopping cleanly on SIGINT (Ctrl-C) and SIGTERM (what SLURM and Kubernetes send before a kill).

`handling_signals()` is installed by the command-line entry points only (bench.cli, bench.worker),
so a library user keeps Python's default signal behaviour. Under it a signal is recorded and, where
code has said it can stop at a safe point (`deferred()`: the training loop checkpoints at the
current step; the parallel driver waits for its children), it is honoured there; anywhere else it
raises `Interrupted` at once, as Ctrl-C always did. Listeners (`listening()`) hear the signal
first: the parallel driver forwards it to its worker processes.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)
Listener = Callable[[int], None]


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal; a subclass of KeyboardInterrupt, so it passes where Ctrl-C does."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        """128 + the signal number, the shell's convention (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


class _State:
    """The one process-wide record: which signal came, how many safe-point sections are open."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.depth = 0
        self.listeners: list[Listener] = []


_STATE = _State()


def requested() -> int | None:
    """The signal that asked this process to stop, or None."""
    return _STATE.signum


def raise_if_requested() -> None:
    if _STATE.signum is not None:
        raise Interrupted(_STATE.signum)


def _handle(signum: int, frame) -> None:
    if _STATE.signum is not None:
        return  # a repeat (sent directly and forwarded, or a second Ctrl-C) must not break the clean stop
    _STATE.signum = signum
    for listener in list(_STATE.listeners):
        listener(signum)
    if _STATE.depth == 0:
        raise Interrupted(signum)


@contextlib.contextmanager
def handling_signals() -> Iterator[None]:
    """Handle SIGINT and SIGTERM as above for the duration; the previous handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    global _STATE
    _STATE = _State()
    for s in SIGNALS:
        signal.signal(s, _handle)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _STATE = _State()


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A section that polls `requested()` and stops at its own safe point; a signal that came during it
    and was not acted on raises `Interrupted` when the outermost section ends normally."""
    state = _STATE
    state.depth += 1
    try:
        yield
    finally:
        state.depth -= 1
    if state.depth == 0 and state.signum is not None:
        raise Interrupted(state.signum)


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Call `listener(signum)` when a stop signal arrives during the section."""
    state = _STATE
    state.listeners.append(listener)
    try:
        yield
    finally:
        state.listeners.remove(listener)
