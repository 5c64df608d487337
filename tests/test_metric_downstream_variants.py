"""Reduced and strong downstream tasks: known answers (one latent per factor, noise, an entangled
code), the intervention, keys, draw sharing and bad options."""

import numpy as np
import pytest
import torch

from disentbench import metrics
from disentbench.bench.errors import BenchError
from disentbench.metrics.downstream_variants import intervene, removed_latents
from tests.helpers import IdentityDataset

SIZES = (3, 4, 5)


def one_latent_per_factor(seed, n, sizes=SIZES, noise=0.0):
    """Codes with each factor in exactly one latent, shifted by one: latent 0 holds the last factor,
    latent k + 1 factor k."""
    rng = np.random.default_rng(seed)
    factors = rng.integers(0, np.array(sizes), (n, len(sizes)))
    codes = factors + noise * rng.normal(size=factors.shape)
    return codes[:, np.roll(np.arange(len(sizes)), 1)], factors


def test_reduced_removes_each_factors_own_latent_and_keeps_the_others():
    (x, f), (xt, ft) = one_latent_per_factor(0, 300), one_latent_per_factor(1, 200)
    assert removed_latents(x, f, xt, ft, seed=0, num_remove=1, jobs=1) == [[1], [2], [0]]
    s = metrics.score_arrays("reduced_downstream", x, f, xt, ft, seed=0, n_jobs=1)
    assert s["reduced_downstream"] == s["reduced_downstream_300_others_test"] == 1.0
    for j in range(3):
        for k in range(3):
            if k != j:
                assert s[f"reduced_downstream_300_test_factor{k}_removed{j}"] == 1.0
        own = s[f"reduced_downstream_300_test_factor{j}_removed{j}"]
        assert own < 1 / SIZES[j] + 0.15  # chance: the factor is gone from the code
    assert s["reduced_downstream_300_removed_test"] < 0.45
    assert len(s) == 1 + 4 + 2 * 9


def test_reduced_on_noise_is_near_chance_and_lr_predictor_runs():
    rng = np.random.default_rng(2)
    (_, f), (_, ft) = one_latent_per_factor(3, 200, sizes=(3, 4)), one_latent_per_factor(4, 100, sizes=(3, 4))
    noise = metrics.score_arrays(
        "reduced_downstream", rng.normal(size=(200, 3)), f, rng.normal(size=(100, 3)), ft, n_jobs=1
    )
    assert noise["reduced_downstream"] < 0.5  # chance: 1/3, 1/4
    x, xt = f.astype(float), ft.astype(float)
    lr = metrics.score_arrays("reduced_downstream", x, f, xt, ft, predictor="lr", num_remove=1, n_jobs=1)
    assert lr["reduced_downstream_200_removed_test"] < 0.5 and lr["reduced_downstream"] > 0.85


def test_reduced_two_rounds_removes_two_latents_per_factor():
    (x, f), (xt, ft) = one_latent_per_factor(5, 200, sizes=(3, 4)), one_latent_per_factor(6, 100, sizes=(3, 4))
    dup = np.column_stack([x, x[:, 0] + 0.01])  # factor 1 lives in latents 0 and 2, factor 0 in latent 1
    removed = removed_latents(dup, f, np.column_stack([xt, xt[:, 0] + 0.01]), ft, seed=0, num_remove=2, jobs=1)
    assert removed[1] == [0, 2] and 1 in removed[0]


def test_intervene_fixes_another_factor_in_train_and_shifts_it_in_test():
    rng = np.random.default_rng(0)
    ds = IdentityDataset(SIZES)
    y, yt = ds.sample_factors(500, rng), ds.sample_factors(500, rng)
    for target in range(3):
        y_int, yt_int, factor, value = intervene(y, yt, target, ds.factor_sizes, rng)
        assert factor != target and (y_int[:, factor] == value).all() and (yt_int[:, factor] != value).all()
        assert set(np.unique(yt_int[:, factor])) == set(range(SIZES[factor])) - {value}
        keep = [c for c in range(3) if c != factor]
        np.testing.assert_array_equal(y_int[:, keep], y[:, keep])
        np.testing.assert_array_equal(yt_int[:, keep], yt[:, keep])
    with pytest.raises(BenchError):
        intervene(y[:, :2] * 0, yt[:, :2] * 0, 0, (3, 1), rng)


def test_strong_known_answers_disentangled_entangled_noise():
    ds = IdentityDataset((3, 4))
    small = {"num_train": 200, "num_test": 100, "n_experiment": 1, "n_jobs": 1}
    ident = metrics.evaluate("strong_downstream", ds, torch.clone, seed=0, **small)
    assert ident["strong_downstream"] == ident["strong_downstream_200_strong_test"] == 1.0
    assert ident["strong_downstream_200_test"] == 1.0 and ident["strong_downstream_200_gap"] == 0.0
    assert set(ident) == {"strong_downstream"} | {
        f"strong_downstream_200_{s}" for s in ("test", "train", "strong_test", "strong_train", "gap")
    }

    def mixed(obs):  # each latent mixes both factors: fine in distribution, lost under the shift
        return torch.stack([obs[:, 0] + 4 * obs[:, 1], obs[:, 1] + 3 * obs[:, 0]], 1)

    ent = metrics.evaluate("strong_downstream", ds, mixed, seed=0, **small)
    assert ent["strong_downstream_200_test"] == 1.0 and ent["strong_downstream"] < 0.6
    assert ent["strong_downstream_200_gap"] > 0.4

    def noise(obs):
        g = torch.Generator().manual_seed(int(obs.sum()))
        return torch.randn(len(obs), 2, generator=g, dtype=obs.dtype)

    rand = metrics.evaluate("strong_downstream", ds, noise, seed=0, **small)
    assert rand["strong_downstream"] < 0.5


def test_variants_share_the_largest_sets_and_classifiers_with_dci():
    ds = IdentityDataset((3, 4))
    configs = {
        "dci_es": {"num_train": 120, "num_test": 60, "n_jobs": 1},
        "reduced_downstream": {"num_train": 120, "num_test": 60, "n_jobs": 1},
        "strong_downstream": {"num_train": 120, "num_test": 60, "n_experiment": 1, "n_jobs": 1},
    }
    together = metrics.evaluate_many(configs, ds, torch.clone, seed=4)
    separate = {}
    for name, params in configs.items():
        separate.update(metrics.evaluate(name, ds, torch.clone, seed=4, **params))
    assert together == separate
    assert together["strong_downstream_120_test"] == together["dci_es_informativeness_test"]


def test_bad_options_are_one_line_errors():
    x, f = np.zeros((5, 2)), np.zeros((5, 2), dtype=int)
    for call in (
        lambda: metrics.create("reduced_downstream", predictor="svm"),
        lambda: metrics.create("reduced_downstream", num_remove=0),
        lambda: metrics.create("reduced_downstream", num_sizes=0),
        lambda: metrics.create("strong_downstream", n_experiment=0),
        lambda: metrics.create("strong_downstream", num_test=0),
        lambda: metrics.score_arrays("reduced_downstream", x, f),
        lambda: metrics.score_arrays("reduced_downstream", x, f, x, f, num_remove=2),
        lambda: metrics.score_arrays("reduced_downstream", x, f[:, :1], x, f[:, :1]),
        lambda: metrics.score_arrays("strong_downstream", x, f, x, f),
        lambda: metrics.create("strong_downstream").score(x, f, x, f, np.random.default_rng(0)),
        lambda: metrics.evaluate("strong_downstream", IdentityDataset((3,)), torch.clone),
    ):
        with pytest.raises(BenchError) as err:
            call()
        assert "\n" not in str(err.value)
