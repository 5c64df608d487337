"""Run-level scores: metrics that compare several trained models (UDR, Duan et al. 2020).

UDR scores a model against the other models of its setting (dataset, data source, method,
hyperparameters, length) trained with other seeds, so it can only be computed once two or more of
them are finished, and it changes when another seed finishes. It is recomputed at the end of every
run (and by `rescore`) over all the run's finished cells, stored in each cell's scores.json under
`run_level_scores` (`udr`, and `udr_models`: how many models it compared), and written into
runs.csv as the metric `udr` like any other score. A setting with one finished seed gets no `udr`
and a note saying it needs at least two seeds; nothing fails.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from disentbench.atomic import write_json

SCORES = "scores.json"
#: the configuration fields that make a setting (everything but the seed)
SETTING_FIELDS = ("dataset", "data_source", "method", "hparams", "steps", "batch_size", "init", "precision")
#: every model of a setting encodes the same images, drawn from this seed
IMAGES_SEED = 0


def setting_key(config: dict[str, Any]) -> str:
    key = {k: config.get(k) for k in SETTING_FIELDS}
    key["representation"] = config.get("representation", "mean")
    for axis in ("correlation", "holdout"):  # absent from older keys, so their groups stay the same
        if config.get(axis, "none") != "none":
            key[axis] = config[axis]
    return json.dumps(key, sort_keys=True, default=str)


def udr_of_run(
    run_dir: Path, records: list[dict[str, Any]], params: dict[str, Any], device: str = "cpu", data_dir=None
) -> tuple[dict[str, dict[str, float]], list[str]]:
    """({cell id: {"udr": score, "udr_models": M}}, notes) over the finished cells in `records`."""
    from disentbench import datasets, metrics
    from disentbench.bench.checkpoint import build_method, load_latest
    from disentbench.datasets.holdout import seen_part
    from disentbench.metrics.udr import gather_model_codes

    udr = metrics.create("udr", **(params or {}))
    groups: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        groups[setting_key(record["config"])].append(record)
    scores: dict[str, dict[str, float]] = {}
    notes: list[str] = []
    data_cache: dict[tuple, Any] = {}
    for _key, members in sorted(groups.items()):
        config = members[0]["config"]
        what = f"{config['method']} {json.dumps(config['hparams'], sort_keys=True)} on {config['dataset']}"
        if len(members) < 2:
            notes.append(f"udr: {what} has 1 finished seed; UDR compares seeds of a setting and needs at least 2")
            continue
        models, ids = [], []
        for record in sorted(members, key=lambda r: r["config"]["seed"]):
            state = load_latest(Path(run_dir) / "cells" / record["cell_id"], map_location=device)
            if state is None:
                notes.append(f"udr: {record['cell_id']} has no readable checkpoint; left out of its setting's UDR")
                continue
            models.append(build_method(state, device).eval())
            ids.append(record["cell_id"])
        if len(models) < 2:
            notes.append(f"udr: {what} has fewer than 2 readable checkpoints; no UDR")
            continue
        data_key = (config["dataset"], config["data_source"], config.get("holdout", "none"))
        if data_key not in data_cache:  # a held-out cell's UDR, like its plain keys, scores the seen part
            plain = datasets.create(config["dataset"], source=config["data_source"], data_dir=data_dir, device=device)
            data_cache[data_key] = seen_part(plain, data_key[2])
        with_posterior = all(hasattr(m, "encode_sampled") and hasattr(m, "encoder") for m in models)
        codes, kls = gather_model_codes(
            data_cache[data_key],
            [m.encode for m in models],
            num_points=udr.num_train,
            seed=IMAGES_SEED,
            posteriors=[m.encoder for m in models] if with_posterior else None,
        )
        result = udr.score_models(codes, kls)
        for cell_id, value in zip(ids, result["udr"]):
            scores[cell_id] = {"udr": float(value), "udr_models": float(len(ids))}
    return scores, notes


def store(run_dir: Path, records: list[dict[str, Any]], scores: dict[str, dict[str, float]]) -> None:
    """Write the run-level scores into each cell's scores.json and the in-memory records (a cell
    that lost its score, e.g. its peers were removed, loses the stale value too)."""
    for record in records:
        new = scores.get(record["cell_id"])
        if record.get("run_level_scores") == new or (new is None and "run_level_scores" not in record):
            continue
        if new is None:
            record.pop("run_level_scores", None)
        else:
            record["run_level_scores"] = new
        write_json(Path(run_dir) / "cells" / record["cell_id"] / SCORES, record)
