"""`rescore`: metrics added to trained cells from their checkpoints equal what a run that listed
them would have written; missing or corrupt checkpoints are listed, never fatal."""

from __future__ import annotations

import json

import pandas as pd
import yaml

from disentbench.bench import rescore
from disentbench.bench.cli import main
from tests.helpers import tiny_cpu_args

SIZES = {"mig": {"num_train": 200}, "sap": {"num_train": 200, "num_test": 100}}


def _profile(path, metrics: dict) -> str:
    path.write_text(
        yaml.safe_dump(
            {
                "extends": "smoke",
                "steps": 4,
                "checkpoint_every": 0,
                "metrics": metrics,
                "claim": {"metrics": ["mig"]},
                "primary_metric": "mig",
            }
        )
    )
    return str(path)


def _values(run) -> dict:
    runs = pd.read_csv(run / "runs.csv")
    return {(r.method, r.metric): r.value for r in runs.itertuples()}


def test_rescore_adds_the_missing_metric_as_a_run_would_have(tmp_path, capsys, monkeypatch):
    only_mig = _profile(tmp_path / "mig.yaml", {"mig": SIZES["mig"]})
    both = _profile(tmp_path / "both.yaml", SIZES)
    cmd = ["--methods", "vae,betavae", "--datasets", "dsprites"]
    assert main(tiny_cpu_args(only_mig, tmp_path / "a", *cmd)) == 0
    assert main(tiny_cpu_args(both, tmp_path / "b", *cmd)) == 0
    before = _values(tmp_path / "a")
    assert ("vae", "sap") not in before
    # the run's profile has no sizes for sap: give them as the reference run had them
    info = json.loads((tmp_path / "a" / "run.json").read_text())
    info["config"]["metrics"]["sap"] = SIZES["sap"]
    (tmp_path / "a" / "run.json").write_text(json.dumps(info))
    capsys.readouterr()
    # "the metrics they lack": of the registered ones (here two, to keep the test short) mig is there
    monkeypatch.setattr(rescore, "default_metrics", lambda: ["mig", "sap"])
    assert main(["rescore", str(tmp_path / "a"), "--no-report"]) == 0
    assert "rescored 2 cell(s)" in capsys.readouterr().out
    after, reference = _values(tmp_path / "a"), _values(tmp_path / "b")
    assert after == reference  # mig unchanged, sap equal to the run that listed it
    board = (tmp_path / "a" / "leaderboard.md").read_text()
    assert "sap" in board
    cell = next((tmp_path / "a" / "cells").glob("*-vae-*/scores.json"))
    assert json.loads(cell.read_text())["rescored"][0]["metrics"] == ["sap"]


def test_missing_and_corrupt_checkpoints_are_listed_not_fatal(tmp_path, capsys):
    prof = _profile(tmp_path / "mig.yaml", {"mig": SIZES["mig"]})
    assert (
        main(tiny_cpu_args(prof, tmp_path / "r", "--methods", "vae,betavae,betatcvae", "--datasets", "dsprites")) == 0
    )
    cells = {p.name.split("-")[1]: p for p in (tmp_path / "r" / "cells").iterdir()}
    (cells["vae"] / "checkpoint.pt").unlink()
    (cells["betavae"] / "checkpoint.pt").write_bytes(b"not a checkpoint")
    capsys.readouterr()
    code = main(["rescore", str(tmp_path / "r"), "--metrics", "mig", "--no-report", "--jobs", "2"])
    out = capsys.readouterr().out
    assert code == 1 and "rescored 1 cell(s)" in out
    assert f"not rescored: {cells['vae'].name}: no checkpoint.pt" in out
    assert f"not rescored: {cells['betavae'].name}: checkpoint.pt is unreadable" in out
    runs = pd.read_csv(tmp_path / "r" / "runs.csv")
    assert set(runs["method"]) == {"vae", "betavae", "betatcvae"}  # nothing already computed is lost


def test_bad_input_is_one_line(tmp_path, capsys):
    assert main(["rescore", str(tmp_path)]) == 2
    assert "no runs.csv" in capsys.readouterr().err
    (tmp_path / "runs.csv").write_text("cell_id,dataset,method,hparams,seed,metric,value\n")
    assert main(["rescore", str(tmp_path), "--metrics", "migg"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown metric 'migg'; registered metrics:" in err and len(err.splitlines()) == 1


def _scores(run) -> dict:
    runs = pd.read_csv(run / "runs.csv")
    return {(r.cell_id, r.metric): r.value for r in runs.itertuples()}


def test_representation_derives_the_cells_a_sampled_run_would_make(tmp_path, capsys):
    """`rescore --representation sampled` scores the trained models on sampled codes, under the ids and
    with the numbers of a run trained with --representation sampled, and without training again."""
    # modularity writes secondary keys (modularity_explicitness...): a derived cell is scored with the
    # run's metrics, not with its result keys
    profile = _profile(tmp_path / "p.yaml", {"mig": SIZES["mig"], "modularity": {"num_train": 200, "num_test": 100}})
    cmd = ["--methods", "vae,betavae,infogan", "--datasets", "dsprites"]
    assert main(tiny_cpu_args(profile, tmp_path / "mean", *cmd)) == 0
    assert (
        main(
            tiny_cpu_args(
                profile, tmp_path / "sampled", *cmd, "--representation", "sampled", "--methods", "vae,betavae"
            )
        )
        == 0
    )
    trained = _scores(tmp_path / "mean")
    capsys.readouterr()
    assert main(["rescore", str(tmp_path / "mean"), "--representation", "sampled", "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "rescored 2 cell(s)" in out and "not derived:" in out and "infogan has no posterior to sample" in out
    after, reference = _scores(tmp_path / "mean"), _scores(tmp_path / "sampled")
    assert {k: v for k, v in after.items() if k in trained} == trained  # the trained cells are untouched
    derived = {k: v for k, v in after.items() if k not in trained}
    assert derived == reference  # same ids, same numbers as the run that trained them sampled
    assert len({cid for cid, _ in derived}) == 2
    for cid, _ in derived:
        record = json.loads((tmp_path / "mean" / "cells" / cid / "scores.json").read_text())
        assert record["config"]["representation"] == "sampled" and record["derived_from"]["representation"] == "mean"
        assert record["derived_from"]["cell_id"] in {c for c, _ in trained}
    # the leaderboard keeps the two representations apart (a board each), never pooled as two seeds
    board = pd.read_csv(tmp_path / "mean" / "leaderboard.csv")
    assert set(board["representation"]) == {"mean", "sampled"} and set(board["n"]) == {1}
    assert "scored on sampled codes" in (tmp_path / "mean" / "leaderboard.md").read_text()
    # again: nothing left to derive or score
    assert main(["rescore", str(tmp_path / "mean"), "--representation", "sampled", "--no-report"]) == 0
    assert "rescored 0 cell(s)" in capsys.readouterr().out
    # a derivation killed before its scores.json is redone, to the same numbers
    victim = next(iter({cid for cid, _ in derived}))
    (tmp_path / "mean" / "cells" / victim / "scores.json").unlink()
    assert main(["rescore", str(tmp_path / "mean"), "--representation", "sampled", "--no-report"]) == 0
    assert _scores(tmp_path / "mean") == after
    # a run trained with --representation sampled into the same folder finds the derived cells complete
    stamp = {cid: (tmp_path / "mean" / "cells" / cid / "scores.json").stat().st_mtime_ns for cid, _ in derived}
    args = tiny_cpu_args(profile, tmp_path / "mean", *cmd, "--representation", "sampled", "--methods", "vae,betavae")
    assert main(args) == 0
    assert stamp == {cid: (tmp_path / "mean" / "cells" / cid / "scores.json").stat().st_mtime_ns for cid, _ in derived}
