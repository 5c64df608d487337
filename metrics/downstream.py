"""Downstream task of disentanglement_lib: predict every factor from the code with few or many labels.

For each training size (10, 100, 1,000 and 10,000 points at the reference size, i.e. `num_train`
divided by 1, 10, 100, 1,000) a fresh train set and a fresh test set of `num_test` (5,000) points
are drawn, and one classifier per factor is fitted on the raw codes:

- `lr`: LogisticRegressionCV(Cs=10, cv=KFold(n_splits=5)) with its other defaults (l2 penalty,
  lbfgs, 100 iterations, accuracy as the CV score), the reference's `logistic_regression_cv`;
- `gbt`: GradientBoostingClassifier with scikit-learn's defaults, the reference's
  `gradient_boosting_classifier`, computed by metrics/gbt.py's exact re-implementation and seeded
  (the reference leaves it unseeded; the seed only breaks exact ties between splits).

Keys per predictor p and size n: `downstream_{p}_{n}_test` / `_train` (mean accuracy over
factors: the reference's `n:mean_test_accuracy` / `n:mean_train_accuracy`), `_min_test` /
`_min_train` (`n:min_..._accuracy`); with `per_factor=True` also `_test_factor{k}` /
`_train_factor{k}`. Headline `downstream`: the logistic regression's mean test accuracy at the
largest size (the gradient-boosted trees' when only `gbt` is asked for).

Order of draws (a departure from the reference, which starts with the smallest size): largest size
first, each size's train set, its test set, then its estimator seed. The largest size's sets and
seed are then exactly DCI's (the first 10,000 and next 5,000 codes of the seed), so its boosted
classifiers are DCI's classifiers, fitted once and shared with DCI-ES and the fairness score in
`evaluate_many`: `downstream_gbt_10000_test` equals `dci_informativeness_test`. Every set is still an
independent uniform draw, so the numbers agree with the reference's within sampling noise.

From arrays (`score_arrays`), size n uses the first n training rows and the whole test set.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import KFold

from disentbench.errors import BenchError
from disentbench.metrics import gbt
from disentbench.metrics.base import Encode, Metric, estimator_seed, gather_codes
from disentbench.metrics.boosted import fit_factors
from disentbench.metrics.registry import register
from disentbench.metrics.sampling import draw_train_test, sample_key
from disentbench.metrics.utils import check_pair, one_blas_thread, quiet_estimators, resolve_jobs

PREDICTORS = ("lr", "gbt")


def logistic_regression_cv() -> LogisticRegressionCV:
    """The reference's LogisticRegressionCV(Cs=10, cv=KFold(n_splits=5)), its then-defaults spelled
    out (scikit-learn 1.8+ warns that they will change): l2 penalty, accuracy as the CV score."""
    return LogisticRegressionCV(
        Cs=10, cv=KFold(n_splits=5), l1_ratios=(0.0,), scoring="accuracy", use_legacy_attributes=False
    )


def lr_accuracy(x_train, y_train, x_test, y_test) -> tuple[float, float]:
    """(train, test) accuracy of the cross-validated logistic regression on one factor. A factor
    with one class in the train set is predicted as that class; with fewer points than folds the
    folds shrink to one point each (below the reference's sizes only)."""
    classes = np.unique(y_train)
    if len(classes) < 2:
        return float(np.mean(y_train == classes[0])), float(np.mean(y_test == classes[0]))
    model = logistic_regression_cv()
    if len(y_train) < 5:
        model.set_params(cv=KFold(n_splits=len(y_train)))
    with quiet_estimators():
        model.fit(x_train, y_train)
    return float(np.mean(model.predict(x_train) == y_train)), float(np.mean(model.predict(x_test) == y_test))


def gbt_predictions(x, y, x_test, seed: int, jobs: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per factor, (train, test) predictions of GradientBoostingClassifier(random_state=seed) with
    scikit-learn's defaults (metrics/gbt.py's exact re-implementation); a factor with one class in
    the train set is predicted as that class."""
    presorted = gbt.PresortedCodes(x)

    def run(pool: ThreadPoolExecutor | None):
        out = []
        for k in range(y.shape[1]):
            classes = np.unique(y[:, k])
            if len(classes) < 2:
                out.append((np.full(len(x), classes[0]), np.full(len(x_test), classes[0])))
            else:
                _, train_pred, test_pred = gbt.fit_predict(presorted, y[:, k], x_test, seed, pool=pool, workers=jobs)
                out.append((train_pred, test_pred))
        return out

    if jobs == 1:
        return run(None)
    with ThreadPoolExecutor(jobs) as pool:
        return run(pool)


def train_sizes(num_train: int, num_sizes: int) -> list[int]:
    """num_train, num_train / 10, ... (num_sizes of them, largest first), none below 2."""
    sizes = []
    for j in range(num_sizes):
        n = max(2, num_train // 10**j)
        if n not in sizes:
            sizes.append(n)
    return sizes


def _summaries(prefix: str, train_acc: np.ndarray, test_acc: np.ndarray, per_factor: bool) -> dict[str, float]:
    out = {
        f"{prefix}_test": float(np.mean(test_acc)),
        f"{prefix}_train": float(np.mean(train_acc)),
        f"{prefix}_min_test": float(np.min(test_acc)),
        f"{prefix}_min_train": float(np.min(train_acc)),
    }
    if per_factor:
        for k in range(len(test_acc)):
            out[f"{prefix}_test_factor{k}"] = float(test_acc[k])
            out[f"{prefix}_train_factor{k}"] = float(train_acc[k])
    return out


def downstream_scores(
    sets: list[tuple[int, tuple, int]],
    predictors=PREDICTORS,
    n_jobs: int | None = 1,
    per_factor: bool = False,
    cache: dict | None = None,
    cache_key: tuple | None = None,
) -> dict[str, float]:
    """Scores from [(size, (train codes, train factors, test codes, test factors), seed), ...],
    largest size first; `cache`/`cache_key` share the largest size's boosted classifiers."""
    jobs = resolve_jobs(n_jobs, 10**6)
    out: dict[str, float] = {}
    results: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
    if "lr" in predictors:
        tasks = [(i, k) for i in range(len(sets)) for k in range(sets[i][1][1].shape[1])]

        def cost(t: int) -> int:
            i, k = tasks[t]
            return sets[i][0] * len(np.unique(sets[i][1][1][:, k]))  # points x classes

        order = sorted(range(len(tasks)), key=cost, reverse=True)  # costliest first: workers end together

        def fit_lr(task):
            i, k = task
            x, y, xt, yt = sets[i][1]
            return lr_accuracy(x, y[:, k], xt, yt[:, k])

        # one BLAS thread per fit: tiny products, many fits at once (2 BLAS threads per fit on 2
        # cores ran ~30x slower when the machine was busy)
        with one_blas_thread():
            if min(jobs, len(tasks)) == 1:
                done = [fit_lr(tasks[t]) for t in order]
            else:
                with ThreadPoolExecutor(min(jobs, len(tasks))) as pool:
                    done = list(pool.map(lambda t: fit_lr(tasks[t]), order))
        accs = dict(zip(order, done))
        for i, (n, _, _) in enumerate(sets):
            pairs = np.array([accs[t] for t in range(len(tasks)) if tasks[t][0] == i]).reshape(-1, 2)
            results[("lr", n)] = (pairs[:, 0], pairs[:, 1])
    if "gbt" in predictors:
        for i, (n, (x, y, xt, yt), seed) in enumerate(sets):
            if i == 0:  # DCI's sets and seed: the classifiers other metrics share
                models = fit_factors(x, y, xt, yt, seed, jobs, cache, cache_key)
                preds = [(m.train_pred, m.eval_pred) for m in models]
            else:
                preds = gbt_predictions(x, y, xt, seed, jobs)
            train_acc = np.array([np.mean(p[0] == y[:, k]) for k, p in enumerate(preds)])
            test_acc = np.array([np.mean(p[1] == yt[:, k]) for k, p in enumerate(preds)])
            results[("gbt", n)] = (train_acc, test_acc)
    head = "lr" if "lr" in predictors else "gbt"
    out["downstream"] = float(np.mean(results[(head, sets[0][0])][1]))
    for p in PREDICTORS:
        for n, _, _ in sets:
            if (p, n) in results:
                out.update(_summaries(f"downstream_{p}_{n}", *results[(p, n)], per_factor))
    return out


def _check_predictors(predictors) -> tuple[str, ...]:
    chosen = (predictors,) if isinstance(predictors, str) else tuple(predictors)
    unknown = [p for p in chosen if p not in PREDICTORS]
    if not chosen or unknown:
        raise BenchError(f"downstream: predictors must be some of: {', '.join(PREDICTORS)}; got {list(chosen)}")
    return chosen


@register("downstream")
class Downstream(Metric):
    num_train = 10_000
    num_test = 5_000
    params = {"num_sizes": 4, "predictors": PREDICTORS, "per_factor": False, "n_jobs": -1}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kwargs["predictors"] = _check_predictors(self.kwargs["predictors"])
        if int(self.kwargs["num_sizes"]) < 1:
            raise BenchError("downstream: num_sizes must be >= 1")
        if self.num_test < 1:
            raise BenchError("downstream needs num_test >= 1 test points per training size")

    def sizes(self) -> list[int]:
        return train_sizes(self.num_train, int(self.kwargs["num_sizes"]))

    def _scores(self, sets, cache=None, cache_key=None) -> dict[str, float]:
        return downstream_scores(
            sets,
            self.kwargs["predictors"],
            self.kwargs["n_jobs"],
            bool(self.kwargs["per_factor"]),
            cache,
            cache_key,
        )

    def score(self, train_codes, train_factors, test_codes, test_factors, random_state):
        train_codes, train_factors, test_codes, test_factors = check_pair(
            train_codes, train_factors, test_codes, test_factors, "downstream"
        )
        sizes = train_sizes(len(train_codes), int(self.kwargs["num_sizes"]))
        sets = [
            (n, (train_codes[:n], train_factors[:n], test_codes, test_factors), estimator_seed(random_state))
            for n in sizes
        ]
        return self._scores(sets)

    def evaluate(
        self, dataset, encode: Encode, rng: np.random.Generator, codes_cache: dict | None = None
    ) -> dict[str, float]:
        sets = []
        for i, n in enumerate(self.sizes()):
            if i == 0:  # the largest size: the sets every other metric of these sizes draws first
                drawn = draw_train_test(dataset, encode, rng, n, self.num_test, self.batch_size, codes_cache)
            else:
                train = gather_codes(dataset, encode, n, rng, self.batch_size)
                test = gather_codes(dataset, encode, self.num_test, rng, self.batch_size)
                drawn = (*train, *test)
            sets.append((n, drawn, estimator_seed(rng)))
        return self._scores(sets, codes_cache, sample_key(self.sizes()[0], self.num_test, self.batch_size))
