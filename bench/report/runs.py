"""Reading run folders: the tidy `runs.csv` of every run merged into one frame, plus `run.json`.

A report must be rebuildable from the run folders alone, and several runs (a CPU run and a GPU
run, say) merge into one report, so everything downstream works from this one frame.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from disentbench.bench.report import headline
from disentbench.choices import SCORE_SET_PREFIXES
from disentbench.errors import BenchError

RUNS_CSV = "runs.csv"
RUN_JSON = "run.json"
DEFAULT_PRIMARY = "dci"
REQUIRED = ("cell_id", "dataset", "method", "hparams", "seed", "metric", "value")

#: metrics where smaller is better (the unsupervised correlation scores: "unsupervised" is the
#: Gaussian total correlation); every other metric is "higher is better". Kept explicit so that an
#: unknown key never silently flips direction.
LOWER_IS_BETTER = frozenset(
    {
        "unsupervised",
        "unsupervised_wasserstein_correlation",
        "unsupervised_wasserstein_correlation_norm",
        "unsupervised_mutual_info",
        "gaussian_total_correlation",
        "gaussian_wasserstein_correlation",
        "gaussian_wasserstein_correlation_norm",
        "mutual_info_score",
        "reconstruction_mse",
    }
)
#: diagnostics with no better direction (counts of active latents): never marked best
NO_DIRECTION_SUFFIXES = ("_num_active_dims",)

#: display order of the common metrics after the claim metrics (`headline.CLAIM_METRICS`, which lead);
#: others follow alphabetically
METRIC_ORDER = (
    "beta_vae",
    "factor_vae",
    "modularity",
    "modularity_explicitness",
    "explicitness",
    "irs",
    "dci_completeness",
    "dci_informativeness_test",
    "dci_informativeness_train",
)


def base_key(key: str) -> str:
    """The ordinary metric key under a score-set prefix (`heldout_mig` -> `mig`; SCORE_SET_PREFIXES)."""
    for prefix in SCORE_SET_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def higher_is_better(metric: str) -> bool:
    return base_key(metric) not in LOWER_IS_BETTER


def has_direction(metric: str) -> bool:
    """False for diagnostics such as the number of active latents, where no value is "best"."""
    return not metric.endswith(NO_DIRECTION_SUFFIXES)


def claim_metrics() -> tuple[str, ...]:
    """The metrics the DiD paper's claim is about, from the one list in headline.py (read at call
    time, so a caller that replaces `headline.CLAIM_METRICS` is heard)."""
    return tuple(headline.CLAIM_METRICS)


def ordered_metrics(metrics, primary: str | None = None) -> list[str]:
    """Primary metric first, then the claim metrics, the known ones in METRIC_ORDER, the rest sorted.
    (Its first entry is the fallback ranking metric of both the leaderboard and claims.md.)"""
    present = set(metrics)
    out = [primary] if primary in present else []
    out += [m for m in (*claim_metrics(), *METRIC_ORDER) if m in present and m not in out]
    out += sorted(present - set(out))
    return out


def registered_metrics() -> frozenset[str]:
    """Names of the registered metrics (plugins included once loaded): each is its family's
    headline key. Imported late: the metrics package pulls in scikit-learn and numba."""
    from disentbench import metrics

    return frozenset(metrics.list_metrics())


def variant_metrics() -> frozenset[str]:
    """Registered metrics that are variants of another (`variant_of`): computed only when named and
    shown only in the published table, never in the leaderboard's own tables or ranking."""
    from disentbench import metrics

    return frozenset(m for m in metrics.list_metrics() if getattr(metrics.REGISTRY.get(m), "variant_of", None))


def is_variant_key(key: str, variants: frozenset[str] | None = None) -> bool:
    """A key of a variant metric (its headline `sap_continuous` or a secondary `dci_lasso_completeness`)."""
    variants = variant_metrics() if variants is None else variants
    key = base_key(key)
    return any(key == v or key.startswith(v + "_") for v in variants)


def _parents(key: str, names: set[str]) -> list[str]:
    return [p for p in names if p != key and key.startswith(p + "_")]


def family_of(key: str, present, registered: frozenset[str] | None = None) -> str | None:
    """The headline key that `key` is a secondary key of, or None when `key` is a headline itself.

    A registered name is always a headline (`dci_hist` is its own metric, not a key of `dci`), and
    so is an unknown key that no registered or present name `P` prefixes as `P_...` (a plugin's
    metric not loaded here). A secondary key belongs to the longest such headline prefix
    (`modularity_explicitness_train` to `modularity`, `dci_hist_completeness` to `dci_hist`)."""
    registered = registered_metrics() if registered is None else registered
    if key in registered:
        return None
    names = set(registered) | set(present)
    heads = [p for p in _parents(key, names) if p in registered or not _parents(p, names)]
    return max(heads, key=len) if heads else None


def split_metrics(
    metrics, rank_metric: str | None = None, registered: frozenset[str] | None = None
) -> tuple[list[str], list[str]]:
    """(headline, secondary) metric keys in display order.

    Headline: the claim metrics (MIG, DCI, SAP) first, then the ranking metric (so the column the
    rows are ranked by is always in view, even a secondary key chosen as primary), then the other
    headline keys in METRIC_ORDER, then sorted. Secondary: the keys of each family (train
    accuracies, completeness, informativeness, counts...), grouped by family in headline order.
    A key of another score set (`heldout_mig`) follows its ordinary key (`mig`) in the same table."""
    present = list(dict.fromkeys(metrics))
    bases = list(dict.fromkeys(base_key(m) for m in present))
    headline, secondary = _split_bases(bases, base_key(rank_metric) if rank_metric else None, registered)

    def with_sets(keys: list[str]) -> list[str]:
        return [k for b in keys for k in (b, *(p + b for p in SCORE_SET_PREFIXES)) if k in present]

    return with_sets(headline), with_sets(secondary)


def _split_bases(
    present: list[str], rank_metric: str | None, registered: frozenset[str] | None
) -> tuple[list[str], list[str]]:
    """split_metrics on ordinary keys only."""
    registered = registered_metrics() if registered is None else registered
    family = {m: family_of(m, present, registered) for m in present}
    heads = {m for m in present if family[m] is None}
    headline = [m for m in claim_metrics() if m in heads]
    if rank_metric in family and rank_metric not in headline:
        headline.append(rank_metric)
    headline += [m for m in METRIC_ORDER if m in heads and m not in headline]
    headline += sorted(heads - set(headline))
    position = {m: i for i, m in enumerate(headline)}
    known = {m: i for i, m in enumerate(METRIC_ORDER)}
    secondary = sorted(
        (m for m in present if m not in position),
        key=lambda m: (position.get(family[m], len(position)), family[m] or "", known.get(m, len(known)), m),
    )
    return headline, secondary


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
            raise BenchError(
                f"{run_dir}: no {RUNS_CSV} here; pass a run folder written by "
                f"`run_benchmark.py run` (results/<profile> by default)"
            )
        try:
            frame = pd.read_csv(path, dtype={"cell_id": str, "hparams": str, "metric": str})
        except pd.errors.EmptyDataError:
            frame = pd.DataFrame(columns=list(REQUIRED))
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise BenchError(
                f"{path}: unreadable CSV ({type(exc).__name__}); rerun the benchmark or remove the file"
            ) from None
        missing = [c for c in REQUIRED if c not in frame.columns]
        if missing:
            raise BenchError(
                f"{path}: missing column(s) {', '.join(missing)}; it was not written by this benchmark's runner"
            )
        frame["run_dir"] = str(run_dir)
        frame["_order"] = order
        frames.append(frame)
    runs = pd.concat(frames, ignore_index=True)
    runs = runs.drop_duplicates(subset=["cell_id", "metric"], keep="last")
    return normalise(runs.drop(columns="_order").reset_index(drop=True))


def normalise(runs: pd.DataFrame) -> pd.DataFrame:
    """Types and defaults every report function relies on (idempotent): numeric value, canonical
    hparams JSON, int seed and steps, data_source and run_dir present, and `representation` (the
    codes the cell's metrics scored, read from its config JSON: "mean" unless it names another)."""
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
    if "representation" not in runs.columns:
        configs = runs["config"] if "config" in runs.columns else pd.Series(None, index=runs.index, dtype=object)
        runs["representation"] = configs.map({c: representation_of(c) for c in configs.dropna().unique()})
    runs["representation"] = runs["representation"].astype(object).fillna(MEAN_CODES).astype(str)
    for axis in ("correlation", "holdout"):  # a runs.csv written before the column: every cell "none"
        if axis not in runs.columns:
            runs[axis] = "none"
        runs[axis] = runs[axis].astype(object).fillna("none").astype(str)
    return runs


#: the codes a cell's metrics score when its config names none (bench/grid.py Cell.training_config
#: writes "representation" only when it is not the mean)
MEAN_CODES = "mean"


def representation_of(config: Any) -> str:
    """Which codes a cell's metrics scored ("mean", "sampled"...), from its config JSON in runs.csv."""
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except ValueError:
            return MEAN_CODES
    if isinstance(config, dict) and isinstance(config.get("representation"), str):
        return config["representation"]
    return MEAN_CODES


def precision_of(config: Any) -> str:
    """The arithmetic a cell trained in ("fp32", "bf16"), from its config JSON in runs.csv; "fp32"
    where none is named (runs written before the precision existed trained in fp32)."""
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except ValueError:
            return "fp32"
    return str(config.get("precision", "fp32")) if isinstance(config, dict) else "fp32"


def mixed_precision_note(runs: pd.DataFrame) -> str | None:
    """One sentence when a table pools cells trained in different precisions (the reports of an
    fp32 CPU run and a bf16 GPU run merged, both from `precision: auto`); None otherwise."""
    if "config" not in runs.columns or runs.empty:
        return None
    counts = runs.drop_duplicates("cell_id")["config"].map(precision_of).value_counts()
    if len(counts) < 2:
        return None
    parts = ", ".join(f"{name}: {n} cell(s)" for name, n in sorted(counts.items()))
    return (
        f"seeds trained in different precisions are pooled here ({parts}); bf16 agreed with fp32 "
        "within seed noise at 10,000 steps (docs/reference-length.md), not to the second decimal, and "
        "each row's config names its precision"
    )


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
            shown = {
                k: v for k, v in hp.items() if k in cls.reference_grid or k not in cls.defaults or v != cls.defaults[k]
            }
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


def claim_config_of(run_dirs: list[Path]) -> dict[str, Any] | None:
    """The `claim` of the profile recorded in the first run.json that has one (None: the default)."""
    for run_dir in run_dirs:
        config = (read_run_json(run_dir) or {}).get("config")
        if isinstance(config, dict) and isinstance(config.get("claim"), dict):
            return config["claim"]
    return None
