"""UDR at the run level: computed over the finished seeds of each setting, written into runs.csv
as `udr`, equal to the metric's function on the same models and images; one seed gives a note."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from disentbench import datasets
from disentbench.bench.checkpoint import load_method
from disentbench.bench.cli import main
from disentbench.metrics.udr import gather_model_codes, udr_scores
from tests.helpers import tiny_cpu_args


def test_udr_over_the_seeds_of_a_setting(tmp_path, capsys):
    profile = tmp_path / "udr.yaml"
    profile.write_text(
        yaml.safe_dump(
            {
                "extends": "smoke",
                "steps": 4,
                "checkpoint_every": 0,
                "metrics": {"mig": {"num_train": 200}, "udr": {"correlation": "spearman"}},
                "primary_metric": "mig",
            }
        )
    )
    run = tmp_path / "r"
    args = tiny_cpu_args(profile, run, "--methods", "vae,betavae", "--datasets", "dsprites")
    args[args.index("--seeds") + 1] = "2"
    args += ["--set", "betavae.beta=1,2"]  # two settings of betavae, each its own UDR group of 2 seeds
    assert main(args) == 0
    runs = pd.read_csv(run / "runs.csv")
    udr = runs[runs["metric"] == "udr"].sort_values("seed")
    assert set(udr["method"]) == {"vae", "betavae"} and len(udr) == 6  # vae x 2 seeds, betavae 2 settings x 2
    vae = udr[udr["method"] == "vae"]
    models = [load_method(run / "cells" / cid / "checkpoint.pt")[0].eval() for cid in vae["cell_id"]]
    ds = datasets.create("dsprites", source="procedural")
    codes, kls = gather_model_codes(ds, [m.encode for m in models], 1000, 0, [m.encoder for m in models])
    expected = udr_scores(codes, kls, correlation="spearman")["udr"]
    np.testing.assert_allclose(vae["value"].to_numpy(), expected, rtol=1e-12)
    assert (udr["value"].between(0, 1)).all()
    assert set(runs.loc[runs["metric"] == "udr_models", "value"]) == {2.0}
    # one seed: no udr, a note, no failure
    capsys.readouterr()
    one = tmp_path / "one"
    one_args = tiny_cpu_args(profile, one, "--methods", "vae", "--datasets", "dsprites")
    assert main(one_args) == 0
    assert "needs at least 2" in capsys.readouterr().out
    assert "udr" not in set(pd.read_csv(one / "runs.csv")["metric"])
    notes = json.loads((one / "run.json").read_text())["notes"]
    assert len(notes) == 1 and "has 1 finished seed" in notes[0]


def test_rescore_computes_udr_when_named(tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump({"extends": "smoke", "steps": 3, "checkpoint_every": 0,
                                       "metrics": {"mig": {"num_train": 200}}, "primary_metric": "mig"}))  # fmt: skip
    run = tmp_path / "r"
    args = tiny_cpu_args(profile, run, "--methods", "vae", "--datasets", "dsprites")
    args[args.index("--seeds") + 1] = "2"
    assert main(args) == 0
    assert "udr" not in set(pd.read_csv(run / "runs.csv")["metric"])
    assert main(["rescore", str(run), "--metrics", "udr", "--no-report"]) == 0
    runs = pd.read_csv(run / "runs.csv")
    assert len(runs[runs["metric"] == "udr"]) == 2
    assert runs[runs["metric"] == "mig"]["value"].notna().all()  # the other scores are kept


@pytest.mark.parametrize("bad", ["udr: {correlation: pearson}"])
def test_bad_udr_options_stop_the_plan(tmp_path, capsys, bad):
    profile = tmp_path / "p.yaml"
    profile.write_text(f"extends: smoke\nmetrics:\n  {bad}\n")
    assert main(tiny_cpu_args(profile, tmp_path / "r", "--methods", "vae")) == 2
    assert "correlation 'pearson' is unknown" in capsys.readouterr().err
