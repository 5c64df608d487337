"""Expanding a benchmark into cells: datasets x methods x hyperparameter settings x seeds.

A cell's id is stable: readable parts (dataset, method, non-default hyperparameters, seed) plus a
short hash of its whole training configuration, so changing steps, batch size or data source
makes a new cell instead of silently reusing an old one. The configuration includes the
"module:qualname" of the class that trains the cell, so a plugin registered over a built-in name
(`override=True`) never reuses the built-in's results.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from disentbench import methods
from disentbench.choices import GRIDS, REPRESENTATIONS, or_list
from disentbench.errors import BenchError


@dataclass(frozen=True)
class Cell:
    dataset: str
    data_source: str
    method: str
    hparams_json: str  # full typed hyperparameters, JSON with sorted keys
    seed: int
    steps: int
    batch_size: int
    init: str
    precision: str = "fp32"  # bf16 training gives other numbers, so it is part of the cell's identity
    #: what the metrics score (REPRESENTATIONS); the default "mean" adds nothing to the id, so the
    #: ids of cells scored on the mean are those of runs made before the option existed
    representation: str = "mean"
    #: the correlation setting training draws its factors from (disentbench.datasets.correlation);
    #: the default "none" adds nothing to the id, so uncorrelated cells keep the ids they had
    correlation: str = "none"
    #: the held-out combinations training never sees (disentbench.datasets.holdout); the default
    #: "none" adds nothing to the id, like `correlation`
    holdout: str = "none"
    #: "module:qualname" of the class that trains the cell (method_class_path), part of its identity
    method_class: str = ""
    #: readable hyperparameters for the id (hparams_slug, computed where the method is registered);
    #: worker processes rebuild the id without importing the user's plugins
    slug: str = ""

    @property
    def hparams(self) -> dict[str, Any]:
        return json.loads(self.hparams_json)

    def training_config(self) -> dict[str, Any]:
        cfg = asdict(self)
        del cfg["hparams_json"], cfg["slug"]
        if cfg["representation"] == REPRESENTATIONS[0]:
            del cfg["representation"]
        for axis in ("correlation", "holdout"):
            if cfg[axis] == "none":
                del cfg[axis]
        cfg["hparams"] = self.hparams
        return cfg

    @property
    def cell_id(self) -> str:
        digest = hashlib.sha1(json.dumps(self.training_config(), sort_keys=True).encode()).hexdigest()[:8]
        parts = [self.dataset, self.method]
        if self.correlation != "none":  # dsprites_single_1_01 on dsprites: "dsprites-single_1_01-..."
            parts.insert(1, self.correlation.removeprefix(f"{self.dataset}_"))
        if self.holdout != "none":  # dsprites_recomb_10 on dsprites: "dsprites-held_recomb_10-..."
            parts.insert(1, "held_" + self.holdout.removeprefix(f"{self.dataset}_"))
        if self.slug:
            parts.append(self.slug)
        parts.append(f"s{self.seed}")
        parts.append(digest)
        return "-".join(parts)


def method_class_path(method: str) -> str:
    """The "module:qualname" of the class registered as `method`: which code trains its cells."""
    cls = methods.get(method)
    return f"{cls.__module__}:{cls.__qualname__}"


def hparams_slug(method: str, hparams: dict[str, Any]) -> str:
    """What tells a method's settings apart: its reference-grid parameters, and any parameter that
    differs from the method's default (the full set is in config.json and the hash)."""
    cls = methods.get(method)
    shown = []
    for k in sorted(hparams):
        v = hparams[k]
        if k in cls.reference_grid or k not in cls.defaults or v != cls.defaults[k]:
            shown.append(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}")
    return "_".join(shown)


def parse_sets(items: Iterable[str], selected_methods: list[str]) -> dict[str, dict[str, list[str]]]:
    """`--set METHOD.PARAM=V1,V2` -> {method: {param: [values as strings]}} (validated later)."""
    out: dict[str, dict[str, list[str]]] = {}
    for item in items:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise BenchError(f"--set {item!r}: write METHOD.PARAM=VALUE[,VALUE...], e.g. --set betavae.beta=1,4,16")
        lhs, rhs = item.split("=", 1)
        method, param = lhs.split(".", 1)
        methods.get(method)  # unknown method -> one-line error listing the registered ones
        if method not in selected_methods:
            raise BenchError(
                f"--set {item!r}: method {method!r} is not selected (--methods {','.join(selected_methods)})"
            )
        values = [v.strip() for v in rhs.split(",") if v.strip()]
        if not values:
            raise BenchError(f"--set {item!r}: no value given")
        out.setdefault(method, {})[param] = values
    return out


def hparam_settings(
    method: str, sets: dict[str, list[str]] | None = None, grid: str = "none", dataset_size: int | None = None
) -> list[dict[str, Any]]:
    """Every hyperparameter setting of a method: its reference grid (if asked) and --set sweeps,
    as a cartesian product; each validated and typed. A method hyperparameter named `dataset_size`
    (beta-TCVAE's N) is filled from the dataset unless the user sets it."""
    cls = methods.get(method)
    axes: dict[str, list[Any]] = {}
    if dataset_size is not None and "dataset_size" in cls.defaults:
        axes["dataset_size"] = [dataset_size]
    if grid not in GRIDS:
        raise BenchError(f"unknown --grid {grid!r}; choose {or_list(GRIDS)}")
    if grid == "reference":
        axes.update({k: list(v) for k, v in cls.reference_grid.items()})
    axes.update(sets or {})
    keys = sorted(axes)
    settings, seen = [], set()
    for combo in itertools.product(*(axes[k] for k in keys)):
        hp = cls.validate_hparams(dict(zip(keys, combo)))
        key = json.dumps(hp, sort_keys=True)
        if key not in seen:
            seen.add(key)
            settings.append(hp)
    return settings


def expand(
    profile: dict[str, Any],
    method_names: list[str],
    dataset_sources: dict[str, str],
    seeds: int,
    steps_override: int | None,
    sets: dict[str, dict[str, list[str]]],
    grid: str,
    dataset_sizes: dict[str, int] | None = None,
    precision: str = "fp32",
    representation: str = "mean",
    extra_settings: dict[str, list[dict[str, Any]]] | None = None,
    correlations: dict[str, list[str]] | None = None,
    holdouts: dict[str, list[str]] | None = None,
) -> list[Cell]:
    """Every cell. `extra_settings` adds, per method, settings given as overrides of its defaults
    (the claim's ablation) after the grid's, unless the grid already holds them. `correlations`:
    per dataset, the correlation settings its cells train on (one more axis; default ["none"]);
    `holdouts` likewise the held-out combinations (a correlation and a holdout never combine)."""
    for dataset in dataset_sources:
        corr = [c for c in (correlations or {}).get(dataset, []) if c != "none"]
        held = [h for h in (holdouts or {}).get(dataset, []) if h != "none"]
        if corr and held:
            raise BenchError(
                f"correlation {corr[0]} and holdout {held[0]} do not combine (one reweights the combinations, "
                "the other removes some); run them as two commands into the same --results"
            )
    cells = []
    for dataset, source in dataset_sources.items():
        for method in method_names:
            steps = steps_override or int(profile["method_steps"].get(method, profile["steps"]))
            size = (dataset_sizes or {}).get(dataset)
            class_path = method_class_path(method)
            settings = hparam_settings(method, sets.get(method), grid, size)
            for overrides in (extra_settings or {}).get(method, []):
                extra = hparam_settings(method, {k: [v] for k, v in overrides.items()}, "none", size)[0]
                if extra not in settings:
                    settings.append(extra)
            axes = itertools.product(
                (correlations or {}).get(dataset, ["none"]), (holdouts or {}).get(dataset, ["none"])
            )
            for hp, (correlation, holdout), seed in itertools.product(settings, list(axes), range(seeds)):
                cells.append(
                    Cell(
                        dataset,
                        source,
                        method,
                        json.dumps(hp, sort_keys=True),
                        seed,
                        steps,
                        int(profile["batch_size"]),
                        str(profile["init"]),
                        precision,
                        representation=representation,
                        correlation=correlation,
                        holdout=holdout,
                        method_class=class_path,
                        slug=hparams_slug(method, hp),
                    )
                )
    return cells
