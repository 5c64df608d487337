"""Which machines trained a cell: one segment per start or resume, kept in the cell's segments.json.

A long cell may be resumed on another host (a cluster node, a replaced machine). Hosts whose CPUs
have different vector units round differently, so the model differs slightly from an uninterrupted
run on one host; the result row says where each stretch of steps was trained (`train_hosts`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from disentbench.atomic import write_json
from disentbench.bench import provenance
from disentbench.bench.perf.host import host_label

SEGMENTS = "segments.json"


def read_segments(cell_dir: Path) -> list[dict[str, Any]]:
    try:
        return list(json.loads((Path(cell_dir) / SEGMENTS).read_text()))
    except (OSError, ValueError):
        return []


def note_segment(cell_dir: Path, from_step: int, device: str, **options: Any) -> list[dict[str, Any]]:
    """Record that training (re)starts at from_step on this host; a restart at the same step on the
    same host (e.g. a crash before any progress) replaces the last segment instead of adding one."""
    segment = {
        "from_step": int(from_step),
        "host": host_label(device),
        "device": str(device),
        "started_at": provenance.now(),
        "git_commit": provenance.git_commit(),
        **options,
    }
    segments = read_segments(cell_dir)
    if segments and segments[-1]["from_step"] == segment["from_step"] and segments[-1]["host"] == segment["host"]:
        segments.pop()
    segments.append(segment)
    write_json(Path(cell_dir) / SEGMENTS, segments)
    return segments


def describe(segments: list[dict[str, Any]]) -> str:
    """One line for a result row: the host, or each host with the step it took over from, e.g.
    "AMD EPYC [avx512_bf16] from step 0; AMD EPYC [avx2] from step 130,000". A cell begun before
    segments were recorded says so."""
    if not segments:
        return ""
    runs: list[tuple[int, str]] = []
    for seg in segments:
        if not runs or runs[-1][1] != seg["host"]:
            runs.append((int(seg["from_step"]), seg["host"]))
    head = f"unrecorded to step {runs[0][0]:,}; " if runs[0][0] > 0 else ""
    if len(runs) == 1 and not head:
        return runs[0][1]
    return head + "; ".join(f"{host} from step {step:,}" for step, host in runs)
