"""`score`: an encoder trained elsewhere (a Python callable or a TorchScript file) scored into a run
folder that `report` merges with trained runs; bad encoders are one line and write nothing."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
import torch
import yaml

from disentbench.bench.cli import main
from tests.conftest import REPO
from tests.helpers import tiny_cpu_args

PLUGIN = str(REPO / "tests" / "plugins" / "pixelcode.py")  # registers the dataset pixelcode
ENCODERS = str(REPO / "tests" / "plugins" / "score_encoders.py")
SIZES = {"mig": {"num_train": 500}, "dci": {"num_train": 300, "num_test": 150}}


@pytest.fixture
def profile(tmp_path):
    path = tmp_path / "score.yaml"
    path.write_text(yaml.safe_dump({"extends": "smoke", "primary_metric": "mig", "metrics": SIZES}))
    return str(path)


def _score(tmp_path, profile, encoder, *extra, results="scored"):
    args = ["score", "--plugin", PLUGIN, "--encoder", encoder, "--datasets", "pixelcode", "--profile", profile]
    return main([*args, "--results", str(tmp_path / results), "--device", "cpu", "--no-report", *extra])


def _scores(run_dir) -> dict:
    runs = pd.read_csv(run_dir / "runs.csv")
    return {(r.method, r.metric): r.value for r in runs.itertuples()}


def test_the_true_factors_score_near_one_and_noise_near_zero(tmp_path, profile, capsys):
    assert _score(tmp_path, profile, f"{ENCODERS}:truth", "--name", "truth") == 0
    assert _score(tmp_path, profile, f"{ENCODERS}:noise", "--name", "noise") == 0
    values = _scores(tmp_path / "scored")
    assert values[("external:truth", "mig")] > 0.95 and values[("external:truth", "dci")] > 0.95
    assert values[("external:noise", "mig")] < 0.1 and values[("external:noise", "dci")] < 0.3
    runs = pd.read_csv(tmp_path / "scored" / "runs.csv")
    row = runs[runs["method"] == "external:truth"].iloc[0]
    digest = hashlib.sha256(open(ENCODERS, "rb").read()).hexdigest()
    assert json.loads(row["hparams"]) == {"encoder": f"{ENCODERS}:truth", "sha256": digest}
    assert row["data_source"] == "procedural" and row["seed"] == 0 and row["steps"] == 0
    for col in ("git_commit", "torch_version", "numpy_version", "sklearn_version", "python_version", "config"):
        assert runs[col].notna().all(), col
    config = json.loads(row["config"])
    assert config["encoder"]["kind"] == "file" and config["code_dim"] == 3 and config["metrics"] == SIZES
    assert "external:truth" in (tmp_path / "scored" / "leaderboard.md").read_text()
    info = json.loads((tmp_path / "scored" / "run.json").read_text())
    assert info["primary_metric"] == "mig" and len(info["scored"]) == 2


def test_a_module_function_and_numpy_codes_are_accepted(tmp_path, profile):
    # tests/ is importable from the repository root (pytest's rootdir), like a user's own package
    assert _score(tmp_path, profile, "tests.plugins.score_encoders:numpy_truth") == 0
    values = _scores(tmp_path / "scored")
    assert values[("external:score_encoders.numpy_truth", "mig")] > 0.95
    hparams = json.loads(pd.read_csv(tmp_path / "scored" / "runs.csv")["hparams"].iloc[0])
    assert hparams == {"encoder": "tests.plugins.score_encoders:numpy_truth"}  # no sha256: not a file


class _ReadBack(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0, 0, :3] * torch.tensor([3.0, 4.0, 5.0])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit's own, since torch 2.9
def test_a_torchscript_file_is_scored(tmp_path, profile):
    path = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(_ReadBack()), str(path))
    assert _score(tmp_path, profile, str(path)) == 0
    values = _scores(tmp_path / "scored")
    assert values[("external:model", "mig")] > 0.95 and values[("external:model", "dci")] > 0.95
    hparams = json.loads(pd.read_csv(tmp_path / "scored" / "runs.csv")["hparams"].iloc[0])
    assert hparams == {"encoder": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


BAD = [
    ("no_such_module_xyz:encode", "no module named 'no_such_module_xyz'"),
    ("math:no_such_function", "module math has no function 'no_such_function'"),
    ("math:pi", "math.pi is not callable (type float)"),
    ("{tmp}/missing.py:encode", "no such file"),
    ("{tmp}/missing.pt", "no such file"),
    ("{tmp}/not_torchscript.pt", "not a TorchScript file"),
    ("{encoders}", "name the function too"),
    ("{encoders}:raises", "raised ValueError: this encoder is broken on a batch of 8 images"),
    ("{encoders}:three_d", "returned codes of shape (8, 2, 3)"),
    ("{encoders}:wrong_batch", "returned 1 codes for a batch of 8 images"),
    ("{encoders}:non_finite", "returned non-finite codes (NaN or inf) for 1 of the 8 images"),
    ("{encoders}:NOT_CALLABLE", "NOT_CALLABLE is not callable (type int)"),
]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("spec, says", BAD, ids=[b[0].rsplit("/", 1)[-1] for b in BAD])
def test_a_bad_encoder_is_one_line_and_writes_nothing(tmp_path, profile, capsys, spec, says):
    torch.save({"not": "scripted"}, tmp_path / "not_torchscript.pt")
    spec = spec.format(tmp=tmp_path, encoders=ENCODERS)
    capsys.readouterr()
    assert _score(tmp_path, profile, spec) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.strip().count("\n") == 0, err
    assert says in err and spec in err, err
    assert not (tmp_path / "scored").exists()  # no runs.csv, no cells, not even the folder


def test_bad_flags_are_one_line(tmp_path, profile, capsys):
    for extra, says in (
        (["--metrics", "nope"], "unknown metric 'nope'"),
        (["--metrics", "udr"], "metric udr compares several trained models"),
        (["--name", "a b"], "--name 'a b'"),
        (["--seed", "x"], "--seed"),
    ):
        capsys.readouterr()
        assert _score(tmp_path, profile, f"{ENCODERS}:truth", *extra) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.strip().count("\n") == 0 and says in err, err
    assert (
        main(["score", "--encoder", f"{ENCODERS}:truth", "--datasets", "nope", "--results", str(tmp_path / "x")]) == 2
    )
    assert "unknown dataset 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "scored").exists() and not (tmp_path / "x").exists()


def test_the_same_encoder_again_is_skipped_unless_replace(tmp_path, profile, capsys):
    assert _score(tmp_path, profile, f"{ENCODERS}:truth") == 0
    cells = list((tmp_path / "scored" / "cells").glob("*/scores.json"))
    assert len(cells) == 1
    before = cells[0].stat().st_mtime_ns, (tmp_path / "scored" / "runs.csv").read_text()
    capsys.readouterr()
    assert _score(tmp_path, profile, f"{ENCODERS}:truth") == 0
    out = capsys.readouterr().out
    assert "already scored" in out and "nothing scored" in out
    assert (cells[0].stat().st_mtime_ns, (tmp_path / "scored" / "runs.csv").read_text()) == before
    assert _score(tmp_path, profile, f"{ENCODERS}:truth", "--replace") == 0
    assert cells[0].stat().st_mtime_ns != before[0]
    runs = pd.read_csv(tmp_path / "scored" / "runs.csv")
    assert runs["cell_id"].nunique() == 1 and not runs.duplicated(["cell_id", "metric"]).any()


def test_report_merges_a_scored_encoder_with_a_trained_run(tmp_path, tiny_profile, capsys):
    trained, scored = tmp_path / "trained", tmp_path / "scored"
    assert main(tiny_cpu_args(tiny_profile, trained, "--methods", "vae", "--datasets", "dsprites")) == 0
    # the trained run's profile (its metrics and sizes), on the same data: comparable numbers
    code = main(
        ["score", "--encoder", "tests.plugins.score_encoders:noise", "--name", "noise", "--datasets", "dsprites"]
        + ["--profile", str(tiny_profile), "--source", "procedural", "--results", str(scored), "--device", "cpu"]
    )
    assert code == 0, capsys.readouterr().err
    assert (scored / "report" / "report.html").is_file()  # score writes its own report too
    out = tmp_path / "merged"
    assert main(["report", str(trained), str(scored), "--out", str(out), "--no-models"]) == 0
    board = (out / "leaderboard.md").read_text()
    assert "external:noise" in board and "| vae |" in board
    assert "external:noise" in (out / "report.html").read_text()
    trained_rows = pd.read_csv(trained / "runs.csv")
    scored_rows = pd.read_csv(scored / "runs.csv")
    assert set(trained_rows["metric"]) == set(scored_rows["metric"])
    assert set(scored_rows["data_source"]) == set(trained_rows["data_source"]) == {"procedural"}
