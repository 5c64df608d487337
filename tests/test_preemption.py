"""SIGINT/SIGTERM stop a run cleanly: checkpoint at the current step, locks released, one line, exit
128 + signal, and the same command resumes. Every test sends a real signal."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from disentbench import datasets, methods
from disentbench.bench import preemption
from disentbench.bench.checkpoint import CHECKPOINT, read_checkpoint
from disentbench.bench.training import LOG_FILE, RunSeeds, TrainOptions, train
from tests.conftest import REPO
from tests.helpers import tiny_cpu_args

CPU = torch.device("cpu")
#: many cheap steps, a log row every 2 steps and no periodic checkpoint before the end
LONG_PROFILE = (
    "extends: smoke\nsteps: 120\nbatch_size: 16\nlog_every: 2\ncheckpoint_every: 1000\n"
    "primary_metric: mig\nmetrics:\n  mig: {num_train: 200}\n"
)


def _wait_for(condition, proc: subprocess.Popen | None = None, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the run ended (code {proc.returncode}) before the signal; make it longer")
        if time.time() > deadline:
            pytest.fail("timed out waiting")
        time.sleep(0.05)


# --------------------------------------------------------------------------------------------
# The mechanism
# --------------------------------------------------------------------------------------------
def test_handlers_exist_only_inside_handling_signals():
    before = {s: signal.getsignal(s) for s in preemption.SIGNALS}
    with preemption.handling_signals():
        assert all(signal.getsignal(s) is not before[s] for s in preemption.SIGNALS)
    assert {s: signal.getsignal(s) for s in preemption.SIGNALS} == before
    assert preemption.requested() is None


def test_outside_a_safe_point_a_signal_stops_at_once():
    with preemption.handling_signals(), pytest.raises(preemption.Interrupted) as info:
        os.kill(os.getpid(), signal.SIGTERM)
        _wait_for(lambda: False, timeout=10)
    assert info.value.signum == signal.SIGTERM and info.value.exit_code == 143


def test_inside_a_safe_point_a_signal_waits_for_it_and_listeners_hear_it_once():
    heard = []
    with preemption.handling_signals(), pytest.raises(preemption.Interrupted) as info:
        with preemption.deferred(), preemption.listening(heard.append):
            os.kill(os.getpid(), signal.SIGINT)
            _wait_for(lambda: preemption.requested() is not None, timeout=10)
            os.kill(os.getpid(), signal.SIGINT)  # a repeat changes nothing
            time.sleep(0.1)
            reached_the_safe_point = True
    assert reached_the_safe_point and heard == [signal.SIGINT]
    assert info.value.exit_code == 130


# --------------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------------
def _fresh():
    ds = datasets.create("dsprites", source="procedural")
    return ds, methods.create("betavae", observation_shape=ds.observation_shape, seed=RunSeeds.from_seed(0).init)


def _params(m):
    return torch.cat([p.detach().flatten() for p in m.parameters()])


def _log_without_time(path: Path) -> list[list[str]]:
    return [row[:1] + row[2:] for row in (r.split(",") for r in path.read_text().splitlines())]


def test_a_stop_between_logging_steps_checkpoints_that_step_and_resumes_exactly(tmp_path, one_thread):
    options = TrainOptions(steps=12, batch_size=8, seed=0, log_every=4, checkpoint_every=100)
    ds, straight = _fresh()
    train(straight, ds, options, device=CPU, cell_dir=tmp_path / "straight")

    ds, part = _fresh()
    step_fn = part.train_step

    def signalled_at_six(x, step, generator):
        if step == 6:
            os.kill(os.getpid(), signal.SIGTERM)
        return step_fn(x, step, generator)

    part.train_step = signalled_at_six
    with preemption.handling_signals(), pytest.raises(preemption.Interrupted):
        train(part, ds, options, device=CPU, cell_dir=tmp_path / "stopped")
    state = read_checkpoint(tmp_path / "stopped" / CHECKPOINT)
    assert state["step"] == 6 and state["loss_count"] == 2  # mid-window: steps 5 and 6 since the last log

    ds, resumed = _fresh()
    result = train(resumed, ds, options, device=CPU, cell_dir=tmp_path / "stopped")
    assert result.resumed_from == 6
    assert torch.equal(_params(resumed), _params(straight))
    stopped_log = _log_without_time(tmp_path / "stopped" / LOG_FILE)
    assert stopped_log == _log_without_time(tmp_path / "straight" / LOG_FILE)
    assert [row[0] for row in stopped_log] == ["step", "4", "8", "12"]


def test_a_restart_without_a_checkpoint_does_not_log_steps_twice(tmp_path):
    class Stop(Exception):
        pass

    def stop_at_four(step, losses):
        if step == 4:
            raise Stop

    options = TrainOptions(steps=6, batch_size=8, seed=0, log_every=2)
    ds, m = _fresh()
    with pytest.raises(Stop):  # killed before any checkpoint (checkpoint_every=0: only at the end)
        train(m, ds, options, device=CPU, cell_dir=tmp_path, progress=stop_at_four)
    assert not (tmp_path / CHECKPOINT).exists()
    ds, m = _fresh()
    assert train(m, ds, options, device=CPU, cell_dir=tmp_path).resumed_from == 0
    assert [row[0] for row in _log_without_time(tmp_path / LOG_FILE)] == ["step", "2", "4", "6"]


# --------------------------------------------------------------------------------------------
# The command line, in a real process
# --------------------------------------------------------------------------------------------
def _cli(results: Path, profile: Path, *extra: str) -> list[str]:
    return [sys.executable, "run_benchmark.py", *tiny_cpu_args(profile, results, *extra)]


def _logged_step(cell: Path) -> int:
    try:
        rows = (cell / LOG_FILE).read_text().splitlines()
        return int(rows[-1].split(",")[0]) if len(rows) > 1 else 0
    except (OSError, ValueError):
        return 0


def _stop_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if "rerun the same command" in line]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr, stderr
    return lines[0]


def _stop_then_resume(tmp_path: Path, methods_arg: str, n_cells: int, *extra: str) -> None:
    profile = tmp_path / "long.yaml"
    profile.write_text(LONG_PROFILE)
    run_dir = tmp_path / "run"
    command = _cli(run_dir, profile, "--methods", methods_arg, *extra)
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def cells() -> list[Path]:
        return sorted(run_dir.glob("cells/*"))

    try:
        _wait_for(lambda: len(cells()) == n_cells and all(_logged_step(c) >= 4 for c in cells()), proc)
        owners = [json.loads((c / "lock").read_text())["pid"] for c in cells()]
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, stderr
    assert "terminated (SIGTERM)" in _stop_line(stderr)
    stopped_at = {}
    for cell in cells():
        step = int(read_checkpoint(cell / CHECKPOINT)["step"])
        assert 0 < step < 120 and step % 1000 != 0  # saved at the current step, not a periodic one
        assert step >= 4 and not (cell / "lock").exists() and not (cell / "scores.json").exists()
        stopped_at[cell.name] = step
    _wait_for(lambda: not any(_alive(pid) for pid in owners), timeout=30)  # every cell's process has exited

    rerun = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert rerun.returncode == 0, rerun.stderr
    for cell in cells():
        record = json.loads((cell / "scores.json").read_text())
        assert record["resumed_from_step"] == stopped_at[cell.name]
        trained = json.loads((cell / "segments.json").read_text())  # the start and the resume, one host
        assert [seg["from_step"] for seg in trained] == [0, stopped_at[cell.name]]
        assert record["train_hosts"] == trained[0]["host"] == trained[1]["host"]
        assert list(pd.read_csv(cell / LOG_FILE)["step"]) == list(range(2, 121, 2))
        assert not (cell / "lock").exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigterm_in_a_sequential_run_checkpoints_the_current_step_then_the_rerun_resumes(tmp_path):
    _stop_then_resume(tmp_path, "vae", 1)


def test_sigterm_to_a_parallel_driver_reaches_every_cell_then_the_rerun_resumes(tmp_path):
    _stop_then_resume(tmp_path, "vae,betavae", 2, "--jobs", "2")
