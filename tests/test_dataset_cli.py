"""`--datasets file:PATH` end to end: the dry run's plan, the leaderboard with the data source, the
cell's recorded provenance, and a bad file refused in one line before any training."""

from __future__ import annotations

import json

import numpy as np
import pytest

from disentbench import datasets
from disentbench.bench.cli import main
from disentbench.datasets import mpi3d

SIZES = (3, 2, 4)
GRID = np.stack(np.unravel_index(np.arange(24), SIZES), axis=1)


@pytest.fixture
def mine(tmp_path, monkeypatch):
    """A user's file with 18 of the 24 combinations (rows missing), and an isolated cache."""
    monkeypatch.delenv("DISENTBENCH_DATA", raising=False)
    # registrations of user files stay inside the test (the environment, the module, the registry)
    monkeypatch.setenv("DISENTBENCH_FILE_DATASETS", "{}")
    monkeypatch.setattr(datasets._user_file, "_FILES", {})
    monkeypatch.setattr(datasets._REGISTRY, "_entries", dict(datasets._REGISTRY._entries))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    keep = rng.permutation(24)[:18]
    path = tmp_path / "mine.npz"
    np.savez(path, images=rng.integers(0, 256, (18, 64, 64), dtype=np.uint8), factors=GRID[keep])
    return path


def _args(profile, results, datasets):
    return [
        "--methods", "vae", "--datasets", datasets, "--seeds", "1", "--profile", str(profile),
        "--results", str(results), "--device", "cpu", "--threads", "1",
    ]  # fmt: skip


def test_user_file_in_the_dry_run_and_the_leaderboard(mine, tiny_profile, tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "run"
    sizes = (1, 2, 1, 1, 1, 2, 2)  # an official-format MPI3D file with a reduced grid, beside the user's
    monkeypatch.setattr(mpi3d, "LAYOUTS", {8: sizes})
    np.savez(tmp_path / "mpi3d_toy.npz", images=np.zeros((8, 64, 64, 3), np.uint8))
    extra = ["--data-dir", str(tmp_path), "--no-verify"]
    assert main(["--dry-run", *_args(tiny_profile, run_dir, f"file:{mine},mpi3d_toy"), *extra]) == 0
    out = capsys.readouterr().out
    assert "| file-mine | file | vae | 1 | 1 | 6 | 1 | 0 |" in out and not run_dir.exists()
    assert "| mpi3d_toy | official | vae | 1 | 1 | 6 | 1 | 0 |" in out

    assert main([*_args(tiny_profile, run_dir, f"file:{mine}"), "--no-report"]) == 0
    assert "## file-mine (data: file)" in (run_dir / "leaderboard.md").read_text()
    config = json.loads(next((run_dir / "cells").glob("file-mine-vae-*/config.json")).read_text())
    assert config["dataset"] == "file-mine" and config["data_source"] == "file"
    assert config["data_file"] == str(mine) and config["data_checksum"].startswith("sha256:")
    assert config["complete_grid"] is False and config["rows"] == 18 and config["factor_sizes"] == [3, 2, 4]
    run = json.loads((run_dir / "run.json").read_text())
    assert run["data_sources"]["file-mine"]["data_source"] == "file"


def test_a_bad_file_stops_the_run_in_one_line_before_training(mine, tiny_profile, tmp_path, capsys):
    np.savez(mine, images=np.zeros((18, 64, 64), np.uint8), factors=GRID[:18], factor_sizes=np.array([3, 2, 2]))
    run_dir = tmp_path / "run"
    assert main(_args(tiny_profile, run_dir, f"dsprites,file:{mine}")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(mine) in err and "factor_sizes gives factor_2 2 classes" in err
    assert not (run_dir / "cells").exists()
    assert main(_args(tiny_profile, run_dir, f"file:{tmp_path / 'absent.npz'}")) == 2
    assert "absent.npz: no such file" in capsys.readouterr().err
