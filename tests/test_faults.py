"""Crash consistency by fault injection (docs/reliability.md): a SIGKILL at every named fault point,
random kills, a full disk and out-of-memory errors; after a rerun the results equal those of an
uninterrupted run, bit for bit."""

from __future__ import annotations

import errno
import json
import shutil
import signal
from pathlib import Path

import pandas as pd
import pytest
import torch

from disentbench import faults
from disentbench.bench.checkpoint import read_checkpoint
from disentbench.bench.cli import main
from disentbench.bench.evidence import kills
from disentbench.errors import DiskFull

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One uninterrupted run of the grid, shared by every case."""
    work = tmp_path_factory.mktemp("reference")
    profile = kills.write_profile(work)
    assert main(kills.run_args(profile, work / "run")) == 0
    return work / "run"


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
def test_a_kill_at_a_named_point_then_a_rerun_loses_nothing(tmp_path, reference, fault, command):
    args = _grid(tmp_path)
    run_dir = tmp_path / "run"
    if command != "grid":  # report and rescore work on a finished run: a copy of the reference
        shutil.copytree(reference, run_dir)
        args = ["report", str(run_dir), "--no-models"] if command == "report" else ["rescore", str(run_dir)]
        args += ["--metrics", "mig", "--no-report"] if command == "rescore" else []
    assert kills.launch(args, fault) == -signal.SIGKILL, f"{fault} was not reached"
    assert main(args) == 0  # the same command again, without the fault
    assert kills.problems(run_dir, reference) == []
    if command == "report":
        assert "</html>" in (run_dir / "report" / "report.html").read_text()


def test_random_kills_in_a_row_end_identical_to_an_uninterrupted_run(tmp_path, reference, kill_count=2):
    """The in-suite share of `python -m disentbench.bench.evidence.kills --kills 20` (docs/reliability.md)."""
    figures = kills.random_kills(kill_count, seed=1, work=tmp_path, reference=reference, complete=main)
    assert figures["kills"] == kill_count and figures["problems"] == []
    assert figures["identical_rounds"] == figures["rounds"] >= 1


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
