"""UDR: known answers (same model up to permutation and sign, independent models, uninformative
latents), an independent brute-force computation of the reference's procedure, and the run-level
registration (listed, refused per cell, skipped by evaluate_many)."""

import warnings

import numpy as np
import pytest
import scipy.stats
import torch
from sklearn.linear_model import Lasso

from disentbench import metrics
from disentbench.bench.errors import BenchError
from disentbench.metrics.udr import gather_model_codes, gaussian_kl, relative_strength, udr_scores
from tests.helpers import IdentityDataset


def permuted_copy(codes: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    perm = rng.permutation(codes.shape[1])
    signs = np.where(rng.random(codes.shape[1]) < 0.5, -1.0, 1.0)
    return codes[:, perm] * signs * 3.0 + 1.0  # scale and offset: standardisation removes them


def test_relative_strength_known_answers():
    assert relative_strength(np.eye(3)) == 1.0
    assert relative_strength(np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])) == pytest.approx(2 / 3)
    assert relative_strength(np.ones((3, 3))) == pytest.approx(1 / 3)
    assert relative_strength(np.zeros((3, 3))) == 0.0
    assert relative_strength(np.zeros((2, 0))) == 0.0  # no informative latent left (the reference crashes)
    # the paper pools both sums over all d_i + d_j latents; the reference averages each sum first
    r = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # 3 latents of i, 2 of j
    assert relative_strength(r) == pytest.approx((1.0 + 2 / 3) / 2)
    assert relative_strength(r, pooling="paper") == pytest.approx(4 / 5)


def grid_codes() -> np.ndarray:
    """Every combination of 5 latents with 4 values each: latents exactly uncorrelated (also in rank),
    as the factors of a full grid are."""
    return np.stack(np.unravel_index(np.arange(4**5), (4,) * 5), axis=1).astype(np.float64)


def test_same_model_up_to_permutation_and_sign_scores_one():
    codes = grid_codes()
    models = [codes, permuted_copy(codes, 1), permuted_copy(codes, 2)]
    spearman = udr_scores(models, correlation="spearman")["udr"]
    np.testing.assert_allclose(spearman, 1.0, atol=1e-12)
    # Lasso(alpha=0.1) on unit-variance uncorrelated codes soft-thresholds the correlations: the
    # matching coefficient is 1 - 0.1, the others 0, so every UDR_ij is 0.9**2 / 0.9
    lasso = udr_scores(models, correlation="lasso")["udr"]
    np.testing.assert_allclose(lasso, 0.9, atol=1e-6)
    # sampled latents are only nearly uncorrelated: their small correlations lower the score a little
    sampled = np.random.default_rng(0).normal(size=(1000, 5))
    near = udr_scores([sampled, permuted_copy(sampled, 1)], correlation="spearman")["udr"]
    assert np.all((near > 0.8) & (near < 1.0))


def test_independent_models_score_near_zero():
    rng = np.random.default_rng(3)
    models = [rng.normal(size=(1000, 5)) for _ in range(3)]
    assert np.all(udr_scores(models, correlation="lasso")["udr"] == 0.0)  # every coefficient is shrunk to 0
    assert np.all(udr_scores(models, correlation="spearman")["udr"] < 0.05)
    entangled = [models[0], models[0] @ scipy.stats.special_ortho_group.rvs(5, random_state=4)]
    assert udr_scores(entangled, correlation="spearman")["udr"][0] < 0.7  # a rotation is not a permutation


def test_uninformative_latents_are_filtered_by_kl():
    """The reference's own check: one informative latent, the rest noise with zero KL."""
    rng = np.random.default_rng(5)
    signal = rng.normal(size=(1000, 1))
    models = [np.hstack([signal, rng.normal(size=(1000, 4))]) for _ in range(2)]
    kls = [np.array([1.0, 0, 0, 0, 0])] * 2
    assert np.all(udr_scores(models, kls, filter_low_kl=False)["udr"] < 0.2)
    assert np.all(udr_scores(models, kls, filter_low_kl=True)["udr"] > 0.8)
    # without KLs the informative latents are the ones whose std reaches 0.05
    quiet = [np.hstack([signal, 1e-3 * rng.normal(size=(1000, 4))]) for _ in range(2)]
    result = udr_scores(quiet)
    assert [mask.tolist() for mask in result["informative"]] == [[True, False, False, False, False]] * 2


def brute_force_udr(codes, kls, correlation, kl_threshold=0.01):
    """The reference's procedure, written out independently with scikit-learn and scipy."""
    reps, masks = [], []
    for c, kl in zip(codes, kls):
        z = np.empty_like(c)
        for d in range(c.shape[1]):
            sd = c[:, d].std()
            z[:, d] = (c[:, d] - c[:, d].mean()) / (sd if sd > 0 else 1.0)
            if not kl[d] > 0.01:
                z[:, d] = 0.0
        reps.append(z)
        masks.append(kl > kl_threshold)
    m = len(codes)
    pair = np.zeros((m, m))
    for i in range(m):
        for j in range(m):
            if i == j:
                continue
            if correlation == "lasso":
                r = np.abs(Lasso(alpha=0.1).fit(reps[i], reps[j]).coef_).T
            else:
                with warnings.catch_warnings():  # zeroed latents are constant: NaN, cut by the mask
                    warnings.simplefilter("ignore")
                    r = np.array(
                        [
                            [abs(scipy.stats.spearmanr(reps[i][:, a], reps[j][:, b])[0]) for b in range(5)]
                            for a in range(5)
                        ]
                    )
            r = r[masks[i]][:, masks[j]]
            col = [r[:, b].max() ** 2 / r[:, b].sum() if r[:, b].sum() > 0 else 0.0 for b in range(r.shape[1])]
            row = [r[a].max() ** 2 / r[a].sum() if r[a].sum() > 0 else 0.0 for a in range(r.shape[0])]
            pair[i, j] = (np.mean(col) + np.mean(row)) / 2
    return pair, np.array([np.median([pair[i, j] for i in range(m) if i != j]) for j in range(m)])


@pytest.mark.parametrize("correlation", ["lasso", "spearman"])
def test_equals_brute_force_reference_procedure(correlation):
    rng = np.random.default_rng(6)
    base = rng.normal(size=(400, 5))
    codes = [
        base @ np.diag([1, 1, 1, 0.5, 0.001]) + 0.3 * rng.normal(size=(400, 5)),
        permuted_copy(base, 7) + 0.5 * rng.normal(size=(400, 5)),
        np.tanh(base) @ rng.normal(size=(5, 5)),
        rng.normal(size=(400, 5)),
    ]
    kls = [np.array([2.0, 1.0, 0.5, 0.02, 0.001]), np.full(5, 0.3), np.array([1, 1, 0.005, 1, 1.0]), np.full(5, 1.0)]
    pair, scores = brute_force_udr(codes, kls, correlation)
    got = udr_scores(codes, kls, correlation=correlation)
    np.testing.assert_allclose(got["pairwise"], pair, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got["udr"], scores, rtol=1e-10, atol=1e-12)


def test_gaussian_kl():
    mean = np.array([[0.0, 1.0], [0.0, -1.0]])
    logvar = np.array([[0.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(gaussian_kl(mean, logvar), [0.0, 0.5])
    np.testing.assert_allclose(gaussian_kl(np.zeros((1, 1)), np.log([[0.25]])), [0.5 * (0.25 - np.log(0.25) - 1)])


def test_one_model_is_a_clear_one_line_error():
    with pytest.raises(BenchError, match="at least 2 models") as err:
        udr_scores([np.zeros((10, 3))])
    assert "\n" not in str(err.value)
    for bad in (
        lambda: udr_scores([np.zeros((10, 3)), np.zeros((9, 3))]),
        lambda: udr_scores([np.ones((10, 2))] * 2, kls=[np.ones(2)]),
        lambda: udr_scores([np.ones((10, 2))] * 2, correlation="pearson"),
        lambda: metrics.create("udr", pooling="mean"),
    ):
        with pytest.raises(BenchError) as err:
            bad()
        assert "\n" not in str(err.value)


def test_registered_as_run_level_and_skipped_per_cell():
    assert "udr" in metrics.list_metrics()
    udr = metrics.create("udr")
    assert udr.run_level and udr.num_train == 1000
    for call in (
        lambda: metrics.score_arrays("udr", np.zeros((5, 2)), np.zeros((5, 1), dtype=int)),
        lambda: metrics.evaluate("udr", IdentityDataset((2, 3)), lambda o: o),
    ):
        with pytest.raises(BenchError, match="run-level") as err:
            call()
        assert "\n" not in str(err.value)
    scores = metrics.evaluate_many({"udr": {}, "mig": {"num_train": 50}}, IdentityDataset((2, 3)), torch.clone)
    assert "mig" in scores and not any(k.startswith("udr") for k in scores)
    codes = np.random.default_rng(8).normal(size=(300, 3))
    np.testing.assert_allclose(udr.score_models([codes, codes[:, ::-1]])["udr"], 0.9, atol=0.02)


def test_gather_model_codes_encodes_the_same_images_for_every_model():
    ds = IdentityDataset((4, 5, 3))
    perm = [2, 0, 1]
    encoders = [torch.clone, lambda obs: -obs[:, perm]]
    posteriors = [lambda obs: (obs, torch.zeros_like(obs)), lambda obs: (-obs[:, perm], torch.zeros_like(obs))]
    codes, kls = gather_model_codes(ds, encoders, num_points=200, seed=3, posteriors=posteriors)
    np.testing.assert_array_equal(codes[1], -codes[0][:, perm])
    np.testing.assert_allclose(kls[0], 0.5 * np.mean(codes[0] ** 2, axis=0))
    np.testing.assert_allclose(kls[1], kls[0][perm])
    assert gather_model_codes(ds, encoders, num_points=10)[1] is None
    assert np.all(udr_scores(codes, kls, correlation="spearman")["udr"] > 0.8)
