"""SAP: Separated Attribute Predictability (Kumar et al. 2018), both forms of disentanglement_lib.

Discrete factors (the default): one LinearSVC(C=0.01, class_weight="balanced") per (latent, factor)
on that single latent; the score matrix holds test accuracies. The D*K fits are independent, so
they run in threads (liblinear releases the GIL); each gets the same seed, so the numbers do not
depend on n_jobs.

Continuous factors (`continuous_factors=True`, the reference's option of that name): the score
matrix holds the R^2 of a linear fit of each factor on each single latent, cov^2 / (var_d var_k)
(sample covariances, ddof=1), computed on the train set alone as the reference does; 0 where the
latent is constant (var_d <= 1e-12) and, where the reference would divide by zero, where the
factor is constant.

Mixed (`continuous_factors` a list of factor indices): those columns hold the R^2 above, the others
the LinearSVC accuracies. `discrete_score="train"` scores each LinearSVC on the set it was fitted on
(no test set needed), as InfoGAN-CR's `SAPMetric` does. Two registered variants, kept out of the
default leaderboard (they exist for the published table): `sap_continuous` (every factor continuous,
the reference's option; key `sap_continuous`) and `sap_infogancr` (InfoGAN-CR's dSprites form: shape,
factor 0, discrete and scored on the fitted set, the other factors continuous, 73,728 points; key
`sap_infogancr`).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.svm import LinearSVC

from disentbench.errors import BenchError
from disentbench.metrics.base import Metric, estimator_seed
from disentbench.metrics.registry import register
from disentbench.metrics.utils import check_pair, quiet_estimators, resolve_jobs


def single_latent_accuracy(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, seed: int
) -> float:
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

    def fit(dk: tuple[int, int]) -> float:
        d, k = dk
        return single_latent_accuracy(
            train_codes[:, d], train_factors[:, k], test_codes[:, d], test_factors[:, k], seed
        )

    jobs = resolve_jobs(n_jobs, len(pairs))
    if jobs == 1:
        scores = [fit(p) for p in pairs]
    else:
        with ThreadPoolExecutor(jobs) as pool:
            scores = list(pool.map(fit, pairs))
    return np.array(scores).reshape(train_codes.shape[1], train_factors.shape[1])


def r2_matrix(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """S[d, k]: R^2 of the least-squares line predicting factor k from latent d alone."""
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors, dtype=np.float64)
    n = codes.shape[0]
    dc = codes - codes.mean(0)
    df = factors - factors.mean(0)
    cov = dc.T @ df / (n - 1)
    var_d = np.einsum("nd,nd->d", dc, dc) / (n - 1)
    var_k = np.einsum("nk,nk->k", df, df) / (n - 1)
    denom = var_d[:, None] * var_k[None, :]
    usable = (var_d[:, None] > 1e-12) & (var_k[None, :] > 0)
    return np.where(usable, cov**2 / np.where(usable, denom, 1.0), 0.0)


def top_two_gap(matrix: np.ndarray) -> float:
    """Mean over columns of (largest - second largest) entry; a single row has gap = its value."""
    ordered = np.sort(matrix, axis=0)
    second = ordered[-2] if matrix.shape[0] > 1 else np.zeros(matrix.shape[1])
    return float(np.mean(ordered[-1] - second))


def continuous_mask(continuous_factors, num_factors: int) -> np.ndarray:
    """Which factors are scored by R^2: all (True), none (False) or the listed indices."""
    if isinstance(continuous_factors, (bool, np.bool_)):
        return np.full(num_factors, bool(continuous_factors))
    mask = np.zeros(num_factors, dtype=bool)
    for k in continuous_factors:
        if not 0 <= int(k) < num_factors:
            raise BenchError(f"sap: continuous factor index {k} is out of range for {num_factors} factors")
        mask[int(k)] = True
    return mask


def sap(
    train_codes,
    train_factors,
    test_codes,
    test_factors,
    seed: int = 0,
    n_jobs: int | None = 1,
    continuous_factors: bool | Sequence[int] = False,
    discrete_score: str = "test",
) -> dict[str, float]:
    """SAP score; continuous factors score R^2 on the train set; discrete ones the LinearSVC's
    accuracy on the test set (`discrete_score="test"`) or on the train set it was fitted on."""
    if discrete_score not in ("test", "train"):
        raise BenchError(f"sap: discrete_score must be 'test' or 'train', got {discrete_score!r}")
    any_continuous = not (isinstance(continuous_factors, (bool, np.bool_)) and not continuous_factors)
    if test_codes is None and (discrete_score == "train" or continuous_factors is True):
        test_codes, test_factors = train_codes, train_factors  # unused: nothing is scored on a test set
    train_codes, train_factors, test_codes, test_factors = check_pair(
        train_codes, train_factors, test_codes, test_factors, "sap", any_continuous
    )
    mask = continuous_mask(continuous_factors, train_factors.shape[1])
    matrix = np.zeros((train_codes.shape[1], train_factors.shape[1]))
    if mask.any():
        matrix[:, mask] = r2_matrix(train_codes, train_factors[:, mask])
    if (~mask).any():
        x_eval, y_eval = (train_codes, train_factors) if discrete_score == "train" else (test_codes, test_factors)
        matrix[:, ~mask] = score_matrix(train_codes, train_factors[:, ~mask], x_eval, y_eval[:, ~mask], seed, n_jobs)
    return {"sap": top_two_gap(matrix)}


@register("sap")
class SAP(Metric):
    num_train = 10_000
    num_test = 5_000
    params = {"n_jobs": -1, "continuous_factors": False, "discrete_score": "test"}

    def score(self, train_codes, train_factors, test_codes, test_factors, random_state):
        return sap(
            train_codes,
            train_factors,
            test_codes,
            test_factors,
            seed=estimator_seed(random_state),
            n_jobs=self.kwargs["n_jobs"],
            continuous_factors=self._continuous(),
            discrete_score=self.kwargs["discrete_score"],
        )

    def _continuous(self):
        value = self.kwargs["continuous_factors"]
        return bool(value) if isinstance(value, (bool, int, np.bool_)) else [int(k) for k in value]


class _SAPVariant(SAP):
    """A SAP variant under its own key (its registered name), for the published table."""

    variant_of = "sap"

    def score(self, train_codes, train_factors, test_codes, test_factors, random_state):
        out = super().score(train_codes, train_factors, test_codes, test_factors, random_state)
        return {self.registered_name: out["sap"]}


@register("sap_continuous")
class SAPContinuous(_SAPVariant):
    """Every factor continuous (R^2), the reference's `continuous_factors=True`, at the reference size."""

    num_test = 0
    params = {"n_jobs": -1, "continuous_factors": True, "discrete_score": "test"}


@register("sap_infogancr")
class SAPInfoGANCR(_SAPVariant):
    """InfoGAN-CR's `SAPMetric` on dSprites: shape (factor 0) by LinearSVC accuracy on the fitted set,
    scale, orientation and position by R^2, on 73,728 points (a tenth of dSprites)."""

    num_train = 73_728
    num_test = 0
    params = {"n_jobs": -1, "continuous_factors": (1, 2, 3, 4), "discrete_score": "train"}
