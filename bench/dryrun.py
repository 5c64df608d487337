"""`--dry-run`: the plan of a run and its projected wall time, without training anything.

The plan: cells per dataset x method (settings x seeds), steps per method, and how many cells the
results folder already holds complete. The projection comes from a probe in the same command: a
few timed training steps of each planned method (after one untimed warm-up step, on one batch
rendered beforehand) on the chosen device, and one evaluation of an untrained model with every metric of the profile at a tenth of its
sample sizes, scaled up linearly (a rough figure: the tree fits of DCI grow faster than linearly).
Nothing in the results folder is created or changed.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import numpy as np
import torch

from disentbench import methods, metrics
from disentbench.bench.claim import ClaimSpec
from disentbench.bench.grid import Cell
from disentbench.bench.runner import is_complete
from disentbench.bench.training import RunSeeds, draw_batch

#: the evaluation probe runs every metric at this fraction of the profile's sample sizes
EVAL_FRACTION = 0.1
SIZE_KEYS = ("num_train", "num_test", "num_variance_estimate")


def plan_table(cells: tuple[Cell, ...], run_dir) -> list[dict[str, Any]]:
    """One row per dataset x method: settings, seeds, steps, cells, cells already complete."""
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
                "seeds": len({c.seed for c in group}),
                "steps": sorted({c.steps for c in group}),
                "cells": len(group),
                "complete": sum(is_complete(run_dir, c) for c in group),
            }
        )
    return rows


def probe_steps_per_second(cell: Cell, dataset, device: torch.device, steps: int = 5) -> float:
    """Training steps per second of `cell`'s method and setting, timed after one warm-up step."""
    seeds = RunSeeds.from_seed(cell.seed)
    method = methods.create(
        cell.method, observation_shape=dataset.observation_shape, seed=seeds.init, init=cell.init, **cell.hparams
    ).to(device)
    rng = np.random.default_rng(seeds.data)
    noise = torch.Generator(device=device).manual_seed(seeds.noise)
    rows = cell.batch_size * method.batches_per_step
    # one batch, rendered before the clock starts and reused: the probe times the method's arithmetic
    # (batch production is a few percent of a step, and a procedural renderer's cache fills lazily)
    x = draw_batch(method, dataset, rows, rng)  # pairs for the weakly supervised methods

    def step(i: int) -> None:
        losses = method.train_step(x, i, noise)
        float(losses["loss"])  # wait for the device

    step(1)
    start = time.perf_counter()
    for i in range(2, steps + 2):
        step(i)
    return steps / (time.perf_counter() - start)


def probe_eval_seconds(profile_metrics: dict, cell: Cell, dataset, device: torch.device) -> float:
    """Seconds to evaluate one model with every metric, from a run at EVAL_FRACTION of the sizes."""
    small = {}
    for name, params in profile_metrics.items():
        metric = metrics.create(name, **params)  # its sizes: the profile's, else the metric's defaults
        sizes = {key: metric.kwargs.get(key, getattr(metric, key, None)) for key in SIZE_KEYS}
        small[name] = {**params, **{k: max(2, int(v * EVAL_FRACTION)) for k, v in sizes.items() if v}}
    method = methods.create(
        cell.method, observation_shape=dataset.observation_shape, seed=0, init=cell.init, **cell.hparams
    ).to(device)
    method.eval()
    start = time.perf_counter()
    metrics.evaluate_many(small, dataset, method.encode, seed=0)
    return (time.perf_counter() - start) / EVAL_FRACTION


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def describe(planned, probe_steps: int = 5) -> str:
    """The plan and its projected wall time, as printed by `--dry-run`."""
    settings = planned.settings
    device = torch.device(settings.device)
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    rows = plan_table(planned.cells, settings.run_dir)
    todo = [c for c in planned.cells if not is_complete(settings.run_dir, c)]
    first: dict[tuple[str, str], Cell] = {}
    for cell in planned.cells:
        first.setdefault((cell.dataset, cell.method), cell)
    rates = {
        key: probe_steps_per_second(cell, planned.datasets[key[0]], device, probe_steps) for key, cell in first.items()
    }
    some = next(iter(first.values()))
    eval_seconds = probe_eval_seconds(settings.profile["metrics"], some, planned.datasets[some.dataset], device)
    train_seconds = sum(c.steps / rates[(c.dataset, c.method)] for c in todo)
    total = (train_seconds + eval_seconds * len(todo)) / max(1, planned.n_parallel)

    lines = [
        f"dry run: profile {settings.profile['name']}, device {settings.device}, "
        f"{planned.n_parallel} cell(s) at once, results in {settings.run_dir} (nothing is trained or written)",
        "",
        "| dataset | data | method | settings | seeds | steps | cells | complete | probe steps/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        steps = ", ".join(f"{s:,}" for s in r["steps"])
        rate = rates[(r["dataset"], r["method"])]
        lines.append(
            f"| {r['dataset']} | {r['data_source']} | {r['method']} | {r['settings']} | {r['seeds']} | "
            f"{steps} | {r['cells']} | {r['complete']} | {rate:.2f} |"
        )
    claim = ClaimSpec.from_config(planned.profile.get("claim"))
    if claim.run_ablation and claim.ablation and any(c.method == claim.method for c in planned.cells):
        lines += ["", f"{claim.method}'s settings include the claim's ablation ({claim.ablation_text()})."]
    lines += [
        "",
        f"{len(planned.cells)} cell(s), {len(planned.cells) - len(todo)} already complete, {len(todo)} to run.",
        f"Projected wall time: {_duration(total)} (training {_duration(train_seconds)} + evaluation "
        f"~{_duration(eval_seconds)} per model, over {max(1, planned.n_parallel)} parallel cell(s); "
        f"probe: {probe_steps} timed steps per method, evaluation at {EVAL_FRACTION:g} of the metric sizes "
        f"scaled up linearly).",
    ]
    return "\n".join(lines)
