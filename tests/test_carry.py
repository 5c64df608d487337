"""bench/evidence/carry.py: a run folder carried into the repository and back. The resumable
checkpoint travels whole (a resume from it continues exactly), kept checkpoints travel slim with the
same weights, locks and temporary files stay behind, and an altered carried file is refused."""

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from disentbench import methods
from disentbench.bench.checkpoint import CHECKPOINT, PREVIOUS, keep_copy, kept_path, load_method, save_checkpoint
from disentbench.bench.evidence import carry
from disentbench.errors import BenchError

SHAPE = (1, 64, 64)


def _trained_betavae(steps: int = 2):
    """A beta-VAE after a few real Adam steps, so its optimiser state is not empty."""
    method = methods.create("betavae", observation_shape=SHAPE, seed=3)
    gen = torch.Generator().manual_seed(0)
    for step in range(steps):
        method.train_step(torch.rand((8, *SHAPE), generator=gen), step, gen)
    return method


def _state(method, step):
    return {
        "step": step,
        "method_name": "betavae",
        "hparams": dict(method.hp),
        "observation_shape": list(SHAPE),
        "init": "reference",
        "init_seed": 3,
        "method_state": method.checkpoint_state(),
    }


@pytest.fixture
def run(tmp_path):
    """A run folder with one cell: checkpoint.pt at step 2, its fallback, a kept checkpoint at step 2,
    a curve, a lock and an atomic write's leftover."""
    run = tmp_path / "run"
    cell = run / "cells" / "c1"
    cell.mkdir(parents=True)
    method = _trained_betavae()
    save_checkpoint(cell / CHECKPOINT, _state(method, 1), keep_previous=False)
    save_checkpoint(cell / CHECKPOINT, _state(method, 2))  # the step-1 one becomes checkpoint.prev.pt
    keep_copy(cell, 2)
    (cell / "curve.csv").write_text("step,mig\n2,0.1\n")
    (cell / "lock").write_text("{}")
    (cell / ".curve.csv.host~1.abc.tmp").write_text("half")
    (run / "plan.json").write_text("{}")
    return run


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_save_carries_the_resumable_checkpoint_whole_and_leaves_locks_and_fallbacks_behind(run, tmp_path):
    carried = tmp_path / "repo" / "evidence" / "run"
    done = carry.save(run, carried)
    files = sorted(str(p.relative_to(carried)) for p in carried.rglob("*") if p.is_file())
    assert files == [
        carry.MANIFEST,
        "cells/c1/checkpoint.pt",
        "cells/c1/checkpoints/step-000000002.pt",
        "cells/c1/curve.csv",
        "plan.json",
    ]
    assert PREVIOUS not in files and done["copied"] == 4
    assert _digest(carried / "cells/c1/checkpoint.pt") == _digest(run / "cells/c1" / CHECKPOINT)


def test_a_kept_checkpoint_travels_slim_with_the_same_weights_and_codes(run, tmp_path):
    carried = tmp_path / "carried"
    carry.save(run, carried)
    full_path, slim_path = kept_path(run / "cells/c1", 2), kept_path(carried / "cells/c1", 2)
    assert slim_path.stat().st_size < 0.5 * full_path.stat().st_size
    full, full_state = load_method(full_path)
    slim, slim_state = load_method(slim_path)
    assert slim_state["step"] == 2 and slim_state["slim"] is True
    assert all(opt.state_dict()["state"] == {} for opt in slim.optimizers.values())
    assert any(opt.state_dict()["state"] for opt in full.optimizers.values())
    for (name, a), (_, b) in zip(full.state_dict().items(), slim.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    x = torch.rand((5, *SHAPE), generator=torch.Generator().manual_seed(1))
    assert torch.equal(full.encode(x), slim.encode(x))


def test_restore_into_a_fresh_folder_resumes_with_the_same_optimiser_state(run, tmp_path):
    carried, fresh = tmp_path / "carried", tmp_path / "fresh"
    carry.save(run, carried)
    assert carry.restore(carried, fresh) == {"restored": 4, "present": 0}
    assert _digest(fresh / "cells/c1" / CHECKPOINT) == _digest(run / "cells/c1" / CHECKPOINT)
    original, _ = load_method(run / "cells/c1" / CHECKPOINT)
    restored, state = load_method(fresh / "cells/c1" / CHECKPOINT)
    assert state["step"] == 2
    # one more step from each gives the same weights: the resume is exact
    for method in (original, restored):
        gen = torch.Generator().manual_seed(9)
        method.train_step(torch.rand((8, *SHAPE), generator=gen), 2, gen)
    for (name, a), (_, b) in zip(original.state_dict().items(), restored.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert not (fresh / "cells/c1/lock").exists()


def test_a_second_save_copies_what_changed_and_drops_what_went(run, tmp_path):
    carried = tmp_path / "carried"
    carry.save(run, carried)
    again = carry.save(run, carried)
    assert (again["copied"], again["kept"], again["dropped"]) == (0, 4, 0)
    (run / "cells/c1/curve.csv").write_text("step,mig\n2,0.1\n4,0.2\n")
    (run / "plan.json").unlink()
    changed = carry.save(run, carried)
    assert (changed["copied"], changed["dropped"]) == (1, 1)
    assert (carried / "cells/c1/curve.csv").read_text().endswith("4,0.2\n")
    assert not (carried / "plan.json").exists()
    assert "plan.json" not in carry.read_manifest(carried)["files"]


def test_restore_keeps_what_the_run_folder_has_unless_forced(run, tmp_path):
    carried = tmp_path / "carried"
    carry.save(run, carried)
    (run / "cells/c1/curve.csv").write_text("step,mig\n2,0.1\n4,0.2\n")  # the local run went further
    (run / "plan.json").unlink()
    assert carry.restore(carried, run) == {"restored": 1, "present": 3}
    assert (run / "cells/c1/curve.csv").read_text().endswith("4,0.2\n")
    assert carry.restore(carried, run, force=True)["restored"] == 4
    assert (run / "cells/c1/curve.csv").read_text() == "step,mig\n2,0.1\n"


def test_an_altered_carried_file_is_refused_before_anything_is_written(run, tmp_path):
    carried, fresh = tmp_path / "carried", tmp_path / "fresh"
    carry.save(run, carried)
    (carried / "plan.json").write_text('{"edited": true}')
    with pytest.raises(BenchError, match="plan.json: missing or altered .*sha256"):
        carry.restore(carried, fresh)
    assert not fresh.exists()


def test_bad_input_is_one_line_and_writes_nothing(run, tmp_path, capsys):
    carried = tmp_path / "carried"
    with pytest.raises(BenchError, match="over --max-mb 0.001"):
        carry.save(run, carried, max_mb=0.001)
    assert not carried.exists()
    assert carry.main(["save", str(tmp_path / "absent"), str(carried)]) == 2
    assert carry.main(["restore", str(tmp_path / "nothing"), str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "no such run folder" in err[0] and "nothing was carried there" in err[1]
    assert carry.main(["save", str(run), str(carried)]) == 0
    assert "4 copied" in capsys.readouterr().out


SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "evidence" / "carry_runs.sh"


def _git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.mark.skipif(shutil.which("git") is None or shutil.which("bash") is None, reason="needs git and bash")
def test_carry_runs_commits_evidence_alone_and_leaves_other_staged_work_staged(run, tmp_path):
    repo = tmp_path / "checkout"
    (repo / "bench" / "evidence").mkdir(parents=True)
    shutil.copy(SCRIPT, repo / "bench" / "evidence" / SCRIPT.name)
    _git(repo, "init", "-q")
    (repo / "work.py").write_text("x = 1\n")
    _git(repo, "add", "work.py")  # a change of the developer's, staged and not for this commit
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.move(str(run), runs / "reference-dsprites")
    env = {**os.environ, "COMMIT": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@localhost"}  # fmt: skip
    subprocess.run(["bash", str(repo / "bench/evidence/carry_runs.sh"), str(runs)], check=True, env=env,
                   capture_output=True, cwd=tmp_path)  # fmt: skip
    committed = _git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert sorted(committed) == sorted(f"evidence/reference-dsprites/{f}" for f in [
        carry.MANIFEST, "cells/c1/checkpoint.pt", "cells/c1/checkpoints/step-000000002.pt", "cells/c1/curve.csv",
        "plan.json"])  # fmt: skip
    assert _git(repo, "diff", "--cached", "--name-only").split() == ["work.py"]
    # nothing changed since: a second call makes no empty commit
    subprocess.run(["bash", str(repo / "bench/evidence/carry_runs.sh"), str(runs)], check=True, env=env,
                   capture_output=True, cwd=tmp_path)  # fmt: skip
    assert len(_git(repo, "log", "--format=%H").split()) == 1


def test_finished_scores_only_carries_finished_cells_without_checkpoints_and_nothing_of_a_running_one(run, tmp_path):
    finished = run / "cells" / "c2"
    finished.mkdir()
    save_checkpoint(finished / CHECKPOINT, _state(_trained_betavae(1), 1), keep_previous=False)
    keep_copy(finished, 1)
    (finished / "scores.json").write_text('{"scores": {"mig": 0.1}}')
    carried = tmp_path / "carried"
    carry.save(run, carried, finished_scores_only=True)
    files = sorted(str(p.relative_to(carried)) for p in carried.rglob("*") if p.is_file())
    # c1 is still training (no scores.json): none of it; the run's own plan.json stays
    assert files == [carry.MANIFEST, "cells/c2/scores.json", "plan.json"]
    carry.save(run, carried)  # without the flag everything is carried
    assert (carried / "cells/c2" / CHECKPOINT).is_file() and kept_path(carried / "cells/c2", 1).is_file()
    assert (carried / "cells/c1" / CHECKPOINT).is_file()
