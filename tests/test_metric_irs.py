"""IRS: known answers, a brute-force recomputation, real active-dimension counts."""

import numpy as np
import pytest

from disentbench import metrics
from disentbench.metrics.irs import irs
from disentbench.metrics.utils import histogram_discretize


def brute_force_irs(codes, factors, q=0.99):
    active = [d for d in range(codes.shape[1]) if np.var(codes[:, d]) > 0]
    binned = histogram_discretize(factors, 20)
    per_latent, weights = [], []
    for d in active:
        z = codes[:, d]
        max_dev = np.max(np.abs(z - z.mean()))
        best = -np.inf
        for k in range(factors.shape[1]):
            devs = [
                np.percentile(np.abs(z[binned[:, k] == v] - z[binned[:, k] == v].mean()), q * 100)
                for v in np.unique(binned[:, k])
            ]
            best = max(best, 1 - np.mean(devs) / max_dev)
        per_latent.append(best)
        weights.append(max_dev)
    return float(np.sum(np.array(per_latent) * weights) / np.sum(weights))


def test_perfect_code_scores_one_and_noise_lower():
    rng = np.random.default_rng(0)
    f = rng.integers(0, 6, (1000, 3))
    assert irs(f.astype(float), f)["irs"] == pytest.approx(1.0)
    assert irs(rng.normal(size=(1000, 3)), f)["irs"] < 0.6


def test_matches_brute_force_including_merged_factor():
    rng = np.random.default_rng(1)
    f = rng.integers(0, np.array([4, 40]), (800, 2))  # 40 values are merged into 20 bins
    codes = np.column_stack(
        [f[:, 0] + 0.3 * rng.normal(size=800), f[:, 1] + rng.normal(size=800), rng.normal(size=800)]
    )
    assert irs(codes, f)["irs"] == pytest.approx(brute_force_irs(codes, f), abs=1e-12)
    assert irs(f[:, 1:].astype(float), f[:, 1:])["irs"] < 1.0  # merging bins leaves spread inside a bin


def test_dead_latents_are_dropped_and_counted():
    rng = np.random.default_rng(2)
    f = rng.integers(0, 5, (500, 2))
    codes = np.column_stack([f[:, 0] + 0.1 * rng.normal(size=500), np.full(500, 3.0), f[:, 1].astype(float)])
    scores = irs(codes, f)
    assert scores["irs_num_active_dims"] == 2 and isinstance(scores["irs_num_active_dims"], int)
    assert scores["irs"] == pytest.approx(irs(codes[:, [0, 2]], f)["irs"])
    assert irs(np.zeros((500, 2)), f) == {"irs": 0.0, "irs_num_active_dims": 0}


def test_duplicate_and_rotation_and_seed():
    rng = np.random.default_rng(3)
    f = rng.integers(0, 8, (1000, 2))
    codes = f + 0.2 * rng.normal(size=f.shape)
    base = irs(codes, f)["irs"]
    assert irs(codes[:, [0, 0, 1]], f)["irs"] <= base + 1e-12
    q = np.array([[np.cos(0.7), -np.sin(0.7)], [np.sin(0.7), np.cos(0.7)]])
    assert irs(codes @ q, f)["irs"] < base - 0.1
    assert metrics.score_arrays("irs", codes, f, seed=1) == metrics.score_arrays("irs", codes, f, seed=1)
