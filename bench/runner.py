"""Run a grid of cells: train, evaluate, write per-cell results, then the run's tables.

One folder per cell (`cells/<cell_id>/`) with config.json, train_log.csv, checkpoint.pt and
scores.json. A cell is complete only when scores.json exists (written atomically), so a rerun of
the same command skips finished cells and resumes unfinished ones from their last checkpoint.
`run_cell` is a plain top-level function of picklable arguments, so cells can run in worker
processes; only the driver writes the run's tables.
"""

from __future__ import annotations

import csv
import json
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from disentbench import datasets, methods, metrics
from disentbench.atomic import atomic_path, write_json
from disentbench.bench import curve, provenance, segments, trackers
from disentbench.bench.checkpoint import checkpoint_step
from disentbench.bench.grid import Cell, method_class_path
from disentbench.bench.locks import STALE_SECONDS, CellLock
from disentbench.bench.scoring import score_model
from disentbench.bench.training import RunSeeds, SpeedOptions, TrainingDiverged, TrainOptions, train
from disentbench.datasets.correlation import correlated
from disentbench.datasets.holdout import seen_part
from disentbench.errors import BenchError, DiskFull, OutOfMemory, is_disk_full
from disentbench.metrics.image_codes import deterministic_encoder

SCORES = "scores.json"
CONFIG = "config.json"
FAILURES = "failures.csv"
RUNS = "runs.csv"
RUN_COLUMNS = [
    "cell_id",
    "profile",
    "dataset",
    "data_source",
    "correlation",
    "holdout",
    "data_verified",
    "method",
    "hparams",
    "seed",
    "steps",
    "metric",
    "value",
    "train_seconds",
    "eval_seconds",
    "device",
    "train_hosts",
    "git_commit",
    "torch_version",
    "numpy_version",
    "sklearn_version",
    "numba_version",
    "python_version",
    "config",
]


@dataclass
class RunSettings:
    """What every cell of one run shares."""

    run_dir: Path
    profile: dict[str, Any]
    device: str
    data_dir: str | None = None
    verify: bool = True
    torch_threads: int | None = None
    stale_lock_seconds: float = STALE_SECONDS
    plugins: tuple[str, ...] = ()
    compile: bool | str = False  # True/False or a torch.compile mode (disentbench.choices.COMPILE_MODES)
    channels_last: bool = False
    #: trackers that log each cell (bench.trackers: "tensorboard", "mlflow"), and their tracking URI
    log: tuple[str, ...] = ()
    log_uri: str | None = None


@dataclass
class CellOutcome:
    cell_id: str
    #: "done", "skipped" (already complete), "busy" (another runner holds it), "failed", or
    #: "interrupted" (stopped by a signal, checkpointed: a rerun resumes it)
    status: str
    scores: dict[str, float] = field(default_factory=dict)
    record: dict[str, Any] | None = None
    failed_step: int | None = None
    reason: str = ""


def cell_dir(run_dir: Path, cell: Cell) -> Path:
    return Path(run_dir) / "cells" / cell.cell_id


def is_complete(run_dir: Path, cell: Cell) -> bool:
    return (cell_dir(run_dir, cell) / SCORES).is_file()


def make_dataset(name: str, source: str, settings: RunSettings, device: torch.device | str):
    return datasets.create(name, source=source, data_dir=settings.data_dir, verify=settings.verify, device=device)


def representation(method, cell: Cell, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """What the metrics score for `cell` (see scoring_encoder)."""
    return scoring_encoder(method, cell.representation, cell.seed, device)


def scoring_encoder(
    method, representation: str, seed: int, device: torch.device | str
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The encoder mean, or one posterior draw per image from a generator seeded by the cell's seed
    (its own stream, independent of the training noise); `rescore` scores old cells the same way."""
    if representation == "mean":
        return deterministic_encoder(method.encode)  # its codes may be kept per image (metrics.image_codes)
    stream = int(np.random.SeedSequence(seed, spawn_key=(1,)).generate_state(1)[0])
    generator = torch.Generator(device=device).manual_seed(stream)
    return lambda x: method.encode_sampled(x, generator)


def run_cell(
    cell: Cell, settings: RunSettings, progress: Callable[[int, dict], None] | None = None, dataset=None
) -> CellOutcome:
    """Train and evaluate one cell (resuming it if it has a checkpoint). Never raises for a failure
    of the cell itself: the outcome says "failed" with the step and reason."""
    out_dir = cell_dir(settings.run_dir, cell)
    if (out_dir / SCORES).is_file():
        return CellOutcome(cell.cell_id, "skipped", record=json.loads((out_dir / SCORES).read_text()))
    out_dir.mkdir(parents=True, exist_ok=True)
    lock = CellLock(out_dir, settings.stale_lock_seconds)
    if not lock.acquire():
        return CellOutcome(cell.cell_id, "busy", reason="another runner holds its lock")
    try:
        if (out_dir / SCORES).is_file():  # finished by another runner while we waited
            return CellOutcome(cell.cell_id, "skipped", record=json.loads((out_dir / SCORES).read_text()))

        def beat(step: int, losses: dict) -> None:
            lock.heartbeat()
            if progress is not None:
                progress(step, losses)

        return _train_and_score(cell, settings, out_dir, beat, dataset)
    finally:
        lock.release()


def scoring_options(cell: Cell, profile: dict[str, Any]) -> dict[str, Any]:
    """The profile's scoring options that apply to `cell`, for its config (bench/scoring.py reads
    them there, as do its learning curve and `rescore`): only where they change something."""
    out: dict[str, Any] = {}
    if cell.correlation != "none" and profile.get("score_correlated"):
        out["score_correlated"] = True
    if cell.holdout != "none":
        out["reconstruction_points"] = int(profile.get("reconstruction_points", 10_000))
    return out


def _log_pictures(log: trackers.CellTrackers, method, dataset, cell: Cell, out_dir: Path, device) -> None:
    """Draw the cell's latent traversals (still PNG and animated GIF, as the report draws them) into
    `figures/` and hand them to the trackers; a drawing that fails costs one warning line."""
    from disentbench.bench.report.models import IMAGE_SEED, N_REAL, draw_model

    try:
        method.eval()
        x = dataset.observations(dataset.sample_factors(N_REAL, np.random.default_rng(IMAGE_SEED)))
        label = f"{cell.dataset} {cell.method} {cell.hparams_json} seed {cell.seed}, cell {cell.cell_id}"
        files = draw_model(method, x, out_dir / "figures", cell.cell_id, label, str(device))
    except Exception as exc:
        log.warn(f"warning: traversal pictures of cell {cell.cell_id} not drawn for the trackers ({exc})")
        return
    for figure in files:
        log.log_image(figure.kind, figure.path)


def _train_and_score(cell: Cell, settings: RunSettings, out_dir: Path, progress, dataset) -> CellOutcome:
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    device = torch.device(settings.device)
    failed_step: int | None = None
    log = trackers.CellTrackers({}, cell.cell_id)  # the trackers once the cell's config is known
    status = "interrupted"  # what the trackers are told if a stop signal or Ctrl-C ends the cell
    try:
        if dataset is None:
            dataset = make_dataset(cell.dataset, cell.data_source, settings, device)
        config = {
            **cell.training_config(),
            "cell_id": cell.cell_id,
            "profile": settings.profile["name"],
            "metrics": settings.profile["metrics"],
            "log_every": settings.profile["log_every"],
            "checkpoint_every": settings.profile["checkpoint_every"],
            "score_steps": curve.cell_score_steps(settings.profile, cell.method),
            "device": str(device),
            "torch_threads": torch.get_num_threads(),
            "compile": settings.compile,
            "channels_last": settings.channels_last,
            "observation_shape": list(dataset.observation_shape),
            **dataset.describe(),
            **scoring_options(cell, settings.profile),
        }
        write_json(out_dir / CONFIG, config)
        if cell.method_class and method_class_path(cell.method) != cell.method_class:
            raise BenchError(
                f"{cell.method} is {method_class_path(cell.method)} here but the cell was planned with "
                f"{cell.method_class}; load the same --plugin in every process"
            )
        log = trackers.open_cell(settings.log, settings.run_dir, settings.log_uri, out_dir, config)
        outcome = _train_and_evaluate(cell, settings, out_dir, progress, dataset, device, config, log)
        status = "done"
        return outcome
    except (KeyboardInterrupt, DiskFull):  # a full disk stops the run: every other cell would fail too
        raise
    except TrainingDiverged as exc:
        status, failed_step, reason = "failed", exc.step, str(exc)
    except (BenchError, OutOfMemory) as exc:
        status, reason = "failed", str(exc)
    except Exception as exc:  # a cell's failure must never take the grid down
        if is_disk_full(exc):  # a plain write (train_log.csv, a lock) found the disk full
            raise DiskFull(exc.filename or out_dir) from exc
        status, reason = "failed", f"{type(exc).__name__}: {exc}"
        (out_dir / "error.txt").write_text(traceback.format_exc())
    finally:
        log.end_cell(status)
    return CellOutcome(cell.cell_id, "failed", failed_step=failed_step, reason=reason)


def _train_and_evaluate(
    cell: Cell, settings: RunSettings, out_dir: Path, progress, dataset, device, config: dict, log
) -> CellOutcome:
    """Train, score and write scores.json; the trackers in `log` get the losses at each logging
    step, every learning-curve point, the final scores and the traversal pictures."""
    seeds = RunSeeds.from_seed(cell.seed)
    method = methods.create(
        cell.method, observation_shape=dataset.observation_shape, seed=seeds.init, init=cell.init, **cell.hparams
    ).to(device)
    options = TrainOptions(
        steps=cell.steps,
        batch_size=cell.batch_size,
        seed=cell.seed,
        log_every=settings.profile["log_every"],
        checkpoint_every=settings.profile["checkpoint_every"],
        keep_steps=tuple(config["score_steps"]),
    )
    speed = SpeedOptions(precision=cell.precision, compile=settings.compile, channels_last=settings.channels_last)

    def log_curve(step: int, scores: dict[str, float]) -> None:
        log.log_metrics(step, {f"curve/{k}": v for k, v in scores.items()})

    def score_curve(step: int | None = None) -> None:
        curve.score_kept(out_dir, config, str(device), settings.data_dir, dataset, on_point=log_curve)

    def logged_progress(step: int, losses: dict) -> None:
        log.log_metrics(step, {f"train/{k}": v for k, v in losses.items()})
        if progress is not None:
            progress(step, losses)

    # the metrics score the plain `dataset` (a held-out cell: its seen and held-out parts, bench/scoring.py)
    training_data = seen_part(correlated(dataset, cell.correlation), cell.holdout)
    trained_on = segments.note_segment(
        out_dir, checkpoint_step(out_dir), str(device), torch_threads=torch.get_num_threads(),
        precision=cell.precision, channels_last=settings.channels_last, compile=settings.compile,
    )  # fmt: skip
    try:
        result = train(
            method, training_data, options, device=device, cell_dir=out_dir, progress=logged_progress, speed=speed,
            on_kept=score_curve,
        )  # fmt: skip
    except metrics.OUT_OF_MEMORY as exc:
        size = f"batch_size {cell.batch_size}, {method.batches_per_step} batch(es) per step"
        raise OutOfMemory("training", size, "batch_size: in the profile") from exc
    score_curve()  # a kept step left unscored by an earlier, interrupted run
    t0 = time.perf_counter()
    encode = representation(method, cell, device)
    scores, scored_on = score_model(method, encode, config, settings.profile["metrics"], dataset, cell.seed)
    eval_seconds = time.perf_counter() - t0
    if config["score_steps"]:  # the final step closes the learning curve
        curve.append_point(out_dir, cell.steps, scores, eval_seconds)
        log_curve(cell.steps, scores)
    record = {
        "cell_id": cell.cell_id,
        "config": config,
        "scores": scores,
        "train_seconds": result.seconds,
        "eval_seconds": eval_seconds,
        "device": str(device),
        "train_hosts": segments.describe(trained_on),
        "git_commit": provenance.git_commit(),
        **provenance.versions(settings.profile["metrics"]),
        "completed_at": provenance.now(),
        "resumed_from_step": result.resumed_from,
        "last_losses": result.last_losses,
        **({"scored_on": scored_on} if scored_on else {}),
    }
    if log.active:  # logged before scores.json, so a cell complete on disk was logged whole
        log.log_scores(scores)
        _log_pictures(log, method, dataset, cell, out_dir, device)
    write_json(out_dir / SCORES, record)
    return CellOutcome(cell.cell_id, "done", scores=scores, record=record)


def rows_of(record: dict[str, Any], profile_name: str) -> list[dict[str, Any]]:
    """One tidy runs.csv row per metric value of a finished cell."""
    common = provenance_columns(record, profile_name)
    scores = {**record["scores"], **record.get("run_level_scores", {})}  # udr: bench/run_level.py
    return [{**common, "metric": k, "value": v} for k, v in sorted(scores.items())]


def provenance_columns(record: dict[str, Any], profile_name: str) -> dict[str, Any]:
    """The columns every row of a cell carries (runs.csv, curves.csv): all but metric and value."""
    cfg = record["config"]
    return {
        "cell_id": record["cell_id"],
        "profile": cfg.get("profile", profile_name),
        "dataset": cfg["dataset"],
        "data_source": cfg["data_source"],
        "correlation": cfg.get("correlation", "none"),
        "holdout": cfg.get("holdout", "none"),
        "data_verified": cfg.get("verified", ""),
        "method": cfg["method"],
        "hparams": json.dumps(cfg["hparams"], sort_keys=True),
        "seed": cfg["seed"],
        "steps": cfg["steps"],
        "train_seconds": round(record["train_seconds"], 3),
        "eval_seconds": round(record["eval_seconds"], 3),
        "device": record["device"],
        "train_hosts": record.get("train_hosts", ""),
        "git_commit": record["git_commit"],
        "torch_version": record["torch_version"],
        "numpy_version": record["numpy_version"],
        "sklearn_version": record["sklearn_version"],
        "numba_version": record.get("numba_version", ""),
        "python_version": record.get("python_version", ""),
        "config": json.dumps(cfg, sort_keys=True),
    }


def write_runs_csv(run_dir: Path, records: list[dict[str, Any]], profile_name: str) -> pd.DataFrame:
    rows = [row for rec in records for row in rows_of(rec, profile_name)]
    df = pd.DataFrame(rows, columns=RUN_COLUMNS)
    with atomic_path(Path(run_dir) / RUNS) as tmp:
        df.to_csv(tmp, index=False)
    return df


def write_failures(run_dir: Path, failures: list[tuple[Cell, CellOutcome]]) -> Path | None:
    path = Path(run_dir) / FAILURES
    if not failures:
        if path.exists():
            path.unlink()
        return None
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["cell_id", "dataset", "method", "hparams", "seed", "step", "reason", "time"])
        for cell, out in failures:
            w.writerow(
                [
                    cell.cell_id,
                    cell.dataset,
                    cell.method,
                    cell.hparams_json,
                    cell.seed,
                    "" if out.failed_step is None else out.failed_step,
                    out.reason,
                    provenance.now(),
                ]
            )
    return path


def failed_cell_ids(run_dir: Path) -> set[str]:
    path = Path(run_dir) / FAILURES
    if not path.exists():
        return set()
    with open(path, newline="") as f:
        return {row["cell_id"] for row in csv.DictReader(f)}


def check_writable(run_dir: Path) -> None:
    try:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        probe = Path(run_dir) / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise BenchError(f"results folder {run_dir} is not writable ({exc.strerror}); pass --results DIR") from None
