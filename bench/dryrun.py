"""`--dry-run`: the plan of a run and its projected wall time, without training anything.

The plan: cells per dataset x method (settings x seeds), steps per method, and how many cells the
results folder already holds complete. The projection comes from probes in the same command.

Training: each planned method trains on the chosen device as the run would train it (the cells'
precision, the run's --channels-last and --compile, its torch thread count, the trainer's own step
function, on batches rendered beforehand). Untimed warm-up steps come first (the first step's
one-off costs: allocations, kernel selection, compilation) until the step time stops falling, then
REPEATS timed repeats of equal length, PROBE_SECONDS in all (at least MIN_REPEATS single steps for a
slow method). A method's rate is the median repeat's steps/s and its range runs from the slowest
repeat to the fastest, so a busy machine shows as a wide range; the projected training time is a
range from those. Batch rendering is left out of the clock (a few percent of a step once a
procedural renderer's cache is filled; filling it is a one-off start-up cost of each cell). On a
CPU the probe also measures the share of its threads' CPU time it got; under BUSY_SHARE (other work
on the machine's cores) a note under the plan says so.

What is left: a cell that stopped part-way counts only the steps after its checkpoint, and each
cell is scored once per learning-curve point not yet in its curve.csv, once at the end, and each of
those times on every score set (held-out combinations, the correlated distribution).

Evaluation: one evaluation of an untrained model with every metric of the profile at EVAL_FRACTION
of its sample sizes, scaled up: linearly, except the images a table keeps per image
(metrics.image_codes), which grow as the expected number of distinct images among the full draws. That is rough (fixed costs scale up too, the tree fits of
DCI grow faster than linearly), so it is shown as a range of EVAL_ROUGHNESS either way.
Nothing in the results folder is created or changed.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from disentbench import methods, metrics
from disentbench.bench import scoring
from disentbench.bench.checkpoint import checkpoint_step
from disentbench.bench.claim import ClaimSpec
from disentbench.bench.curve import cell_score_steps, scored_steps
from disentbench.bench.grid import Cell
from disentbench.bench.runner import cell_dir, is_complete
from disentbench.bench.training import (
    RunSeeds,
    SpeedOptions,
    _train_step,  # the trainer's step: autocast, and the first compiled step's warned fallback
    autocast_context,
    channels_last_batch,
    draw_batch,
    speed_applied,
)
from disentbench.metrics import image_codes

#: timed seconds of the training probe per method, split into REPEATS repeats of equal length
PROBE_SECONDS = 2.5
REPEATS = 5
#: a method slower than PROBE_SECONDS / MIN_REPEATS per step is timed over this many single steps
MIN_REPEATS = 3
#: warm-up: at least this many untimed steps after the first, and at most WARMUP_SECONDS of them
WARMUP_STEPS = 2
WARMUP_SECONDS = 1.5
#: the warm-up ends when its last steps are no more than this fraction faster than the ones before
SETTLED = 0.1
#: a probe that got less than this share of its threads' CPU time says the machine is busy
BUSY_SHARE = 0.8
#: the evaluation probe runs every metric at this fraction of the profile's sample sizes
EVAL_FRACTION = 0.1
#: its linear scale-up is shown as a range of this factor either way
EVAL_ROUGHNESS = 3.0
SIZE_KEYS = ("num_train", "num_test", "num_variance_estimate")


@dataclass(frozen=True)
class StepRate:
    """A method's training speed from the probe: the steps/s of each timed repeat."""

    rates: tuple[float, ...]
    steps_per_repeat: int
    warmup_steps: int  # untimed, the first step included
    #: CPU seconds of this process over wall seconds x torch threads while timed (CPU devices; else
    #: None): well under 1 when other work shares the machine's cores
    cpu_share: float | None = None

    @property
    def median(self) -> float:
        return float(np.median(self.rates))

    @property
    def low(self) -> float:
        return min(self.rates)

    @property
    def high(self) -> float:
        return max(self.rates)


def plan_table(cells: tuple[Cell, ...], run_dir) -> list[dict[str, Any]]:
    """One row per dataset x method: settings, seeds, steps, cells, cells already complete, and the
    correlation settings training draws from (one more grid axis: each multiplies the cells)."""
    groups: dict[tuple[str, str], list[Cell]] = defaultdict(list)
    for cell in cells:
        groups[(cell.dataset, cell.method)].append(cell)
    rows = []
    for (dataset, method), group in sorted(groups.items()):
        rows.append(
            {
                "dataset": dataset,
                "data_source": group[0].data_source,
                "method": method,
                "settings": len({c.hparams_json for c in group}),
                "correlations": sorted({c.correlation for c in group}),
                "holdouts": sorted({c.holdout for c in group}),
                "seeds": len({c.seed for c in group}),
                "steps": sorted({c.steps for c in group}),
                "cells": len(group),
                "complete": sum(is_complete(run_dir, c) for c in group),
            }
        )
    return rows


def _settled(times: list[float]) -> bool:
    """The warm-up's last steps are no longer clearly faster than the ones before them."""
    k = max(1, min(3, len(times) // 2))
    if len(times) < 2 * k:
        return False
    return float(np.median(times[-k:])) >= (1 - SETTLED) * float(np.median(times[-2 * k : -k]))


def probe_steps_per_second(
    cell: Cell,
    dataset,
    device: torch.device,
    speed: SpeedOptions | None = None,
    seconds: float | None = None,
    repeats: int | None = None,
) -> StepRate:
    """Training steps per second of `cell`'s method and setting, trained as the run trains it:
    `speed`'s channels_last and compile (default: none), the cell's precision, the current torch
    thread count. Untimed warm-up steps until the step time settles, then `repeats` timed repeats
    of equal length, `seconds` in all (at least MIN_REPEATS single steps); defaults: PROBE_SECONDS
    and REPEATS."""
    seconds = PROBE_SECONDS if seconds is None else seconds
    repeats = REPEATS if repeats is None else repeats
    speed = SpeedOptions(
        precision=cell.precision,
        compile=speed.compile if speed else False,
        channels_last=speed.channels_last if speed else False,
    )
    seeds = RunSeeds.from_seed(cell.seed)
    method = methods.create(
        cell.method, observation_shape=dataset.observation_shape, seed=seeds.init, init=cell.init, **cell.hparams
    ).to(device)
    plan = getattr(method, "plan_training", None)
    if plan is not None:  # schedules that refer to the training length (the GAN family), as the trainer does
        plan(cell.steps)
    rng = np.random.default_rng(seeds.data)
    noise = torch.Generator(device=device).manual_seed(seeds.noise)
    rows = cell.batch_size * method.batches_per_step
    # batches rendered before the clock starts and reused: the probe times the training steps (batch
    # production is a few percent of a step, and a procedural renderer's cache fills lazily)
    batches = [channels_last_batch(draw_batch(method, dataset, rows, rng), speed.channels_last) for _ in range(2)]
    context = autocast_context(device, speed.precision)
    step = 0

    def run(n: int, compiled: list[torch.nn.Module]) -> float:
        """Seconds of n training steps, waiting for the device at the end."""
        nonlocal step
        start = time.perf_counter()
        for _ in range(n):
            step += 1
            losses = _train_step(method, batches[step % 2], step, noise, context, compiled, first=step == 1)
        float(losses["loss"])
        return time.perf_counter() - start

    with speed_applied(method, speed) as compiled:
        run(1, compiled)  # the first step: allocations, kernel choices, compilation
        warm: list[float] = []
        while not warm or (sum(warm) < WARMUP_SECONDS and not (len(warm) >= WARMUP_STEPS and _settled(warm))):
            warm.append(run(1, compiled))
        step_seconds = float(np.median(warm[-3:]))
        per_repeat = max(1, round(seconds / repeats / step_seconds))
        n_repeats = repeats if per_repeat > 1 else max(MIN_REPEATS, min(repeats, int(seconds / step_seconds)))
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        rates = tuple(per_repeat / run(per_repeat, compiled) for _ in range(n_repeats))
        cpu, wall = time.process_time() - cpu_start, time.perf_counter() - wall_start
    share = cpu / (wall * torch.get_num_threads()) if torch.device(device).type == "cpu" else None
    return StepRate(rates=rates, steps_per_repeat=per_repeat, warmup_steps=1 + len(warm), cpu_share=share)


def probe_eval_seconds(profile_metrics: dict, cell: Cell, dataset, device: torch.device) -> float:
    """Seconds to evaluate one model with every metric, from a run at EVAL_FRACTION of the sizes
    with the encoder the run uses (marked deterministic: metrics.image_codes). The time outside
    rendering and encoding scales linearly; the images rendered and encoded scale linearly where
    every draw is encoded, and as the expected number of distinct images where a table keeps them
    (drawn at the full sizes), each at the per-image cost measured on the same model."""
    small = {}
    for name, params in profile_metrics.items():
        metric = metrics.create(name, **params)  # its sizes: the profile's, else the metric's defaults
        sizes = {key: metric.kwargs.get(key, getattr(metric, key, None)) for key in SIZE_KEYS}
        small[name] = {**params, **{k: max(2, int(v * EVAL_FRACTION)) for k, v in sizes.items() if v}}
    method = methods.create(
        cell.method, observation_shape=dataset.observation_shape, seed=0, init=cell.init, **cell.hparams
    ).to(device)
    method.eval()
    seen = [0]

    def counted(images: torch.Tensor) -> torch.Tensor:
        seen[0] += len(images)
        return method.encode(images)

    encode = image_codes.deterministic_encoder(counted)
    per_image = _seconds_per_image(encode, dataset)
    seen[0] = 0  # count only what the metrics encode
    cache: dict = {}
    start = time.perf_counter()
    metrics.evaluate_many(small, dataset, encode, seed=0, cache=cache)
    elapsed = time.perf_counter() - start
    encoded = seen[0]
    table = cache.get(image_codes.KEY)
    kept = 0.0 if table is None or table.too_big else float(table.encoded)
    full = (encoded - kept) / EVAL_FRACTION
    if kept:
        full += image_codes.expected_distinct(table.drawn / EVAL_FRACTION, len(dataset))
    other = max(0.0, elapsed - per_image * encoded)
    return other / EVAL_FRACTION + per_image * full


def _seconds_per_image(encode, dataset) -> float:
    """Seconds to render and encode one image: two full batches, after one untimed."""
    from disentbench.metrics.base import encode_batch_size, encode_full_batches

    rng = np.random.default_rng(0)
    n = encode_batch_size(torch.device(dataset.device))
    encode_full_batches(encode, dataset.observations(dataset.sample_factors(n, rng)))
    start = time.perf_counter()
    encode_full_batches(encode, dataset.observations(dataset.sample_factors(2 * n, rng)))
    return (time.perf_counter() - start) / (2 * n)


def _duration(seconds: float) -> str:
    value, unit = _scaled(seconds)
    return f"{value} {unit}"


def _scaled(seconds: float) -> tuple[str, str]:
    if seconds < 120:
        return f"{seconds:.0f}", "s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f}", "min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f}", "h"
    return f"{seconds / 86400:.1f}", "days"


def _duration_range(low: float, high: float) -> str:
    """'8.1-12.4 h', or '50 s-3 min' across units, or one figure when both ends read the same."""
    (lo, lo_unit), (hi, hi_unit) = _scaled(low), _scaled(high)
    if (lo, lo_unit) == (hi, hi_unit):
        return f"{hi} {hi_unit}"
    if lo_unit == hi_unit:
        return f"{lo}-{hi} {hi_unit}"
    return f"{lo} {lo_unit}-{hi} {hi_unit}"


@dataclass(frozen=True)
class Projection:
    """Projected seconds (median, fastest, slowest) of training and of one model's evaluation, and
    how many evaluations are left."""

    train: tuple[float, float, float]
    eval_per_model: tuple[float, float, float]
    total: tuple[float, float, float]
    scorings: int = 0


def score_sets(cell: Cell, profile: dict) -> int:
    """How many sets a cell is scored on (bench.scoring.score_sets)."""
    config = {
        "holdout": cell.holdout,
        "correlation": cell.correlation,
        "score_correlated": profile.get("score_correlated"),
    }
    return len(scoring.score_sets(config))


@dataclass(frozen=True)
class CellWork:
    """What a cell has left: training steps, and evaluations (curve points, the final one, each on
    every score set)."""

    steps: int
    scorings: int


def remaining_work(run_dir, cell: Cell, profile: dict) -> CellWork:
    """The steps after the cell's checkpoint and the scorings it has left: every curve point before
    its last step that curve.csv lacks, plus the final one, times score_sets."""
    out = cell_dir(run_dir, cell)
    done = scored_steps(out) if out.is_dir() else set()
    points = [s for s in cell_score_steps(profile, cell.method) if s < cell.steps and s not in done]
    return CellWork(
        steps=max(0, cell.steps - checkpoint_step(out)), scorings=(len(points) + 1) * score_sets(cell, profile)
    )


def project(
    todo: list[Cell],
    rates: dict[tuple[str, str], StepRate],
    eval_seconds: float,
    parallel: int,
    work: Callable[[Cell], CellWork] | None = None,
) -> Projection:
    """Training from each method's median, fastest and slowest repeat; evaluation within a factor
    EVAL_ROUGHNESS either way; both over what each cell has left (`work`, default: all its steps and
    one scoring), over `parallel` cells at once."""
    left = [work(c) if work is not None else CellWork(c.steps, 1) for c in todo]
    train = tuple(
        sum(w.steps / getattr(rates[(c.dataset, c.method)], which) for c, w in zip(todo, left))
        for which in ("median", "high", "low")
    )
    evals = (eval_seconds, eval_seconds / EVAL_ROUGHNESS, eval_seconds * EVAL_ROUGHNESS)
    scorings = sum(w.scorings for w in left)
    total = tuple((t + e * scorings) / max(1, parallel) for t, e in zip(train, evals))
    return Projection(train=train, eval_per_model=evals, total=total, scorings=scorings)


def describe(planned, probe_seconds: float | None = None) -> str:
    """The plan and its projected wall time, as printed by `--dry-run`. The probes run on the run's
    torch thread count (--threads, else torch's default, as the run's cells get)."""
    threads_before = torch.get_num_threads()
    if planned.settings.torch_threads:
        torch.set_num_threads(planned.settings.torch_threads)
    try:
        return _describe(planned, PROBE_SECONDS if probe_seconds is None else probe_seconds)
    finally:
        torch.set_num_threads(threads_before)


def _describe(planned, probe_seconds: float) -> str:
    settings = planned.settings
    device = torch.device(settings.device)
    rows = plan_table(planned.cells, settings.run_dir)
    todo = [c for c in planned.cells if not is_complete(settings.run_dir, c)]
    first: dict[tuple[str, str], Cell] = {}
    for cell in planned.cells:
        first.setdefault((cell.dataset, cell.method), cell)
    speed = SpeedOptions(compile=settings.compile, channels_last=settings.channels_last)
    rates = {
        key: probe_steps_per_second(cell, planned.datasets[key[0]], device, speed, probe_seconds)
        for key, cell in first.items()
    }
    some = next(iter(first.values()))
    eval_seconds = probe_eval_seconds(settings.profile["metrics"], some, planned.datasets[some.dataset], device)
    parallel = max(1, planned.n_parallel)
    work = {c: remaining_work(settings.run_dir, c, settings.profile) for c in todo}
    p = project(todo, rates, eval_seconds, parallel, work=work.__getitem__)
    resumed = sum(w.steps < c.steps for c, w in work.items())
    precisions = ", ".join(sorted({c.precision for c in planned.cells}))
    options = f"precision {precisions}, channels_last {'on' if settings.channels_last else 'off'}, compile "
    options += "off" if not settings.compile else ("on" if settings.compile is True else str(settings.compile))
    threads = torch.get_num_threads()

    lines = [
        f"dry run: profile {settings.profile['name']}, device {settings.device}, "
        f"{planned.n_parallel} cell(s) at once, results in {settings.run_dir} (nothing is trained or written)",
        "",
    ]
    correlated = any(r["correlations"] != ["none"] for r in rows)  # the column only where it is an axis
    held = any(r["holdouts"] != ["none"] for r in rows)
    head = ["dataset", "data", "method", "settings"] + ["correlations"] * correlated + ["held-out settings"] * held
    head += ["seeds", "steps", "cells", "complete", "probe steps/s (range)"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        steps = ", ".join(f"{s:,}" for s in r["steps"])
        rate = rates[(r["dataset"], r["method"])]
        values = [r["dataset"], r["data_source"], r["method"], r["settings"]]
        values += [len(r["correlations"])] * correlated + [len(r["holdouts"])] * held
        values += [r["seeds"], steps, r["cells"], r["complete"], f"{rate.median:.2f} ({rate.low:.2f}-{rate.high:.2f})"]
        lines.append("| " + " | ".join(str(v) for v in values) + " |")
    if correlated:
        lines.append("")
        for dataset in sorted({r["dataset"] for r in rows}):
            names = sorted({n for r in rows if r["dataset"] == dataset for n in r["correlations"]})
            lines.append(f"{dataset} trains on: {', '.join(names)} (every metric scores uncorrelated data).")
    if held:
        lines.append("")
        for dataset in sorted({r["dataset"] for r in rows}):
            names = sorted({n for r in rows if r["dataset"] == dataset for n in r["holdouts"]})
            lines.append(
                f"{dataset} holds out: {', '.join(names)} (a held-out cell is scored on its seen and its held-out "
                "combinations: its evaluation counts twice in the projection)."
            )
    claim = ClaimSpec.from_config(planned.profile.get("claim"))
    if claim.run_ablation and claim.ablation and any(c.method == claim.method for c in planned.cells):
        lines += ["", f"{claim.method}'s settings include the claim's ablation ({claim.ablation_text()})."]
    lines += [
        "",
        f"{len(planned.cells)} cell(s), {len(planned.cells) - len(todo)} already complete, {len(todo)} to run"
        + (f" ({resumed} resume from a checkpoint: only their steps left are counted)." if resumed else "."),
        f"Projected wall time: {_duration(p.total[0])} (range {_duration_range(*p.total[1:])}): training "
        f"{_duration(p.train[0])} ({_duration_range(*p.train[1:])}) + {p.scorings} evaluation(s) (learning-curve "
        f"points and score sets included) of ~{_duration(p.eval_per_model[0])} "
        f"({_duration_range(*p.eval_per_model[1:])}) each, over {parallel} parallel cell(s).",
        f"Probe: each method trained as the run trains it ({options}, {threads} torch thread(s)): untimed "
        f"warm-up steps until the step time settled, then {REPEATS} timed repeats over ~{probe_seconds:g} s "
        f"(at least {MIN_REPEATS} single steps); the range runs from the slowest repeat to the fastest. "
        f"Evaluation at {EVAL_FRACTION:g} of the metric sizes scaled up (linearly; images kept per image as the "
        "expected number of distinct ones), rough: shown within a factor "
        f"{EVAL_ROUGHNESS:g} either way.",
    ]
    shares = [r.cpu_share for r in rates.values() if r.cpu_share is not None]
    if shares and min(shares) < BUSY_SHARE:
        fewer = " (fewer --threads may well be faster)" if threads > 1 else ""
        lines.append(
            f"Note: the probe got as little as {min(shares):.0%} of the CPU time of its {threads} thread(s): other "
            f"work shares this machine's cores{fewer}, and the projection holds only while that load stays."
        )
    return "\n".join(lines)
