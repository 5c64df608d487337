"""The literature's comparisons as profiles: datasets, grids, lengths, official data, and the
reports' warning when cells are shorter than the reference length."""

import json

import pandas as pd
import pytest

from disentbench import methods
from disentbench.bench.cli import build_parser, main, plan
from disentbench.bench.config import load_profile
from disentbench.bench.report.leaderboard import console_summary, make_boards, render_markdown
from disentbench.bench.report.length import short_settings, short_training_note


def test_paper_profile_is_the_did_comparison_at_the_reference_protocol():
    p = load_profile("paper")
    assert p["datasets"] == ["dsprites", "shapes3d"]
    assert p["methods"] == ["vae", "betavae", "factorvae", "betatcvae", "did"]
    assert p["grid"] == "reference" and p["seeds"] == 5 and p["steps"] == 300_000
    assert p["procedural_ok"] is False and p["precision"] == "auto"
    assert p["method_steps"] == {"factorvae": methods.get("factorvae").reference_steps} == {"factorvae": 150_000}


def test_locatello2019_profile_six_methods_six_settings_fifty_seeds():
    p = load_profile("locatello2019")
    assert p["methods"] == ["betavae", "annealedvae", "factorvae", "dipvae1", "dipvae2", "betatcvae"]
    assert p["seeds"] == 50 and p["grid"] == "reference" and p["procedural_ok"] is False
    assert p["precision"] == "auto"  # inherited from paper
    for name in p["methods"]:
        grid = methods.get(name).reference_grid
        assert len(grid) == 1 and len(next(iter(grid.values()))) == 6, name


def test_paper_plan_expands_both_datasets_every_setting_and_factorvae_length(tmp_path):
    args = build_parser().parse_args(
        ["--profile", "paper", "--source", "procedural", "--results", str(tmp_path / "r"), "--device", "cpu"]
    )
    cells = plan(args).cells
    assert {c.dataset for c in cells} == {"dsprites", "shapes3d"}
    per = {(c.dataset, c.method): set() for c in cells}
    for c in cells:
        per[(c.dataset, c.method)].add(c.hparams_json)
    for (dataset, method), settings in per.items():
        expected = max(1, len(next(iter(methods.get(method).reference_grid.values()), [])))
        expected += method == "did"  # the claim's ablation (lambda_h = 0) is planned next to the grid
        assert len(settings) == expected, (dataset, method)
        if method == "did":
            assert 0.0 in {json.loads(h)["lambda_h"] for h in settings}
    assert {c.steps for c in cells if c.method == "factorvae"} == {150_000}
    assert {c.steps for c in cells if c.method != "factorvae"} == {300_000}
    assert len({c.seed for c in cells}) == 5
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_grid_flag_overrides_the_profile(tmp_path):
    base = [
        "--profile",
        "paper",
        "--source",
        "procedural",
        "--methods",
        "betavae",
        "--datasets",
        "dsprites",
        "--results",
        str(tmp_path / "r"),
        "--device",
        "cpu",
    ]
    assert len(plan(build_parser().parse_args(base)).cells) == 6 * 5
    assert len(plan(build_parser().parse_args(base + ["--grid", "none"])).cells) == 5


def test_auto_source_without_the_official_file_stops_a_procedural_ok_false_profile(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DISENTBENCH_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.cache/disentbench either
    code = main(
        [
            "--profile",
            "paper",
            "--methods",
            "vae",
            "--datasets",
            "dsprites",
            "--results",
            str(tmp_path / "r"),
            "--data-dir",
            str(tmp_path / "empty"),
            "--device",
            "cpu",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "python -m disentbench.datasets download dsprites" in err and "--source procedural" in err
    assert not (tmp_path / "r" / "cells").exists()


def test_bad_profile_keys_are_one_line_errors(tmp_path, capsys):
    for text, expected in [
        ("extends: smoke\ngrid: all\n", "grid must be reference or none"),
        ("extends: smoke\nprocedural_ok: maybe\n", "procedural_ok must be true or false"),
        ("extends: smoke\nclaim: did\n", "claim must be a mapping"),
        ("extends: smoke\nclaim: {challenger: did}\n", "claim has unknown key 'challenger'"),
        ("extends: smoke\nclaim: {method: didd}\n", "claim.method 'didd' is not registered; registered methods: "),
        ("extends: smoke\nclaim: {ablation: {lambda: 0}}\n", "claim.ablation: did has no hyperparameter 'lambda'"),
        ("extends: smoke\nclaim: {ablation: {lambda_h: -1}}\n", "did.lambda_h=-1"),
        ("extends: smoke\nclaim: {metrics: [mig, migg]}\n", "claim.metrics: unknown metric 'migg'; registered"),
        ("extends: smoke\nclaim: {metrics: []}\n", "claim.metrics must be a non-empty list"),
    ]:
        path = tmp_path / "p.yaml"
        path.write_text(text)
        code = main(["--profile", str(path), "--results", str(tmp_path / "r"), "--device", "cpu"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and expected in err and len(err.splitlines()) == 1


def _runs(steps_by_method: dict) -> pd.DataFrame:
    rows = []
    for method, steps in steps_by_method.items():
        for seed in range(2):
            rows.append(
                {
                    "dataset": "dsprites",
                    "data_source": "procedural",
                    "method": method,
                    "hparams": "{}",
                    "steps": steps,
                    "seed": seed,
                    "metric": "mig",
                    "value": 0.1 + 0.01 * seed,
                    "cell_id": f"{method}-{seed}",
                }
            )
    return pd.DataFrame(rows)


def test_short_cells_are_flagged_in_tables_and_console():
    runs = _runs({"did": 120, "factorvae": 150_000, "betavae": 300_000})
    assert short_settings(runs) == ["did 120 of 300,000 steps"]
    note = short_training_note(runs)
    assert "did 120 of 300,000 steps" in note and "not evidence" in note
    assert any("did 120 of 300,000 steps" in n for n in make_boards(runs, "mig")[0].notes)
    assert "did 120 of 300,000 steps" in render_markdown(make_boards(runs, "mig"), "mig")
    console = console_summary(runs, "mig")
    assert console.splitlines()[-1].startswith("Note: trained for less than the reference length")


def test_full_length_cells_carry_no_warning():
    runs = _runs({"factorvae": 150_000, "betavae": 300_000})
    assert short_training_note(runs) is None
    assert "reference length" not in console_summary(runs, "mig")
    assert not any("reference length" in n for n in make_boards(runs, "mig")[0].notes)


def test_unregistered_methods_are_not_flagged():
    assert short_settings(_runs({"someone_elses_method": 10})) == []


@pytest.mark.parametrize("fast, expected", [(True, "bf16"), (False, "fp32")])
def test_the_paper_plan_trains_in_bf16_only_on_a_fast_bf16_device(tmp_path, monkeypatch, fast, expected):
    from disentbench.bench.perf import host

    monkeypatch.setattr(host, "fast_bf16", lambda device="cpu": fast)
    argv = ["--profile", "paper", "--source", "procedural", "--methods", "betavae", "--datasets", "dsprites"]
    args = build_parser().parse_args(argv + ["--results", str(tmp_path / "r"), "--device", "cpu"])
    assert {c.precision for c in plan(args).cells} == {expected}
    args = build_parser().parse_args(
        argv + ["--results", str(tmp_path / "r"), "--device", "cpu", "--precision", "fp32"]
    )
    assert {c.precision for c in plan(args).cells} == {"fp32"}


def test_a_board_pooling_fp32_and_bf16_seeds_says_so():
    """`precision: auto` trains fp32 on one host and bf16 on another; a merged report pools their
    seeds in one row, and the board must say so (and say nothing when every cell shares one)."""
    runs = _runs({"betavae": 300_000})
    runs["config"] = [json.dumps({"precision": p}) for p in ("fp32", "fp32")]
    assert not any("precisions" in n for n in make_boards(runs, "mig")[0].notes)
    runs["config"] = [json.dumps({"precision": "fp32"}), json.dumps({"precision": "bf16"})]
    notes = [n for n in make_boards(runs, "mig")[0].notes if "precisions are pooled" in n]
    assert len(notes) == 1 and "bf16: 1 cell(s), fp32: 1 cell(s)" in notes[0]
    assert "precisions are pooled" in render_markdown(make_boards(runs, "mig"), "mig")
    assert console_summary(runs, "mig").splitlines()[-1].startswith("Note: seeds trained in different precisions")
    runs["config"] = [json.dumps({}), json.dumps({"precision": "bf16"})]  # no key: an fp32 cell
    assert any("bf16: 1 cell(s), fp32: 1 cell(s)" in n for n in make_boards(runs, "mig")[0].notes)
