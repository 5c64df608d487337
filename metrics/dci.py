"""DCI: Disentanglement, Completeness, Informativeness (Eastwood & Williams 2018).

Importance matrix from one GradientBoostingClassifier per factor (scikit-learn defaults, seeded),
as disentanglement_lib computes it.
"""
from __future__ import annotations

import numpy as np
import scipy.stats
from joblib import Parallel, delayed
from sklearn.ensemble import GradientBoostingClassifier

from metrics.base import Metric, estimator_seed
from metrics.registry import register
from metrics.utils import check_arrays


def _fit_factor(x_train, y_train, x_test, y_test, seed):
    model = GradientBoostingClassifier(random_state=seed)
    model.fit(x_train, y_train)
    importance = np.abs(model.feature_importances_)
    train_acc = float(np.mean(model.predict(x_train) == y_train))
    test_acc = float(np.mean(model.predict(x_test) == y_test))
    return importance, train_acc, test_acc


def importance_matrix(train_codes, train_factors, test_codes, test_factors, seed: int, n_jobs: int = 1):
    """R (D, K) and the train/test accuracy of each factor's classifier."""
    results = Parallel(n_jobs=n_jobs)(
        delayed(_fit_factor)(train_codes, train_factors[:, k], test_codes, test_factors[:, k], seed)
        for k in range(train_factors.shape[1])
    )
    r = np.stack([res[0] for res in results], axis=1)
    return r, np.array([res[1] for res in results]), np.array([res[2] for res in results])


def disentanglement(r: np.ndarray) -> float:
    """sum_d rho_d (1 - H_K(R[d, :])), rho_d = R[d].sum() / R.sum() (uniform if R is all zero)."""
    r = np.asarray(r, dtype=np.float64)
    per_code = 1.0 - scipy.stats.entropy(r.T + 1e-11, base=r.shape[1])
    weights = r if r.sum() > 0 else np.ones_like(r)
    rho = weights.sum(axis=1) / weights.sum()
    return float(np.sum(per_code * rho))


def completeness(r: np.ndarray) -> float:
    """sum_k w_k (1 - H_D(R[:, k])), w_k = R[:, k].sum() / R.sum() (uniform if R is all zero)."""
    r = np.asarray(r, dtype=np.float64)
    per_factor = 1.0 - scipy.stats.entropy(r + 1e-11, base=r.shape[0])
    weights = r if r.sum() > 0 else np.ones_like(r)
    w = weights.sum(axis=0) / weights.sum()
    return float(np.sum(per_factor * w))


def dci(train_codes, train_factors, test_codes, test_factors, seed: int = 0, n_jobs: int = 1) -> dict[str, float]:
    train_codes, train_factors = check_arrays(train_codes, train_factors, "train")
    test_codes, test_factors = check_arrays(test_codes, test_factors, "test")
    r, train_acc, test_acc = importance_matrix(train_codes, train_factors, test_codes, test_factors, seed, n_jobs)
    return {
        "dci": disentanglement(r),
        "dci_completeness": completeness(r),
        "dci_informativeness_train": float(np.mean(train_acc)),
        "dci_informativeness_test": float(np.mean(test_acc)),
    }


@register("dci")
class DCI(Metric):
    num_train = 10_000
    num_test = 5_000
    params = {"n_jobs": 1}

    def score(self, train_codes, train_factors, test_codes, test_factors, random_state):
        if test_codes is None:
            from bench.errors import BenchError

            raise BenchError("dci needs a test set: pass test_codes and test_factors (or num_test > 0)")
        return dci(train_codes, train_factors, test_codes, test_factors,
                   seed=estimator_seed(random_state), n_jobs=self.kwargs["n_jobs"])
