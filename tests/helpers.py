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


class _Stop(Exception):
    pass


def trained_and_resumed(make_method, dataset, options, tmp_path, stop_at: int = 3):
    """(a method trained without a stop in tmp_path/a, one stopped at `stop_at` and resumed in
    tmp_path/b, the resumed run's TrainResult): for bitwise-resume tests of a method's own state."""
    from disentbench.bench.training import train

    cpu = torch.device("cpu")
    full = make_method()
    train(full, dataset, options, device=cpu, cell_dir=tmp_path / "a")

    def stop(step, losses):
        if step == stop_at:
            raise _Stop

    try:
        train(make_method(), dataset, options, device=cpu, cell_dir=tmp_path / "b", progress=stop)
    except _Stop:
        pass
    else:
        raise AssertionError(f"training never reached step {stop_at}")
    resumed = make_method()
    return full, resumed, train(resumed, dataset, options, device=cpu, cell_dir=tmp_path / "b")
