"""The errors every layer raises (the ground floor: imports nothing of disentbench).

`BenchError` is bad input from the user; the CLI prints it as one line, without a traceback.
`TrainingDiverged` is a training run whose losses left the finite numbers (the trainer and the
methods raise it; the runner records the cell as diverged).
"""


class BenchError(ValueError):
    """Bad input from the user (unknown name, wrong value, corrupt file). The message says what to do."""


class TrainingDiverged(RuntimeError):
    """A logged loss became NaN or infinite."""

    def __init__(self, step: int, name: str, value: float):
        super().__init__(f"loss {name!r} became {value} at step {step}")
        self.step = step
