"""Scale and resilience: parallel runs agree, killed runs resume exactly, failures stay local."""

import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from disentbench.bench.checkpoint import load_latest, read_checkpoint
from disentbench.bench.cli import main
from disentbench.bench.locks import CellLock
from tests.conftest import REPO
from tests.helpers import tiny_cpu_args

PLUGIN = str(REPO / "tests" / "plugins" / "faulty_methods.py")


def _values(run_dir: Path) -> pd.Series:
    runs = pd.read_csv(run_dir / "runs.csv")
    return runs.set_index(["method", "seed", "metric"])["value"].sort_index()


def test_jobs_1_and_jobs_2_give_identical_scores(tmp_path, tiny_profile, capsys):
    """(--backend dask-local against an uninterrupted run: test_faults.py, a Dask worker killed mid-cell)"""
    common = [
        "--methods",
        "vae,betavae",
        "--seeds",
        "1",
        "--profile",
        str(tiny_profile),
        "--device",
        "cpu",
        "--source",
        "procedural",
        "--threads",
        "1",
        "--no-report",
    ]
    assert main(common + ["--results", str(tmp_path / "j1")]) == 0
    assert main(common + ["--results", str(tmp_path / "j2"), "--jobs", "2"]) == 0
    capsys.readouterr()
    one = _values(tmp_path / "j1")
    assert len(one) == 4  # 2 methods x (mig, sap)
    pd.testing.assert_series_equal(one, _values(tmp_path / "j2"))


def _cli(results: Path, profile: Path, *extra: str) -> list[str]:
    return [sys.executable, "run_benchmark.py", "--methods", "betavae", *tiny_cpu_args(profile, results, *extra)]


def test_sigkill_at_any_moment_then_rerun_resumes_to_the_same_scores(tmp_path):
    profile = tmp_path / "resume.yaml"
    profile.write_text(
        "extends: smoke\nsteps: 60\nbatch_size: 16\nlog_every: 5\ncheckpoint_every: 10\nprimary_metric: mig\n"
        "metrics:\n  mig: {num_train: 300}\n  sap: {num_train: 200, num_test: 100}\n"
    )
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli(killed, profile), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            ckpts = list(killed.glob("cells/*/checkpoint.pt"))
            if ckpts and _step(ckpts[0]) >= 20:
                break
            if proc.poll() is not None:
                pytest.fail("the run finished before it could be killed; make it longer")
            time.sleep(0.05)
        else:
            pytest.fail("no checkpoint appeared")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    cell = next(killed.glob("cells/*"))
    assert not (cell / "scores.json").exists() and (cell / "lock").exists()
    rerun = subprocess.run(_cli(killed, profile), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    scores = json.loads((cell / "scores.json").read_text())
    assert scores["resumed_from_step"] >= 20
    straight = tmp_path / "straight"
    done = subprocess.run(_cli(straight, profile), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    pd.testing.assert_series_equal(_values(killed), _values(straight))
    log = pd.read_csv(cell / "train_log.csv")
    assert list(log["step"]) == list(range(5, 65, 5))


def _step(path: Path) -> int:
    """The checkpoint's step, or -1 while it is being replaced."""
    try:
        return int(read_checkpoint(path)["step"])
    except Exception:
        return -1


def test_a_diverging_cell_is_recorded_and_retry_failed_reruns_only_it(tmp_path, tiny_profile, capsys, monkeypatch):
    flag = tmp_path / "nan-on"
    flag.write_text("1")
    monkeypatch.setenv("FAULTY_NAN_FLAG", str(flag))
    run_dir = tmp_path / "run"
    args = [
        "--plugin",
        PLUGIN,
        "--methods",
        "vae,nanvae",
        "--seeds",
        "1",
        "--profile",
        str(tiny_profile),
        "--results",
        str(run_dir),
        "--device",
        "cpu",
        "--source",
        "procedural",
        "--no-report",
    ]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "1 of 2 cell(s) failed" in err and "--retry-failed" in err
    failures = pd.read_csv(run_dir / "failures.csv")
    assert list(failures["method"]) == ["nanvae"] and list(failures["step"]) == [6]
    assert "NaN" in failures["reason"].iloc[0] or "nan" in failures["reason"].iloc[0]
    assert set(pd.read_csv(run_dir / "runs.csv")["method"]) == {"vae"}
    vae_scores = next(run_dir.glob("cells/dsprites-vae-*/scores.json"))
    mtime = vae_scores.stat().st_mtime_ns
    flag.unlink()  # "fix the cause"
    assert main(args + ["--retry-failed"]) == 0
    out = capsys.readouterr().out
    assert "rerunning 1 failed cell(s)" in out
    assert vae_scores.stat().st_mtime_ns == mtime
    assert set(pd.read_csv(run_dir / "runs.csv")["method"]) == {"vae", "nanvae"}
    assert not (run_dir / "failures.csv").exists()


def test_a_worker_that_dies_fails_only_its_cell_after_one_retry(tmp_path, tiny_profile, capsys):
    run_dir = tmp_path / "run"
    code = main(
        [
            "--plugin",
            PLUGIN,
            "--methods",
            "vae,killervae",
            "--seeds",
            "1",
            "--profile",
            str(tiny_profile),
            "--results",
            str(run_dir),
            "--device",
            "cpu",
            "--source",
            "procedural",
            "--jobs",
            "2",
            "--threads",
            "1",
            "--no-report",
        ]
    )
    capsys.readouterr()
    assert code == 1
    failures = pd.read_csv(run_dir / "failures.csv")
    assert list(failures["method"]) == ["killervae"]
    assert "SIGKILL" in failures["reason"].iloc[0] and "also on retry" in failures["reason"].iloc[0]
    assert set(pd.read_csv(run_dir / "runs.csv")["method"]) == {"vae"}


def test_cell_locks(tmp_path):
    lock = CellLock(tmp_path)
    assert lock.acquire()
    other = CellLock(tmp_path)
    assert not other.acquire()  # held by a live process (this one)
    lock.release()
    assert other.acquire()
    other.release()
    # a lock left by a dead process on this host is stale
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "lock").write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout), "since": 0}))
    with pytest.warns(RuntimeWarning, match="stale lock"):
        assert CellLock(tmp_path).acquire()
    # another host's lock is stale only once its heartbeat is old
    (tmp_path / "lock").write_text(json.dumps({"host": "elsewhere", "pid": 1, "since": 0}))
    assert not CellLock(tmp_path, stale_seconds=60).acquire()
    old = time.time() - 120
    os.utime(tmp_path / "lock", (old, old))
    with pytest.warns(RuntimeWarning):
        assert CellLock(tmp_path, stale_seconds=60).acquire()


def test_a_cell_locked_by_a_live_runner_is_not_run_twice(tmp_path, tiny_profile, capsys):
    from disentbench.bench.config import load_profile
    from disentbench.bench.grid import expand
    from disentbench.bench.runner import RunSettings, cell_dir, run_cell

    profile = load_profile(str(tiny_profile))
    cell = expand(profile, ["vae"], {"dsprites": "procedural"}, 1, None, {}, "none")[0]
    settings = RunSettings(run_dir=tmp_path, profile=profile, device="cpu")
    holder = CellLock(cell_dir(tmp_path, cell))
    assert holder.acquire()
    outcome = run_cell(cell, settings)
    assert outcome.status == "busy" and not (cell_dir(tmp_path, cell) / "scores.json").exists()
    holder.release()
    assert run_cell(cell, settings).status == "done"
    assert run_cell(cell, settings).status == "skipped"


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_checkpoints_never_unpickle_arbitrary_objects(tmp_path):
    torch.save({"format": 1, "payload": _Evil()}, tmp_path / "checkpoint.pt")
    with pytest.raises(pickle.UnpicklingError):  # torch's weights-only loader refuses the object
        read_checkpoint(tmp_path / "checkpoint.pt")
    with pytest.warns(RuntimeWarning):
        assert load_latest(tmp_path) is None


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--threads", "0"], "--threads must be a positive integer"),
        (["--jobs-per-device", "x"], "--jobs-per-device must be a positive integer"),
        (["--backend", "slurm"], "local, dask, dask-local"),
        (["--backend", "dask"], "needs --scheduler"),
        (["--devices", "cuda:7"], "CUDA"),
        (["--plugin", "no/such/file.py"], "no such file"),
        (["--plugin", "no_such_module_xyz"], "import failed"),
    ],
)
def test_more_bad_inputs(tmp_path, args, fragment, capsys):
    code = main(args + ["--profile", "smoke", "--results", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and err.strip().count("\n") == 0, err


def test_unwritable_results_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code = main(["--profile", "smoke", "--results", str(blocker / "sub")])
    err = capsys.readouterr().err
    assert code == 2 and "not writable" in err and "--results" in err


def test_bad_profile_file_through_the_cli(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: smoke\nsteps: -3\n")
    code = main(["--profile", str(bad), "--results", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "steps must be a positive integer" in err
