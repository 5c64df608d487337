"""The errors every layer raises (the ground floor: imports nothing of disentbench).

`BenchError` is bad input from the user; the CLI prints it as one line, without a traceback.
`TrainingDiverged` is a training run whose losses left the finite numbers (the trainer and the
methods raise it; the runner records the cell as diverged).
`DiskFull` is a write that found no space left: it stops the whole run (every other cell would fail
the same way), naming the file. `OutOfMemory` is a stage of one cell that ran out of memory: the
runner fails that cell alone, naming the size that failed and the setting that lowers it.
"""

import errno

#: the errno values of a full disk (no space, or the user's quota exhausted)
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


class BenchError(ValueError):
    """Bad input from the user (unknown name, wrong value, corrupt file). The message says what to do."""


class TrainingDiverged(RuntimeError):
    """A logged loss became NaN or infinite."""

    def __init__(self, step: int, name: str, value: float):
        super().__init__(f"loss {name!r} became {value} at step {step}")
        self.step = step


class DiskFull(BenchError):
    """No space left on the device holding `path`; the run stops (its finished results are kept)."""

    def __init__(self, path: object):
        super().__init__(
            f"no space left on the device while writing {path}: free space there (or pass another --results) "
            f"and rerun the same command; finished cells and the last checkpoints are kept"
        )
        self.path = str(path)

    def __reduce__(self):  # pickled with its path, not its message (a Dask worker sends it to the driver)
        return type(self), (self.path,)


def is_disk_full(exc: BaseException) -> bool:
    """An OSError of a full disk or exhausted quota."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


class OutOfMemory(RuntimeError):
    """A stage of a cell ran out of memory: `size` says what did not fit, `setting` what lowers it."""

    def __init__(self, stage: str, size: str, setting: str):
        super().__init__(f"out of memory in {stage} ({size}); lower it with {setting}")
        self.stage, self.size, self.setting = stage, size, setting
