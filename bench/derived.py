"""Cells derived from a trained cell without training: the same model scored on another representation.

What the metrics score (the encoder mean, or one draw from q(z|x): `--representation`) is part of a
cell's identity, yet it changes nothing in training. Published numbers are often on sampled codes
(InfoGAN-CR's FactorVAE rows) while a run scored the mean; retraining a 150,000-step model to
score it once more would waste hours. `rescore DIR --representation sampled` instead derives, for
every finished cell scored on another representation, the cell a run with `--representation
sampled` would have made: its own folder under the id that run would give it, its config with the
new representation, the trained cell's checkpoints and train log linked (hard links where the file
system allows, else copies), and a `derived_from` record naming the trained cell. It is scored
from that checkpoint like any rescored cell, so its numbers equal those of a run that trained it
with `--representation sampled` (training does not depend on the representation), and such a run
later finds it complete. scores.json is written last: a derivation killed midway is redone.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from disentbench.atomic import write_json
from disentbench.bench import provenance
from disentbench.choices import REPRESENTATIONS
from disentbench.errors import BenchError


def cell_of(config: dict[str, Any], representation: str | None = None):
    """The Cell of a finished cell's config (scored on `representation` when given). Raises BenchError
    when the config does not rebuild the cell's own id (a config older than the id's fields)."""
    from disentbench.bench.grid import Cell, hparams_slug

    cell = Cell(
        dataset=config["dataset"],
        data_source=config["data_source"],
        method=config["method"],
        hparams_json=json.dumps(config["hparams"], sort_keys=True),
        seed=int(config["seed"]),
        steps=int(config["steps"]),
        batch_size=int(config["batch_size"]),
        init=config["init"],
        precision=config.get("precision", "fp32"),
        representation=config.get("representation", REPRESENTATIONS[0]),
        correlation=config.get("correlation", "none"),
        method_class=config.get("method_class", ""),
        slug=hparams_slug(config["method"], config["hparams"]),
        **({"holdout": config["holdout"]} if config.get("holdout", "none") != "none" else {}),
    )
    if config.get("cell_id") and cell.cell_id != config["cell_id"]:
        raise BenchError(
            f"cell {config['cell_id']}: its config does not rebuild its id (written by an older version); "
            f"train it with --representation {representation or cell.representation} instead"
        )
    if representation is None:
        return cell
    from dataclasses import replace

    return replace(cell, representation=representation)


def why_not(config: dict[str, Any], representation: str) -> str | None:
    """Why the cell of `config` cannot be scored on `representation` (None: it can)."""
    from disentbench import methods

    if representation == REPRESENTATIONS[0]:
        return None
    cls = methods.get(config["method"])
    if getattr(cls, "encode_sampled", None) is None:
        return f"{config['method']} has no posterior to sample (representation {representation} needs the VAE family)"
    return None


def _link_or_copy(source: Path, target: Path) -> None:
    if target.exists():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed: a copy costs disk, not correctness
        shutil.copy2(source, target)


def derive(run_dir: Path, record: dict[str, Any], representation: str) -> tuple[str, dict[str, Any]]:
    """Make (or remake) the folder of the cell derived from the finished cell of `record`, scored on
    `representation`; return its id and its record without scores (scores.json is not written)."""
    from disentbench.bench.checkpoint import CHECKPOINT, KEPT_DIR
    from disentbench.bench.runner import CONFIG
    from disentbench.bench.training import LOG_FILE

    config = record["config"]
    sibling = cell_of(config, representation)
    source = Path(run_dir) / "cells" / record["cell_id"]
    target = Path(run_dir) / "cells" / sibling.cell_id
    if not (source / CHECKPOINT).is_file():
        raise BenchError(f"no {CHECKPOINT} in {source} (deleted?): nothing to score on {representation}")
    (target / KEPT_DIR).mkdir(parents=True, exist_ok=True)
    _link_or_copy(source / CHECKPOINT, target / CHECKPOINT)
    for kept in sorted((source / KEPT_DIR).glob("step-*.pt")):
        _link_or_copy(kept, target / KEPT_DIR / kept.name)
    if (source / LOG_FILE).is_file():
        _link_or_copy(source / LOG_FILE, target / LOG_FILE)
    derived_config = {**config, "cell_id": sibling.cell_id, "representation": representation}
    write_json(target / CONFIG, derived_config)
    derived = {
        **{k: v for k, v in record.items() if k not in ("scores", "rescored", "run_level_scores", "scored_on")},
        "cell_id": sibling.cell_id,
        "config": derived_config,
        "scores": {},
        "eval_seconds": 0.0,
        "derived_from": {
            "cell_id": record["cell_id"],
            "representation": config.get("representation", REPRESENTATIONS[0]),
            "at": provenance.now(),
            "why": "the same trained model scored on another representation (training does not depend on it)",
        },
    }
    return sibling.cell_id, derived
