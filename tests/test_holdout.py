"""Held-out combinations (datasets/holdout.py, bench/scoring.py): the samplers against a brute-force
pass over every combination of small grids, the held-out fractions against hand-counted ones, the
bad-input lines, cell identity, reconstruction error with known answers, and tiny runs that write
both score sets (and the correlated score set on request)."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import chisquare

from disentbench import datasets, metrics
from disentbench.bench.cli import main
from disentbench.bench.config import load_profile
from disentbench.bench.grid import Cell, expand
from disentbench.bench.report.leaderboard import make_boards
from disentbench.bench.report.runs import split_metrics
from disentbench.bench.rescore import score_cell
from disentbench.bench.scoring import confined, reconstruction_error
from disentbench.datasets import holdout
from disentbench.datasets.correlation import CorrelatedDataset
from disentbench.datasets.holdout import HoldoutDataset, heldout_fraction, sample_part
from disentbench.errors import BenchError
from tests.helpers import IdentityDataset, tiny_cpu_args

DSPRITES = ("shape", "scale", "orientation", "posX", "posY")
SHAPES3D = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")


def _grid(names, sizes):
    data = IdentityDataset(sizes)
    data.factor_names = names
    return data


def _brute_force(conditions, names, sizes):
    """Every held-out combination, from the conditions written out by hand: value k / (K - 1)."""
    ops = {">=": lambda v, t: v >= t, ">": lambda v, t: v > t, "<": lambda v, t: v < t, "==": lambda v, t: v == t}
    held = set()
    for combo in itertools.product(*(range(s) for s in sizes)):
        values = {n: k / (s - 1) for n, k, s in zip(names, combo, sizes)}
        if all(ops[op](values[f], t) for f, op, t in conditions):
            held.add(combo)
    return held


@pytest.mark.parametrize(
    "name, conditions",
    [
        ("dsprites_v1", [("shape", "==", 1.0), ("posX", ">=", 0.5)]),
        ("dsprites_corner", [(f, ">=", 0.5) for f in DSPRITES]),
        ("dsprites_extrap_posY", [("posY", ">=", 0.5)]),
    ],
)
def test_each_sampler_stays_in_its_part_and_covers_it(name, conditions):
    data = _grid(DSPRITES, (3, 4, 5, 4, 3))  # 720 combinations
    held = _brute_force(conditions, DSPRITES, data.factor_sizes)
    everything = set(itertools.product(*(range(s) for s in data.factor_sizes)))
    for part, expected in (("seen", everything - held), ("heldout", held)):
        drawn = sample_part(data, 40_000, name, part, np.random.default_rng(3))
        combos = set(map(tuple, drawn.tolist()))
        assert combos == expected  # never outside its part, and every combination of it drawn
        counts = pd.Series(map(tuple, drawn.tolist())).value_counts()
        assert chisquare(counts.to_numpy()).pvalue > 1e-3  # uniform over the part


def test_random_holes_are_ten_percent_fixed_and_nested_in_no_seed():
    sizes = (3, 4, 5, 4, 3)
    data = _grid(DSPRITES, sizes)
    mask = holdout.heldout_mask("dsprites_recomb_10", sizes)
    assert mask.sum() == 72 and heldout_fraction("dsprites_recomb_10", sizes) == pytest.approx(0.1)
    holes = {tuple(f) for f in data.factors_of(np.flatnonzero(mask)).tolist()}
    for seed in (0, 1):  # the cell's seed does not move the holes
        seen = sample_part(data, 20_000, "dsprites_recomb_10", "seen", np.random.default_rng(seed))
        assert not holes & set(map(tuple, seen.tolist()))
        held = sample_part(data, 5_000, "dsprites_recomb_10", "heldout", np.random.default_rng(seed))
        assert set(map(tuple, held.tolist())) == holes
    # scattered holes: every value of every factor stays in training (recombination, not extrapolation)
    seen_all = data.factors_of(np.flatnonzero(~mask))
    assert all(set(seen_all[:, k]) == set(range(s)) for k, s in enumerate(sizes))


def test_held_out_fractions_match_hand_counts():
    dsprites, shapes3d = (3, 6, 40, 32, 32), (10, 10, 10, 8, 4, 15)
    # corner: shape 2 of 3, scale 3 of 6, orientation 20 of 40, posX 16 of 32, posY 16 of 32
    assert heldout_fraction("dsprites_corner", dsprites) == pytest.approx(2 / 3 / 16)
    assert heldout_fraction("dsprites_v1", dsprites) == pytest.approx(1 / 3 * 1 / 2)  # heart, right half
    assert heldout_fraction("shapes3d_v2", shapes3d) == pytest.approx(0.3 * 0.3)  # floor 0-2, wall 7-9
    assert heldout_fraction("shapes3d_extrap_orientation", shapes3d) == pytest.approx(8 / 15)
    assert heldout_fraction("dsprites_recomb_10", dsprites) == pytest.approx(int(0.1 * 737_280) / 737_280)


def test_the_same_seed_draws_the_same_factors():
    data = _grid(SHAPES3D, (4, 4, 3, 3, 4, 3))
    wrapped = HoldoutDataset(data, "shapes3d_v1", "heldout")
    a, b = (wrapped.sample_factors(300, np.random.default_rng(7)) for _ in range(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, wrapped.sample_factors(300, np.random.default_rng(8)))
    with pytest.raises(TypeError):
        wrapped.sample_factors(5, 0)
    assert wrapped.describe()["holdout"] == "shapes3d_v1" and not wrapped.complete_grid


def test_bad_input_is_one_line():
    dsprites = _grid(DSPRITES, (3, 4, 5, 4, 3))
    for call, words in [
        (lambda: holdout.get("dsprites_recomb_99"), "unknown holdout setting 'dsprites_recomb_99'; dsprites settings:"),
        (lambda: HoldoutDataset(dsprites, "shapes3d_v1"), "is for shapes3d, not dataset identity; identity takes:"),
        (lambda: HoldoutDataset(_grid(DSPRITES, (3, 4, 5, 4, 1)), "dsprites_corner"), "holds out no combination"),
        (lambda: sample_part(dsprites, 3, "dsprites_v1", "both", np.random.default_rng(0)), "unknown part 'both'"),
    ]:
        with pytest.raises(BenchError, match=words) as exc:
            call()
        assert "\n" not in str(exc.value)
    assert "shapes3d_" not in str(pytest.raises(BenchError, holdout.get, "dsprites_nope").value)
    dsprites.complete_grid = False  # a user's file with rows missing
    with pytest.raises(BenchError, match="needs a complete factor grid"):
        HoldoutDataset(dsprites, "dsprites_v1")


def test_cells_keep_their_ids_without_holdout_and_refuse_a_correlation_beside_one():
    profile = load_profile("smoke")
    axes = {"dsprites": ["none", "dsprites_recomb_10"]}
    plain, held = expand(profile, ["vae"], {"dsprites": "procedural"}, 1, 2, {}, "none", holdouts=axes)
    assert "holdout" not in plain.training_config()
    legacy = {k: v for k, v in plain.__dict__.items() if k != "holdout"}
    assert Cell(**legacy).cell_id == plain.cell_id
    assert held.training_config()["holdout"] == "dsprites_recomb_10"
    assert held.cell_id.startswith("dsprites-held_recomb_10-vae-")
    with pytest.raises(BenchError, match="do not combine") as exc:
        expand(profile, ["vae"], {"dsprites": "procedural"}, 1, 2, {}, "none",
               correlations={"dsprites": ["dsprites_single_1_01"]}, holdouts=axes)  # fmt: skip
    assert "\n" not in str(exc.value)


def test_cli_lines_for_bad_settings_and_pair_methods(tmp_path, tiny_profile, capsys):
    for flags, words in [
        (["--holdout", "shapes3d_v1"], "is for shapes3d, not dataset dsprites"),
        (["--holdout", "dsprites_nope"], "unknown holdout setting 'dsprites_nope'; dsprites settings:"),
        (["--holdout", "dsprites_v1", "--correlation", "dsprites_single_1_01"], "do not combine"),
        (["--holdout", "dsprites_v1", "--methods", "adagvae"], "grid is incomplete"),
    ]:
        args = ["--methods", "vae", *tiny_cpu_args(tiny_profile, tmp_path / "r", *flags)]
        code = main(args)
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and words in err, err
    path = tmp_path / "p.yaml"
    path.write_text("extends: smoke\nholdout: dsprites_v1\n")
    with pytest.raises(BenchError, match="holdout must be a list"):
        load_profile(str(path))


class _Shift(torch.nn.Module):
    """reconstruct(x) = x + shift, so the per-image mean squared error is shift^2 exactly."""

    def __init__(self, shift):
        super().__init__()
        self.shift = shift

    def reconstruct(self, x):
        if self.shift is None:
            raise NotImplementedError
        return x + self.shift


def test_reconstruction_error_known_answers():
    data = _grid(DSPRITES, (3, 4, 5, 4, 3))
    assert reconstruction_error(_Shift(0.25), data, 300, np.random.default_rng(0)) == pytest.approx(0.0625)
    zero = reconstruction_error(_Shift(0.0), data, 300, np.random.default_rng(0))
    assert zero == 0.0
    # against a hand-written mean of (x - 0)^2 over the same draws
    f = data.sample_factors(300, np.random.default_rng(1))

    class Blank(_Shift):
        def reconstruct(self, x):
            return torch.zeros_like(x)

    expected = np.mean(np.mean(f.astype(float) ** 2, axis=1))
    assert reconstruction_error(Blank(0), data, 300, np.random.default_rng(1)) == pytest.approx(expected)


def test_metrics_that_intervene_are_not_confined():
    kept, skipped = confined({"mig": {}, "dci": {}, "beta_vae": {}, "factor_vae": {}, "sap": {}})
    assert set(kept) == {"mig", "dci", "sap"} and set(skipped) == {"beta_vae", "factor_vae"}
    assert all("intervenes on factors" in why for why in skipped.values())
    headline, _ = split_metrics(["sap", "heldout_mig", "mig", "beta_vae", "heldout_sap"], "mig")
    assert headline == ["mig", "heldout_mig", "sap", "heldout_sap", "beta_vae"]


def test_a_run_writes_seen_and_heldout_scores(tmp_path, tiny_profile, monkeypatch, capsys, one_thread):
    seen = []
    evaluate = metrics.evaluate_many

    def spy(names, dataset, encode, **kwargs):
        seen.append((dataset, dict(names)))
        return evaluate(names, dataset, encode, **kwargs)

    monkeypatch.setattr(metrics, "evaluate_many", spy)
    profile = tmp_path / "p.yaml"
    profile.write_text(tiny_profile.read_text() + "reconstruction_points: 40\n")
    flags = ["--holdout", "none,dsprites_v1", "--steps", "2"]
    assert main(["--methods", "vae", *tiny_cpu_args(profile, tmp_path / "r", *flags)]) == 0
    capsys.readouterr()
    records = {
        r["config"].get("holdout", "none"): r
        for r in (json.loads(p.read_text()) for p in (tmp_path / "r").glob("cells/*/scores.json"))
    }
    held = records["dsprites_v1"]
    assert set(held["scores"]) == {
        "mig", "sap", "heldout_mig", "heldout_sap", "reconstruction_mse", "heldout_reconstruction_mse",
    }  # fmt: skip
    assert set(records["none"]["scores"]) == {"mig", "sap"}
    assert held["scored_on"]["heldout"]["heldout_fraction"] == pytest.approx(1 / 6)
    parts = [getattr(d, "part", "plain") for d, _ in seen]
    assert parts == ["plain", "seen", "heldout"]
    heart_right = seen[2][0].sample_factors(500, np.random.default_rng(0))
    assert (heart_right[:, 0] == 2).all() and (heart_right[:, 3] >= 16).all()  # only hearts on the right
    runs = pd.read_csv(tmp_path / "r" / "runs.csv")
    assert set(runs["holdout"]) == {"none", "dsprites_v1"}
    boards = {b.holdout: b for b in make_boards(runs, "mig")}
    assert boards["dsprites_v1"].title == "dsprites (data: procedural, combinations held out: dsprites_v1)"
    assert boards["dsprites_v1"].headline[:4] == ["mig", "heldout_mig", "sap", "heldout_sap"]
    assert "heldout_mig" not in boards["none"].metrics
    # rescore goes through the same scoring: the held-out cell's scores come back the same
    cell = tmp_path / "r" / "cells" / held["cell_id"]
    again = score_cell(cell, ["mig", "sap"], load_profile(str(profile))["metrics"], "cpu", None, ())
    assert again["scores"] == pytest.approx(held["scores"])


def test_the_leaderboard_says_which_metrics_skip_an_extra_set():
    rows = [
        {"cell_id": c, "dataset": "dsprites", "data_source": "procedural", "holdout": h, "correlation": k,
         "method": "vae", "hparams": "{}", "seed": 0, "steps": 2, "metric": m, "value": 0.5}
        for c, h, k, prefix in (("a", "dsprites_v1", "none", "heldout_"), ("b", "none", "dsprites_single_1_01", "correlated_"))
        for m in ("mig", prefix + "mig", "beta_vae")
    ]  # fmt: skip
    held, corr = sorted(make_boards(pd.DataFrame(rows), "mig"), key=lambda b: b.holdout == "none")
    assert any("`beta_vae` is not scored on the held-out combinations: it intervenes" in n for n in held.notes)
    assert any("`beta_vae` is not scored on the correlated distribution: it intervenes" in n for n in corr.notes)
    assert not any("`mig` is not scored" in n for n in held.notes + corr.notes)


def test_correlated_cells_score_the_correlated_set_on_request(tmp_path, tiny_profile, monkeypatch, capsys, one_thread):
    used = []
    evaluate = metrics.evaluate_many

    def spy(names, dataset, encode, **kwargs):
        used.append(dataset)
        return evaluate(names, dataset, encode, **kwargs)

    monkeypatch.setattr(metrics, "evaluate_many", spy)
    flags = ["--correlation", "none,dsprites_single_1_01", "--score-correlated", "--steps", "2"]
    assert main(["--methods", "vae", *tiny_cpu_args(tiny_profile, tmp_path / "r", *flags)]) == 0
    capsys.readouterr()
    records = {
        r["config"].get("correlation", "none"): r
        for r in (json.loads(p.read_text()) for p in (tmp_path / "r").glob("cells/*/scores.json"))
    }
    assert set(records["dsprites_single_1_01"]["scores"]) == {"mig", "sap", "correlated_mig", "correlated_sap"}
    assert set(records["none"]["scores"]) == {"mig", "sap"}  # nothing to shift to
    assert [isinstance(d, CorrelatedDataset) for d in used] == [False, False, True]
    f = used[2].sample_factors(20_000, np.random.default_rng(0))
    assert np.corrcoef(f[:, 0], f[:, 1])[0, 1] > 0.5  # the correlated set is the training distribution
    runs = pd.read_csv(tmp_path / "r" / "runs.csv")
    board = next(b for b in make_boards(runs, "mig") if b.correlation != "none")
    assert board.headline == ["mig", "correlated_mig", "sap", "correlated_sap"]
    path = tmp_path / "p.yaml"
    path.write_text("extends: smoke\nscore_correlated: 1\n")
    with pytest.raises(BenchError, match="score_correlated must be true or false"):
        load_profile(str(path))


def test_procedural_datasets_take_every_family_setting():
    dsprites = datasets.create("dsprites", source="procedural")
    assert "dsprites_recomb_10" in holdout.list_settings(dsprites)
    assert all(holdout.get(n).family == "dsprites" for n in holdout.list_settings(dsprites))
