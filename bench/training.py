"""The step-based training loop shared by every method.

Seeded by explicit generators (data: numpy, noise: torch on the device), resumable from the cell's
checkpoint, losses accumulated on the device and read only at logging steps (no host sync per
step), a CSV log every `log_every` steps, checkpoints every `checkpoint_every` steps and at the end,
and, when a stop signal comes (bench.preemption), a checkpoint at the current step.
`train` is a short loop over named parts: `TrainOptions` (what to train), `SpeedOptions` (how fast),
`resume`, `LossMeter` (sums, means, divergence), `TrainingLog` (the CSV), `CheckpointWriter` and
`speed_applied` (the speed options, undone after).

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from disentbench import faults
from disentbench.atomic import write_text
from disentbench.bench import preemption
from disentbench.bench.checkpoint import CHECKPOINT, keep_copy, kept_path, load_latest, save_checkpoint
from disentbench.choices import COMPILE_MODES, PRECISIONS
from disentbench.datasets.base import GroundTruthDataset
from disentbench.errors import BenchError, TrainingDiverged  # noqa: F401  (TrainingDiverged: re-exported)
from disentbench.methods.base import Method

LOG_FILE = "train_log.csv"
ProgressFn = Callable[[int, dict[str, float]], None]
#: called after the checkpoint of a kept step is written and copied (the runner scores it there)
KeptFn = Callable[[int], None]
#: a method's own batch drawer, `sample_batch(dataset, rows, rng)` (e.g. pairs that share factors):
#: returns what its `train_step` takes, drawing only from `rng`
BatchSampler = Callable[[GroundTruthDataset, int, np.random.Generator], Any]
#: on CUDA, the batches of up to this many bytes of images are rendered in one call
PREFETCH_BYTES = 64 * 2**20
MAX_PREFETCH_STEPS = 64


@dataclass
class RunSeeds:
    """Independent streams derived from one cell seed."""

    init: int
    data: int
    noise: int

    @classmethod
    def from_seed(cls, seed: int) -> RunSeeds:
        a, b, c = np.random.SeedSequence(int(seed)).generate_state(3)
        return cls(int(a), int(b), int(c))


@dataclass
class TrainResult:
    steps: int
    seconds: float
    resumed_from: int = 0
    last_losses: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainOptions:
    """What to train: the step budget, batch size and cell seed, and how often to log (every
    `log_every` steps and at the end) and checkpoint (every `checkpoint_every` steps; 0: at the end only)."""

    steps: int
    batch_size: int
    seed: int
    log_every: int = 100
    checkpoint_every: int = 0
    #: steps (before the last) at which the checkpoint is also kept in `checkpoints/` (learning-curve
    #: points); training itself is the same with or without them
    keep_steps: tuple[int, ...] = ()


@dataclass(frozen=True)
class SpeedOptions:
    """How fast to train, never what: no option changes the data or noise streams (bf16 alone changes
    the arithmetic). precision: one of PRECISIONS; compile: False, True or one of COMPILE_MODES
    ("reduce-overhead" adds CUDA graphs on CUDA; falls back with a warning); channels_last: NHWC
    weights and batches; prefetch_steps: steps rendered per `observations` call (None: 1 on CPU,
    auto on CUDA). Validated on construction, before any work."""

    precision: str = "fp32"
    compile: bool | str = False
    channels_last: bool = False
    prefetch_steps: int | None = None

    def __post_init__(self) -> None:
        check_precision(self.precision)
        compile_mode(self.compile)  # ValueError naming COMPILE_MODES
        if self.prefetch_steps is not None and int(self.prefetch_steps) < 1:
            raise BenchError(f"prefetch_steps must be >= 1, got {self.prefetch_steps}")

    def chunk(self, device: torch.device, dataset: GroundTruthDataset, rows_per_step: int) -> int:
        """Steps whose batches are rendered in one call."""
        if self.prefetch_steps is None:
            return auto_prefetch_steps(device, dataset, rows_per_step)
        return int(self.prefetch_steps)


# --------------------------------------------------------------------------------------------
# Speed options
# --------------------------------------------------------------------------------------------
def check_precision(precision: str) -> None:
    """A one-line BenchError for a precision outside PRECISIONS."""
    if precision not in PRECISIONS:
        raise BenchError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")


def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on the device's type, or nothing for fp32 (the default path stays untouched)."""
    check_precision(precision)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


def networks(method: Method) -> list[torch.nn.Module]:
    """The method's top-level networks (encoder, decoder, critic, ...): what `compile` compiles."""
    return [m for m in method.children() if any(True for _ in m.parameters())]


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
    A method with a `sample_batch` (a BatchSampler) draws its own batches instead, one call per step
    from the same generator (chunk is then unused).
    `rng_state()` is the data RNG state right after the last batch handed out (for checkpoints)."""

    def __init__(
        self,
        dataset: GroundTruthDataset,
        rng: np.random.Generator,
        rows: int,
        chunk: int,
        channels_last: bool = False,
        sample_batch: BatchSampler | None = None,
    ):
        self.dataset, self.rng, self.rows, self.chunk = dataset, rng, rows, max(1, int(chunk))
        self.channels_last = channels_last
        self.sample_batch = sample_batch
        self._batches: list[torch.Tensor] = []
        self._states: list[dict | None] = []
        self._state: dict | None = None  # None: the live RNG state is the right one (chunk of 1)

    def next(self, remaining: int) -> Any:
        if self.sample_batch is not None:
            self._state = None
            return channels_last_batch(self.sample_batch(self.dataset, self.rows, self.rng), self.channels_last)
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


def channels_last_batch(batch: Any, on: bool) -> Any:
    """The 4-d tensors of a batch (a tensor, or a tuple / NamedTuple of fields) in channels_last."""
    if not on:
        return batch
    if isinstance(batch, torch.Tensor):
        return batch.contiguous(memory_format=torch.channels_last) if batch.dim() == 4 else batch
    if isinstance(batch, tuple):
        fields = [channels_last_batch(v, on) for v in batch]
        return type(batch)(*fields) if hasattr(batch, "_fields") else tuple(fields)
    return batch


def draw_batch(method: Method, dataset: GroundTruthDataset, rows: int, rng: np.random.Generator) -> Any:
    """One batch as the trainer draws it: the method's `sample_batch` when it has one, else `rows`
    i.i.d. factor vectors rendered (for probes and benchmarks that feed `train_step` themselves)."""
    sample = getattr(method, "sample_batch", None)
    if sample is not None:
        return sample(dataset, rows, rng)
    return dataset.observations(dataset.sample_factors(rows, rng))


# --------------------------------------------------------------------------------------------
# The loop's parts
# --------------------------------------------------------------------------------------------
def check_finite(step: int, means: dict[str, float]) -> None:
    """Raise TrainingDiverged for the first NaN or infinite logged loss."""
    for name, value in means.items():
        if not math.isfinite(value):
            raise TrainingDiverged(step, name, value)


class LossMeter:
    """Losses summed on the device between logging steps and read (the one host sync) only when
    logged. Its partial sums travel in checkpoints, so a run resumed between two logging steps logs
    the same means as an uninterrupted one."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        for k, v in losses.items():
            self.sums[k] = self.sums[k] + v if k in self.sums else v.to(torch.float32, copy=True)
        self.count += 1

    def flush(self, step: int) -> dict[str, float]:
        """The means since the last flush (checked for divergence); starts a new window."""
        means = {k: float(v) / self.count for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        check_finite(step, means)
        return means

    def state(self) -> dict:
        return {"loss_sums": dict(self.sums), "loss_count": self.count}

    def load(self, state: dict) -> None:
        """Restore the sums of a checkpoint (older checkpoints have none: an empty window)."""
        self.sums = dict(state.get("loss_sums", {}))
        self.count = int(state.get("loss_count", 0))


class TrainingLog:
    """The cell's train_log.csv: a header (step, elapsed_seconds, the sorted loss names), then one row
    of means per logging step. Rows after the step training starts from are dropped on opening
    (they will be written again), so a resumed or restarted cell never logs a step twice."""

    def __init__(self, path: Path | None):
        self.path = path
        self._file = None
        self.header: list[str] | None = None

    @classmethod
    def open(cls, cell_dir: Path | None, start_step: int) -> TrainingLog:
        """A log appending to cell_dir's file; one that writes nothing when cell_dir is None."""
        log = cls(None if cell_dir is None else Path(cell_dir) / LOG_FILE)
        if log.path is not None:
            log.truncate(start_step)
            new_file = not log.path.exists() or log.path.stat().st_size == 0
            log._file = open(log.path, "a", newline="")
            log.header = None if new_file else _read_header(log.path)
        return log

    def truncate(self, last_step: int) -> None:
        """Keep the header and the rows up to last_step."""
        if self.path is None or not self.path.exists():
            return
        with open(self.path, newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            return
        keep = [rows[0]] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= last_step]
        with open(self.path, "w", newline="") as f:
            csv.writer(f).writerows(keep)

    def write(self, step: int, elapsed: float, means: dict[str, float]) -> None:
        if self._file is None:
            return
        if self.header is None:
            self.header = ["step", "elapsed_seconds", *sorted(means)]
            csv.writer(self._file).writerow(self.header)
        row = [step, f"{elapsed:.3f}", *[repr(means.get(k, float("nan"))) for k in self.header[2:]]]
        csv.writer(self._file).writerow(row)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> TrainingLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _read_header(path: Path) -> list[str] | None:
    with open(path, newline="") as f:
        first = next(csv.reader(f), None)
    return first or None


def resume(
    method: Method,
    cell_dir: Path | None,
    steps: int,
    device: torch.device,
    data_rng: np.random.Generator,
    noise: torch.Generator,
    meter: LossMeter,
) -> tuple[int, float]:
    """Load cell_dir's latest checkpoint into the method, both generators and the loss meter.
    Returns (step, elapsed seconds) to continue from; (0, 0.0) when there is nothing to resume."""
    if cell_dir is None:
        return 0, 0.0
    state = load_latest(cell_dir, map_location=device)
    if state is None or state["step"] > steps:
        return 0, 0.0
    check_same_hparams(method, state, cell_dir)
    method.load_checkpoint_state(state["method_state"])
    data_rng.bit_generator.state = state["data_rng"]
    noise.set_state(state["noise_rng"].cpu() if hasattr(state["noise_rng"], "cpu") else state["noise_rng"])
    meter.load(state)
    return int(state["step"]), float(state.get("elapsed_seconds", 0.0))


def attach_data(method: Method, dataset: GroundTruthDataset, cell_dir: Path | None) -> None:
    """A method that keeps part of its training data (the few-labels methods: their labelled subset)
    draws it through its `attach_data(dataset)` hook, after a resume restored any recorded one; the
    files it returns ({name: text}) record it in the cell folder."""
    hook = getattr(method, "attach_data", None)
    if hook is None:
        return
    files = hook(dataset)
    if cell_dir is None:
        return
    for name, text in files.items():
        path = Path(cell_dir) / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            write_text(path, text)


def check_same_hparams(method: Method, state: dict[str, Any], cell_dir: Path) -> None:
    """Refuse to continue a checkpoint written with other hyperparameters (as after a default
    changed between releases): its weights would not fit, or would train another model."""
    stored = type(method).stored_hparams(state.get("hparams", {}))
    changed = sorted(k for k in method.hp if k in stored and stored[k] != method.hp[k])
    if changed:
        diffs = ", ".join(f"{k}: {stored[k]!r} in the checkpoint, {method.hp[k]!r} now" for k in changed)
        key = changed[0]
        raise BenchError(
            f"{cell_dir}: its checkpoint was written with other hyperparameters ({diffs}); "
            f"continue it with --set {method.registered_name}.{key}={stored[key]} or delete the folder to retrain"
        )


@dataclass
class CheckpointWriter:
    """Writes everything `resume` needs (weights and optimisers, every generator's state, the loss
    sums) to the cell's checkpoint; nothing when there is no cell_dir."""

    cell_dir: Path | None
    method: Method
    seeds: RunSeeds
    batches: BatchStream
    noise: torch.Generator
    meter: LossMeter

    def exists(self) -> bool:
        return self.cell_dir is not None and (self.cell_dir / CHECKPOINT).exists()

    def save(self, step: int, elapsed: float) -> None:
        if self.cell_dir is None:
            return
        save_checkpoint(
            self.cell_dir / CHECKPOINT,
            {
                "step": step,
                "elapsed_seconds": elapsed,
                "method_name": self.method.registered_name,
                "hparams": dict(self.method.hp),
                "observation_shape": list(self.method.observation_shape),
                "init": getattr(self.method, "init_scheme", "reference"),
                "init_seed": self.seeds.init,
                "method_state": self.method.checkpoint_state(),
                "data_rng": self.batches.rng_state(),
                "noise_rng": self.noise.get_state(),
                **self.meter.state(),
            },
        )


@contextlib.contextmanager
def speed_applied(method: Method, speed: SpeedOptions) -> Iterator[list[torch.nn.Module]]:
    """channels_last weights and compiled networks for the duration, both undone after whatever
    happens; yields the compiled modules (emptied in place if compilation falls back)."""
    compiled: list[torch.nn.Module] = []
    if speed.channels_last:
        set_channels_last(method, True)
    try:
        if compile_mode(speed.compile):
            compiled.extend(_compile_or_warn(method, speed.compile))
        yield compiled
    finally:
        uncompile_networks(compiled)
        if speed.channels_last:
            set_channels_last(method, False)


def _compile_or_warn(method: Method, compile: bool | str) -> list[torch.nn.Module]:
    try:
        return compile_networks(method, **compile_options(compile))
    except Exception as exc:  # e.g. torch.compile unsupported on this Python/platform
        warnings.warn(
            f"torch.compile failed for {method.registered_name} ({type(exc).__name__}: {exc}); "
            f"training without compile",
            RuntimeWarning,
            stacklevel=4,
        )
        uncompile_networks(networks(method))
        return []


def _generators(seeds: RunSeeds, device: torch.device) -> tuple[np.random.Generator, torch.Generator]:
    """The cell's data stream (numpy, on the host) and noise stream (torch, on the device), freshly seeded."""
    noise = torch.Generator(device=device)
    noise.manual_seed(seeds.noise)
    return np.random.default_rng(seeds.data), noise


class _Clock:
    """Training seconds: those before a resume plus those since this clock started, less the
    seconds `excluded` (spent scoring learning-curve points)."""

    def __init__(self, before: float):
        self.before, self.t0 = before, time.perf_counter()

    def __call__(self) -> float:
        return self.before + time.perf_counter() - self.t0

    def exclude(self, seconds: float) -> None:
        self.before -= seconds


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------
def train(
    method: Method,
    dataset: GroundTruthDataset,
    options: TrainOptions,
    *,
    device: torch.device,
    cell_dir: Path | None = None,
    progress: ProgressFn | None = None,
    speed: SpeedOptions = SpeedOptions(),
    on_kept: KeptFn | None = None,
) -> TrainResult:
    """Train `method` for options.steps steps, resuming from cell_dir's checkpoint if there is one.

    At each of options.keep_steps (with a cell_dir) the checkpoint is written, copied to
    `checkpoints/step-N.pt` and `on_kept(N)` is called; its time is not training time.

    Results do not depend on where it was interrupted, nor on speed.prefetch_steps. Under
    bench.preemption's signal handling, a stop signal ends training after the current step with a
    checkpoint of that step, then raises preemption.Interrupted.
    """
    step_context = autocast_context(device, speed.precision)
    seeds = RunSeeds.from_seed(options.seed)
    data_rng, noise = _generators(seeds, device)
    if cell_dir is not None:
        cell_dir = Path(cell_dir)
        cell_dir.mkdir(parents=True, exist_ok=True)
    plan = getattr(method, "plan_training", None)
    if plan is not None:  # schedules that refer to the training length (the GAN family)
        plan(options.steps)
    meter = LossMeter()
    start, elapsed_before = resume(method, cell_dir, options.steps, device, data_rng, noise, meter)
    attach_data(method, dataset, cell_dir)
    rows = method.batches_per_step * options.batch_size
    batches = BatchStream(
        dataset,
        data_rng,
        rows,
        speed.chunk(device, dataset, rows),
        speed.channels_last,
        sample_batch=getattr(method, "sample_batch", None),
    )
    saver = CheckpointWriter(cell_dir, method, seeds, batches, noise, meter)
    keep = frozenset(s for s in options.keep_steps if s < options.steps) if cell_dir is not None else frozenset()
    if start in keep and not kept_path(cell_dir, start).exists():  # stopped between checkpoint and copy
        saver.save(start, elapsed_before)
        keep_copy(cell_dir, start)
    last: dict[str, float] = {}
    with speed_applied(method, speed) as compiled, TrainingLog.open(cell_dir, start) as log, preemption.deferred():
        clock = _Clock(elapsed_before)
        for step in range(start + 1, options.steps + 1):
            x = batches.next(options.steps - step + 1)
            meter.add(_train_step(method, x, step, noise, step_context, compiled, first=step == start + 1))
            faults.fault_point("train_step")
            if step % options.log_every == 0 or step == options.steps:
                last = meter.flush(step)
                last.update(log_step_extras(method, step, last))
                log.write(step, clock(), last)
                faults.fault_point("after_log")
                if progress is not None:
                    progress(step, last)
            periodic = bool(options.checkpoint_every) and step % options.checkpoint_every == 0
            if (periodic or step in keep) and step != options.steps:
                saver.save(step, clock())
                faults.fault_point("after_checkpoint")
            if step in keep:
                _keep(cell_dir, step, clock, on_kept)
            if step != options.steps and preemption.requested() is not None:
                _stop_at(step, saver, clock, saved=periodic or step in keep)
        total = clock()
        if start < options.steps or not saver.exists():
            saver.save(options.steps, total)
    return TrainResult(steps=options.steps, seconds=total, resumed_from=start, last_losses=last)


def log_step_extras(method: Method, step: int, means: dict[str, float]) -> dict[str, float]:
    """A method's own figures for a logging step (the GAN family's diagnostics), logged beside its
    losses; the method may also raise TrainingDiverged on the means (an exploding critic)."""
    hook = getattr(method, "log_step", None)
    return {} if hook is None else dict(hook(step, means))


def _keep(cell_dir: Path, step: int, clock: _Clock, on_kept: KeptFn | None) -> None:
    """Keep the checkpoint just written at `step`, then hand the step to on_kept, off the clock."""
    keep_copy(cell_dir, step)
    if on_kept is not None:
        t0 = time.perf_counter()
        on_kept(step)
        clock.exclude(time.perf_counter() - t0)


def _stop_at(step: int, saver: CheckpointWriter, clock: _Clock, saved: bool) -> None:
    """A stop signal came: checkpoint this step (unless just done) and raise preemption.Interrupted."""
    if not saved:
        saver.save(step, clock())
    preemption.raise_if_requested()


def _train_step(
    method: Method,
    x: torch.Tensor,
    step: int,
    noise: torch.Generator,
    context: contextlib.AbstractContextManager,
    compiled: list[torch.nn.Module],
    first: bool,
) -> dict[str, torch.Tensor]:
    if compiled and first:
        return _first_compiled_step(method, x, step, noise, context, compiled)
    with context:
        return method.train_step(x, step, noise)


def _first_compiled_step(method, x, step, noise, context, compiled: list[torch.nn.Module]):
    """Run the first step compiled; if compilation fails, warn, undo the partial step (weights,
    optimisers, noise) and run it uncompiled, emptying `compiled` in place. Returns the losses."""
    saved = copy.deepcopy(method.checkpoint_state())
    noise_state = noise.get_state()
    try:
        with context:
            return method.train_step(x, step, noise)
    except Exception as exc:  # compilation errors come in many types (backend, dynamo, autograd)
        first_line = (str(exc).strip().splitlines() or [""])[0][:200]
        warnings.warn(
            f"torch.compile failed for {method.registered_name} ({type(exc).__name__}: "
            f"{first_line}); training without compile",
            RuntimeWarning,
            stacklevel=4,
        )
        uncompile_networks(compiled)
        compiled.clear()
        method.load_checkpoint_state(saved)
        noise.set_state(noise_state)
        with context:
            return method.train_step(x, step, noise)
