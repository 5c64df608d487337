"""Where cells run: in this process (one at a time, with per-step progress), in N local processes
(joblib threads of this driver, each waiting on one cell's process), or on a Dask cluster (one task
per cell). In the parallel modes each cell runs in its own child process (bench.worker) and only the
driver writes the run's tables. Locally the driver knows every child, so a stop signal
(bench.preemption) is forwarded to them and the driver waits for their checkpoints before it stops.

A full disk met by any cell stops the run (`DiskFull`, one line naming the file): locally the other
children are sent SIGTERM (they checkpoint their step and stop), no cell starts after it, and the
driver raises once every thread is back; on Dask the cells not yet started are cancelled. A Dask
worker that dies mid-cell (killed, out of memory) costs only that cell: Dask runs the task again on
another worker (`distributed.scheduler.allowed-failures` times, 3 by default), resuming from the
cell's checkpoint, then reports it lost (`KilledWorker`), which fails that cell alone in failures.csv."""

from __future__ import annotations

import dataclasses
import secrets
import signal
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from disentbench.bench import preemption
from disentbench.bench.grid import Cell
from disentbench.bench.runner import CellOutcome, RunSettings, cell_dir, run_cell
from disentbench.errors import BenchError, DiskFull


def _report(bar, cell: Cell, outcome: CellOutcome) -> None:
    if outcome.status == "interrupted":
        return  # not finished; the driver prints the one line about the stop
    bar.update(1)
    if outcome.status == "failed":
        bar.write(f"FAILED {cell.cell_id}: {outcome.reason}")
    elif outcome.status == "busy":
        bar.write(f"busy: {cell.cell_id} is being run by another runner; skipped here")


def run_sequential(todo: list[Cell], settings: RunSettings, loaded: dict, bar) -> list[tuple[Cell, CellOutcome]]:
    outcomes = []
    for cell in todo:
        bar.set_description(f"{cell.dataset} {cell.method} s{cell.seed}")

        def progress(step: int, losses: dict, cell=cell) -> None:
            bar.set_postfix_str(f"step {step}/{cell.steps} loss {losses.get('loss', float('nan')):.4g}")

        outcome = run_cell(cell, settings, progress=progress, dataset=loaded.get(cell.dataset))
        outcomes.append((cell, outcome))
        _report(bar, cell, outcome)
    return outcomes


def _tasks(todo: list[Cell], settings: RunSettings, devices: list[str]) -> Iterable[tuple[Cell, RunSettings]]:
    """Cells spread round-robin over the devices."""
    for i, cell in enumerate(todo):
        yield cell, dataclasses.replace(settings, device=devices[i % len(devices)])


def run_parallel(
    todo: list[Cell],
    settings: RunSettings,
    n_jobs: int,
    devices: list[str],
    bar,
    backend: str = "local",
    scheduler: str | None = None,
) -> list[tuple[Cell, CellOutcome]]:
    by_id = {c.cell_id: c for c in todo}
    outcomes: list[tuple[Cell, CellOutcome]] = []

    def collect(results: Iterable[CellOutcome]) -> None:
        for outcome in results:
            cell = by_id[outcome.cell_id]
            outcomes.append((cell, outcome))
            if outcome.status != "interrupted":
                bar.set_description(f"done {cell.dataset} {cell.method} s{cell.seed}")
            _report(bar, cell, outcome)

    if backend == "local":
        _run_local(list(_tasks(todo, settings, devices)), n_jobs, collect)
        return outcomes
    client, cluster = _dask_client(backend, scheduler, n_jobs)
    try:
        collect(_dask_outcomes(client, list(_tasks(todo, settings, devices))))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return outcomes


class _FirstFullDisk:
    """Runs cells locally until one finds the disk full; then stops the live children (SIGTERM:
    they checkpoint their step) and starts no more. The driver raises `error` once all are back."""

    def __init__(self) -> None:
        self.error: DiskFull | None = None
        self._lock = threading.Lock()

    def run(self, cell: Cell, settings: RunSettings) -> CellOutcome:
        from disentbench.bench.worker import forward_signal, run_cell_isolated

        if self.error is not None:
            return CellOutcome(cell.cell_id, "interrupted", reason="not started: the disk is full")
        try:
            return run_cell_isolated(cell, settings)
        except DiskFull as exc:
            with self._lock:
                first, self.error = self.error is None, self.error or exc
            if first:
                forward_signal(signal.SIGTERM)
            return CellOutcome(cell.cell_id, "interrupted", reason=str(exc))


def _run_local(tasks: list[tuple[Cell, RunSettings]], n_jobs: int, collect) -> None:
    """Threads suffice (each waits on a process) and share the stop signal."""
    from joblib import Parallel, delayed

    from disentbench.bench.worker import forward_signal

    full = _FirstFullDisk()
    calls = [delayed(full.run)(cell, s) for cell, s in tasks]
    with preemption.deferred(), preemption.listening(forward_signal):
        collect(Parallel(n_jobs=n_jobs, backend="threading", return_as="generator_unordered")(calls))
    if full.error is not None:
        raise full.error


def _dask_outcomes(client, tasks: list[tuple[Cell, RunSettings]]) -> Iterator[CellOutcome]:
    """Each cell a Dask task (bench.worker.supervise: plain data, no torch in the Dask worker), its
    outcome as it completes; a cell whose workers all died, or whose task raised, fails alone."""
    from dask.distributed import KilledWorker, as_completed

    from disentbench.bench.worker import supervise, task_of

    token = secrets.token_hex(4)  # task keys unique on a scheduler that other runs share
    futures = {
        client.submit(
            supervise,
            task_of(cell, s),
            str(cell_dir(s.run_dir, cell)),
            cell.cell_id,
            key=f"{cell.cell_id}-{token}",
            priority=len(tasks) - i,  # in the plan's order
        ): cell
        for i, (cell, s) in enumerate(tasks)
    }
    try:
        for future in as_completed(futures):
            cell = futures[future]
            try:
                yield CellOutcome(**future.result())
            except KilledWorker as exc:
                yield CellOutcome(cell.cell_id, "failed", reason=_lost(exc))
            except DiskFull:
                raise
            except Exception as exc:  # the task itself failed (not the cell: that is an outcome)
                yield CellOutcome(cell.cell_id, "failed", reason=f"Dask task failed: {type(exc).__name__}: {exc}")
    finally:
        client.cancel(list(futures))  # after a full disk: no cell starts


def _lost(exc: Exception) -> str:
    """failures.csv's reason for a cell whose Dask workers died under it (KilledWorker)."""
    tries = getattr(exc, "allowed_failures", None)
    times = "repeatedly" if not isinstance(tries, int) else "once" if tries == 0 else f"{tries + 1} times"
    last = getattr(getattr(exc, "last_worker", None), "address", None)
    where = f", last on {last}" if last else ""
    return (
        f"the Dask worker running it died {times} (KilledWorker{where}); a rerun resumes it from its last "
        f"checkpoint (the Dask workers' logs say why they died)"
    )


def _dask_client(backend: str, scheduler: str | None, n_workers: int) -> tuple[Any, Any]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise BenchError("--backend dask needs dask.distributed: pip install -e '.[dask]'") from None
    if backend == "dask-local":
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
        return Client(cluster), cluster
    try:
        return Client(scheduler, timeout="30s"), None
    except (OSError, TimeoutError) as exc:
        raise BenchError(
            f"cannot reach the Dask scheduler at {scheduler} ({exc}); start it or fix --scheduler"
        ) from None
