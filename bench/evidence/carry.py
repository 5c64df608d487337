"""Carry a long evidence run across a replaced machine, inside the repository.

    python -m disentbench.bench.evidence.carry save RUN_DIR CARRY_DIR [--max-mb 64] [--finished-scores-only]
    python -m disentbench.bench.evidence.carry restore CARRY_DIR RUN_DIR [--force]

A reference-length run takes longer than one session, and between two sessions the machine may be
swapped for a fresh one that keeps the project's committed history and nothing else (the seventh
and eighth sessions of 2026-12 found every folder outside the checkout gone: twice a beta-VAE
checkpoint of 20,000-130,000 steps, once the git repositories that were meant to keep them). The
one place that survives is a commit on main, so a run is carried there, small:

- the resumable checkpoint of each cell (`checkpoint.pt`, with its optimiser state: a resumed run
  continues exactly) is copied whole; its fallback `checkpoint.prev.pt` is left out;
- kept learning-curve checkpoints (`checkpoints/step-N.pt`) are carried slim, their optimiser
  state emptied: they are only ever scored (`rescore`, `published_variant`), and scoring reads the
  weights alone (a third of the size);
- every other file (config, scores, curves, segments, logs, pictures) is copied as it is; cell
  locks and temporary files are not (a lock from a machine that no longer exists would hold a cell).

Files are copied only when they changed, and files gone from the run are dropped from the carried
copy, so a commit of CARRY_DIR changes what the run changed. `MANIFEST.json` records each carried
file's sha256; `restore` checks them (an altered file is a one-line error) and writes only the
files the run folder lacks, so it never overwrites a run that went further on this machine
(`--force` overwrites). `--max-mb` refuses to carry more than that many MB (a repository is no place
for a results folder of many cells). `--finished-scores-only` carries a short experiment for its numbers:
the finished cells (those with `scores.json`) without their checkpoints, and nothing of a cell still
training (its checkpoint would cost more history than rerunning it; it restarts from step 0)."""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any

from disentbench.atomic import atomic_path
from disentbench.datasets.files import file_digest
from disentbench.errors import BenchError

MANIFEST = "MANIFEST.json"
FINISHED = "scores.json"
CELLS = "cells"
KEPT_FOLDER = "checkpoints"
LEFT_OUT_NAMES = frozenset({"lock", "checkpoint.prev.pt", MANIFEST})
DEFAULT_MAX_MB = 64.0


def left_out(rel: Path) -> bool:
    """Cell locks, checkpoint fallbacks and temporary files (atomic writes' `.NAME.host~pid.tmp`)."""
    return rel.name in LEFT_OUT_NAMES or rel.name.endswith(".tmp") or any(p.startswith(".") for p in rel.parts)


def is_kept_checkpoint(rel: Path) -> bool:
    return rel.suffix == ".pt" and rel.parent.name == KEPT_FOLDER


def slim_state(state: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's state with each optimiser's per-parameter state emptied (param_groups kept, so
    the method still loads it); weights, step and everything else unchanged."""
    method_state = dict(state["method_state"])
    method_state["optimizers"] = {
        name: {"state": {}, "param_groups": opt["param_groups"]}
        for name, opt in method_state.get("optimizers", {}).items()
    }
    return {**state, "method_state": method_state, "slim": True}


def _write_slim(source: Path, target: Path) -> None:
    import torch

    from disentbench.bench.checkpoint import read_checkpoint

    state = slim_state(read_checkpoint(source))
    with atomic_path(target) as tmp:
        torch.save(state, tmp)


def _copy(source: Path, target: Path) -> None:
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def read_manifest(carry_dir: Path) -> dict[str, Any]:
    path = carry_dir / MANIFEST
    if not path.is_file():
        return {"files": {}}
    return json.loads(path.read_text())


def scores_only_keeps(run_dir: Path, rel: Path) -> bool:
    """Under --finished-scores-only: no checkpoint, and of the runner's cell folders (`cells/ID/`)
    only those that hold their final scores (`scores.json`); files of the run itself are kept."""
    if rel.suffix == ".pt":
        return False
    in_cell = len(rel.parts) > 2 and rel.parts[0] == CELLS
    return not in_cell or (run_dir / CELLS / rel.parts[1] / FINISHED).is_file()


def run_files(run_dir: Path, finished_scores_only: bool = False) -> list[Path]:
    """The files to carry, relative to the run folder."""
    found = (p.relative_to(run_dir) for p in run_dir.rglob("*") if p.is_file())
    return sorted(
        rel for rel in found if not left_out(rel) and (not finished_scores_only or scores_only_keeps(run_dir, rel))
    )


def save(
    run_dir: str | Path, carry_dir: str | Path, max_mb: float = DEFAULT_MAX_MB, finished_scores_only: bool = False
) -> dict[str, Any]:
    """Bring CARRY_DIR up to date with RUN_DIR; returns {"copied", "dropped", "kept", "bytes"}."""
    run_dir, carry_dir = Path(run_dir), Path(carry_dir)
    if not run_dir.is_dir():
        raise BenchError(f"{run_dir}: no such run folder; pass the folder the run writes its results to")
    sources = run_files(run_dir, finished_scores_only)
    # checked before anything is written; a slim checkpoint is about a third of its source (Adam
    # keeps two moments per weight)
    estimate = sum((run_dir / r).stat().st_size / (3 if is_kept_checkpoint(r) else 1) for r in sources)
    if estimate > max_mb * 1e6:
        raise BenchError(
            f"{run_dir}: carrying it would take about {estimate / 1e6:.1f} MB, over --max-mb {max_mb:g}; "
            f"carry fewer cells (one run folder per long run) or raise --max-mb"
        )
    old = read_manifest(carry_dir)["files"]
    files: dict[str, dict[str, Any]] = {}
    copied = kept = 0
    for rel in sources:
        source, target = run_dir / rel, carry_dir / rel
        stat = source.stat()
        # a file is recopied when its size or mtime moved (checkpoints are rewritten by rename)
        stamp = {"source_bytes": stat.st_size, "source_mtime_ns": stat.st_mtime_ns}
        entry = old.get(str(rel))
        if entry and all(entry.get(k) == v for k, v in stamp.items()) and target.is_file():
            files[str(rel)] = entry
            kept += 1
            continue
        slim = is_kept_checkpoint(rel)
        (_write_slim if slim else _copy)(source, target)
        files[str(rel)] = {
            **stamp,
            "sha256": file_digest(target, "sha256"),
            "bytes": target.stat().st_size,
            "slim": slim,
        }
        copied += 1
    dropped = 0
    for rel in set(old) - set(files):
        (carry_dir / rel).unlink(missing_ok=True)
        dropped += 1
    total = sum(e["bytes"] for e in files.values())
    if not copied and not dropped and (carry_dir / MANIFEST).is_file():
        return {"copied": 0, "dropped": 0, "kept": kept, "bytes": total}  # unchanged: no new commit either
    manifest = {
        "run_dir": str(run_dir),
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": socket.gethostname(),
        "files": files,
    }
    carry_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(carry_dir / MANIFEST) as tmp:
        Path(tmp).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return {"copied": copied, "dropped": dropped, "kept": kept, "bytes": total}


def restore(carry_dir: str | Path, run_dir: str | Path, force: bool = False) -> dict[str, int]:
    """Write the carried files RUN_DIR lacks (all of them with `force`), each checked against its
    recorded sha256 first; returns {"restored", "present"}."""
    carry_dir, run_dir = Path(carry_dir), Path(run_dir)
    if not (carry_dir / MANIFEST).is_file():
        raise BenchError(f"{carry_dir}: no {MANIFEST}; nothing was carried there (save writes it)")
    files = read_manifest(carry_dir)["files"]
    for rel, entry in sorted(files.items()):
        source = carry_dir / rel
        if not source.is_file() or file_digest(source, "sha256") != entry["sha256"]:
            raise BenchError(
                f"{source}: missing or altered (sha256 differs from {carry_dir / MANIFEST}); "
                f"check it out again from git (git checkout -- {carry_dir})"
            )
    restored = present = 0
    for rel in sorted(files):
        target = run_dir / rel
        if target.exists() and not force:
            present += 1
            continue
        _copy(carry_dir / rel, target)
        restored += 1
    return {"restored": restored, "present": present}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m disentbench.bench.evidence.carry", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("save", help="bring the carried copy up to date with a run folder")
    s.add_argument("run_dir")
    s.add_argument("carry_dir")
    s.add_argument("--max-mb", type=float, default=DEFAULT_MAX_MB)
    s.add_argument(
        "--finished-scores-only",
        action="store_true",
        help="finished cells without checkpoints, nothing of a cell still training (a short experiment)",
    )
    r = sub.add_parser("restore", help="write the carried files a run folder lacks")
    r.add_argument("carry_dir")
    r.add_argument("run_dir")
    r.add_argument("--force", action="store_true", help="overwrite files the run folder has")
    args = p.parse_args(argv)
    try:
        if args.command == "save":
            done = save(args.run_dir, args.carry_dir, args.max_mb, args.finished_scores_only)
            print(
                f"carried {args.run_dir} -> {args.carry_dir}: {done['copied']} copied, {done['kept']} unchanged, "
                f"{done['dropped']} dropped, {done['bytes'] / 1e6:.1f} MB"
            )
        else:
            done = restore(args.carry_dir, args.run_dir, args.force)
            print(
                f"restored {args.carry_dir} -> {args.run_dir}: {done['restored']} written, "
                f"{done['present']} already there"
            )
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
