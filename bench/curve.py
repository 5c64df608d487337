"""Learning curves: a cell scored at chosen steps during training (the profile's `score_steps`).

At each scored step the trainer writes the cell's checkpoint and keeps a copy in
`checkpoints/step-N.pt` (bench.checkpoint.keep_copy); the runner then scores that kept checkpoint
with the profile's metrics, the way `rescore` scores a checkpoint (same data source, representation
and seed), and appends the numbers to the cell's `curve.csv`. The final step's scores (scores.json)
close the curve. A step already in `curve.csv` is never scored again, and a kept checkpoint left
unscored (a run stopped between the copy and the scoring) is scored on the next run. The driver
gathers every cell's curve into the run's `curves.csv`, one tidy row per (cell, step, metric) with
the cell's provenance.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from disentbench.atomic import atomic_path
from disentbench.bench import provenance
from disentbench.bench.checkpoint import kept_path, kept_steps
from disentbench.errors import BenchError
from disentbench.faults import fault_point

CURVE = "curve.csv"
CURVES = "curves.csv"
CURVE_COLUMNS = ["step", "metric", "value", "eval_seconds", "scored_at", "git_commit"]


def cell_score_steps(profile: dict[str, Any], method: str) -> list[int]:
    """The steps at which a method's cells are scored: `method_score_steps[method]`, else `score_steps`."""
    per_method = profile.get("method_score_steps") or {}
    return [int(s) for s in per_method.get(method, profile.get("score_steps") or [])]


def check_score_steps(steps: list[int], where: str, cell_steps: int | None = None) -> None:
    """One line for a list that is not strictly increasing positive integers (reachable in
    cell_steps, when given)."""
    for i, s in enumerate(steps):
        if isinstance(s, bool) or not isinstance(s, int) or s < 1:
            raise BenchError(f"{where}: score_steps entry {s!r} is not a positive integer")
        if i and s <= steps[i - 1]:
            raise BenchError(f"{where}: score_steps must increase, but {s} follows {steps[i - 1]}")
        if cell_steps is not None and s > cell_steps:
            raise BenchError(
                f"{where}: score_steps entry {s} is beyond the {cell_steps} training steps; "
                f"drop it, raise --steps, or give --score-steps"
            )


def parse_score_steps(text: str) -> list[int]:
    """`--score-steps 1000,3000,10000` -> [1000, 3000, 10000] (`none` or empty: no curve)."""
    if text.strip().lower() in ("", "none"):
        return []
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise BenchError(f"--score-steps {text!r}: give increasing step numbers, e.g. 1000,3000,10000") from None


def read_curve(cell_dir: str | Path) -> pd.DataFrame:
    path = Path(cell_dir) / CURVE
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    return pd.read_csv(path)


def scored_steps(cell_dir: str | Path) -> set[int]:
    return {int(s) for s in read_curve(cell_dir)["step"]}


def append_point(cell_dir: str | Path, step: int, scores: dict[str, float], eval_seconds: float) -> None:
    """Add one step's scores to curve.csv (rewritten atomically; a step present is replaced whole)."""
    _write_point(cell_dir, step, scores, eval_seconds, whole_step=True)


def merge_point(cell_dir: str | Path, step: int, scores: dict[str, float], eval_seconds: float) -> None:
    """Set these metrics' values at `step` in curve.csv, keeping the step's other metrics (rescore)."""
    _write_point(cell_dir, step, scores, eval_seconds, whole_step=False)


def _write_point(cell_dir, step: int, scores: dict[str, float], eval_seconds: float, whole_step: bool) -> None:
    old = read_curve(cell_dir)
    replaced = old["step"] == int(step)
    if not whole_step:
        replaced &= old["metric"].isin(list(scores))
    keep = old[~replaced]
    at, commit = provenance.now(), provenance.git_commit()
    new = pd.DataFrame(
        [[int(step), k, float(v), round(float(eval_seconds), 3), at, commit] for k, v in sorted(scores.items())],
        columns=CURVE_COLUMNS,
    )
    frame = pd.concat([keep, new], ignore_index=True) if len(keep) else new
    frame = frame.sort_values(["step", "metric"], kind="stable")
    with atomic_path(Path(cell_dir) / CURVE) as tmp:
        frame.to_csv(tmp, index=False)


def score_kept(
    cell_dir: str | Path,
    config: dict[str, Any],
    device: str,
    data_dir: str | None,
    dataset=None,
    on_point: Callable[[int, dict[str, float]], None] | None = None,
) -> int:
    """Score every kept checkpoint of the cell that curve.csv lacks, with config["metrics"]; returns
    how many steps were scored. Each is scored as `rescore` scores a checkpoint; `on_point(step,
    scores)` is called after each point is appended (the run's trackers log it)."""
    from disentbench.bench.rescore import score_checkpoint

    done = scored_steps(cell_dir)
    todo = [s for s in kept_steps(cell_dir) if s not in done]
    for step in todo:
        result = score_checkpoint(
            kept_path(cell_dir, step), config, dict(config["metrics"]), device, data_dir, step, dataset=dataset
        )
        if "error" in result:
            raise BenchError(f"{kept_path(cell_dir, step)}: {result['error']}")
        fault_point("curve_point")
        append_point(cell_dir, step, result["scores"], result["eval_seconds"])
        if on_point is not None:
            on_point(step, result["scores"])
    return len(todo)


def curve_rows(cell_dir: str | Path, record: dict[str, Any]) -> list[dict[str, Any]]:
    """The cell's curve as rows of the run's curves.csv: its provenance columns (as runs.csv) + step."""
    from disentbench.bench.runner import provenance_columns

    curve = read_curve(cell_dir)
    if curve.empty:
        return []
    base = provenance_columns(record, record["config"].get("profile", ""))
    out = []
    for row in curve.itertuples(index=False):
        point = {"step": int(row.step), "metric": row.metric, "value": float(row.value)}
        out.append({**base, **point, "eval_seconds": float(row.eval_seconds)})
    return out


def partial_record(cell_dir: Path) -> dict[str, Any] | None:
    """A record for a cell still training (config.json, no scores): enough for its curve's rows."""
    try:
        config = json.loads((cell_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return {
        "cell_id": cell_dir.name,
        "config": config,
        "train_seconds": float("nan"),
        "eval_seconds": float("nan"),
        "device": config.get("device", ""),
        "git_commit": provenance.git_commit(),
        **provenance.versions(),
    }


def write_run_curves(run_dir: str | Path, cell_ids: list[str]) -> Path | None:
    """The run's curves.csv from the curves of `cell_ids` (finished or not); None when no cell has one."""
    from disentbench.bench.runner import RUN_COLUMNS, SCORES

    run_dir = Path(run_dir)
    rows: list[dict[str, Any]] = []
    for cell_id in cell_ids:
        folder = run_dir / "cells" / cell_id
        if not (folder / CURVE).is_file():
            continue
        scores = folder / SCORES
        record = json.loads(scores.read_text()) if scores.is_file() else partial_record(folder)
        if record is not None:
            rows += curve_rows(folder, record)
    path = run_dir / CURVES
    if not rows:
        return None
    columns = [c for c in RUN_COLUMNS if c not in ("metric", "value")]
    at = columns.index("seed") + 1  # the cell's identity first, then the point, then the rest
    columns = columns[:at] + ["step", "metric", "value"] + columns[at:]
    frame = pd.DataFrame(rows, columns=columns).sort_values(["cell_id", "step", "metric"], kind="stable")
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, quoting=csv.QUOTE_MINIMAL)
    return path
