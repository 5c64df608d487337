"""Learning curves (`score_steps`): a curve point is the model at that step, scored as `rescore`
scores a checkpoint; the final step closes the curve; no step is scored twice on resume; bad step
lists are one-line errors before any training."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from disentbench.bench import curve, rescore
from disentbench.bench.checkpoint import kept_path, kept_steps
from disentbench.bench.cli import main
from disentbench.bench.config import load_profile
from disentbench.bench.errors import BenchError
from tests.helpers import tiny_cpu_args

SIZES = {"mig": {"num_train": 200}, "sap": {"num_train": 120, "num_test": 60}}


def _profile(tmp_path, name="p", **keys) -> str:
    body = {
        "extends": "smoke",
        "steps": 9,
        "batch_size": 16,
        "log_every": 3,
        "checkpoint_every": 0,
        "metrics": SIZES,
        "claim": {"metrics": ["mig"]},
        "primary_metric": "mig",
        **keys,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body))
    return str(path)


def _cell(run):
    return next((run / "cells").glob("*-vae-*"))


def _run(profile, results, *extra) -> int:
    return main(tiny_cpu_args(profile, results, "--methods", "vae", "--datasets", "dsprites", *extra))


def _points(cell_dir) -> dict:
    frame = curve.read_curve(cell_dir)
    return {(int(r.step), r.metric): float(r.value) for r in frame.itertuples()}


def test_curve_points_are_the_model_at_that_step_and_equal_rescore_of_the_kept_checkpoint(tmp_path):
    assert _run(_profile(tmp_path, score_steps=[3, 6]), tmp_path / "run") == 0
    cell = _cell(tmp_path / "run")
    assert kept_steps(cell) == [3, 6]  # the final step is checkpoint.pt itself
    points = _points(cell)
    assert sorted({s for s, _ in points}) == [3, 6, 9]
    final = json.loads((cell / "scores.json").read_text())["scores"]
    assert {m: points[(9, m)] for m in final} == final  # the last point is the run's own score
    # an independent model: a run of exactly 6 steps (same seed) scores what the curve says at step 6
    assert _run(_profile(tmp_path, "six", steps=6), tmp_path / "six") == 0
    six = json.loads((_cell(tmp_path / "six") / "scores.json").read_text())["scores"]
    assert {m: points[(6, m)] for m in six} == six
    assert points[(3, "mig")] != points[(9, "mig")]  # the points differ, so the equality above means something
    # rescore's checkpoint scoring of the kept file gives the curve's number
    config = json.loads((cell / "config.json").read_text())
    again = rescore.score_checkpoint(kept_path(cell, 3), config, SIZES, "cpu", None, 3)
    assert again["scores"] == {m: v for (s, m), v in points.items() if s == 3}
    # the run's curves.csv: every point with the cell's provenance
    table = pd.read_csv(tmp_path / "run" / curve.CURVES)
    assert len(table) == len(points)
    assert set(table["step"]) == {3, 6, 9} and set(table["cell_id"]) == {cell.name}
    assert {"git_commit", "torch_version", "data_source", "config"} <= set(table.columns)


def test_a_resumed_cell_scores_its_missing_point_once_and_no_step_twice(tmp_path, monkeypatch):
    profile = _profile(tmp_path, score_steps=[3, 6])
    real_append = curve.append_point

    def crash_at_six(cell_dir, step, scores, seconds):
        if step == 6:
            raise RuntimeError("killed between the kept checkpoint and its scores")
        real_append(cell_dir, step, scores, seconds)

    monkeypatch.setattr(curve, "append_point", crash_at_six)
    assert _run(profile, tmp_path / "run") == 1  # the cell failed after keeping step 6
    cell = _cell(tmp_path / "run")
    assert kept_steps(cell) == [3, 6] and curve.scored_steps(cell) == {3}
    monkeypatch.setattr(curve, "append_point", real_append)
    scored: list[int] = []
    real_score = rescore.score_checkpoint

    def spy(path, config, sizes, device, data_dir, step, dataset=None):
        scored.append(step)
        return real_score(path, config, sizes, device, data_dir, step, dataset=dataset)

    monkeypatch.setattr(rescore, "score_checkpoint", spy)
    assert _run(profile, tmp_path / "run") == 0
    assert scored == [6]  # step 3 was not scored again
    assert _run(profile, tmp_path / "clean") == 0
    assert _points(cell) == _points(_cell(tmp_path / "clean"))  # as if never interrupted


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--score-steps", "3,12"], "beyond the 9 training steps"),
        (["--score-steps", "6,3"], "must increase"),
        (["--score-steps", "3,x"], "--score-steps"),
    ],
)
def test_bad_score_steps_are_one_line_errors_before_training(tmp_path, capsys, extra, message):
    assert _run(_profile(tmp_path), tmp_path / "run", *extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "run" / "cells").exists()


def test_profile_score_steps_are_validated(tmp_path):
    with pytest.raises(BenchError, match="must increase"):
        load_profile(_profile(tmp_path, score_steps=[10, 10]))
    with pytest.raises(BenchError, match="not a positive integer"):
        load_profile(_profile(tmp_path, "m", method_score_steps={"vae": [0, 5]}))
    profile = load_profile(_profile(tmp_path, "ok", score_steps=[2, 4], method_score_steps={"vae": [5]}))
    assert curve.cell_score_steps(profile, "vae") == [5] and curve.cell_score_steps(profile, "betavae") == [2, 4]


def test_the_report_draws_published_lines_only_on_curves_of_their_variant_and_codes(tmp_path):
    """InfoGAN-CR's Table 1 has FactorVAE gamma=10 on dSprites (MIG .40, SAP .57), computed by their
    metric code (`mig_infogancr`, `sap_infogancr`) on sampled codes: drawn on our curves of those keys
    scored on sampled codes, never on the reference `mig` / `sap` of mean codes (SAP .57 is another
    quantity from the reference SAP), and the report says which lines it left out and why."""
    from disentbench.bench.report import plots
    from disentbench.bench.report.leaderboard import make_boards
    from disentbench.bench.report.runs import load_runs

    sizes = {**SIZES, "mig_infogancr": {"num_train": 200}}
    profile = _profile(tmp_path, score_steps=[3, 6], steps=9, metrics=sizes)
    args = ["--methods", "factorvae", "--set", "factorvae.gamma=10"]
    assert main(tiny_cpu_args(profile, tmp_path / "mean", *args)) == 0
    assert main(tiny_cpu_args(profile, tmp_path / "sampled", *args, "--representation", "sampled")) == 0
    for codes in ("mean", "sampled"):
        runs = load_runs([tmp_path / codes])
        (board,) = make_boards(runs, "mig")
        assert board.representation == codes
        hparams = runs["hparams"].iloc[0]
        points = plots._read_curves(runs)
        assert plots._curve_metrics(board, points) == ["mig", "sap", "mig_infogancr"]
        assert plots._published_lines(board, "mig", "factorvae", hparams) == []
        assert plots._published_lines(board, "sap", "factorvae", hparams) == []
        lines = plots._published_lines(board, "mig_infogancr", "factorvae", hparams)
        assert [v for v, _ in lines] == ([0.40] if codes == "sampled" else [])
        figures, notes = plots.learning_curves(runs, [board], tmp_path / f"fig-{codes}", {"factorvae": "#123456"})
        assert [f.kind for f in figures] == ["learning"] and figures[0].path.is_file()
        left_out = [n for n in notes if "is not drawn" in n]
        assert any("sap 0.57" in n and "`sap_infogancr`" in n for n in left_out)
        assert any("mig 0.40" in n for n in left_out) == (codes == "mean")


def test_rescore_curve_adds_a_metric_to_every_point_as_a_run_listing_it_would_have(tmp_path):
    only_mig = _profile(tmp_path, "mig", score_steps=[3, 6], metrics={"mig": SIZES["mig"]})
    both = _profile(tmp_path, "both", score_steps=[3, 6])
    assert _run(only_mig, tmp_path / "a") == 0 and _run(both, tmp_path / "b") == 0
    info = json.loads((tmp_path / "a" / "run.json").read_text())
    info["config"]["metrics"]["sap"] = SIZES["sap"]  # the sizes the other run used
    (tmp_path / "a" / "run.json").write_text(json.dumps(info))
    assert main(["rescore", str(tmp_path / "a"), "--metrics", "sap", "--curve", "--no-report"]) == 0
    assert _points(_cell(tmp_path / "a")) == _points(_cell(tmp_path / "b"))
    table = pd.read_csv(tmp_path / "a" / curve.CURVES)
    assert set(table[table["metric"] == "sap"]["step"]) == {3, 6, 9}


def test_the_reference_length_profile_is_valid_and_its_curves_reachable():
    from tests.conftest import REPO

    profile = load_profile(str(REPO / "bench" / "evidence" / "reference_dsprites.yaml"))
    for method in profile["methods"]:
        steps = profile["method_steps"].get(method, profile["steps"])
        curve.check_score_steps(curve.cell_score_steps(profile, method), method, steps)
    assert profile["method_steps"] == {"factorvae": 150_000} and profile["steps"] == 300_000
