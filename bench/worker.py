"""Run one cell in its own process: `python -m disentbench.bench.worker TASK.json OUTCOME.json`.

Parallel and distributed runs execute every cell this way, so a cell whose process dies (killed,
out of memory) fails alone, and its pool worker lives on to retry it once. A stop signal to the
driver is forwarded to the live children (`forward_signal`), which checkpoint their current step
and exit with 128 + the signal; such a cell is "interrupted", not failed, and is not retried.

`supervise`, what a Dask worker runs, takes and returns plain data and imports no torch: a Dask
worker process only watches its cell's process, and starts in a fraction of the time.

A cell's process dies with the process that started it (a Dask worker that was killed, a driver
killed with SIGKILL): nobody would collect its outcome, and its live lock would make the retry of
the cell find it busy. Its last checkpoint resumes it.

A full disk in a cell's process (`DiskFull`) ends it with `DISK_FULL_EXIT` after one line in
worker.log naming the file; `supervise` raises `DiskFull` naming it, and the driver stops the run.

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
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import disentbench
from disentbench.atomic import write_json
from disentbench.bench import preemption
from disentbench.errors import DiskFull

if TYPE_CHECKING:
    from disentbench.bench.grid import Cell
    from disentbench.bench.runner import CellOutcome, RunSettings

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
#: exit status of a cell's process that found the disk full (ENOSPC's number)
DISK_FULL_EXIT = 28
#: its last line in worker.log: this, then the file that did not fit
_DISK_FULL_LINE = "worker: no space left on the device while writing "
#: the pid of the process that started a cell's process (see _die_with_parent)
PARENT_ENV = "DISENTBENCH_WORKER_PARENT"
#: how often a cell's process looks for its parent, in seconds
PARENT_POLL = 0.2
#: exit statuses of a child stopped by SIGINT/SIGTERM: handled (128 + n) or before its handler was set (-n)
_STOPPED = {code for s in preemption.SIGNALS for code in (128 + s, -s)}
_LIVE: set[subprocess.Popen] = set()  # children of this process's cells (threads of the local driver)
_LIVE_LOCK = threading.RLock()  # re-entrant: the signal handler may run inside a holder


def task_of(cell: Cell, settings: RunSettings) -> dict[str, Any]:
    """A cell and its run's settings as plain data (task.json, and what a Dask worker is sent)."""
    return {"cell": asdict(cell), "settings": _settings_to_json(settings)}


def _settings_to_json(settings: RunSettings) -> dict[str, Any]:
    return {**asdict(settings), "run_dir": str(settings.run_dir)}


def _settings_from_json(d: dict) -> RunSettings:
    from disentbench.bench.runner import RunSettings

    return RunSettings(**{**d, "run_dir": Path(d["run_dir"])})


def run_cell_isolated(cell: Cell, settings: RunSettings, retries: int = 1) -> CellOutcome:
    """run_cell in a child process (see `supervise`)."""
    from disentbench.bench.runner import CellOutcome, cell_dir

    out_dir = cell_dir(settings.run_dir, cell)
    return CellOutcome(**supervise(task_of(cell, settings), str(out_dir), cell.cell_id, retries))


def supervise(task: dict[str, Any], out_dir: str, cell_id: str, retries: int = 1) -> dict[str, Any]:
    """Run the `task_of` a cell in a child process; a child that dies is retried `retries` times
    (resuming from its checkpoint), then reported as a failure of this cell only. The CellOutcome's
    fields; raises DiskFull when the child found the disk full (no retry: the run stops)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "task.json", task)
    reason = ""
    for attempt in range(retries + 1):
        if preemption.requested() is not None:
            return _interrupted(cell_id)
        outcome_path = out / f"outcome-{attempt}.json"
        with open(out / "worker.log", "a") as log:
            start = log.tell()
            proc = _run_child([str(out / "task.json"), str(outcome_path)], log)
        if proc.returncode == 0 and outcome_path.exists():
            data = json.loads(outcome_path.read_text())
            outcome_path.unlink()
            return data
        if proc.returncode == DISK_FULL_EXIT:
            raise DiskFull(_full_file(out / "worker.log", start) or out)
        if proc.returncode in _STOPPED or preemption.requested() is not None:
            return _interrupted(cell_id)
        if proc.returncode < 0:
            reason = f"worker process died ({signal.Signals(-proc.returncode).name})"
        else:
            reason = f"worker process exited with code {proc.returncode} (see {out / 'worker.log'})"
        if attempt < retries:
            print(f"{cell_id}: {reason}; retrying once", file=sys.stderr, flush=True)
    return {"cell_id": cell_id, "status": "failed", "reason": f"{reason}, also on retry"}


def _interrupted(cell_id: str) -> dict[str, Any]:
    return {"cell_id": cell_id, "status": "interrupted", "reason": "stopped by a signal; a rerun resumes it"}


def _full_file(log: Path, start: int) -> str | None:
    """The file a child found no space for, from its last line in worker.log (None if it could not write it)."""
    try:
        with open(log, "rb") as f:
            f.seek(start)
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    found = [line[len(_DISK_FULL_LINE) :] for line in lines if line.startswith(_DISK_FULL_LINE)]
    return found[-1] if found else None


def child_command(args: list[str]) -> list[str]:
    """The command line of a worker process running `main(args)` (see _BOOTSTRAP)."""
    return [sys.executable, "-c", _BOOTSTRAP, os.path.abspath(disentbench.__file__), *args]


def _run_child(args: list[str], log) -> subprocess.Popen:
    """Run a worker process to its end, registered so that `forward_signal` reaches it."""
    env = {**os.environ, PARENT_ENV: str(os.getpid())}
    proc = subprocess.Popen(child_command(args), stdout=log, stderr=subprocess.STDOUT, env=env)
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


def _die_with_parent(parent: int) -> None:
    """SIGKILL this process once its parent is gone (it was re-parented), as if killed with it."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str]) -> int:
    """A worker process: run one cell and write its outcome; on a stop signal, checkpoint and exit
    with 128 + the signal (no outcome: the cell is not finished); on a full disk, one line naming
    the file and DISK_FULL_EXIT."""
    if os.environ.get(PARENT_ENV):
        _die_with_parent(int(os.environ[PARENT_ENV]))
    with preemption.handling_signals():
        try:
            return _run_task(argv)
        except preemption.Interrupted as exc:
            print(f"worker: stopped by {signal.Signals(exc.signum).name}; a rerun resumes this cell", file=sys.stderr)
            return exc.exit_code
        except DiskFull as exc:
            try:
                print(f"{_DISK_FULL_LINE}{exc.path}", file=sys.stderr, flush=True)
            except OSError:  # worker.log is on the full disk too: the driver names the cell's folder
                pass
            return DISK_FULL_EXIT


def _run_task(argv: list[str]) -> int:
    from disentbench.bench.grid import Cell
    from disentbench.bench.plugins import load_plugins
    from disentbench.bench.runner import run_cell

    task = json.loads(Path(argv[0]).read_text())
    settings = _settings_from_json(task["settings"])
    load_plugins(settings.plugins)
    outcome = run_cell(Cell(**task["cell"]), settings)
    write_json(argv[1], asdict(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
