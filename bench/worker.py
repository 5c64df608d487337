"""Run one cell in its own process: `python -m disentbench.bench.worker TASK.json OUTCOME.json`.

Parallel and distributed runs execute every cell this way, so a cell whose process dies (killed,
out of memory) fails alone, and its pool worker lives on to retry it once.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from disentbench.bench.atomic import write_json
from disentbench.bench.grid import Cell
from disentbench.bench.provenance import REPO_ROOT
from disentbench.bench.runner import CellOutcome, RunSettings, cell_dir, run_cell


def _settings_to_json(settings: RunSettings) -> dict:
    d = asdict(settings)
    d["run_dir"] = str(settings.run_dir)
    return d


def _settings_from_json(d: dict) -> RunSettings:
    return RunSettings(**{**d, "run_dir": Path(d["run_dir"])})


def run_cell_isolated(cell: Cell, settings: RunSettings, retries: int = 1) -> CellOutcome:
    """run_cell in a child process; a child that dies is retried `retries` times (resuming from its
    checkpoint), then reported as a failure of this cell only."""
    out_dir = cell_dir(settings.run_dir, cell)
    out_dir.mkdir(parents=True, exist_ok=True)
    task = out_dir / "task.json"
    write_json(task, {"cell": asdict(cell), "settings": _settings_to_json(settings)})
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    reason = ""
    for attempt in range(retries + 1):
        outcome_path = out_dir / f"outcome-{attempt}.json"
        with open(out_dir / "worker.log", "a") as log:
            proc = subprocess.run([sys.executable, "-m", "disentbench.bench.worker", str(task), str(outcome_path)],
                                  stdout=log, stderr=subprocess.STDOUT, env=env)
        if proc.returncode == 0 and outcome_path.exists():
            data = json.loads(outcome_path.read_text())
            outcome_path.unlink()
            return CellOutcome(**data)
        if proc.returncode < 0:
            reason = f"worker process died ({signal.Signals(-proc.returncode).name})"
        else:
            reason = f"worker process exited with code {proc.returncode} (see {out_dir / 'worker.log'})"
        if attempt < retries:
            print(f"{cell.cell_id}: {reason}; retrying once", file=sys.stderr, flush=True)
    return CellOutcome(cell.cell_id, "failed", reason=f"{reason}, also on retry")


def main(argv: list[str]) -> int:
    task = json.loads(Path(argv[0]).read_text())
    settings = _settings_from_json(task["settings"])
    from disentbench.bench.plugins import load_plugins

    load_plugins(settings.plugins)
    outcome = run_cell(Cell(**task["cell"]), settings)
    write_json(argv[1], asdict(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
