"""The step-based training loop shared by every method.

Seeded by explicit generators (data: numpy, noise: torch on the device), resumable from the cell's
checkpoint, losses accumulated on the device and read only at logging steps (no host sync per
step), a CSV log every `log_every` steps, checkpoints every `checkpoint_every` steps and at the end.

Speed options (all off by default, so the default path is the plain loop): `precision="bf16"`
(autocast on the device), `compile=True` (torch.compile of the method's networks, with a warned
fallback when it fails), `channels_last=True`, and `prefetch_steps` (render the batches of several
steps in one call: one host->device copy, hence one host sync, per chunk instead of per step; on
by default on CUDA only). None of them changes the data or noise streams, so resume stays exact.
"""
from __future__ import annotations

import contextlib
import copy
import csv
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from disentbench.bench.checkpoint import CHECKPOINT, load_latest, save_checkpoint
from disentbench.bench.errors import BenchError
from disentbench.datasets.base import GroundTruthDataset
from disentbench.methods.base import Method

LOG_FILE = "train_log.csv"
ProgressFn = Callable[[int, dict[str, float]], None]
PRECISIONS = ("fp32", "bf16")
#: on CUDA, the batches of up to this many bytes of images are rendered in one call
PREFETCH_BYTES = 64 * 2**20
MAX_PREFETCH_STEPS = 64


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


# --------------------------------------------------------------------------------------------
# Speed options
# --------------------------------------------------------------------------------------------
def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on the device's type, or nothing for fp32 (the default path stays untouched)."""
    if precision not in PRECISIONS:
        raise BenchError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


def networks(method: Method) -> list[torch.nn.Module]:
    """The method's top-level networks (encoder, decoder, critic, ...): what `compile` compiles."""
    return [m for m in method.children() if any(True for _ in m.parameters())]


#: torch.compile modes; "reduce-overhead" records CUDA graphs of the compiled networks on CUDA
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_mode(compile: bool | str | None) -> str | None:
    """None (no compile) or one of COMPILE_MODES; True means "default"."""
    if compile is None or compile is False:
        return None
    mode = "default" if compile is True else str(compile)
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile mode {mode!r} is unknown; choose one of: {', '.join(COMPILE_MODES)}")
    return mode


def compile_options(compile: bool | str | None) -> dict:
    """torch.compile keyword arguments for a `compile` setting (no `mode` for the default)."""
    mode = compile_mode(compile)
    return {} if mode in (None, "default") else {"mode": mode}


def compile_networks(method: Method, **options) -> list[torch.nn.Module]:
    """torch.compile each network's forward in place (state_dict keys unchanged, so checkpoints
    stay loadable); returns the compiled modules for `uncompile_networks`. Compilation is lazy:
    failures surface at the first call, which `train` catches."""
    nets = networks(method)
    for net in nets:
        net.forward = torch.compile(net.forward, **options)
    return nets


def uncompile_networks(nets: list[torch.nn.Module]) -> None:
    for net in nets:
        net.__dict__.pop("forward", None)


def set_channels_last(method: Method, on: bool) -> None:
    """Move the 4-d weights to channels_last (or back); parameters stay the same objects, so the
    optimisers keep tracking them."""
    method.to(memory_format=torch.channels_last if on else torch.contiguous_format)


def auto_prefetch_steps(device: torch.device, dataset: GroundTruthDataset, rows_per_step: int) -> int:
    """1 on CPU (no copy to save); on CUDA as many steps as fit in PREFETCH_BYTES of float images."""
    if torch.device(device).type != "cuda":
        return 1
    step_bytes = rows_per_step * int(np.prod(dataset.observation_shape)) * 4
    return int(max(1, min(MAX_PREFETCH_STEPS, PREFETCH_BYTES // max(step_bytes, 1))))


class BatchStream:
    """The per-step batches of the trainer: one `sample_factors(rows, rng)` call per step, always,
    so the data stream is the same whatever `chunk` is; with chunk > 1 the factors of `chunk`
    steps are rendered by one `observations` call (one host->device copy per chunk).
    `rng_state()` is the data RNG state right after the last batch handed out (for checkpoints)."""

    def __init__(self, dataset: GroundTruthDataset, rng: np.random.Generator, rows: int, chunk: int,
                 channels_last: bool = False):
        self.dataset, self.rng, self.rows, self.chunk = dataset, rng, rows, max(1, int(chunk))
        self.channels_last = channels_last
        self._batches: list[torch.Tensor] = []
        self._states: list[dict | None] = []
        self._state: dict | None = None  # None: the live RNG state is the right one (chunk of 1)

    def next(self, remaining: int) -> torch.Tensor:
        if not self._batches:
            n = max(1, min(self.chunk, remaining))
            if n == 1:
                x = self.dataset.observations(self.dataset.sample_factors(self.rows, self.rng))
                self._batches, self._states = [x], [None]
            else:
                factors = []
                for _ in range(n):
                    factors.append(self.dataset.sample_factors(self.rows, self.rng))
                    self._states.append(self.rng.bit_generator.state)
                x = self.dataset.observations(np.concatenate(factors))
                self._batches = list(x.split(self.rows))
            if self.channels_last and x.dim() == 4:
                self._batches = [b.contiguous(memory_format=torch.channels_last) for b in self._batches]
        self._state = self._states.pop(0)
        return self._batches.pop(0)

    def rng_state(self) -> dict:
        return self._state if self._state is not None else self.rng.bit_generator.state


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
    precision: str = "fp32",
    compile: bool | str = False,
    channels_last: bool = False,
    prefetch_steps: int | None = None,
) -> TrainResult:
    """Train `method` for `steps` steps (resuming from cell_dir's checkpoint if there is one).

    precision: "fp32" or "bf16" (autocast); compile: torch.compile the networks, True or a mode of
    COMPILE_MODES ("reduce-overhead" adds CUDA graphs on CUDA; falls back with a warning); channels_last: NHWC weights and batches; prefetch_steps: steps rendered per
    `observations` call (None: 1 on CPU, auto on CUDA). Results do not depend on prefetch_steps.
    """
    step_context = autocast_context(device, precision)  # validates precision first
    if prefetch_steps is not None and int(prefetch_steps) < 1:
        raise BenchError(f"prefetch_steps must be >= 1, got {prefetch_steps}")
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
            "data_rng": batches.rng_state(),
            "noise_rng": noise.get_state(),
        })

    per_step = method.batches_per_step * batch_size
    chunk = auto_prefetch_steps(device, dataset, per_step) if prefetch_steps is None else int(prefetch_steps)
    batches = BatchStream(dataset, data_rng, per_step, chunk, channels_last)
    sums: dict[str, torch.Tensor] = {}
    count = 0
    last: dict[str, float] = {}
    writer_file = None
    compiled: list[torch.nn.Module] = []
    if channels_last:
        set_channels_last(method, True)
    if compile_mode(compile):
        try:
            compiled = compile_networks(method, **compile_options(compile))
        except Exception as exc:  # e.g. torch.compile unsupported on this Python/platform
            warnings.warn(f"torch.compile failed for {method.registered_name} ({type(exc).__name__}: {exc}); "
                          f"training without compile", RuntimeWarning, stacklevel=2)
            uncompile_networks(networks(method))
    t0 = time.perf_counter()
    try:
        if log_path is not None:
            new_file = not log_path.exists() or log_path.stat().st_size == 0
            writer_file = open(log_path, "a", newline="")
        header: list[str] | None = None if log_path is None or new_file else _read_header(log_path)
        for step in range(start_step + 1, steps + 1):
            x = batches.next(steps - step + 1)
            if compiled and step == start_step + 1:
                losses, compiled = _first_compiled_step(method, x, step, noise, step_context, compiled)
            else:
                with step_context:
                    losses = method.train_step(x, step, noise)
            for k, v in losses.items():
                sums[k] = sums[k] + v if k in sums else v.to(torch.float32, copy=True)
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
        uncompile_networks(compiled)
        if channels_last:
            set_channels_last(method, False)
    return TrainResult(steps=steps, seconds=total, resumed_from=start_step, last_losses=last)


def _read_header(path: Path) -> list[str] | None:
    with open(path, newline="") as f:
        first = next(csv.reader(f), None)
    return first or None


def _first_compiled_step(method, x, step, noise, context, compiled):
    """Run the first step compiled; if compilation fails, warn, undo the partial step (weights,
    optimisers, noise) and run it uncompiled. Returns the losses and the modules still compiled."""
    saved = copy.deepcopy(method.checkpoint_state())
    noise_state = noise.get_state()
    try:
        with context:
            return method.train_step(x, step, noise), compiled
    except Exception as exc:  # compilation errors come in many types (backend, dynamo, autograd)
        first_line = (str(exc).strip().splitlines() or [""])[0][:200]
        warnings.warn(f"torch.compile failed for {method.registered_name} ({type(exc).__name__}: "
                      f"{first_line}); training without compile", RuntimeWarning, stacklevel=3)
        uncompile_networks(compiled)
        method.load_checkpoint_state(saved)
        noise.set_state(noise_state)
        with context:
            return method.train_step(x, step, noise), []
