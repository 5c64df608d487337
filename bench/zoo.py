"""The model zoo: trained models kept in the repository (`zoo/<name>/`), verified on load.

disentanglement_lib's pretrained models can no longer be downloaded, so the suite keeps its own
full-length models: each entry is the final weights (no optimiser state, no training-only network such as FactorVAE's
discriminator) in safetensors, at most
MAX_BYTES, beside `entry.json` (the cell's config, scores, the weights' sha256 and provenance) and
the cell's learning curve, and, where the cell was scored the way a paper measured
(`bench.evidence.published_variant`), its final step's scores in those variants, so the published
table can set the entry beside a paper's number like with like. `load` checks the checksum before it reads a tensor; `unpack` writes an
entry as a one-cell run folder, so `rescore` and the report (traversals included) work on it; the
leaderboard lists entries beside the published numbers (external to the run, never ranked).

    python run_benchmark.py zoo list
    python run_benchmark.py zoo add results/ref/cells/<cell_id> NAME [--variants FILE]
    python run_benchmark.py zoo unpack NAME DIR        # then: rescore DIR, report DIR
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from disentbench import methods
from disentbench.atomic import atomic_path, write_json
from disentbench.bench import provenance
from disentbench.datasets.files import file_digest
from disentbench.errors import BenchError

ZOO_DIR = provenance.REPO_ROOT / "zoo"
WEIGHTS = "weights.safetensors"
ENTRY = "entry.json"
CURVE = "curve.csv"
MAX_BYTES = 3 * 2**20
FORMAT = 1


def zoo_dir(path: str | os.PathLike | None = None) -> Path:
    """The zoo folder: `path`, else $DISENTBENCH_ZOO, else the repository's zoo/."""
    return Path(path or os.environ.get("DISENTBENCH_ZOO") or ZOO_DIR)


def sha256(path: Path) -> str:
    """The file's sha256 (hex), read in blocks."""
    return file_digest(path, "sha256")


def names(root: str | os.PathLike | None = None) -> list[str]:
    folder = zoo_dir(root)
    return sorted(p.parent.name for p in folder.glob(f"*/{ENTRY}")) if folder.is_dir() else []


def read_entry(name: str, root: str | os.PathLike | None = None) -> dict[str, Any]:
    path = zoo_dir(root) / name / ENTRY
    if not path.is_file():
        known = ", ".join(names(root)) or "none"
        raise BenchError(f"no zoo entry {name!r} in {zoo_dir(root)}; entries: {known}")
    return json.loads(path.read_text())


def verify(name: str, root: str | os.PathLike | None = None) -> Path:
    """The entry's weights file, after checking it exists and has the recorded sha256."""
    entry = read_entry(name, root)
    path = zoo_dir(root) / name / WEIGHTS
    if not path.is_file():
        raise BenchError(f"zoo entry {name!r}: {path} is missing; restore it with `git checkout -- {path}`")
    got = sha256(path)
    if got != entry["sha256"]:
        raise BenchError(
            f"zoo entry {name!r}: checksum mismatch for {path} (sha256 {got[:12]}..., recorded "
            f"{entry['sha256'][:12]}...): the file was altered or truncated; restore it with `git checkout -- {path}`"
        )
    return path


def load(name: str, root: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> methods.Method:
    """The entry's model, its weights verified first (optimisers fresh: a zoo model is for scoring)."""
    from safetensors.torch import load_file

    path = verify(name, root)
    entry = read_entry(name, root)
    method = _build(entry).to(device)
    missing, unexpected = method.load_state_dict(load_file(str(path), device=str(device)), strict=False)
    dropped = tuple(type(method).training_only_modules)
    if unexpected or any(not k.startswith(tuple(f"{m}." for m in dropped)) for k in missing):
        raise BenchError(
            f"zoo entry {name!r}: its weights do not fit {type(method).__name__} (missing or extra tensors)"
        )
    return method.eval()


def _build(entry: dict[str, Any]) -> methods.Method:
    config = entry["config"]
    return methods.create(
        config["method"],
        observation_shape=tuple(config["observation_shape"]),
        seed=int(entry["init_seed"]),
        init=config["init"],
        **methods.get(config["method"]).stored_hparams(config["hparams"]),
    )


def variant_scores(path: Path, final: int) -> list[dict[str, Any]]:
    """The final step's rows of a `published_variant` CSV: [{metric, codes, value, step}], the last
    row of each (metric, codes) kept."""
    from disentbench.bench.evidence.published_variant import COLUMNS

    how = f"python -m disentbench.bench.evidence.published_variant CELL_DIR --steps {final} --out {path}"
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise BenchError(f"{path}: cannot read it as a published_variant CSV ({exc}); write it with `{how}`") from exc
    missing = [c for c in COLUMNS[:4] if c not in frame.columns]
    if missing:
        raise BenchError(f"{path}: no column {missing[0]!r}, not a published_variant CSV; write it with `{how}`")
    rows = frame[frame["step"].astype(int) == final].drop_duplicates(["metric", "codes"], keep="last")
    if rows.empty:
        raise BenchError(f"{path} has no row at the final step {final:,}: score it with `{how}`")
    return [
        {"metric": str(r.metric), "codes": str(r.codes), "value": float(r.value), "step": final}
        for r in rows.itertuples(index=False)
    ]


def add(
    cell: str | os.PathLike,
    name: str,
    root: str | os.PathLike | None = None,
    variants: str | os.PathLike | None = None,
) -> Path:
    """Put a finished cell's final weights, config, scores and curve into the zoo as `name`, with the
    final step's published-variant scores from `variants` (default: the cell's published_variant.csv
    when it has one)."""
    from safetensors.torch import save

    from disentbench.bench.checkpoint import CHECKPOINT, read_checkpoint
    from disentbench.bench.evidence.published_variant import OUT

    cell = Path(cell)
    scores_path = cell / "scores.json"
    if not scores_path.is_file():
        raise BenchError(f"{cell} has no scores.json: only a finished cell goes into the zoo")
    record = json.loads(scores_path.read_text())
    state = read_checkpoint(cell / CHECKPOINT)
    if int(state["step"]) != int(record["config"]["steps"]):
        raise BenchError(f"{cell / CHECKPOINT} is at step {state['step']}, not the final {record['config']['steps']}")
    if variants is None and (cell / OUT).is_file():
        variants = cell / OUT
    scored_as_published = [] if variants is None else variant_scores(Path(variants), int(record["config"]["steps"]))
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise BenchError(f"zoo name {name!r}: use letters, digits, '-', '_' and '.'")
    target = zoo_dir(root) / name
    if (target / ENTRY).exists():
        raise BenchError(f"zoo entry {name!r} exists; remove {target} first or choose another name")
    dropped = tuple(f"{m}." for m in methods.get(record["config"]["method"]).training_only_modules)
    weights = {
        k: v.detach().cpu().contiguous() for k, v in state["method_state"]["model"].items() if not k.startswith(dropped)
    }
    target.mkdir(parents=True, exist_ok=True)
    # Bytes written into the temp file atomic_path created, not save_file(path): safetensors' own
    # file creation leaves the weights readable by their owner only (0o600).
    blob = save(weights, metadata={"format": str(FORMAT), "method": record["config"]["method"]})
    with atomic_path(target / WEIGHTS) as tmp:
        tmp.write_bytes(blob)
    size = (target / WEIGHTS).stat().st_size
    if size > MAX_BYTES:
        shutil.rmtree(target)
        raise BenchError(f"{name}: {size / 2**20:.1f} MB of weights is over the zoo's {MAX_BYTES / 2**20:.0f} MB")
    if (cell / CURVE).is_file():
        shutil.copyfile(cell / CURVE, target / CURVE)
    write_json(
        target / ENTRY,
        {
            "format": FORMAT,
            "name": name,
            "sha256": sha256(target / WEIGHTS),
            "bytes": size,
            "init_seed": int(state["init_seed"]),
            "cell_id": record["cell_id"],
            "config": record["config"],
            "scores": record["scores"],
            "variant_scores": scored_as_published,
            "train_seconds": record["train_seconds"],
            "device": record["device"],
            "git_commit": record["git_commit"],
            "versions": {k: v for k, v in record.items() if k.endswith("_version")},
            "added_at": provenance.now(),
        },
    )
    return target


def table(root: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per entry: what it is, its headline scores and whether its weights verify."""
    rows = []
    for name in names(root):
        entry = read_entry(name, root)
        config, scores = entry["config"], entry["scores"]
        try:
            verify(name, root)
            status = "ok"
        except BenchError as exc:
            status = str(exc)
        rows.append(
            {
                "name": name,
                "method": config["method"],
                "hparams": json.dumps(config["hparams"], sort_keys=True),
                "dataset": config["dataset"],
                "data_source": config["data_source"],
                "precision": config.get("precision", "fp32"),
                "steps": int(config["steps"]),
                "seed": int(config["seed"]),
                **{m: scores.get(m) for m in ("mig", "dci", "sap", "factor_vae", "beta_vae")},
                "as published": ", ".join(
                    f"{v['metric']} {v['value']:.3f} ({v['codes']})" for v in entry.get("variant_scores", [])
                )
                or "-",
                "verified": status,
            }
        )
    return pd.DataFrame(rows)


def unpack(name: str, run_dir: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """Write the entry as a one-cell run folder (checkpoint at the final step, scores, runs.csv,
    run.json), so `rescore DIR` and `report DIR` work on it."""
    from disentbench.bench.checkpoint import CHECKPOINT, save_checkpoint
    from disentbench.bench.runner import CONFIG, SCORES, write_runs_csv

    entry = read_entry(name, root)
    method = load(name, root)
    config = entry["config"]
    cell = Path(run_dir) / "cells" / entry["cell_id"]
    cell.mkdir(parents=True, exist_ok=True)
    save_checkpoint(
        cell / CHECKPOINT,
        {
            "step": int(config["steps"]),
            "method_name": config["method"],
            "hparams": dict(method.hp),
            "observation_shape": list(config["observation_shape"]),
            "init": config["init"],
            "init_seed": int(entry["init_seed"]),
            "method_state": method.checkpoint_state(),
        },
        keep_previous=False,
    )
    record = {
        "cell_id": entry["cell_id"],
        "config": config,
        "scores": entry["scores"],
        "train_seconds": entry["train_seconds"],
        "eval_seconds": float("nan"),
        "device": entry["device"],
        "git_commit": entry["git_commit"],
        **entry["versions"],
        "zoo": name,
    }
    write_json(cell / CONFIG, config)
    write_json(cell / SCORES, record)
    if (zoo_dir(root) / name / CURVE).is_file():
        shutil.copyfile(zoo_dir(root) / name / CURVE, cell / CURVE)
    write_runs_csv(Path(run_dir), [record], config.get("profile", "zoo"))
    profile = {"name": config.get("profile", "zoo"), "metrics": config.get("metrics", {})}
    write_json(Path(run_dir) / "run.json", {"profile": profile["name"], "config": profile, "zoo": name})
    return Path(run_dir)


def published_rows(root: str | os.PathLike | None = None) -> pd.DataFrame:
    """Zoo entries as rows of the published-numbers table (external to any run, never ranked): the
    registered metrics, then each published-variant score under its variant's own columns."""
    from disentbench import metrics
    from disentbench.bench.report.published import COLUMNS, VARIANT_COLUMNS

    rows = []
    for name in names(root):
        entry = read_entry(name, root)
        config = entry["config"]
        setting = ",".join(f"{k}={v}" for k, v in sorted(config["hparams"].items()) if isinstance(v, (int, float)))
        common = {
            "method": config["method"],
            "setting": setting,
            "dataset": config["dataset"],
            "spread": float("nan"),
            "statistic": "one model of the disentbench zoo",
            "runs": 1,
            "steps": str(config["steps"]),
            "source": f"disentbench zoo: {name}",
            "table": f"{config['data_source']} data, seed {config['seed']}, {config.get('precision', 'fp32')}",
            "caveat": "our own full-length model (zoo/), not a published number",
        }
        for metric in ("mig", "dci", "sap", "factor_vae", "beta_vae"):
            if metric in entry["scores"]:
                rows.append({**common, "metric": metric, "value": float(entry["scores"][metric])})
        for scored in entry.get("variant_scores", []):
            key = scored["metric"]
            rows.append(
                {
                    **common,
                    "metric": metrics.REGISTRY.get(key).variant_of or key,
                    "value": float(scored["value"]),
                    "implementation": "disentbench",
                    "variant": f"`{key}`, the suite's implementation of a published metric code",
                    "codes": VARIANT_CODES.get(scored["codes"], scored["codes"]),
                    "our_metric": key,
                    "unmatched": "",
                }
            )
    return pd.DataFrame(rows, columns=[*COLUMNS, *VARIANT_COLUMNS])


#: how a published_variant CSV's codes read in the published table's `codes` column
VARIANT_CODES = {
    "sampled": "sampled: one draw z ~ q(z|x) per image",
    "mean": "mean: the encoder's mean",
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="run_benchmark.py zoo", description="The model zoo (zoo/ in the repository).")
    p.add_argument("--zoo", default=None, help="zoo folder (default: $DISENTBENCH_ZOO, else the repository's zoo/)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every entry, its scores, and whether its weights verify")
    a = sub.add_parser("add", help="put a finished cell's final weights into the zoo")
    a.add_argument("cell_dir")
    a.add_argument("name")
    a.add_argument(
        "--variants",
        default=None,
        help="published_variant CSV whose final-step rows go in too (default: the cell's published_variant.csv)",
    )
    u = sub.add_parser("unpack", help="write an entry as a one-cell run folder (for rescore and report)")
    u.add_argument("name")
    u.add_argument("run_dir")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "list":
        frame = table(args.zoo)
        if frame.empty:
            print(f"the zoo in {zoo_dir(args.zoo)} is empty")
            return 0
        print(frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        return 0 if (frame["verified"] == "ok").all() else 1
    if args.command == "add":
        print(f"added {add(args.cell_dir, args.name, args.zoo, args.variants)}")
        return 0
    print(f"unpacked {args.name} into {unpack(args.name, args.run_dir, args.zoo)}: run `rescore` or `report` on it")
    return 0
