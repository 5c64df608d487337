"""Profiles: YAML files naming the grid and its budgets. A user's own YAML may `extends:` a named
one (or another file); each key it gives replaces the parent's value whole.

Every key is validated before any work starts; an unknown key or a wrong type is a one-line error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from disentbench.bench.claim import ClaimSpec, check_types
from disentbench.bench.curve import check_score_steps
from disentbench.choices import GRIDS, PRECISION_SETTINGS, PRECISIONS, REPRESENTATIONS, or_list
from disentbench.errors import BenchError
from disentbench.methods.backbone import INIT_SCHEMES

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"

# key -> (type check, description)
_SCHEMA: dict[str, tuple[type | tuple[type, ...], str]] = {
    "description": (str, "a sentence"),
    "extends": (str, "a profile name or path"),
    "datasets": (list, "a list of dataset names"),
    "methods": ((list, str), "a list of method names or 'all'"),
    "seeds": (int, "a positive integer"),
    "batch_size": (int, "a positive integer"),
    "steps": (int, "a positive integer"),
    "method_steps": (dict, "a mapping method -> positive integer"),
    "log_every": (int, "a positive integer"),
    "checkpoint_every": (int, "a non-negative integer (0: only at the end)"),
    "score_steps": (list, "an increasing list of steps at which every cell is scored (a learning curve)"),
    "method_score_steps": (dict, "a mapping method -> increasing list of steps (replaces score_steps for it)"),
    "init": (str, or_list(INIT_SCHEMES)),
    "primary_metric": (str, "a metric key such as dci"),
    "metrics": (dict, "a mapping metric -> {parameter: value}"),
    "grid": (str, or_list(GRIDS) + " (reference: every method over its reference grid; --grid overrides)"),
    "procedural_ok": (bool, "true or false (false: --source auto refuses the procedural stand-in)"),
    "representation": (str, or_list(REPRESENTATIONS) + " (what the metrics score; --representation overrides)"),
    "precision": (
        str,
        or_list(PRECISION_SETTINGS)
        + " (auto: bf16 on AMX CPUs and CUDA GPUs with bf16, else fp32; --precision overrides)",
    ),
    "correlation": (
        list,
        "a list of correlation settings training draws from, e.g. [dsprites_single_1_01] "
        "(none: uncorrelated; several: one more grid axis; --correlation overrides)",
    ),
    "score_correlated": (
        bool,
        "true or false (true: a correlated cell is also scored on its correlated training distribution, "
        "in columns correlated_<metric>; --score-correlated sets it)",
    ),
    "holdout": (
        list,
        "a list of held-out combination settings, e.g. [dsprites_recomb_10] (none: train on every "
        "combination; several: one more grid axis; --holdout overrides)",
    ),
    "reconstruction_points": (
        int,
        "a positive integer (images per set whose reconstruction error a held-out cell records)",
    ),
    "claim": (dict, "a mapping {method, ablation, metrics, run_ablation} (the claim the report tests)"),
    "log": (list, "a list of trackers that log every cell, e.g. [tensorboard, mlflow] (--log overrides)"),
}
_POSITIVE = ("seeds", "batch_size", "steps", "log_every", "reconstruction_points")


def list_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise BenchError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BenchError(f"{path}: a profile must be a YAML mapping of keys to values")
    return data


def _resolve(name_or_path: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    path = Path(name_or_path)
    if name_or_path in list_profiles():
        path = PROFILE_DIR / f"{name_or_path}.yaml"
    elif not (path.suffix in (".yaml", ".yml") and path.is_file()):
        raise BenchError(
            f"unknown profile {name_or_path!r}; choose one of {', '.join(list_profiles())} "
            f"or give the path of a .yaml file"
        )
    key = str(path.resolve())
    if key in seen:
        raise BenchError(f"profile {name_or_path!r} extends itself")
    data = _read_yaml(path)
    unknown = sorted(set(data) - set(_SCHEMA))
    if unknown:
        raise BenchError(f"{path.name}: unknown key {unknown[0]!r}; allowed keys: {', '.join(_SCHEMA)}")
    parent = data.pop("extends", None)
    if parent is not None:
        parent = str(parent)
        if parent not in list_profiles() and not Path(parent).is_absolute():
            parent = str(path.parent / parent)  # a relative path is relative to the extending file
        base = _resolve(parent, seen + (key,))
        merged = {k: v for k, v in base.items() if k != "name"}
        merged.update(data)  # a key given here replaces the parent's whole value (metrics included)
        data = merged
    data.setdefault("name", path.stem)
    return data


def validate_profile(p: dict[str, Any]) -> dict[str, Any]:
    where = f"profile {p.get('name', '?')}"
    for key, value in p.items():
        if key == "name":
            continue
        kind, what = _SCHEMA[key]
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
            raise BenchError(f"{where}: {key} must be {what}, got {value!r}")
    for key in _POSITIVE:
        if key in p and p[key] < 1:
            raise BenchError(f"{where}: {key} must be a positive integer, got {p[key]}")
    if p.get("checkpoint_every", 0) < 0:
        raise BenchError(f"{where}: checkpoint_every must be >= 0")
    if p.get("init", INIT_SCHEMES[0]) not in INIT_SCHEMES:
        raise BenchError(f"{where}: init must be {or_list(INIT_SCHEMES)}, got {p['init']!r}")
    if p.get("representation", REPRESENTATIONS[0]) not in REPRESENTATIONS:
        raise BenchError(f"{where}: representation must be {or_list(REPRESENTATIONS)}, got {p['representation']!r}")
    if p.get("precision", PRECISIONS[0]) not in PRECISION_SETTINGS:
        raise BenchError(f"{where}: precision must be {or_list(PRECISION_SETTINGS)}, got {p['precision']!r}")
    if p.get("grid", "none") not in GRIDS:
        raise BenchError(f"{where}: grid must be {or_list(GRIDS)}, got {p['grid']!r}")
    if isinstance(p.get("methods"), str) and p["methods"] != "all":
        raise BenchError(f"{where}: methods must be a list or 'all'")
    for m, s in (p.get("method_steps") or {}).items():
        if isinstance(s, bool) or not isinstance(s, int) or s < 1:
            raise BenchError(f"{where}: method_steps.{m} must be a positive integer, got {s!r}")
    for key, steps in [("score_steps", p.get("score_steps") or [])] + [
        (f"method_score_steps.{m}", s) for m, s in (p.get("method_score_steps") or {}).items()
    ]:
        if not isinstance(steps, list):
            raise BenchError(f"{where}: {key} must be a list of increasing steps, got {steps!r}")
        check_score_steps(steps, f"{where}: {key}")
    for name, params in (p.get("metrics") or {}).items():
        if params is not None and not isinstance(params, dict):
            raise BenchError(f"{where}: metrics.{name} must be a mapping of parameters, got {params!r}")
    if "claim" in p:
        check_types(where, p["claim"])
    for name in p.get("log") or []:  # the names themselves are checked with the trackers (bench.trackers)
        if not isinstance(name, str):
            raise BenchError(f"{where}: log must be a list of tracker names such as tensorboard, got {name!r}")
    for axis in ("correlation", "holdout"):
        names = p.get(axis, ["none"])
        if not names or not all(isinstance(name, str) and name for name in names):
            raise BenchError(f"{where}: {axis} must be a list of setting names such as none, got {names!r}")
    for key in ("datasets", "metrics", "steps", "batch_size", "primary_metric"):
        if key not in p:
            raise BenchError(f"{where}: missing required key {key!r}")
    p.setdefault("methods", "all")
    p.setdefault("seeds", 1)
    p.setdefault("method_steps", {})
    p.setdefault("log_every", 100)
    p.setdefault("checkpoint_every", 0)
    p.setdefault("score_steps", [])
    p.setdefault("method_score_steps", {})
    p.setdefault("init", "reference")
    p.setdefault("grid", "none")
    p.setdefault("procedural_ok", True)
    p.setdefault("representation", REPRESENTATIONS[0])
    p.setdefault("precision", PRECISIONS[0])
    p.setdefault("correlation", ["none"])
    p.setdefault("score_correlated", False)
    p.setdefault("holdout", ["none"])
    p.setdefault("reconstruction_points", 10_000)
    if "claim" in p:  # absent: the report tests the default claim on whatever metrics were measured
        p["claim"] = ClaimSpec.from_config(p["claim"]).as_config()
    p["metrics"] = {k: dict(v or {}) for k, v in p["metrics"].items()}
    return p


def load_profile(name_or_path: str) -> dict[str, Any]:
    """A validated profile dict (with "name"), from a bundled name or a user's YAML path."""
    return validate_profile(_resolve(name_or_path))
