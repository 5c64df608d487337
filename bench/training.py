"""The step-based training loop shared by every method.

Seeded by explicit generators (data: numpy, noise: torch on the device), resumable from the cell's
checkpoint, losses accumulated on the device and read only at logging steps (no host sync per
step), a CSV log every `log_every` steps, checkpoints every `checkpoint_every` steps and at the end.
"""
from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from bench.checkpoint import CHECKPOINT, load_latest, save_checkpoint
from datasets.base import GroundTruthDataset
from methods.base import Method

LOG_FILE = "train_log.csv"
ProgressFn = Callable[[int, dict[str, float]], None]


class TrainingDiverged(RuntimeError):
    """A logged loss became NaN or infinite."""

    def __init__(self, step: int, name: str, value: float):
        super().__init__(f"loss {name!r} became {value} at step {step}")
        self.step = step


@dataclass
class RunSeeds:
    """Independent streams derived from one cell seed."""

    init: int
    data: int
    noise: int

    @classmethod
    def from_seed(cls, seed: int) -> "RunSeeds":
        a, b, c = np.random.SeedSequence(int(seed)).generate_state(3)
        return cls(int(a), int(b), int(c))


@dataclass
class TrainResult:
    steps: int
    seconds: float
    resumed_from: int = 0
    last_losses: dict[str, float] = field(default_factory=dict)


def _truncate_log(path: Path, last_step: int) -> None:
    """Drop log rows written after the checkpoint we resume from (they will be written again)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    keep = [rows[0]] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= last_step]
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(keep)


def train(
    method: Method,
    dataset: GroundTruthDataset,
    *,
    steps: int,
    batch_size: int,
    seed: int,
    device: torch.device,
    cell_dir: Path | None = None,
    log_every: int = 100,
    checkpoint_every: int = 0,
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Train `method` for `steps` steps (resuming from cell_dir's checkpoint if there is one)."""
    seeds = RunSeeds.from_seed(seed)
    data_rng = np.random.default_rng(seeds.data)
    noise = torch.Generator(device=device)
    noise.manual_seed(seeds.noise)
    start_step, elapsed_before = 0, 0.0
    log_path = cell_dir / LOG_FILE if cell_dir is not None else None

    if cell_dir is not None:
        cell_dir = Path(cell_dir)
        cell_dir.mkdir(parents=True, exist_ok=True)
        log_path = cell_dir / LOG_FILE
        state = load_latest(cell_dir, map_location=device)
        if state is not None and state["step"] <= steps:
            method.load_checkpoint_state(state["method_state"])
            data_rng.bit_generator.state = state["data_rng"]
            noise.set_state(state["noise_rng"].cpu() if hasattr(state["noise_rng"], "cpu") else state["noise_rng"])
            start_step = int(state["step"])
            elapsed_before = float(state.get("elapsed_seconds", 0.0))
            _truncate_log(log_path, start_step)

    def checkpoint(step: int, elapsed: float) -> None:
        if cell_dir is None:
            return
        save_checkpoint(cell_dir / CHECKPOINT, {
            "step": step,
            "elapsed_seconds": elapsed,
            "method_name": method.registered_name,
            "hparams": dict(method.hp),
            "observation_shape": list(method.observation_shape),
            "init": getattr(method, "init_scheme", "reference"),
            "init_seed": seeds.init,
            "method_state": method.checkpoint_state(),
            "data_rng": data_rng.bit_generator.state,
            "noise_rng": noise.get_state(),
        })

    per_step = method.batches_per_step * batch_size
    sums: dict[str, torch.Tensor] = {}
    count = 0
    last: dict[str, float] = {}
    writer_file = None
    t0 = time.perf_counter()
    try:
        if log_path is not None:
            new_file = not log_path.exists() or log_path.stat().st_size == 0
            writer_file = open(log_path, "a", newline="")
        header: list[str] | None = None if log_path is None or new_file else _read_header(log_path)
        for step in range(start_step + 1, steps + 1):
            factors = dataset.sample_factors(per_step, data_rng)
            x = dataset.observations(factors)
            losses = method.train_step(x, step, noise)
            for k, v in losses.items():
                sums[k] = sums[k] + v if k in sums else v.clone()
            count += 1
            if step % log_every == 0 or step == steps:
                last = {k: float(v) / count for k, v in sums.items()}  # the one host sync
                sums, count = {}, 0
                for k, v in last.items():
                    if not math.isfinite(v):
                        raise TrainingDiverged(step, k, v)
                elapsed = elapsed_before + time.perf_counter() - t0
                if writer_file is not None:
                    if header is None:
                        header = ["step", "elapsed_seconds", *sorted(last)]
                        csv.writer(writer_file).writerow(header)
                    row = [step, f"{elapsed:.3f}", *[repr(last.get(k, float("nan"))) for k in header[2:]]]
                    csv.writer(writer_file).writerow(row)
                    writer_file.flush()
                if progress is not None:
                    progress(step, last)
            if checkpoint_every and step % checkpoint_every == 0 and step != steps:
                checkpoint(step, elapsed_before + time.perf_counter() - t0)
        total = elapsed_before + time.perf_counter() - t0
        if start_step < steps or not (cell_dir is not None and (cell_dir / CHECKPOINT).exists()):
            checkpoint(steps, total)
    finally:
        if writer_file is not None:
            writer_file.close()
    return TrainResult(steps=steps, seconds=total, resumed_from=start_step, last_losses=last)


def _read_header(path: Path) -> list[str] | None:
    with open(path, newline="") as f:
        first = next(csv.reader(f), None)
    return first or None
