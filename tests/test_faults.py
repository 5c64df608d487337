"""Crash consistency by fault injection (docs/reliability.md): a SIGKILL at every named fault point,
random kills, a full disk and out-of-memory errors; after a rerun the results equal those of an
uninterrupted run, bit for bit."""

from __future__ import annotations

import errno
import json
import pickle
import shutil
import signal
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from disentbench import faults
from disentbench.bench.checkpoint import read_checkpoint
from disentbench.bench.cli import main
from disentbench.bench.evidence import kills
from disentbench.errors import DiskFull
from tests.conftest import REPO
from tests.helpers import tiny_cpu_args

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One uninterrupted run of the grid, shared by every case."""
    work = tmp_path_factory.mktemp("reference")
    profile = kills.write_profile(work)
    assert main(kills.run_args(profile, work / "run")) == 0
    return work / "run"


@pytest.fixture(scope="module")
def fork(tmp_path_factory):
    """Runs the commands that get killed, each in a process forked from one that imported disentbench
    once (kills.Forker): a kill and its rerun cost their work, not two interpreter starts."""
    with kills.Forker(tmp_path_factory.mktemp("forker") / "runs.log") as forker:
        yield forker


def _grid(tmp_path: Path) -> list[str]:
    return kills.run_args(kills.write_profile(tmp_path), tmp_path / "run")


# (fault, what the command is): every named point, each hit where a rerun has something to repair
CASES = [
    ("train_step:9", "grid"),  # the second cell, at step 3 (its checkpoint is at step 2)
    ("after_log:2", "grid"),  # step 4 logged, not checkpointed: the log is cut back to step 2
    ("after_checkpoint:2", "grid"),  # step 4 checkpointed, not yet kept nor logged further
    ("write:checkpoint:3", "grid"),  # the kept copy of step 4, half way
    ("curve_point:1", "grid"),  # step 4 scored, not written to curve.csv
    ("write:curve:1", "grid"),
    ("scoring:1", "grid"),  # the first cell's final scores computed, scores.json not written
    ("write:scores:2", "grid"),  # the second cell's scores.json
    ("write:runs_csv:1", "grid"),
    ("write:leaderboard:1", "grid"),
    ("write:report:1", "report"),
    ("rescore:1", "rescore"),
]


def test_the_cases_cover_every_named_fault_point():
    assert {fault.rsplit(":", 1)[0] for fault, _ in CASES} == set(faults.POINTS)


@pytest.mark.parametrize("fault,command", CASES, ids=[c[0] for c in CASES])
def test_a_kill_at_a_named_point_then_a_rerun_loses_nothing(tmp_path, reference, fork, fault, command):
    args = _grid(tmp_path)
    run_dir = tmp_path / "run"
    if command != "grid":  # report and rescore work on a finished run: a copy of the reference
        shutil.copytree(reference, run_dir)
        args = ["report", str(run_dir), "--no-models"] if command == "report" else ["rescore", str(run_dir)]
        args += ["--metrics", "mig", "--no-report"] if command == "rescore" else []
    assert fork(args, fault) == -signal.SIGKILL, f"{fault} was not reached"
    assert fork(args) == 0  # the same command again, without the fault
    assert kills.problems(run_dir, reference) == []
    if command == "report":
        assert "</html>" in (run_dir / "report" / "report.html").read_text()


def test_random_kills_in_a_row_end_identical_to_an_uninterrupted_run(tmp_path, reference, fork, kill_count=20):
    """`python -m disentbench.bench.evidence.kills --kills 20 --seed 1 --fork` (docs/reliability.md): 20
    seeded random kills in a row, each run forked from one process that imported disentbench once."""
    figures = kills.random_kills(kill_count, seed=1, work=tmp_path, reference=reference, run=fork)
    assert figures["kills"] == kill_count and figures["problems"] == []
    assert figures["identical_rounds"] == figures["rounds"] >= 5
    assert len({fault.rsplit(":", 1)[0] for fault in figures["faults"]}) >= 6  # points of every kind


# ---------------------------------------------------------------------------------------------
# A full disk
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fault", ["write:checkpoint:6", "write:scores:2", "write:runs_csv:1"])
def test_a_full_disk_stops_the_run_with_one_line_and_a_rerun_completes_it(tmp_path, reference, capsys, fault):
    args = _grid(tmp_path)
    run_dir = tmp_path / "run"
    faults.arm(fault + ":enospc")
    try:
        assert main(args) == 2
    finally:
        faults.arm(None)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]  # the rest: the progress bar
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: no space left on the device while writing ")
    assert "free space" in lines[0] and "rerun the same command" in lines[0]
    first = next(p for p in sorted((run_dir / "cells").iterdir()) if p.name.startswith("dsprites-vae"))
    assert (first / "scores.json").is_file()  # the finished cell is intact
    assert json.loads((first / "scores.json").read_text())["scores"]["mig"] >= 0
    for cell in (run_dir / "cells").iterdir():
        assert not (cell / "lock").exists()
        for name in ("checkpoint.pt", "checkpoint.prev.pt"):  # what is there is whole
            if (cell / name).exists():
                read_checkpoint(cell / name)
    assert not list(run_dir.rglob(".*.tmp"))
    assert main(args) == 0  # "space freed"
    assert kills.problems(run_dir, reference) == []


def test_a_full_disk_in_a_jobs_2_worker_stops_the_run_with_one_line_and_a_rerun_completes_it(
    tmp_path, reference, capsys, monkeypatch
):
    args = _grid(tmp_path)
    run_dir = tmp_path / "run"
    monkeypatch.setenv(faults.ENV, "write:scores:1:enospc")  # armed in each worker process (not in this one)
    assert main(args + ["--jobs", "2"]) == 2
    monkeypatch.delenv(faults.ENV)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err and "FAILED" not in err, err
    assert lines[0].startswith(f"error: no space left on the device while writing {run_dir / 'cells'}")
    assert lines[0].split(": free space")[0].endswith("scores.json")
    assert not (run_dir / "failures.csv").exists() and not (run_dir / "runs.csv").exists()  # stopped, not failed
    for cell in (run_dir / "cells").iterdir():
        assert not (cell / "lock").exists() and not (cell / "scores.json").exists()
        if (cell / "checkpoint.pt").exists():  # a cell stopped by the driver before its first has none
            assert 1 <= read_checkpoint(cell / "checkpoint.pt")["step"] <= 6
    assert not list(run_dir.rglob(".*.tmp"))
    assert main(args) == 0  # "space freed"; rerun here, in this process (scores do not depend on --jobs)
    assert kills.problems(run_dir, reference) == []


def test_a_torch_save_that_finds_the_disk_full_raises_disk_full_naming_the_file(tmp_path, monkeypatch):
    from disentbench.bench import checkpoint

    def full(obj, f, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", full)
    (tmp_path / "checkpoint.pt").write_bytes(b"old")
    with pytest.raises(DiskFull, match="checkpoint.pt: free space"):
        checkpoint.save_checkpoint(tmp_path / "checkpoint.pt", {"step": 1})
    assert (tmp_path / "checkpoint.prev.pt").read_bytes() == b"old"  # the previous one is kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.prev.pt"]


# ---------------------------------------------------------------------------------------------
# A lost worker
# ---------------------------------------------------------------------------------------------
PLUGIN = str(REPO / "tests" / "plugins" / "faulty_methods.py")


def test_a_dask_worker_killed_mid_cell_is_retried_from_its_checkpoint_and_loses_nothing(tmp_path, capsys, monkeypatch):
    """With --backend dask-local the cell parentkillervae SIGKILLs its Dask worker process at step 5
    (after the step-4 checkpoint); its own process dies with it. Dask runs the cell again, which
    resumes at step 4; the other cell finishes; the results equal an uninterrupted run's."""
    pytest.importorskip("dask.distributed")
    profile = kills.write_profile(tmp_path)

    def grid(results: str) -> list[str]:
        return ["--plugin", PLUGIN, "--methods", "vae,parentkillervae", *tiny_cpu_args(profile, tmp_path / results)]

    assert main(grid("straight")) == 0  # uninterrupted, in this process
    flag = tmp_path / "kill-the-worker"
    flag.write_text("")
    monkeypatch.setenv("FAULTY_KILL_PARENT_FLAG", str(flag))
    assert main(grid("dask") + ["--backend", "dask-local", "--jobs", "2"]) == 0
    capsys.readouterr()
    assert not flag.exists()  # the worker was killed
    killed = next((tmp_path / "dask" / "cells").glob("dsprites-parentkillervae-*"))
    assert json.loads((killed / "scores.json").read_text())["resumed_from_step"] == 4
    assert "taking over the stale lock" in (killed / "worker.log").read_text()  # its first process is gone
    assert not (tmp_path / "dask" / "failures.csv").exists()
    assert kills.problems(tmp_path / "dask", tmp_path / "straight") == []


def test_a_cell_whose_dask_workers_all_died_fails_alone_and_a_full_disk_stops_the_others(tmp_path, monkeypatch):
    """What the driver makes of the tasks' ends (a real in-process Dask cluster, the cells' work faked):
    KilledWorker -> that cell failed with the reason; DiskFull -> raised, the cells not started cancelled."""
    distributed = pytest.importorskip("dask.distributed")
    from types import SimpleNamespace

    from disentbench.bench import execution, worker
    from disentbench.bench.config import load_profile
    from disentbench.bench.grid import expand
    from disentbench.bench.runner import RunSettings

    profile = load_profile(str(kills.write_profile(tmp_path)))
    cells = expand(profile, ["vae", "betavae", "annealedvae"], {"dsprites": "procedural"}, 1, None, {}, "none")
    settings = RunSettings(run_dir=tmp_path, profile=profile, device="cpu")
    ends = {"vae": "done", "betavae": "lost", "annealedvae": "done"}

    def supervise(task, out_dir, cell_id, retries=1):
        end = ends[task["cell"]["method"]]
        (tmp_path / f"started-{task['cell']['method']}").touch()
        if end == "lost":
            raise distributed.KilledWorker(cell_id, SimpleNamespace(address="tcp://10.0.0.9:4242"), 3)
        if end == "full":
            raise DiskFull(f"{out_dir}/checkpoint.pt")
        if end == "slow":
            time.sleep(2)
        return {"cell_id": cell_id, "status": "done"}

    monkeypatch.setattr(worker, "supervise", supervise)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as c:
        with distributed.Client(c) as client:
            got = {o.cell_id: o for o in execution._dask_outcomes(client, [(cell, settings) for cell in cells])}
            assert {cid: o.status for cid, o in got.items()} == {
                cells[0].cell_id: "done", cells[1].cell_id: "failed", cells[2].cell_id: "done"
            }  # fmt: skip
            reason = got[cells[1].cell_id].reason
            assert reason.startswith(
                "the Dask worker running it died 4 times (KilledWorker, last on tcp://10.0.0.9:4242)"
            )
            assert "a rerun resumes it from its last checkpoint" in reason
            ends.update(vae="full", betavae="slow", annealedvae="slow")  # one thread, the plan's order
            for marker in tmp_path.glob("started-*"):
                marker.unlink()
            with pytest.raises(DiskFull) as stop:
                list(execution._dask_outcomes(client, [(cell, settings) for cell in cells]))
    sent = pickle.loads(pickle.dumps(stop.value))  # as a Dask worker process sends it
    assert sent.path == stop.value.path == f"{tmp_path}/cells/{cells[0].cell_id}/checkpoint.pt"
    assert str(sent) == str(stop.value) and str(sent).startswith(
        f"no space left on the device while writing {sent.path}: "
    )
    started = sorted(p.name for p in tmp_path.glob("started-*"))
    assert "started-vae" in started and "started-annealedvae" not in started, started  # cancelled, not run


# ---------------------------------------------------------------------------------------------
# Out of memory
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stage", ["training", "metric"])
def test_out_of_memory_fails_its_cell_with_one_line_and_the_others_go_on(tmp_path, monkeypatch, capsys, stage):
    from disentbench.methods.vae import BetaVAE
    from disentbench.metrics.mig import MIG

    if stage == "training":  # every step of the betavae cell runs out of memory on the device

        def train_step(self, *a, **k):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

        monkeypatch.setattr(BetaVAE, "train_step", train_step)
    else:  # the first cell's (vae's) final MIG runs out of host memory
        real, calls = MIG.evaluate, []

        def evaluate(self, *a, **k):
            calls.append(1)
            if len(calls) == 2:  # the first call scores the learning-curve point at step 4
                raise MemoryError()
            return real(self, *a, **k)

        monkeypatch.setattr(MIG, "evaluate", evaluate)
    assert main(_grid(tmp_path)) == 1
    failures = pd.read_csv(tmp_path / "run" / "failures.csv")
    assert len(failures) == 1
    reason = failures["reason"].iloc[0]
    if stage == "training":
        assert failures["method"].iloc[0] == "betavae"
        assert reason == (
            "out of memory in training (batch_size 8, 1 batch(es) per step); lower it with batch_size: in the profile"
        )
    else:
        assert failures["method"].iloc[0] == "vae"
        assert reason.startswith("out of memory in metric mig (num_train 200, ")
        assert reason.endswith("lower it with the profile's metrics: mig: {num_train: ..., batch_size: ...}")
    runs = pd.read_csv(tmp_path / "run" / "runs.csv")
    assert len(runs) == 1 and runs["method"].iloc[0] != failures["method"].iloc[0]  # the other cell went on
    assert "out of memory in" in capsys.readouterr().err
