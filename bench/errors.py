"""User-facing errors: the CLI prints these as one line, without a traceback."""


class BenchError(ValueError):
    """Bad input from the user (unknown name, wrong value, corrupt file). The message says what to do."""
