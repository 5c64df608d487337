"""Files for a team: everything a run writes follows the user's umask, like a plain open(), so a
results folder shared through a group is readable by the group (atomic writes used to leave
runs.csv, run.json, config.json, scores.json and checkpoints at 0600)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from disentbench.bench.atomic import atomic_path, write_json, write_text
from disentbench.bench.checkpoint import CHECKPOINT, PREVIOUS, save_checkpoint
from disentbench.bench.cli import main

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes and umask are POSIX")


@pytest.fixture
def umask(request) -> int:
    """Set the process umask for one test and restore the previous one afterwards."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes_under(root: Path) -> dict[str, int]:
    """Mode of root and of every file and folder below it, by path relative to root."""
    found = {".": mode(root)}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            found[str(path.relative_to(root))] = mode(path)
    return found


@pytest.mark.parametrize("umask", [0o022, 0o027], indirect=True)
def test_atomic_writers_and_checkpoints_follow_the_umask(tmp_path, umask):
    file_mode = 0o666 & ~umask
    write_text(tmp_path / "new" / "a.txt", "a")
    write_json(tmp_path / "new" / "b.json", {"b": 1})
    write_json(tmp_path / "new" / "b.json", {"b": 2})  # a rewrite keeps following the umask
    with atomic_path(tmp_path / "new" / "c.csv") as tmp, open(tmp, "w") as f:
        f.write("x\n")
    save_checkpoint(tmp_path / "cell" / CHECKPOINT, {"step": 1, "w": torch.zeros(2)})
    save_checkpoint(tmp_path / "cell" / CHECKPOINT, {"step": 2, "w": torch.ones(2)})
    found = modes_under(tmp_path)
    found.pop(".")  # made by pytest, not by the suite
    assert {"new/a.txt", "new/b.json", "new/c.csv", f"cell/{CHECKPOINT}", f"cell/{PREVIOUS}"} <= set(found)
    expected = {p: (0o777 & ~umask if (tmp_path / p).is_dir() else file_mode) for p in found}
    assert {p: oct(m) for p, m in found.items()} == {p: oct(m) for p, m in expected.items()}
    assert os.umask(umask) == umask  # the writers left the process umask alone


def test_failed_atomic_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "runs.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed half-way")
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["runs.csv"]


@pytest.mark.parametrize("umask, report", [(0o022, False), (0o027, True)], indirect=["umask"])
def test_every_file_of_a_real_run_follows_the_umask(tmp_path, tiny_profile, capsys, umask, report):
    """Every file and folder under the run folder, checkpoints and (with it) the report included."""
    run_dir = tmp_path / "run"
    args = [
        "--methods",
        "vae",
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
    ] + ([] if report else ["--no-report"])
    code = main(args)
    assert code == 0, capsys.readouterr().err
    found = modes_under(run_dir)
    names = {Path(p).name for p in found}
    assert {
        "runs.csv",
        "run.json",
        "leaderboard.csv",
        "leaderboard.md",
        "config.json",
        "scores.json",
        "train_log.csv",
        CHECKPOINT,
        PREVIOUS,
    } <= names
    if report:
        assert {"report.html", "claims.md"} <= names and any(n.endswith(".png") for n in names)
    expected = {p: (0o777 & ~umask if (run_dir / p).is_dir() else 0o666 & ~umask) for p in found}
    assert {p: oct(m) for p, m in found.items()} == {p: oct(m) for p, m in expected.items()}
