"""Correlated training data (datasets/correlation.py): known answers for the sampler, the named
settings, the bad-input lines, cell identity, and a tiny run that trains correlated and scores
uncorrelated."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency, chisquare

from disentbench import datasets, metrics
from disentbench.bench.cli import main
from disentbench.bench.config import load_profile
from disentbench.bench.grid import Cell, expand
from disentbench.bench.report.leaderboard import make_boards
from disentbench.datasets import correlation
from disentbench.datasets.correlation import CorrelatedDataset, sample_correlated
from disentbench.errors import BenchError
from tests.helpers import IdentityDataset, tiny_cpu_args

N = 30_000


@pytest.fixture(scope="module")
def dsprites():
    return datasets.create("dsprites", source="procedural")


def _draw(dataset, name, n=N, seed=0):
    return sample_correlated(dataset, n, name, np.random.default_rng(seed))


def test_the_pair_correlation_falls_as_sigma_grows(dsprites):
    corr = {}
    for token in ("004", "01", "02", "04"):
        f = _draw(dsprites, f"dsprites_double_2_{token}")  # shape-scale and posX-posY
        corr[token] = (np.corrcoef(f[:, 0], f[:, 1])[0, 1], np.corrcoef(f[:, 3], f[:, 4])[0, 1])
    for pair in (0, 1):
        values = [corr[t][pair] for t in ("004", "01", "02", "04")]
        assert values == sorted(values, reverse=True), values
        assert values[-1] > 0.3 and values[0] > 0.95  # positive: similar normalised values go together


def test_other_factors_stay_uniform_and_independent_of_the_pair(dsprites):
    f = _draw(dsprites, "dsprites_single_1_01")
    for k in (2, 3, 4):  # orientation, posX, posY
        counts = np.bincount(f[:, k], minlength=dsprites.factor_sizes[k])
        assert chisquare(counts).pvalue > 1e-3
        assert np.abs(counts / counts.mean() - 1).max() < 0.2
    for k in (2, 3):  # each free factor (binned) is independent of each factor of the pair
        for j in (0, 1):
            table = pd.crosstab(f[:, j], f[:, k] * 4 // dsprites.factor_sizes[k]).to_numpy()
            assert chi2_contingency(table).pvalue > 1e-3
    assert abs(np.corrcoef(f[:, 2], f[:, 3])[0, 1]) < 0.03


def test_the_same_seed_draws_the_same_factors(dsprites):
    a, b = _draw(dsprites, "dsprites_conf_1_02", 500, 7), _draw(dsprites, "dsprites_conf_1_02", 500, 7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, _draw(dsprites, "dsprites_conf_1_02", 500, 8))
    wrapped = CorrelatedDataset(dsprites, "dsprites_conf_1_02")
    np.testing.assert_array_equal(wrapped.sample_factors(500, np.random.default_rng(7)), a)
    with pytest.raises(TypeError):
        wrapped.sample_factors(5, 0)


def test_a_confounder_ties_one_factor_to_every_other(dsprites):
    setting = correlation.get("shapes3d_conf_1_01")
    assert {(a, b) for a, b, _ in setting.pairs} == {
        ("shape", f) for f in ("floor_hue", "wall_hue", "object_hue", "scale", "orientation")
    }
    f = _draw(dsprites, "dsprites_conf_2_01", 20_000)  # posX with everything
    c = np.corrcoef(f.T)
    assert all(c[3, k] > 0.5 for k in (0, 1, 2, 4))


def test_the_joint_is_the_gaussian_band_on_normalised_values():
    # brute force on a small grid: p(i, j) proportional to exp(-(i/2 - j/3)^2 / (2 sigma^2))
    dataset = IdentityDataset((3, 2, 4))
    dataset.factor_names = ("elevation", "azimuth", "object_type")  # a cars3d-shaped grid
    f = _draw(dataset, "cars3d_single_2_04", 200_000, 1)  # elevation with object_type, sigma 0.4
    w = np.exp(-((np.arange(3)[:, None] / 2 - np.arange(4)[None, :] / 3) ** 2) / (2 * 0.4**2))
    empirical = pd.crosstab(f[:, 0], f[:, 2]).to_numpy() / len(f)
    np.testing.assert_allclose(empirical, w / w.sum(), atol=0.005)
    assert abs(np.bincount(f[:, 1]).min() / len(f) - 0.5) < 0.005


def test_the_reference_names_exist_with_the_same_pairs():
    for name in ("dsprites_single_1_01", "dsprites_double_1_004", "dsprites_conf_2_02", "shapes3d_double_3_01",
                 "shapes3d_triple_2_01", "mpi3d_double_2_04", "mpi3d_conf_1_02", "cars3d_conf_3_02"):  # fmt: skip
        assert name in correlation.SETTINGS
    assert correlation.get("dsprites_single_1_01").pairs == (("shape", "scale", 0.1),)
    assert {p[:2] for p in correlation.get("shapes3d_double_2_01").pairs} == {
        ("scale", "shape"),
        ("floor_hue", "wall_hue"),
    }
    for kind in ("single", "double", "triple", "conf"):
        for token in ("04", "02", "01", "004"):
            assert f"shapes3d_{kind}_1_{token}" in correlation.SETTINGS


def test_bad_names_are_one_line(dsprites):
    with pytest.raises(BenchError) as exc:
        correlation.get("dsprites_single_9_01")
    assert "\n" not in str(exc.value) and "dsprites_single_1_01" in str(exc.value)
    assert "shapes3d_" not in str(exc.value)  # the settings of that dataset only
    with pytest.raises(BenchError, match="is for shapes3d, not dataset dsprites; dsprites takes: dsprites_conf"):
        CorrelatedDataset(dsprites, "shapes3d_single_1_01")


def test_cells_keep_their_ids_uncorrelated_and_get_new_ones_correlated():
    profile = load_profile("smoke")
    axes = {"dsprites": ["none", "dsprites_single_1_01"]}
    plain, corr = expand(profile, ["vae"], {"dsprites": "procedural"}, 1, 2, {}, "none", correlations=axes)
    assert "correlation" not in plain.training_config()
    legacy = {k: v for k, v in plain.__dict__.items() if k != "correlation"}
    assert Cell(**legacy).cell_id == plain.cell_id
    assert corr.training_config()["correlation"] == "dsprites_single_1_01"
    assert corr.cell_id != plain.cell_id and corr.cell_id.startswith("dsprites-single_1_01-vae-")


def test_cli_refuses_a_setting_of_another_dataset(tmp_path, tiny_profile, capsys):
    for value, words in [
        ("shapes3d_single_1_01", "is for shapes3d, not dataset dsprites"),
        ("dsprites_nope_01", "unknown correlation setting 'dsprites_nope_01'; dsprites settings:"),
    ]:
        code = main(["--methods", "vae", *tiny_cpu_args(tiny_profile, tmp_path / "r", "--correlation", value)])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and words in err, err
    path = tmp_path / "p.yaml"
    path.write_text("extends: smoke\ncorrelation: dsprites_single_1_01\n")
    with pytest.raises(BenchError, match="correlation must be a list"):
        load_profile(str(path))


def test_a_run_trains_correlated_and_scores_uncorrelated(tmp_path, tiny_profile, monkeypatch, capsys, one_thread):
    seen, drawn = [], []
    evaluate = metrics.evaluate_many

    def spy(names, dataset, encode, **kwargs):
        seen.append(dataset)
        return evaluate(names, dataset, encode, **kwargs)

    def counting(self, n, rng):
        drawn.append(n)
        return sample_correlated(self.base, n, self.setting, rng)

    monkeypatch.setattr(metrics, "evaluate_many", spy)
    monkeypatch.setattr(CorrelatedDataset, "sample_factors", counting)
    flags = ["--correlation", "none,dsprites_single_1_01", "--steps", "2"]
    assert main(["--methods", "vae", *tiny_cpu_args(tiny_profile, tmp_path / "r", *flags)]) == 0
    capsys.readouterr()
    records = [json.loads(p.read_text()) for p in (tmp_path / "r").glob("cells/*/scores.json")]
    by = {r["config"].get("correlation", "none"): r for r in records}
    assert set(by) == {"none", "dsprites_single_1_01"}
    assert by["none"]["cell_id"] != by["dsprites_single_1_01"]["cell_id"]
    assert len(drawn) == 2  # the correlated cell's two training steps, and nothing else
    assert len(seen) == 2 and not any(isinstance(d, CorrelatedDataset) for d in seen)
    f = seen[1].sample_factors(N, np.random.default_rng(0))  # what the metrics draw: uncorrelated
    assert abs(np.corrcoef(f[:, 0], f[:, 1])[0, 1]) < 0.03
    runs = pd.read_csv(tmp_path / "r" / "runs.csv")
    assert set(runs["correlation"]) == {"none", "dsprites_single_1_01"}
    titles = sorted(b.title for b in make_boards(runs, "mig"))
    assert titles == [
        "dsprites (data: procedural)",
        "dsprites (data: procedural, trained on correlated factors: dsprites_single_1_01)",
    ]
