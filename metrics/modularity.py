"""Modularity and Explicitness (Ridgeway & Mozer 2018), as disentanglement_lib computes them.

Modularity from the discrete MI matrix of the train codes; explicitness from one
LogisticRegression per factor on standardised codes (macro one-vs-rest ROC-AUC on the test set).
Departures from the reference, where it breaks: a constant latent is standardised by 1 instead of
dividing by its zero std (the reference returns NaN), factors with one class in the train set and
classes absent from an evaluation set are left out of the averages instead of crashing.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from disentbench.metrics.base import Metric, estimator_seed
from disentbench.metrics.registry import register
from disentbench.metrics.utils import (
    check_arrays,
    check_pair,
    discrete_mutual_info,
    histogram_discretize,
    one_blas_thread,
    quiet_estimators,
    resolve_jobs,
)


def modularity_from_mi(mi: np.ndarray) -> float:
    """Mean over latents of 1 - (sum(s) - max(s)) / (max(s) (K - 1)), s = MI[d, :]^2; 0 where max(s) = 0."""
    squared = np.square(np.asarray(mi, dtype=np.float64))
    top = squared.max(axis=1)
    k = squared.shape[1]
    scores = np.zeros(squared.shape[0])
    alive = top > 0
    if k == 1:
        scores[alive] = 1.0
    else:
        scores[alive] = 1.0 - (squared[alive].sum(axis=1) - top[alive]) / (top[alive] * (k - 1))
    return float(np.mean(scores))


def modularity(codes: np.ndarray, factors: np.ndarray, num_bins: int = 20) -> float:
    codes, factors = check_arrays(codes, factors)
    return modularity_from_mi(discrete_mutual_info(histogram_discretize(codes, num_bins), factors))


def standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x - train mean) / train std (ddof 0); a constant latent keeps std 1, so it stays 0, not NaN."""
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (train - mean) / std, (test - mean) / std


def macro_auc(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """Macro one-vs-rest ROC-AUC over the classes with both positives and negatives in `y`."""
    aucs = []
    for j, c in enumerate(classes):
        positive = y == c
        if positive.any() and not positive.all():
            aucs.append(roc_auc_score(positive, proba[:, j]))
    return float(np.mean(aucs)) if aucs else float("nan")


def explicitness_per_factor(x_train, y_train, x_test, y_test, seed: int) -> tuple[float, float] | None:
    """(train AUC, test AUC) of LogisticRegression (library defaults); None if one class only."""
    classes = np.unique(y_train)
    if len(classes) < 2:
        return None
    with quiet_estimators():
        model = LogisticRegression(random_state=seed).fit(x_train, y_train)
    return (
        macro_auc(y_train, model.predict_proba(x_train), model.classes_),
        macro_auc(y_test, model.predict_proba(x_test), model.classes_),
    )


def explicitness(
    train_codes, train_factors, test_codes, test_factors, seed: int = 0, n_jobs: int | None = 1
) -> tuple[float, float]:
    """Mean over factors of the train and test macro ROC-AUC (factors run in threads)."""
    x_train, x_test = standardise(train_codes, test_codes)
    fit = lambda k: explicitness_per_factor(x_train, train_factors[:, k], x_test, test_factors[:, k], seed)  # noqa: E731
    num_factors = train_factors.shape[1]
    jobs = resolve_jobs(n_jobs, num_factors)
    with one_blas_thread():  # tiny products, factors fitted in parallel threads
        if jobs == 1:
            results = [fit(k) for k in range(num_factors)]
        else:
            with ThreadPoolExecutor(jobs) as pool:
                results = list(pool.map(fit, range(num_factors)))
    pairs = np.array([r for r in results if r is not None], dtype=np.float64).reshape(-1, 2)
    if pairs.size == 0:
        return 0.0, 0.0
    means = [pairs[:, j][np.isfinite(pairs[:, j])] for j in (0, 1)]
    return tuple(float(m.mean()) if m.size else 0.0 for m in means)  # type: ignore[return-value]


@register("modularity")
class Modularity(Metric):
    num_train = 10_000
    num_test = 5_000
    params = {"num_bins": 20, "n_jobs": -1}

    def score(self, train_codes, train_factors, test_codes, test_factors, random_state):
        train_codes, train_factors, test_codes, test_factors = check_pair(
            train_codes, train_factors, test_codes, test_factors, "modularity"
        )
        train_auc, test_auc = explicitness(
            train_codes,
            train_factors,
            test_codes,
            test_factors,
            seed=estimator_seed(random_state),
            n_jobs=self.kwargs["n_jobs"],
        )
        return {
            "modularity": modularity(train_codes, train_factors, self.kwargs["num_bins"]),
            "modularity_explicitness": test_auc,
            "modularity_explicitness_train": train_auc,
        }
