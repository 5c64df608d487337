"""The rule that decides whether bf16 agrees with fp32 (bench.evidence.precision), on known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from disentbench.bench.evidence.precision import FLOOR, compare_arms, decide


def _arm(values: dict[str, list[float]], method: str = "betavae") -> pd.DataFrame:
    return pd.DataFrame([{"method": method, "metric": m, "value": v} for m, vs in values.items() for v in vs])


SEEDS = {"mig": [0.10, 0.14, 0.12], "dci": [0.20, 0.26, 0.23], "sap": [0.05, 0.07, 0.06]}


def test_identical_distributions_agree():
    table = compare_arms(_arm(SEEDS), _arm(SEEDS))
    assert len(table) == 3 and table["within_noise"].all()
    assert np.allclose(table["difference"], 0.0)
    assert decide(table)["agree"] is True


def test_a_shift_far_beyond_seed_noise_disagrees_and_is_named():
    shifted = {**SEEDS, "dci": [v + 0.3 for v in SEEDS["dci"]]}
    table = compare_arms(_arm(SEEDS), _arm(shifted))
    row = table[table["metric"] == "dci"].iloc[0]
    # brute force: SE of the difference of two 3-seed means with equal sd 0.03
    assert np.isclose(row["se"], np.sqrt(2 * 0.03**2 / 3)) and np.isclose(row["difference"], 0.3)
    decision = decide(table)
    assert decision["agree"] is False and "betavae dci" in decision["reason"]


def test_a_shift_inside_two_standard_errors_agrees():
    se = np.sqrt(2 * 0.02**2 / 3)
    nudged = {**SEEDS, "mig": [v + 1.5 * se for v in SEEDS["mig"]]}
    assert decide(compare_arms(_arm(SEEDS), _arm(nudged)))["agree"] is True
    beyond = {**SEEDS, "mig": [v + 2 * se + FLOOR + 0.005 for v in SEEDS["mig"]]}
    table = compare_arms(_arm(SEEDS), _arm(beyond))
    assert not table[table["metric"] == "mig"]["within_noise"].iloc[0]


def test_nothing_to_compare_gives_no_decision():
    one_seed = {m: v[:1] for m, v in SEEDS.items()}
    assert decide(compare_arms(_arm(one_seed), _arm(SEEDS)))["agree"] is None


def test_a_stop_signal_ends_the_whole_evidence_run(tmp_path, monkeypatch):
    """SIGTERM stops the arm being trained (the runner returns 128 + 15); the next arm or method must
    not start, or a stop meant to free the core would only move the run on."""
    from disentbench.bench import cli
    from disentbench.bench.evidence import precision

    calls = []

    def fake_main(argv):
        calls.append(argv)
        return 143 if len(calls) == 1 else 0

    monkeypatch.setattr(cli, "main", fake_main)
    assert precision.run(tmp_path, ["betavae", "factorvae"], 3, 10, "cpu", 1) == 143
    assert len(calls) == 1
    calls.clear()
    monkeypatch.setattr(cli, "main", lambda argv: calls.append(argv) or 0)
    assert precision.run(tmp_path, ["betavae", "factorvae"], 3, 10, "cpu", 1) == 0
    assert len(calls) == 4  # both arms of both methods when nothing stops it


def _write_cell(arm_dir, method: str, seed: int, scores: dict[str, float]) -> None:
    """A finished cell's scores.json as the runner writes it (the fields the tidy rows read)."""
    import json

    cell_id = f"dsprites-{method}-s{seed}"
    record = {
        "cell_id": cell_id,
        "config": {"dataset": "dsprites", "data_source": "procedural", "method": method, "hparams": {},
                   "seed": seed, "steps": 10},
        "scores": scores, "train_seconds": 1.0, "eval_seconds": 1.0, "device": "cpu", "git_commit": "x",
        "torch_version": "t", "numpy_version": "n", "sklearn_version": "s",
    }  # fmt: skip
    (arm_dir / "cells" / cell_id).mkdir(parents=True)
    (arm_dir / "cells" / cell_id / "scores.json").write_text(json.dumps(record))


def test_compare_reads_every_finished_cell_of_each_arm_not_the_last_runs_csv(tmp_path):
    """`run` calls the runner once per method and arm, and each call's runs.csv lists only its own
    cells; the comparison must still cover both methods (and a stale runs.csv must not count)."""
    from disentbench.bench.evidence import precision

    for arm in ("fp32", "bf16"):
        for method in ("betavae", "factorvae"):
            for seed, value in enumerate(SEEDS["mig"]):
                _write_cell(tmp_path / arm, method, seed, {"mig": value, "dci": 2 * value})
        pd.DataFrame([{"method": "factorvae", "metric": "mig", "value": 9.0}]).to_csv(tmp_path / arm / "runs.csv")
    decision = precision.compare(tmp_path)
    table = pd.read_csv(tmp_path / "comparison.csv")
    assert sorted(zip(table["method"], table["metric"], strict=True)) == [
        ("betavae", "dci"), ("betavae", "mig"), ("factorvae", "dci"), ("factorvae", "mig"),
    ]  # fmt: skip
    assert np.allclose(table["fp32_mean"], table["bf16_mean"]) and np.allclose(
        table[table["metric"] == "mig"]["fp32_mean"], np.mean(SEEDS["mig"])
    )
    assert decision["agree"] is True and decision["comparisons"] == 4
