"""Moved to `disentbench.errors` (the ground floor every layer imports); this path keeps working."""

from disentbench.errors import BenchError, TrainingDiverged  # noqa: F401
