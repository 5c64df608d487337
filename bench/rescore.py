"""`run_benchmark.py rescore DIR`: score the trained cells of an existing run with metrics they lack
(or the ones named), from their checkpoints, without training anything.

A metric added to the suite after a run (or left out of its profile) should not cost a retraining.
Each finished cell's checkpoint is loaded and scored the way the runner scores it (same dataset and
data source, same representation, the cell's seed, every metric on its own seeded generator, so a
rescored number equals the one a run with that metric would have written). The scores are merged
into the cell's scores.json (with a `rescored` record of what, when and with which code); then
runs.csv, the leaderboard and the report are rewritten. A cell whose checkpoint is missing or
unreadable is listed and left as it was, never fatal.

Sample sizes: the run's profile's parameters for a metric it lists, else the metric's defaults
(disentanglement_lib's reference sizes). UDR, which compares the seeds of a setting, is recomputed
over every finished cell when it is named or the run's profile lists it (bench/run_level.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from disentbench.atomic import write_json
from disentbench.bench import provenance
from disentbench.choices import REPRESENTATIONS
from disentbench.errors import BenchError
from disentbench.faults import fault_point

SCORES = "scores.json"


def default_run_level() -> list[str]:
    """The registered metrics computed over several models at once (udr)."""
    from disentbench import metrics

    return [m for m in metrics.list_metrics() if getattr(metrics.REGISTRY.get(m), "run_level", False)]


def default_metrics() -> list[str]:
    """Every registered metric that scores one model (run-level metrics such as UDR need several),
    except the variants of other metrics (`sap_continuous`, `dci_lasso`...): those only when named."""
    from disentbench import metrics

    return [
        m
        for m in metrics.list_metrics()
        if not getattr(metrics.REGISTRY.get(m), "run_level", False)
        and getattr(metrics.REGISTRY.get(m), "variant_of", None) is None  # variants only when named
    ]


def _names(text: str | None) -> list[str] | None:
    from disentbench import metrics

    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    registered = metrics.list_metrics()
    if not names:
        raise BenchError(f"--metrics is empty; registered metrics: {', '.join(registered)}")
    for name in names:
        if name not in registered:
            raise BenchError(f"unknown metric {name!r}; registered metrics: {', '.join(registered)}")
    return names


def wanted_metrics(scores: dict[str, Any], named: list[str] | None) -> list[str]:
    """The named metrics (recomputed even if present), else every per-cell metric the cell lacks."""
    if named is not None:
        return list(named)
    return [m for m in default_metrics() if m not in scores]


def score_checkpoint(
    path: Path,
    config: dict[str, Any],
    sizes: dict[str, dict],
    device: str,
    data_dir: str | None,
    step: int,
    dataset=None,
) -> dict[str, Any]:
    """Scores of the model in checkpoint `path` (which must be at `step`) with the metrics of
    `sizes` ({name: parameters}), as the runner scores the cell of `config`:
    {"scores", "eval_seconds"} or {"error"}. The dataset is built from the config unless given."""
    from disentbench import datasets
    from disentbench.bench.checkpoint import build_method, read_checkpoint
    from disentbench.bench.runner import scoring_encoder
    from disentbench.bench.scoring import score_model

    name = Path(path).name
    if not Path(path).is_file():
        return {"error": f"no {name} (it was deleted or never written)"}
    try:
        state = read_checkpoint(path, map_location=device)
    except Exception as exc:  # truncated or foreign file
        return {"error": f"{name} is unreadable ({type(exc).__name__}); retrain the cell to score it"}
    if int(state["step"]) != int(step):
        return {"error": f"{name} is at step {state['step']}, not the scored {step}"}
    method = build_method(state, device).eval()
    if dataset is None:
        dataset = datasets.create(
            config["dataset"],
            source=config["data_source"],
            data_dir=data_dir,
            verify=bool(config.get("verified", True)),
            device=device,
        )
    encode = scoring_encoder(method, config.get("representation", "mean"), int(config["seed"]), device)
    t0 = time.perf_counter()
    scores, _ = score_model(method, encode, config, sizes, dataset, int(config["seed"]))
    return {"scores": scores, "eval_seconds": time.perf_counter() - t0}


def score_cell(
    cell_dir: Path, names: list[str], sizes: dict[str, dict], device: str, data_dir: str | None, plugins: tuple
) -> dict[str, Any]:
    """New scores of one cell from its checkpoint: {"scores", "eval_seconds"} or {"error"}."""
    from disentbench.bench.checkpoint import CHECKPOINT
    from disentbench.bench.plugins import load_plugins

    try:
        load_plugins(list(plugins))
        if (cell_dir / SCORES).is_file():
            config = json.loads((cell_dir / SCORES).read_text())["config"]
        else:  # a derived cell (bench/derived.py) before its first scores
            from disentbench.bench.runner import CONFIG

            config = json.loads((cell_dir / CONFIG).read_text())
        configs = {name: sizes.get(name, {}) for name in names}
        return score_checkpoint(cell_dir / CHECKPOINT, config, configs, device, data_dir, int(config["steps"]))
    except BenchError as exc:
        return {"error": str(exc)}
    except Exception as exc:  # one cell never takes the others down
        return {"error": f"{type(exc).__name__}: {exc}"}


def rescore(
    run_dir: Path,
    names: list[str] | None = None,
    jobs: int = 1,
    device: str = "cpu",
    data_dir: str | None = None,
    plugins: tuple = (),
    report: bool = True,
    curve: bool = False,
    representation: str | None = None,
    notes: list[str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """Rescore the cells of runs.csv; return (rescored cell ids, {cell id: why not}). With `curve`,
    the same metrics are also scored at every kept learning-curve checkpoint and merged into the
    cells' curve.csv (and the run's curves.csv). With `representation`, every finished cell scored
    on another one gets a derived cell scored on it (bench/derived.py) with the metrics named, else
    the ones the trained cell has; cells that cannot be scored so are listed in `notes`."""
    from joblib import Parallel, delayed

    from disentbench.bench.report.runs import load_runs, read_run_json

    run_dir = Path(run_dir)
    runs = load_runs([run_dir])  # no runs.csv -> one-line error
    info = read_run_json(run_dir) or {}
    profile = info.get("config") or {}
    sizes = {k: dict(v or {}) for k, v in (profile.get("metrics") or {}).items()}
    cell_ids = list(dict.fromkeys(runs["cell_id"]))
    records, skipped = _read_records(run_dir, cell_ids)
    run_level_wanted = "udr" in (names if names is not None else sizes)  # named, or in the run's profile
    per_cell = None if names is None else [n for n in names if n not in default_run_level()]
    if representation is None:
        todo = {cid: wanted_metrics(rec["scores"], per_cell) for cid, rec in records.items()}
    else:
        todo = _derive_all(run_dir, records, representation, per_cell, skipped, notes)
        cell_ids += [cid for cid in todo if cid not in cell_ids]
    todo = {cid: ms for cid, ms in todo.items() if ms}
    results = Parallel(n_jobs=max(1, jobs), backend="loky" if jobs > 1 else "sequential")(
        delayed(score_cell)(run_dir / "cells" / cid, ms, sizes, device, data_dir, tuple(plugins))
        for cid, ms in todo.items()
    )
    done = []
    for (cell_id, ms), result in zip(todo.items(), results):
        if "error" in result:
            skipped[cell_id] = result["error"]
            continue
        record = records[cell_id]
        _merge_scores(record, result, ms, sizes, device)
        write_json(run_dir / "cells" / cell_id / SCORES, record)
        fault_point("rescore")
        if curve:
            error = _rescore_curve(run_dir / "cells" / cell_id, record, result["scores"], ms, sizes, device, data_dir)
            if error:
                skipped[cell_id] = error
        done.append(cell_id)
    if run_level_wanted and records:
        from disentbench.bench import run_level

        scores, udr_notes = run_level.udr_of_run(
            run_dir, list(records.values()), sizes.get("udr", {}), device, data_dir
        )
        run_level.store(run_dir, list(records.values()), scores)
        done += [cid for cid in scores if cid not in done]
        info["notes"] = udr_notes
    if done and curve:
        from disentbench.bench.curve import write_run_curves

        write_run_curves(run_dir, cell_ids)
    if done or _tables_behind(runs, records):  # behind: a rescore killed before it rewrote them
        order = [records[c] for c in cell_ids if c in records]
        info.setdefault("rescored", []).append(
            {"at": provenance.now(), "cells": len(done), "metrics": names or "missing"}
        )
        _rewrite_tables(run_dir, order, profile, info, report)
    return done, skipped


def _scored_metrics(record: dict) -> list[str]:
    """The per-model metrics a cell was scored with: its run's metrics (names, not result keys such as
    `beta_vae_train_accuracy` or `heldout_mig`), else the registered names among its score keys."""
    from disentbench import metrics

    names = list(record["config"].get("metrics") or []) or [m for m in record["scores"] if m in metrics.list_metrics()]
    return [m for m in names if m not in default_run_level()]


def _read_records(run_dir: Path, cell_ids: list[str]) -> tuple[dict[str, dict], dict[str, str]]:
    """({cell id: its scores.json}, {cell id: why it has none readable})."""
    records: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    for cell_id in cell_ids:
        try:
            records[cell_id] = json.loads((run_dir / "cells" / cell_id / SCORES).read_text())
        except (OSError, ValueError):
            skipped[cell_id] = f"no readable {SCORES}"
    return records, skipped


def _merge_scores(record: dict, result: dict, names: list[str], sizes: dict, device: str) -> None:
    """The new scores into the cell's record, with a `rescored` entry saying what, when and how."""
    record["scores"].update(result["scores"])
    if "derived_from" in record and not record["eval_seconds"]:  # a derived cell's first scores
        record["eval_seconds"] = result["eval_seconds"]
    record.setdefault("rescored", []).append(
        {
            "at": provenance.now(),
            "metrics": names,
            "sizes": {m: sizes.get(m, {}) for m in names},
            "eval_seconds": round(result["eval_seconds"], 3),
            "device": device,
            "git_commit": provenance.git_commit(),
            **provenance.versions({m: sizes.get(m, {}) for m in names}),
        }
    )


def _derive_all(
    run_dir: Path,
    records: dict[str, dict],
    representation: str,
    named: list[str] | None,
    skipped: dict[str, str],
    notes: list[str] | None,
) -> dict[str, list[str]]:
    """Derive a cell scored on `representation` from each finished cell scored on another (adding
    it to `records`); return {derived cell id: metrics to score}. A derived cell already scored gets
    only the named metrics, or those it lacks."""
    from disentbench.bench import derived

    todo: dict[str, list[str]] = {}
    for cell_id, record in list(records.items()):
        config = record["config"]
        if config.get("representation", "mean") == representation or "derived_from" in record:
            continue
        reason = derived.why_not(config, representation)
        if reason:
            if notes is not None:
                notes.append(f"not derived: {cell_id}: {reason}")
            continue
        trained = _scored_metrics(record)
        try:
            sibling = derived.cell_of(config, representation).cell_id
            existing = run_dir / "cells" / sibling / SCORES
            if existing.is_file():  # derived (or trained) before: score what it lacks
                records[sibling] = json.loads(existing.read_text())
                have = records[sibling]["scores"]
                todo[sibling] = list(named) if named is not None else [m for m in trained if m not in have]
                continue
            sibling, records[sibling] = derived.derive(run_dir, record, representation)
            skipped.pop(sibling, None)  # listed in runs.csv but killed before its scores.json: redone now
        except BenchError as exc:
            skipped[cell_id] = str(exc)
            continue
        todo[sibling] = list(named) if named is not None else trained
    return todo


def _rewrite_tables(run_dir: Path, records: list[dict], profile: dict, info: dict, report: bool) -> None:
    """runs.csv, run.json, the leaderboard and (with `report`) the report, from the cells' records."""
    from disentbench.bench import report as reports
    from disentbench.bench.runner import write_runs_csv

    fresh = write_runs_csv(run_dir, records, str(profile.get("name", info.get("profile", ""))))
    write_json(run_dir / "run.json", info)
    primary = info.get("primary_metric") or "dci"
    reports.write_leaderboard(fresh, run_dir, primary)
    if report:
        reports.build_report([run_dir], run_dir / "report", primary)


def _tables_behind(runs, records: dict[str, dict]) -> bool:
    """Whether runs.csv lacks a score of the cells' scores.json (or has one they lack)."""
    have = set(zip(runs["cell_id"], runs["metric"]))
    want = {(cid, m) for cid, rec in records.items() for m in {**rec["scores"], **rec.get("run_level_scores", {})}}
    return have != want


def _rescore_curve(
    cell_dir: Path, record: dict, final: dict, names: list[str], sizes: dict, device: str, data_dir: str | None
) -> str | None:
    """Score `names` at each kept checkpoint of the cell and merge them (and the final step's new
    scores) into its curve.csv; the first error, or None."""
    from disentbench.bench.checkpoint import kept_path, kept_steps
    from disentbench.bench.curve import CURVE, merge_point

    config = record["config"]
    configs = {name: sizes.get(name, {}) for name in names}
    for step in kept_steps(cell_dir):
        result = score_checkpoint(kept_path(cell_dir, step), config, configs, device, data_dir, step)
        if "error" in result:
            return f"curve step {step}: {result['error']}"
        merge_point(cell_dir, step, result["scores"], result["eval_seconds"])
    if (cell_dir / CURVE).is_file():
        merge_point(cell_dir, int(config["steps"]), final, 0.0)
    return None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_benchmark.py rescore",
        description="Score the trained cells of a run with the metrics they lack (or --metrics), from their "
        "checkpoints; rewrite runs.csv, the leaderboard and the report.",
    )
    p.add_argument("run_dir", type=Path, metavar="DIR", help="a run folder holding runs.csv")
    p.add_argument("--metrics", default=None, help="comma-separated metrics to (re)compute (default: those missing)")
    p.add_argument("--jobs", type=int, default=1, help="cells scored at once, each in its own process")
    p.add_argument("--device", default="cpu", help="where the encoder runs (cpu, cuda, cuda:N)")
    p.add_argument("--data-dir", default=None, help="where official dataset files are")
    p.add_argument("--plugin", action="append", default=[], help="module or file registering methods/metrics")
    p.add_argument("--no-report", action="store_true", help="rewrite the tables only")
    p.add_argument(
        "--curve",
        action="store_true",
        help="also score the metrics at every kept learning-curve checkpoint (checkpoints/step-N.pt)",
    )
    p.add_argument(
        "--representation",
        choices=REPRESENTATIONS,
        default=None,
        help="score every trained cell on this representation too, as the derived cell a run with "
        "--representation would make, without training (docs/usage.md)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    notes: list[str] = []
    try:
        from disentbench.bench.plugins import load_plugins

        load_plugins(list(args.plugin))
        if args.jobs < 1:
            raise BenchError(f"--jobs must be a positive integer, got {args.jobs}")
        done, skipped = rescore(
            args.run_dir,
            _names(args.metrics),
            args.jobs,
            args.device,
            args.data_dir,
            tuple(args.plugin),
            report=not args.no_report,
            curve=args.curve,
            representation=args.representation,
            notes=notes,
        )
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"rescored {len(done)} cell(s) in {args.run_dir}" + ("" if done or skipped else ": every cell has every metric")
    )
    for note in notes:
        print(f"  {note}")
    for cell_id, why in skipped.items():
        print(f"  not rescored: {cell_id}: {why}")
    return 1 if skipped else 0
