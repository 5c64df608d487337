"""bench/evidence/keep_runs.sh: a results folder becomes a git repository holding one snapshot of
everything but cell locks and temporary files, amended in place."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "evidence" / "keep_runs.sh"
pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or shutil.which("bash") is None, reason="needs git and bash"
)


def _snapshot(*dirs: Path) -> None:
    env = {**os.environ, "ONCE": "1"}
    subprocess.run(["bash", str(SCRIPT), *map(str, dirs)], check=True, env=env, capture_output=True)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def test_a_snapshot_keeps_the_results_but_not_locks_or_temporary_files(tmp_path):
    run = tmp_path / "run"
    cell = run / "cells" / "c1"
    cell.mkdir(parents=True)
    (cell / "checkpoint.pt").write_bytes(b"step 1")
    (cell / "lock").write_text("{}")
    (cell / ".checkpoint.pt.host~1.abc.tmp").write_bytes(b"half")
    _snapshot(run, tmp_path / "absent")  # a folder not there yet is skipped
    assert sorted(_git(run, "ls-files").split()) == [".gitignore", "cells/c1/checkpoint.pt"]
    assert not (tmp_path / "absent").exists()

    (cell / "checkpoint.pt").write_bytes(b"step 2")
    (run / "curves.csv").write_text("step\n1\n")
    _snapshot(run)
    assert len(_git(run, "log", "--format=%H").split()) == 1  # amended: one snapshot commit
    assert _git(run, "show", "HEAD:cells/c1/checkpoint.pt") == "step 2"
    assert "curves.csv" in _git(run, "ls-files").split()
    # the old checkpoint's object is pruned, so the repository holds one copy of each file
    objects = _git(run, "count-objects", "-v")
    assert "count: 0" in objects and "size-garbage: 0" in objects
    blobs = _git(run, "rev-list", "--objects", "--all").split()
    old = (
        subprocess.run(
            ["git", "-C", str(run), "hash-object", "--stdin"], input=b"step 1", capture_output=True, check=True
        )
        .stdout.decode()
        .strip()
    )
    assert old not in blobs and subprocess.run(["git", "-C", str(run), "cat-file", "-e", old]).returncode != 0
