"""InfoMEC (Hsu et al., NeurIPS 2023, "Disentanglement via Latent Quantization"): InfoM
(modularity), InfoC (compactness) and InfoE (explicitness), from the authors' definitions.

- Normalised mutual information NMI[k, d] = I(factor k; latent d) / H(factor k), in [0, 1]. The
  latents are standardised and I is sklearn's k-nearest-neighbour estimator for a continuous
  variable against a discrete one (`mutual_info_classif`, 10 neighbours, seeded), as the authors
  compute it; `mi_estimator="histogram"` uses the reference library's 20-bin discrete MI instead
  (faster, and what MIG uses). H is the discrete entropy of the factor.
- Active latents: range > (largest range) / 20; the others are left out of InfoM and InfoC.
- InfoM: per active latent, max_k NMI / sum_k NMI (1 when it is about one factor, 1/K when spread
  evenly), averaged, rescaled from [1/K, 1] to [0, 1]. InfoC: per factor, max_d NMI / sum_d NMI
  over the active latents, averaged, rescaled from [1/L, 1] to [0, 1] (L active latents).
- InfoE: per factor, a multinomial logistic regression without penalty (balanced class weights,
  lbfgs, 100 iterations) on the standardised latents; InfoE_k = (H0 - CE) / H0, where CE is its
  in-sample cross-entropy and H0 that of the same regression on constant inputs (with balanced
  weights it predicts the uniform distribution: H0 = log of the number of classes); mean over
  factors.

Conventions where the definitions divide by zero: a latent (factor) with zero NMI to every factor
(latent) counts as spread evenly; with one factor InfoM is 1, with one active latent InfoC is 1;
with no active latent InfoM and InfoC are 0. Keys: `infomec` (= InfoM, the disentanglement
component), `infomec_compactness` (InfoC), `infomec_explicitness` (InfoE),
`infomec_num_active_dims`. Size: `num_train` 10,000 points (no test set: InfoE is in-sample, as
in the paper).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.feature_selection import mutual_info_classif
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from disentbench.errors import BenchError
from disentbench.metrics.base import Metric, estimator_seed
from disentbench.metrics.registry import register
from disentbench.metrics.utils import (
    check_arrays,
    discrete_entropy,
    discrete_mutual_info,
    histogram_discretize,
    one_blas_thread,
    quiet_estimators,
    resolve_jobs,
)

MI_ESTIMATORS = ("ksg", "histogram")


def standardise_columns(codes: np.ndarray) -> np.ndarray:
    """(x - mean) / std per column (ddof 0); a constant column stays 0 (StandardScaler's rule)."""
    std = codes.std(axis=0)
    return (codes - codes.mean(axis=0)) / np.where(std > 0, std, 1.0)


def normalised_mutual_information(
    codes: np.ndarray,
    factors: np.ndarray,
    estimator: str = "ksg",
    seed: int = 0,
    num_bins: int = 20,
    n_jobs: int | None = 1,
) -> np.ndarray:
    """NMI (K, D): I(factor k; latent d) / H(factor k); a constant factor's row is 0."""
    if estimator not in MI_ESTIMATORS:
        raise BenchError(f"infomec: mi_estimator {estimator!r} is unknown; choose one of: {', '.join(MI_ESTIMATORS)}")
    entropy = discrete_entropy(factors)
    if estimator == "histogram":
        mi = discrete_mutual_info(histogram_discretize(codes, num_bins), factors).T
    else:
        z = standardise_columns(codes)

        def one(k: int) -> np.ndarray:
            if entropy[k] <= 0:
                return np.zeros(z.shape[1])
            return mutual_info_classif(z, factors[:, k], discrete_features=False, n_neighbors=10, random_state=seed)

        jobs = resolve_jobs(n_jobs, factors.shape[1])
        if jobs == 1:
            mi = np.stack([one(k) for k in range(factors.shape[1])])
        else:
            with ThreadPoolExecutor(jobs) as pool:
                mi = np.stack(list(pool.map(one, range(factors.shape[1]))))
    safe = np.where(entropy > 0, entropy, 1.0)
    return np.where(entropy[:, None] > 0, mi / safe[:, None], 0.0)


def active_latents(codes: np.ndarray) -> np.ndarray:
    """range > (largest range) / 20 (all False when every latent is constant)."""
    ranges = codes.max(axis=0) - codes.min(axis=0)
    top = ranges.max() if ranges.size else 0.0
    return ranges > top / 20 if top > 0 else np.zeros(codes.shape[1], dtype=bool)


def _concentration(rows: np.ndarray) -> np.ndarray:
    """max / sum per row; a zero row counts as spread evenly (1 / its length)."""
    total = rows.sum(axis=1)
    even = 1.0 / rows.shape[1]
    return np.where(total > 0, rows.max(axis=1) / np.where(total > 0, total, 1.0), even)


def infom_infoc(nmi: np.ndarray, active: np.ndarray) -> tuple[float, float]:
    """(InfoM, InfoC) from NMI (K, D) and the active-latent mask."""
    pruned = np.clip(np.asarray(nmi, dtype=np.float64)[:, active], 0.0, None)
    k, l_active = pruned.shape
    if l_active == 0:
        return 0.0, 0.0
    infom = 1.0 if k == 1 else (np.mean(_concentration(pruned.T)) - 1 / k) / (1 - 1 / k)
    infoc = 1.0 if l_active == 1 else (np.mean(_concentration(pruned)) - 1 / l_active) / (1 - 1 / l_active)
    return float(infom), float(infoc)


def infoe(codes: np.ndarray, factors: np.ndarray, n_jobs: int | None = 1) -> float:
    """Mean over factors of (H0 - CE) / H0 for the unpenalised balanced logistic regression."""
    z = standardise_columns(codes)

    def one(k: int) -> float | None:
        classes, y = np.unique(factors[:, k], return_inverse=True)
        if len(classes) < 2:
            return None  # nothing to predict
        model = LogisticRegression(C=np.inf, class_weight="balanced", max_iter=100)
        with quiet_estimators():
            model.fit(z, y)
        ce = log_loss(y, model.predict_proba(z), labels=np.arange(len(classes)))
        h0 = np.log(len(classes))
        return float((h0 - ce) / h0)

    jobs = resolve_jobs(n_jobs, factors.shape[1])
    with one_blas_thread():
        if jobs == 1:
            values = [one(k) for k in range(factors.shape[1])]
        else:
            with ThreadPoolExecutor(jobs) as pool:
                values = list(pool.map(one, range(factors.shape[1])))
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else 0.0


def infomec(
    codes, factors, seed: int = 0, mi_estimator: str = "ksg", num_bins: int = 20, n_jobs: int | None = 1
) -> dict[str, float]:
    """InfoM, InfoC, InfoE of codes (N, D) against integer factors (N, K)."""
    codes, factors = check_arrays(codes, factors)
    nmi = normalised_mutual_information(codes, factors, mi_estimator, seed, num_bins, n_jobs)
    active = active_latents(codes)
    m, c = infom_infoc(nmi, active)
    return {
        "infomec": m,
        "infomec_compactness": c,
        "infomec_explicitness": infoe(codes, factors, n_jobs),
        "infomec_num_active_dims": int(active.sum()),
    }


@register("infomec")
class InfoMEC(Metric):
    num_train = 10_000
    num_test = 0
    params = {"mi_estimator": "ksg", "num_bins": 20, "n_jobs": -1}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.kwargs["mi_estimator"] not in MI_ESTIMATORS:
            raise BenchError(
                f"infomec: mi_estimator {self.kwargs['mi_estimator']!r} is unknown; "
                f"choose one of: {', '.join(MI_ESTIMATORS)}"
            )

    def score(self, train_codes, train_factors, test_codes, test_factors, random_state):
        return infomec(
            train_codes,
            train_factors,
            seed=estimator_seed(random_state),
            mi_estimator=self.kwargs["mi_estimator"],
            num_bins=int(self.kwargs["num_bins"]),
            n_jobs=self.kwargs["n_jobs"],
        )
