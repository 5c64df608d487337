"""`--dry-run`: the plan and a projected wall time, exit 0, and nothing written to the results folder."""

import os

from disentbench.bench.cli import main


def _snapshot(folder):
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*")}


def test_dry_run_prints_the_plan_and_changes_nothing(tmp_path, tiny_profile, capsys):
    run_dir = tmp_path / "run"
    base = [
        "--methods",
        "vae,betavae",
        "--datasets",
        "dsprites",
        "--seeds",
        "2",
        "--profile",
        str(tiny_profile),
        "--results",
        str(run_dir),
        "--device",
        "cpu",
        "--source",
        "procedural",
        "--threads",
        "1",
    ]
    assert main(["--dry-run", *base]) == 0
    out = capsys.readouterr().out
    assert not run_dir.exists()  # not even the folder
    assert "| dsprites | procedural | vae | 1 | 2 | 6 | 2 | 0 |" in out
    assert "| dsprites | procedural | betavae | 1 | 2 | 6 | 2 | 0 |" in out
    assert "4 cell(s), 0 already complete, 4 to run." in out and "Projected wall time:" in out

    assert main([*base, "--no-report", "--seeds", "1"]) == 0  # two cells complete now
    capsys.readouterr()
    before = _snapshot(run_dir)
    assert main(["--dry-run", *base]) == 0
    out = capsys.readouterr().out
    assert "| dsprites | procedural | vae | 1 | 2 | 6 | 2 | 1 |" in out
    assert "4 cell(s), 2 already complete, 2 to run." in out
    assert _snapshot(run_dir) == before  # no lock, no cell folder, no table rewritten
    assert not any(p.name.endswith(".lock") for p in run_dir.rglob("*"))


def test_paper_dry_run_shows_both_datasets_every_setting_and_factorvae_steps(tmp_path, capsys):
    # the paper profile with one cheap metric, so the evaluation probe takes seconds, not minutes
    profile = tmp_path / "paper_cheap.yaml"
    profile.write_text("extends: paper\nmetrics:\n  mig: {num_train: 500}\n")
    args = ["--dry-run", "--profile", str(profile), "--source", "procedural", "--methods", "factorvae"]
    code = main([*args, "--results", str(tmp_path / "r"), "--device", "cpu", "--threads", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "| dsprites | procedural | factorvae | 6 | 5 | 150,000 | 30 | 0 |" in out
    assert "| shapes3d | procedural | factorvae | 6 | 5 | 150,000 | 30 | 0 |" in out
    assert not os.path.exists(tmp_path / "r")
