"""Unsupervised scores: closed forms for Gaussians, brute-force pairwise MI, dead latents."""

import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from disentbench import metrics
from disentbench.metrics.unsupervised import gaussian_total_correlation, gaussian_wasserstein_correlation
from disentbench.metrics.utils import histogram_discretize


def test_closed_forms():
    rho = 0.6
    cov = np.array([[1.0, rho], [rho, 1.0]])
    assert gaussian_total_correlation(cov) == pytest.approx(-0.5 * np.log(1 - rho**2))
    diag = np.diag([2.0, 0.5, 3.0])
    assert gaussian_total_correlation(diag) == pytest.approx(0.0, abs=1e-12)
    assert gaussian_wasserstein_correlation(diag) == pytest.approx(0.0, abs=1e-9)
    assert gaussian_wasserstein_correlation(cov) > 0


def test_independent_vs_correlated_codes_and_pairwise_mi_brute_force():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(2000, 3))
    independent = metrics.score_arrays("unsupervised", z, np.zeros((2000, 1), dtype=int))
    mixed = z @ np.array([[1.0, 0.8, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    correlated = metrics.score_arrays("unsupervised", mixed, np.zeros((2000, 1), dtype=int))
    assert independent["unsupervised"] < 0.01 < correlated["unsupervised"]
    assert independent["unsupervised_mutual_info"] < correlated["unsupervised_mutual_info"]
    binned = histogram_discretize(mixed, 20)
    pairs = [mutual_info_score(binned[:, i], binned[:, j]) for i in range(3) for j in range(3) if i != j]
    assert correlated["unsupervised_mutual_info"] == pytest.approx(np.mean(pairs), abs=1e-12)


def test_dead_and_duplicated_latents():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(500, 2))
    f = np.zeros((500, 1), dtype=int)
    dead = metrics.score_arrays("unsupervised", np.hstack([z, np.ones((500, 1))]), f)
    alive = metrics.score_arrays("unsupervised", z, f)
    assert all(np.isfinite(v) for v in dead.values())
    assert dead["unsupervised_num_active_dims"] == 2
    assert dead["unsupervised"] == pytest.approx(alive["unsupervised"])
    assert dead["unsupervised_wasserstein_correlation"] == pytest.approx(alive["unsupervised_wasserstein_correlation"])
    dup = metrics.score_arrays("unsupervised", z[:, [0, 0, 1]], f)
    assert dup["unsupervised"] > alive["unsupervised"] + 5 or dup["unsupervised"] == np.inf
    none = metrics.score_arrays("unsupervised", np.zeros((10, 2)), np.zeros((10, 1), dtype=int))
    assert none["unsupervised"] == 0.0 and none["unsupervised_num_active_dims"] == 0
