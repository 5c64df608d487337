"""The `correlated` profile: the HFS study's comparison as one complete study (methods over their
sweeps, correlation settings per dataset, seeds), its dry run stating the cost, and its claim (HFS
as the challenger) tested per correlation setting."""

from __future__ import annotations

import json
import os
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from disentbench import methods
from disentbench.bench import dryrun
from disentbench.bench.claim import ClaimSpec, check_claim
from disentbench.bench.cli import build_parser, main, plan
from disentbench.bench.config import load_profile
from disentbench.bench.report.claims import claim_rows
from disentbench.datasets import correlation

ARGS = ["--profile", "correlated", "--source", "procedural", "--device", "cpu"]


def test_profile_names_the_studys_methods_settings_and_challenger():
    p = load_profile("correlated")
    assert p["methods"] == ["betavae", "factorvae", "betatcvae", "betahfs"]
    assert p["datasets"] == ["dsprites", "shapes3d"] and p["grid"] == "reference" and p["steps"] == 300_000
    assert "none" in p["correlation"]
    for name in p["correlation"]:
        if name != "none":
            assert correlation.get(name).family in p["datasets"], name
    claim = ClaimSpec.from_config(p["claim"])
    assert claim.method == "betahfs" and claim.ablation == {"gamma": 0} and claim.run_ablation
    check_claim(claim)  # the challenger and its ablation parameter are registered: no error


def test_plan_crosses_each_dataset_with_its_own_settings_only(tmp_path):
    args = build_parser().parse_args([*ARGS, "--results", str(tmp_path / "r")])
    cells = plan(args).cells
    per = defaultdict(set)
    for c in cells:
        per[(c.dataset, c.method)].add(c.correlation)
    for (dataset, method), settings in per.items():
        # uncorrelated plus the four settings of the dataset's own family; never another family's
        assert "none" in settings and len(settings) == 5, (dataset, method)
        assert all(s == "none" or s.startswith(dataset + "_") for s in settings), (dataset, method)
    # every (dataset, correlation) trains every method over its whole sweep and 5 seeds
    expected = 0
    for method in ["betavae", "factorvae", "betatcvae", "betahfs"]:
        sweep = len(next(iter(methods.get(method).reference_grid.values())))
        expected += (sweep + (method == "betahfs")) * 5 * 5 * 2  # + the claim's ablation
    assert len(cells) == expected == 1250
    ablation = [c for c in cells if c.method == "betahfs" and json.loads(c.hparams_json)["gamma"] == 0.0]
    assert len(ablation) == 5 * 5 * 2
    assert len({c.cell_id for c in cells}) == len(cells)  # the setting is part of every cell's identity


@pytest.fixture
def short_probe(monkeypatch):
    monkeypatch.setattr(dryrun, "PROBE_SECONDS", 0.3)
    monkeypatch.setattr(dryrun, "WARMUP_SECONDS", 0.2)


def test_dry_run_states_the_correlation_axis_and_the_cost(tmp_path, capsys, short_probe):
    profile = tmp_path / "correlated_cheap.yaml"  # one cheap metric, so the evaluation probe takes seconds
    profile.write_text("extends: correlated\nmetrics:\n  mig: {num_train: 500}\n")
    args = ["--dry-run", "--profile", str(profile), "--source", "procedural", "--methods", "betahfs"]
    code = main([*args, "--results", str(tmp_path / "r"), "--device", "cpu", "--threads", "1"])
    out = capsys.readouterr().out
    assert code == 0
    # 6 gamma values + the ablation, 5 training distributions, 5 seeds
    assert "| dsprites | procedural | betahfs | 7 | 5 | 5 | 300,000 | 175 | 0 |" in out
    assert "| shapes3d | procedural | betahfs | 7 | 5 | 5 | 300,000 | 175 | 0 |" in out
    assert "dsprites trains on: dsprites_conf_1_02, dsprites_double_1_01, dsprites_double_1_04, " in out
    assert "350 cell(s), 0 already complete, 350 to run." in out and "Projected wall time:" in out
    assert not os.path.exists(tmp_path / "r")


def _runs(values: dict[tuple[str, str, str], float]) -> pd.DataFrame:
    """{(correlation, method, hparams): centre} -> 8 seeds of DCI around the centre."""
    rows = []
    for i, ((corr, method, hp), centre) in enumerate(values.items()):
        for seed, v in enumerate(centre + np.random.default_rng(i).normal(0, 1e-3, 8)):
            rows.append(
                {
                    "cell_id": f"{corr}-{method}-{hp}-{seed}",
                    "dataset": "dsprites",
                    "data_source": "procedural",
                    "correlation": corr,
                    "method": method,
                    "hparams": hp,
                    "seed": seed,
                    "steps": 300_000,
                    "metric": "dci",
                    "value": v,
                }
            )
    return pd.DataFrame(rows)


def test_claim_is_tested_per_correlation_setting_with_its_ablation():
    # HFS ahead of beta-VAE only on the correlated data, and ahead of its own gamma = 0 ablation there
    corr = "dsprites_single_1_01"
    runs = _runs(
        {
            ("none", "betavae", json.dumps({"beta": 4.0})): 0.60,
            ("none", "betahfs", json.dumps({"beta": 1.0, "gamma": 10.0})): 0.40,
            ("none", "betahfs", json.dumps({"beta": 1.0, "gamma": 0.0})): 0.40,
            (corr, "betavae", json.dumps({"beta": 4.0})): 0.30,
            (corr, "betahfs", json.dumps({"beta": 1.0, "gamma": 10.0})): 0.55,
            (corr, "betahfs", json.dumps({"beta": 1.0, "gamma": 0.0})): 0.25,
        }
    )
    spec = ClaimSpec.from_config(load_profile("correlated")["claim"])
    tables = claim_rows(runs, spec)
    rows = {row["dataset"]: row for row in tables.best}
    assert set(rows) == {
        "dsprites (data: procedural)",
        f"dsprites (data: procedural, trained on correlated factors: {corr})",
    }
    correlated, uncorrelated = (
        rows[f"dsprites (data: procedural, trained on correlated factors: {corr})"],
        rows["dsprites (data: procedural)"],
    )
    assert correlated["verdict"] == "supported" and uncorrelated["verdict"] == "not supported"
    assert correlated["challenger setting"] == "betahfs (gamma=10)"  # the ablation (gamma=0) is no setting
    ablation = {row["dataset"]: row["verdict"] for row in tables.ablations}
    assert ablation == {"dsprites (data: procedural)": "not supported", correlated["dataset"]: "supported"}
