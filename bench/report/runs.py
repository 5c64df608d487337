"""Reading run folders: the tidy `runs.csv` of every run merged into one frame, plus `run.json`.

A report must be rebuildable from the run folders alone, and several runs (a CPU run and a GPU
run, say) merge into one report, so everything downstream works from this one frame.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from disentbench.bench.errors import BenchError

RUNS_CSV = "runs.csv"
RUN_JSON = "run.json"
DEFAULT_PRIMARY = "dci"
REQUIRED = ("cell_id", "dataset", "method", "hparams", "seed", "metric", "value")

#: metrics where smaller is better (the unsupervised correlation scores: "unsupervised" is the
#: Gaussian total correlation); every other metric is "higher is better". Kept explicit so that an
#: unknown key never silently flips direction.
LOWER_IS_BETTER = frozenset({
    "unsupervised",
    "unsupervised_wasserstein_correlation",
    "unsupervised_wasserstein_correlation_norm",
    "unsupervised_mutual_info",
    "gaussian_total_correlation",
    "gaussian_wasserstein_correlation",
    "gaussian_wasserstein_correlation_norm",
    "mutual_info_score",
})
#: diagnostics with no better direction (counts of active latents): never marked best
NO_DIRECTION_SUFFIXES = ("_num_active_dims",)

#: display order of the common metrics (the paper's three first); others follow alphabetically
METRIC_ORDER = ("mig", "dci", "sap", "beta_vae", "factor_vae", "modularity", "modularity_explicitness",
                "explicitness", "irs", "dci_completeness", "dci_informativeness_test",
                "dci_informativeness_train")


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def has_direction(metric: str) -> bool:
    """False for diagnostics such as the number of active latents, where no value is "best"."""
    return not metric.endswith(NO_DIRECTION_SUFFIXES)


def ordered_metrics(metrics, primary: str | None = None) -> list[str]:
    """Primary metric first, then the known ones in METRIC_ORDER, then the rest sorted."""
    present = set(metrics)
    out = [primary] if primary in present else []
    out += [m for m in METRIC_ORDER if m in present and m not in out]
    out += sorted(present - set(out))
    return out


def load_runs(run_dirs: list[Path]) -> pd.DataFrame:
    """Concatenate DIR/runs.csv of every run folder (later folders win on a repeated cell+metric).

    Adds `run_dir` (where the cell's checkpoint and log live). Bad folders raise a one-line error.
    """
    if not run_dirs:
        raise BenchError("no run folder given; pass one or more folders that hold a runs.csv")
    frames = []
    for order, run_dir in enumerate(run_dirs):
        run_dir = Path(run_dir)
        path = run_dir / RUNS_CSV
        if not path.is_file():
            raise BenchError(f"{run_dir}: no {RUNS_CSV} here; pass a run folder written by "
                             f"`run_benchmark.py run` (results/<profile> by default)")
        try:
            frame = pd.read_csv(path, dtype={"cell_id": str, "hparams": str, "metric": str})
        except pd.errors.EmptyDataError:
            frame = pd.DataFrame(columns=list(REQUIRED))
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise BenchError(f"{path}: unreadable CSV ({type(exc).__name__}); rerun the benchmark "
                             f"or remove the file") from None
        missing = [c for c in REQUIRED if c not in frame.columns]
        if missing:
            raise BenchError(f"{path}: missing column(s) {', '.join(missing)}; it was not written "
                             f"by this benchmark's runner")
        frame["run_dir"] = str(run_dir)
        frame["_order"] = order
        frames.append(frame)
    runs = pd.concat(frames, ignore_index=True)
    runs = runs.drop_duplicates(subset=["cell_id", "metric"], keep="last")
    return normalise(runs.drop(columns="_order").reset_index(drop=True))


def normalise(runs: pd.DataFrame) -> pd.DataFrame:
    """Types and defaults every report function relies on (idempotent): numeric value, canonical
    hparams JSON, int seed and steps, data_source and run_dir present."""
    runs = runs.copy()
    runs["value"] = pd.to_numeric(runs["value"], errors="coerce")
    hparams = runs["hparams"].map(lambda h: json.dumps(h, sort_keys=True) if isinstance(h, dict) else h)
    hparams = hparams.fillna("{}").astype(str)
    runs["hparams"] = hparams.map({h: canonical_hparams(h) for h in hparams.unique()})
    runs["seed"] = pd.to_numeric(runs["seed"], errors="coerce").fillna(-1).astype(int)
    for col, default in (("data_source", "unknown"), ("steps", -1), ("run_dir", ".")):
        if col not in runs.columns:
            runs[col] = default
    runs["data_source"] = runs["data_source"].fillna("unknown").astype(str)
    runs["steps"] = pd.to_numeric(runs["steps"], errors="coerce").fillna(-1).astype(int)
    for col in ("cell_id", "dataset", "method", "metric"):
        runs[col] = runs[col].astype(str)
    return runs


def canonical_hparams(text: str) -> str:
    """JSON with sorted keys, so the same setting written twice compares equal."""
    try:
        return json.dumps(json.loads(text), sort_keys=True)
    except (TypeError, ValueError):
        return str(text)


def parse_hparams(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def short_hparams(text: str, method: str | None = None) -> str:
    """`{"beta": 4.0, "lr": 0.0001}` -> `beta=4, lr=0.0001` for tables and legends.

    Given a registered method, only what tells its settings apart is shown: the parameters of its
    reference grid, and any parameter that differs from the method's default."""
    hp = parse_hparams(text)
    if not hp:
        return "default" if text in ("{}", "") else str(text)
    shown = hp
    if method is not None:
        from disentbench import methods
        try:
            cls = methods.get(method)
        except Exception:  # a method of a plugin that is not loaded here: show everything
            cls = None
        if cls is not None:
            shown = {k: v for k, v in hp.items()
                     if k in cls.reference_grid or k not in cls.defaults or v != cls.defaults[k]}
            if not shown:
                return "default"
    return ", ".join(f"{k}={_short_value(v)}" for k, v in sorted(shown.items()))


def _short_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def read_run_json(run_dir: Path) -> dict[str, Any] | None:
    """The run's run.json, or None when absent or unreadable (old runs have none)."""
    path = Path(run_dir) / RUN_JSON
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def primary_metric_of(run_dirs: list[Path]) -> str:
    """The primary metric recorded in the first run.json that has one, else "dci"."""
    for run_dir in run_dirs:
        info = read_run_json(run_dir) or {}
        if isinstance(info.get("primary_metric"), str) and info["primary_metric"]:
            return info["primary_metric"]
    return DEFAULT_PRIMARY
