"""Where cells run: in this process (one at a time, with per-step progress), in N local processes
(joblib threads of this driver, each waiting on one cell's process), or on a Dask cluster through
joblib's Dask backend. In the parallel modes each cell runs in its own child process (bench.worker)
and only the driver writes the run's tables. Locally the driver knows every child, so a stop signal
(bench.preemption) is forwarded to them and the driver waits for their checkpoints before it stops."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from disentbench.bench import preemption
from disentbench.bench.grid import Cell
from disentbench.bench.runner import CellOutcome, RunSettings, run_cell
from disentbench.errors import BenchError


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
    from joblib import Parallel, delayed, parallel_config

    from disentbench.bench.worker import forward_signal, run_cell_isolated

    by_id = {c.cell_id: c for c in todo}
    calls = [delayed(run_cell_isolated)(cell, s) for cell, s in _tasks(todo, settings, devices)]
    outcomes: list[tuple[Cell, CellOutcome]] = []

    def collect(results) -> None:
        for outcome in results:
            cell = by_id[outcome.cell_id]
            outcomes.append((cell, outcome))
            if outcome.status != "interrupted":
                bar.set_description(f"done {cell.dataset} {cell.method} s{cell.seed}")
            _report(bar, cell, outcome)

    if backend == "local":  # threads suffice (each waits on a process) and share the stop signal
        with preemption.deferred(), preemption.listening(forward_signal):
            collect(Parallel(n_jobs=n_jobs, backend="threading", return_as="generator_unordered")(calls))
        return outcomes
    client, cluster = _dask_client(backend, scheduler, n_jobs)
    try:
        with parallel_config(backend="dask"):
            collect(Parallel(n_jobs=-1)(calls))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return outcomes


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
