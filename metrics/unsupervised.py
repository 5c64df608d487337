"""Unsupervised scores of disentanglement_lib (no labels): Gaussian total correlation (headline),
Gaussian Wasserstein correlation (and its trace-normalised form), mean pairwise discrete MI.

Constant latents: the reference takes log(0) there and returns NaN; here the Gaussian scores are
computed on the non-constant latents (for the Wasserstein correlation this is the same number,
a constant latent contributes nothing), and `unsupervised_num_active_dims` counts them. Exactly
collinear latents have an infinite Gaussian total correlation, reported as inf.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from disentbench.metrics.base import Metric
from disentbench.metrics.registry import register
from disentbench.metrics.utils import discrete_mutual_info, histogram_discretize


def gaussian_total_correlation(cov: np.ndarray) -> float:
    """0.5 (sum log diag C - log det C): the KL between N(0, C) and N(0, diag C)."""
    sign, logdet = np.linalg.slogdet(cov)
    if sign <= 0:
        return float("inf")
    return float(0.5 * (np.sum(np.log(np.diag(cov))) - logdet))


def gaussian_wasserstein_correlation(cov: np.ndarray) -> float:
    """2 tr C - 2 tr sqrt(C diag C): the squared 2-Wasserstein distance from the product of marginals."""
    root = scipy.linalg.sqrtm(cov * np.diag(cov)[:, None])
    return float(2 * np.trace(cov) - 2 * np.trace(np.real(root)))


def mean_pairwise_mi(codes: np.ndarray, num_bins: int = 20) -> float:
    """Mean discrete MI over ordered pairs of distinct latents (0 with a single latent)."""
    d = codes.shape[1]
    if d < 2:
        return 0.0
    discrete = histogram_discretize(codes, num_bins)
    mi = discrete_mutual_info(discrete, discrete)
    np.fill_diagonal(mi, 0.0)
    return float(mi.sum() / (d * d - d))


def unsupervised_scores(codes: np.ndarray, num_bins: int = 20) -> dict[str, float]:
    from disentbench.errors import BenchError

    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or codes.shape[0] < 2 or not np.isfinite(codes).all():
        raise BenchError("unsupervised needs finite codes of shape (N, D) with N >= 2")
    active = codes.var(axis=0) > 0
    if active.any():
        cov = np.atleast_2d(np.cov(codes[:, active], rowvar=False))
        tc, wc = gaussian_total_correlation(cov), gaussian_wasserstein_correlation(cov)
        wc_norm = wc / float(np.trace(cov))
    else:
        tc = wc = wc_norm = 0.0
    return {
        "unsupervised": tc,
        "unsupervised_wasserstein_correlation": wc,
        "unsupervised_wasserstein_correlation_norm": wc_norm,
        "unsupervised_mutual_info": mean_pairwise_mi(codes, num_bins),
        "unsupervised_num_active_dims": int(active.sum()),
    }


@register("unsupervised")
class Unsupervised(Metric):
    num_train = 10_000
    num_test = 0
    params = {"num_bins": 20}

    def score(self, train_codes, train_factors, test_codes, test_factors, random_state):
        return unsupervised_scores(train_codes, self.kwargs["num_bins"])
