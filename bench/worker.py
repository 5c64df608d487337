"""Run one cell in its own process: `python -m disentbench.bench.worker TASK.json OUTCOME.json`.

Parallel and distributed runs execute every cell this way, so a cell whose process dies (killed,
out of memory) fails alone, and its pool worker lives on to retry it once. A stop signal to the
driver is forwarded to the live children (`forward_signal`), which checkpoint their current step
and exit with 128 + the signal; such a cell is "interrupted", not failed, and is not retried.

The child imports the driver's own disentbench without putting the checkout root on its import
path: that root's bench/, datasets/, methods/ and metrics/ folders would shadow other packages of
those names (Hugging Face `datasets`) inside the worker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import asdict
from pathlib import Path

import disentbench
from disentbench.atomic import write_json
from disentbench.bench import preemption
from disentbench.bench.grid import Cell
from disentbench.bench.runner import CellOutcome, RunSettings, cell_dir, run_cell

#: `python -c` program of a child: drop the checkout root from the import path (where the working
#: directory put it), import the disentbench the driver runs (by file when the path finds another
#: or none), then run `main`. argv: the driver's disentbench/__init__.py, TASK.json, OUTCOME.json.
_BOOTSTRAP = """\
import importlib.util, os, sys
init = sys.argv.pop(1)
package = os.path.dirname(init)
root = os.path.realpath(os.path.dirname(package))
sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.curdir) != root]
spec = importlib.util.find_spec("disentbench")
if spec is None or os.path.realpath(spec.origin or "") != os.path.realpath(init):
    spec = importlib.util.spec_from_file_location("disentbench", init, submodule_search_locations=[package])
    sys.modules["disentbench"] = module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
from disentbench.bench.worker import main
sys.exit(main(sys.argv[1:]))
"""
#: exit statuses of a child stopped by SIGINT/SIGTERM: handled (128 + n) or before its handler was set (-n)
_STOPPED = {code for s in preemption.SIGNALS for code in (128 + s, -s)}
_LIVE: set[subprocess.Popen] = set()  # children of this process's cells (threads of the local driver)
_LIVE_LOCK = threading.RLock()  # re-entrant: the signal handler may run inside a holder


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
    reason = ""
    for attempt in range(retries + 1):
        if preemption.requested() is not None:
            return _interrupted(cell)
        outcome_path = out_dir / f"outcome-{attempt}.json"
        with open(out_dir / "worker.log", "a") as log:
            proc = _run_child([str(task), str(outcome_path)], log)
        if proc.returncode == 0 and outcome_path.exists():
            data = json.loads(outcome_path.read_text())
            outcome_path.unlink()
            return CellOutcome(**data)
        if proc.returncode in _STOPPED or preemption.requested() is not None:
            return _interrupted(cell)
        if proc.returncode < 0:
            reason = f"worker process died ({signal.Signals(-proc.returncode).name})"
        else:
            reason = f"worker process exited with code {proc.returncode} (see {out_dir / 'worker.log'})"
        if attempt < retries:
            print(f"{cell.cell_id}: {reason}; retrying once", file=sys.stderr, flush=True)
    return CellOutcome(cell.cell_id, "failed", reason=f"{reason}, also on retry")


def _interrupted(cell: Cell) -> CellOutcome:
    return CellOutcome(cell.cell_id, "interrupted", reason="stopped by a signal; a rerun resumes it")


def child_command(args: list[str]) -> list[str]:
    """The command line of a worker process running `main(args)` (see _BOOTSTRAP)."""
    return [sys.executable, "-c", _BOOTSTRAP, os.path.abspath(disentbench.__file__), *args]


def _run_child(args: list[str], log) -> subprocess.Popen:
    """Run a worker process to its end, registered so that `forward_signal` reaches it."""
    proc = subprocess.Popen(child_command(args), stdout=log, stderr=subprocess.STDOUT)
    with _LIVE_LOCK:
        _LIVE.add(proc)
    try:
        signum = preemption.requested()
        if signum is not None:  # the stop came while it was starting: forward_signal missed it
            _send(proc, signum)
        proc.wait()
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(proc)
    return proc


def _send(proc: subprocess.Popen, signum: int) -> None:
    try:
        proc.send_signal(signum)
    except ProcessLookupError:
        pass


def forward_signal(signum: int) -> None:
    """Send a stop signal on to every live child (a preemption listener of the local driver)."""
    with _LIVE_LOCK:
        children = list(_LIVE)
    for proc in children:
        _send(proc, signum)


def main(argv: list[str]) -> int:
    """A worker process: run one cell and write its outcome; on a stop signal, checkpoint and exit
    with 128 + the signal (no outcome: the cell is not finished)."""
    with preemption.handling_signals():
        try:
            return _run_task(argv)
        except preemption.Interrupted as exc:
            print(f"worker: stopped by {signal.Signals(exc.signum).name}; a rerun resumes this cell", file=sys.stderr)
            return exc.exit_code


def _run_task(argv: list[str]) -> int:
    task = json.loads(Path(argv[0]).read_text())
    settings = _settings_from_json(task["settings"])
    from disentbench.bench.plugins import load_plugins

    load_plugins(settings.plugins)
    outcome = run_cell(Cell(**task["cell"]), settings)
    write_json(argv[1], asdict(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
