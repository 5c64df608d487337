"""SAP: single-latent accuracies equal an independent LinearSVC fit; known answers."""

import numpy as np
import pytest
from sklearn.svm import LinearSVC

from disentbench import metrics
from disentbench.metrics.sap import sap, score_matrix, top_two_gap


def binary_data(seed, n, k=3, noise=0.05):
    rng = np.random.default_rng(seed)
    factors = rng.integers(0, 2, (n, k))
    return factors + noise * rng.normal(size=factors.shape), factors


def test_score_matrix_equals_independent_linear_svc():
    (x, f), (xt, ft) = binary_data(0, 300, noise=0.8), binary_data(1, 150, noise=0.8)
    f[:, 1] = (x[:, 1] > 0.3).astype(int) + (x[:, 2] > 0.9)  # a three-class factor too
    ft[:, 1] = (xt[:, 1] > 0.3).astype(int) + (xt[:, 2] > 0.9)
    s = score_matrix(x, f, xt, ft, seed=11, n_jobs=1)
    for d, k in [(0, 0), (2, 1), (1, 2)]:
        svc = LinearSVC(C=0.01, class_weight="balanced", random_state=11).fit(x[:, [d]], f[:, k])
        assert s[d, k] == np.mean(svc.predict(xt[:, [d]]) == ft[:, k])
    np.testing.assert_array_equal(s, score_matrix(x, f, xt, ft, seed=11, n_jobs=2))


def test_top_two_gap():
    assert top_two_gap(np.array([[1.0, 0.2], [0.5, 0.9], [0.4, 0.1]])) == pytest.approx((0.5 + 0.7) / 2)
    assert top_two_gap(np.array([[0.7, 0.3]])) == pytest.approx(0.5)


def test_perfect_noise_rotation_duplicate_dead():
    (x, f), (xt, ft) = binary_data(2, 400), binary_data(3, 200)
    perfect = sap(x, f, xt, ft)["sap"]
    assert perfect > 0.45  # the other latents predict a balanced binary factor at about chance
    rng = np.random.default_rng(4)
    assert sap(rng.normal(size=x.shape), f, rng.normal(size=xt.shape), ft)["sap"] < 0.1
    s2, s3, s6 = np.sqrt([2.0, 3.0, 6.0])
    q = np.array([[1 / s3, 1 / s2, 1 / s6], [1 / s3, -1 / s2, 1 / s6], [1 / s3, 0, -2 / s6]])  # mixes all
    assert sap(x @ q, f, xt @ q, ft)["sap"] < perfect - 0.1
    assert sap(x[:, [0, 0, 1, 2]], f, xt[:, [0, 0, 1, 2]], ft)["sap"] <= perfect
    dead = sap(np.hstack([x, np.zeros((400, 1))]), f, np.hstack([xt, np.zeros((200, 1))]), ft)["sap"]
    assert np.isfinite(dead) and dead <= perfect + 1e-12  # a dead latent can only be a runner-up


def test_fixed_seed_gives_identical_numbers_twice():
    (x, f), (xt, ft) = binary_data(5, 200, noise=1.0), binary_data(6, 100, noise=1.0)
    assert metrics.score_arrays("sap", x, f, xt, ft, seed=2) == metrics.score_arrays("sap", x, f, xt, ft, seed=2)


def test_continuous_form_equals_brute_force_least_squares_r2():
    rng = np.random.default_rng(7)
    f = rng.uniform(size=(300, 3))
    x = np.column_stack([2 * f[:, 0] + 0.1 * rng.normal(size=300), rng.normal(size=300), f[:, 2] ** 3])
    r2 = np.zeros((3, 3))
    for d in range(3):
        for k in range(3):
            slope, intercept = np.polyfit(x[:, d], f[:, k], 1)
            residual = f[:, k] - (slope * x[:, d] + intercept)
            r2[d, k] = 1 - residual @ residual / np.sum((f[:, k] - f[:, k].mean()) ** 2)
    from disentbench.metrics.sap import r2_matrix

    np.testing.assert_allclose(r2_matrix(x, f), r2, atol=1e-10)
    ordered = np.sort(r2, axis=0)
    expected = np.mean(ordered[-1] - ordered[-2])
    assert sap(x, f, x[:10], f[:10], continuous_factors=True)["sap"] == pytest.approx(expected, abs=1e-10)


def test_continuous_form_known_answers_perfect_noise_dead():
    rng = np.random.default_rng(8)
    f = rng.uniform(size=(500, 2))
    perfect = sap(f.copy(), f, f[:5], f[:5], continuous_factors=True)["sap"]
    assert perfect == pytest.approx(1.0, abs=0.02)  # R^2 = 1 on its own latent, ~0 on the other
    noise = sap(rng.normal(size=(500, 2)), f, f[:5], f[:5], continuous_factors=True)["sap"]
    assert noise < 0.02
    dead = np.column_stack([f, np.zeros(500)])
    with np.errstate(all="raise"):  # a dead latent and a constant factor divide by nothing
        assert sap(dead, f, dead[:5], f[:5], continuous_factors=True)["sap"] == pytest.approx(perfect)
        const = np.column_stack([f, np.ones(500)])
        assert np.isfinite(sap(f, const, f[:5], const[:5], continuous_factors=True)["sap"])


def test_continuous_form_through_the_registry():
    rng = np.random.default_rng(9)
    f = rng.uniform(size=(200, 2))
    got = metrics.score_arrays("sap", f, f, f[:50], f[:50], seed=0, continuous_factors=True)["sap"]
    assert got == pytest.approx(sap(f, f, f[:50], f[:50], continuous_factors=True)["sap"])
