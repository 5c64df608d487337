"""MIG: known answers, and the discrete MI checked against a brute-force count and sklearn."""

import itertools

import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from disentbench import metrics
from disentbench.metrics.mig import mutual_information_gap
from disentbench.metrics.utils import discrete_entropy, discrete_mutual_info, histogram_discretize, mutual_info


def full_grid(sizes, repeats=1):
    """Every factor combination `repeats` times: independent factors with exactly zero sample MI."""
    grid = np.array(list(itertools.product(*[range(s) for s in sizes])), dtype=np.int64)
    return np.tile(grid, (repeats, 1))


def brute_force_mi(a, b):
    n = len(a)
    total = 0.0
    for x in set(a.tolist()):
        for y in set(b.tolist()):
            nxy = np.sum((a == x) & (b == y))
            if nxy:
                total += nxy / n * np.log(nxy * n / (np.sum(a == x) * np.sum(b == y)))
    return total


def test_mi_matches_brute_force_count_and_sklearn():
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.integers(0, 4, 60), rng.integers(0, 6, 60)
        b[:20] = a[:20]  # some dependence
        assert mutual_info(a, b) == pytest.approx(brute_force_mi(a, b), abs=1e-12)
        assert mutual_info(a, b) == pytest.approx(mutual_info_score(a, b), abs=1e-12)
    codes, factors = rng.integers(1, 21, (200, 3)), rng.integers(0, 5, (200, 2))
    mi = discrete_mutual_info(codes, factors)
    expected = [[mutual_info_score(factors[:, k], codes[:, d]) for k in range(2)] for d in range(3)]
    np.testing.assert_allclose(mi, expected, atol=1e-12)
    np.testing.assert_allclose(discrete_entropy(factors), [mutual_info_score(f, f) for f in factors.T], atol=1e-12)


def test_histogram_discretiser_is_numpy_histogram_then_digitize():
    codes = np.random.default_rng(1).normal(size=(100, 3))
    out = histogram_discretize(codes, 20)
    for d in range(3):
        edges = np.histogram(codes[:, d], 20)[1]
        np.testing.assert_array_equal(out[:, d], np.digitize(codes[:, d], edges[:-1]))
    assert out.min() == 1 and out.max() == 20


def test_perfect_code_scores_one_and_continuous_map_gives_the_same():
    factors = full_grid((3, 4, 5), repeats=3)
    assert mutual_information_gap(factors.astype(float), factors)["mig"] == pytest.approx(1.0, abs=1e-12)
    continuous = np.exp(0.3 * factors) * np.array([1.0, -2.0, 0.5]) + 7.0  # monotone, per factor
    assert mutual_information_gap(continuous, factors)["mig"] == pytest.approx(1.0, abs=1e-12)


def test_noise_scores_near_zero():
    rng = np.random.default_rng(2)
    factors = rng.integers(0, 4, (3000, 3))
    assert mutual_information_gap(rng.normal(size=(3000, 5)), factors)["mig"] < 0.05


def test_random_rotation_scores_lower_than_the_perfect_code():
    rng = np.random.default_rng(3)
    factors = rng.integers(0, 10, (3000, 3))
    codes = factors + 0.1 * rng.normal(size=factors.shape)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    perfect = mutual_information_gap(codes, factors)["mig"]
    assert perfect > 0.8
    assert mutual_information_gap(codes @ q, factors)["mig"] < perfect - 0.2


def test_duplicated_latent_does_not_raise_and_dead_latent_gives_no_nan():
    factors = full_grid((3, 4), repeats=5)
    codes = factors.astype(float)
    assert mutual_information_gap(codes[:, [0, 0, 1]], factors)["mig"] <= mutual_information_gap(codes, factors)["mig"]
    dead = np.hstack([codes, np.zeros((len(codes), 1))])
    result = mutual_information_gap(dead, factors)["mig"]
    assert np.isfinite(result) and result == pytest.approx(1.0)


def test_constant_factor_is_left_out_not_nan():
    factors = full_grid((3, 4))
    factors = np.hstack([factors, np.zeros((len(factors), 1), dtype=np.int64)])
    assert mutual_information_gap(factors.astype(float), factors)["mig"] == pytest.approx(1.0)


def test_fixed_seed_gives_identical_numbers_twice():
    rng = np.random.default_rng(4)
    codes, factors = rng.normal(size=(500, 4)), rng.integers(0, 5, (500, 2))
    assert metrics.score_arrays("mig", codes, factors, seed=3) == metrics.score_arrays("mig", codes, factors, seed=3)
