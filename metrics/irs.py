"""IRS: Interventional Robustness Score (Suter et al. 2019), as disentanglement_lib computes it.

Like the reference, factors go through the 20-bin histogram discretiser first, so factors with
more than 20 values (dSprites' orientation and positions) are merged into 20 bins. Constant
latents are dropped. Unlike the reference, `irs_num_active_dims` is the number of kept latents
(the reference reports the sum of the kept code values there).
"""

from __future__ import annotations

import numpy as np

from disentbench.metrics.base import Metric
from disentbench.metrics.registry import register
from disentbench.metrics.utils import check_arrays, histogram_discretize


def irs_matrix(factors: np.ndarray, latents: np.ndarray, diff_quantile: float = 0.99) -> tuple[np.ndarray, np.ndarray]:
    """(IRS matrix (D, K), max deviation per latent) for discrete factors and non-constant latents."""
    max_dev = np.max(np.abs(latents - latents.mean(axis=0)), axis=0)
    cum = np.zeros((latents.shape[1], factors.shape[1]))
    for k in range(factors.shape[1]):
        values = np.unique(factors[:, k])
        for value in values:
            group = latents[factors[:, k] == value]
            cum[:, k] += np.percentile(np.abs(group - group.mean(axis=0)), q=diff_quantile * 100, axis=0)
        cum[:, k] /= len(values)
    return 1.0 - cum / max_dev[:, None], max_dev


def irs(codes: np.ndarray, factors: np.ndarray, diff_quantile: float = 0.99, num_bins: int = 20) -> dict[str, float]:
    codes, factors = check_arrays(codes, factors)
    active = codes.var(axis=0) > 0
    if not active.any():
        return {"irs": 0.0, "irs_num_active_dims": 0}
    matrix, max_dev = irs_matrix(histogram_discretize(factors, num_bins), codes[:, active], diff_quantile)
    per_latent = matrix.max(axis=1)
    score = np.average(per_latent, weights=max_dev) if max_dev.sum() > 0 else np.mean(per_latent)
    return {"irs": float(score), "irs_num_active_dims": int(active.sum())}


@register("irs")
class IRS(Metric):
    num_train = 10_000
    num_test = 0
    params = {"diff_quantile": 0.99, "num_bins": 20}

    def score(self, train_codes, train_factors, test_codes, test_factors, random_state):
        return irs(train_codes, train_factors, self.kwargs["diff_quantile"], self.kwargs["num_bins"])
