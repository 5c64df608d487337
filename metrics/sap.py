"""SAP: Separated Attribute Predictability (Kumar et al. 2018), discrete form of disentanglement_lib.

One LinearSVC(C=0.01, class_weight="balanced") per (latent, factor) on that single latent; the
score matrix holds test accuracies. The D*K fits are independent, so they run in threads
(liblinear releases the GIL); each gets the same seed, so the numbers do not depend on n_jobs.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.svm import LinearSVC

from disentbench.metrics.base import Metric, estimator_seed
from disentbench.metrics.registry import register
from disentbench.metrics.utils import check_pair, quiet_estimators, resolve_jobs


def single_latent_accuracy(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                           seed: int) -> float:
    """Test accuracy of LinearSVC(C=0.01, balanced) fitted on one latent (1-D arrays)."""
    classes = np.unique(y_train)
    if len(classes) < 2:  # LinearSVC needs two classes; the constant prediction is what it would learn
        return float(np.mean(y_test == classes[0]))
    model = LinearSVC(C=0.01, class_weight="balanced", random_state=seed)
    with quiet_estimators():
        model.fit(x_train[:, None], y_train)
    return float(np.mean(model.predict(x_test[:, None]) == y_test))


def score_matrix(train_codes, train_factors, test_codes, test_factors, seed: int, n_jobs: int | None = 1) -> np.ndarray:
    """S[d, k]: accuracy of predicting factor k from latent d alone."""
    pairs = [(d, k) for d in range(train_codes.shape[1]) for k in range(train_factors.shape[1])]
    fit = lambda dk: single_latent_accuracy(train_codes[:, dk[0]], train_factors[:, dk[1]],  # noqa: E731
                                             test_codes[:, dk[0]], test_factors[:, dk[1]], seed)
    jobs = resolve_jobs(n_jobs, len(pairs))
    if jobs == 1:
        scores = [fit(p) for p in pairs]
    else:
        with ThreadPoolExecutor(jobs) as pool:
            scores = list(pool.map(fit, pairs))
    return np.array(scores).reshape(train_codes.shape[1], train_factors.shape[1])


def top_two_gap(matrix: np.ndarray) -> float:
    """Mean over columns of (largest - second largest) entry; a single row has gap = its value."""
    ordered = np.sort(matrix, axis=0)
    second = ordered[-2] if matrix.shape[0] > 1 else np.zeros(matrix.shape[1])
    return float(np.mean(ordered[-1] - second))


def sap(train_codes, train_factors, test_codes, test_factors, seed: int = 0, n_jobs: int | None = 1) -> dict[str, float]:
    train_codes, train_factors, test_codes, test_factors = check_pair(
        train_codes, train_factors, test_codes, test_factors, "sap")
    return {"sap": top_two_gap(score_matrix(train_codes, train_factors, test_codes, test_factors, seed, n_jobs))}


@register("sap")
class SAP(Metric):
    num_train = 10_000
    num_test = 5_000
    params = {"n_jobs": -1}

    def score(self, train_codes, train_factors, test_codes, test_factors, random_state):
        return sap(train_codes, train_factors, test_codes, test_factors,
                   seed=estimator_seed(random_state), n_jobs=self.kwargs["n_jobs"])
