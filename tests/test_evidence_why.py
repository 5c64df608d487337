"""`bench.evidence.why`: what each latent holds, on representations with known answers."""

from __future__ import annotations

import numpy as np

from disentbench.bench.evidence.why import factor_report, render
from disentbench.metrics.mig import mutual_information_gap

NAMES = ["a", "b"]


def _factors(n: int = 4000) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.stack([rng.integers(0, 10, n), rng.integers(0, 10, n)], axis=1)


def test_an_axis_aligned_code_puts_each_factor_in_its_own_latent():
    f = _factors()
    noise = np.random.default_rng(1).normal(size=(len(f), 1))
    mu = np.concatenate([f.astype(float), noise], axis=1)  # z0 = a, z1 = b, z2 = noise
    report = factor_report(mu, np.zeros_like(mu), f, NAMES)
    (a, b) = report["factors"]
    assert (a["top_latent"], b["top_latent"]) == (0, 1)
    assert a["top_mi"] > 0.99 and a["gap"] > 0.95 and b["gap"] > 0.95
    # the gaps are MIG's terms: their mean is the metric itself
    assert np.isclose(np.mean([x["gap"] for x in report["factors"]]), mutual_information_gap(mu, f)["mig"])
    assert "MIG (mean gap)" in render(report, NAMES)


def test_a_rotated_pair_splits_both_factors_and_the_kl_finds_the_inactive_latent():
    f = _factors().astype(float)
    mu = np.stack([f[:, 0] + f[:, 1], f[:, 0] - f[:, 1], np.zeros(len(f))], axis=1)
    logvar = np.zeros_like(mu)
    report = factor_report(mu / 5, logvar, f.astype(int), NAMES)
    for x in report["factors"]:
        assert x["second_mi"] > 0.15 and x["gap"] < 0.05  # held equally by two latents: no gap
    kl = report["kl_per_latent"]
    assert kl[2] == 0.0 and min(kl[:2]) > 0.1  # the constant latent at the prior's mean carries nothing
