"""Test doubles shared by several test files (import them as `from tests.helpers import ...`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from disentbench.datasets.base import GroundTruthDataset


def tiny_cpu_args(profile, results, *extra: str) -> list[str]:
    """The command-line flags of a small reproducible CPU run: one seed, the given profile and results
    folder, procedural data, one torch thread, no report figures."""
    return [
        "--seeds", "1", "--profile", str(profile), "--results", str(results), "--device", "cpu",
        "--source", "procedural", "--threads", "1", "--no-report", *extra,
    ]  # fmt: skip


class IdentityDataset(GroundTruthDataset):
    """A ground-truth dataset whose observation is the factor vector itself (float64, shape (n, K)),
    so an encoder written as a function of the observation is an exact function of the factors and
    metrics get known answers."""

    name = "identity"

    def __init__(self, factor_sizes: Sequence[int] = (3, 4, 5)):
        super().__init__()
        self.factor_sizes = tuple(int(s) for s in factor_sizes)

    def observations(self, factors: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(factors, dtype=np.float64))
