"""A model scored in the variant of the published number it stands beside: the cell's published rows
are found by method, dataset and setting, each is scored on its own codes at every kept step, equal
to what `rescore --representation sampled --curve` gives the same checkpoints, and a rerun resumes."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from disentbench.bench.cli import main
from disentbench.bench.evidence import published_variant
from disentbench.bench.report.published import load_published
from tests.helpers import tiny_cpu_args

SIZES = {"mig": {"num_train": 200}, "mig_infogancr": {"num_train": 300}}


@pytest.fixture
def factorvae_run(tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text(
        yaml.safe_dump({"extends": "smoke", "steps": 4, "score_steps": [2], "metrics": SIZES, "primary_metric": "mig"})
    )
    args = tiny_cpu_args(profile, tmp_path / "run", "--methods", "factorvae", "--datasets", "dsprites")
    assert main([*args, "--set", "factorvae.gamma=10"]) == 0
    (cell,) = (tmp_path / "run" / "cells").iterdir()
    return tmp_path / "run", cell


def test_scores_each_kept_step_on_the_published_codes_and_resumes(factorvae_run, tmp_path, capsys):
    run, cell = factorvae_run
    out = tmp_path / "variant.csv"
    assert published_variant.main([str(cell), "--metrics", "mig_infogancr", "--out", str(out)]) == 0
    rows = pd.read_csv(out)
    # InfoGAN-CR's FactorVAE gamma=10 MIG: on sampled codes, at the kept step 2 and the final step 4
    assert sorted(rows["step"]) == [2, 4] and set(rows["codes"]) == {"sampled"}
    published = load_published()
    wanted = published[
        (published.method == "factorvae") & (published.setting == "gamma=10") & (published.metric == "mig")
    ]
    assert set(rows["published"]) == {float(wanted["value"].iloc[0])} == {0.40}
    # the same numbers through the other road: a derived sampled cell, its curve rescored
    args = ["rescore", str(run), "--representation", "sampled", "--metrics", "mig_infogancr", "--curve", "--no-report"]
    assert main(args) == 0
    derived = next(p for p in (run / "cells").iterdir() if p != cell)
    curve = pd.read_csv(derived / "curve.csv")
    curve = curve[curve.metric == "mig_infogancr"].set_index("step")["value"]
    assert {int(r.step): r.value for r in rows.itertuples()} == {2: curve[2], 4: curve[4]}
    # a rerun has nothing left to score
    before = out.read_bytes()
    capsys.readouterr()
    assert published_variant.main([str(cell), "--metrics", "mig_infogancr", "--out", str(out)]) == 0
    assert out.read_bytes() == before and "step" not in capsys.readouterr().out


def test_bad_input_is_one_line(factorvae_run, tmp_path, capsys):
    run, cell = factorvae_run
    assert published_variant.main([str(run), "--out", str(tmp_path / "x.csv")]) == 2
    assert "no config.json; give a cell folder" in capsys.readouterr().err
    assert published_variant.main([str(cell), "--steps", "3", "--out", str(tmp_path / "x.csv")]) == 2
    assert "no checkpoint kept at step(s) [3]; kept: 2, 4" in capsys.readouterr().err
