"""DCI: Disentanglement, Completeness, Informativeness (Eastwood & Williams 2018).

Importance matrix from one GradientBoostingClassifier per factor (scikit-learn defaults, seeded),
as disentanglement_lib computes it. Two estimators give the same numbers:

- `backend="numba"` (default): metrics/gbt.py, scikit-learn's boosting re-implemented on
  presorted codes (sorted once, shared by every factor), ~10x faster per tree; bit for bit
  scikit-learn's trees, importances and predictions on codes without repeated values, and equal
  to rounding (~1e-16) where values repeat (see metrics/gbt.py; tests/test_metric_dci.py compares).
- `backend="sklearn"`: scikit-learn's own GradientBoostingClassifier, made faster only in ways
  that give bit-identical numbers: within a factor the one-tree-per-class regression trees of a
  boosting stage are independent given the stage's gradient, so `_StageParallelGBC` fits them
  concurrently; each tree gets a copy of the shared RandomState positioned where the sequential
  loop would have left it.

Threads (both tree builders release the GIL): with numba, factor after factor, each boosting
stage's class-trees split over the threads (even load: dSprites' factors have 3 to 40 classes);
with scikit-learn, factors concurrently, largest class count first.
"""

from __future__ import annotations

import inspect
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.stats
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.ensemble import _gb as _sk_gb
from sklearn.tree import DecisionTreeRegressor

from disentbench.errors import BenchError
from disentbench.metrics import gbt
from disentbench.metrics.base import Metric, estimator_seed
from disentbench.metrics.registry import register
from disentbench.metrics.utils import check_pair, quiet_estimators, resolve_jobs

#: sklearn/tree/_utils.pxd: each tree's splitter draws randint(0, RAND_R_MAX) from its RandomState
_RAND_R_MAX = 2147483647
_STAGE_ARGS = ["i", "X", "y", "raw_predictions", "sample_weight", "sample_mask", "random_state", "X_csc", "X_csr"]


def _stage_parallel_supported() -> bool:
    """The override relies on a private scikit-learn method; use it only where its shape is known."""
    try:
        params = list(inspect.signature(GradientBoostingClassifier._fit_stage).parameters)[1:]
    except (AttributeError, TypeError, ValueError):
        return False
    return params == _STAGE_ARGS and hasattr(_sk_gb, "_update_terminal_regions")


class _StageParallelGBC(GradientBoostingClassifier):
    """GradientBoostingClassifier whose per-stage trees are fitted by a thread pool."""

    _pool: ThreadPoolExecutor | None = None

    def _fit_stage(self, i, X, y, raw_predictions, sample_weight, sample_mask, random_state, X_csc=None, X_csr=None):
        k_trees = self.n_trees_per_iteration_
        pool = self._pool
        if pool is None or k_trees == 1 or self.subsample < 1.0 or X_csc is not None:
            return super()._fit_stage(
                i, X, y, raw_predictions, sample_weight, sample_mask, random_state, X_csc=X_csc, X_csr=X_csr
            )
        neg_gradient = -self._loss.gradient(y_true=y, raw_prediction=raw_predictions, sample_weight=None)
        neg_g = neg_gradient.reshape((-1, 1)) if neg_gradient.ndim == 1 else neg_gradient
        states = []
        for _ in range(k_trees):  # the sequential loop's RNG positions, in order
            rs = np.random.RandomState()
            rs.set_state(random_state.get_state())
            states.append(rs)
            random_state.randint(0, _RAND_R_MAX)

        def fit_one(k: int) -> DecisionTreeRegressor:
            tree = DecisionTreeRegressor(
                # the model's own criterion where the release has one (before 1.9), as _fit_stage's
                criterion=self.criterion if self.criterion in gbt.CRITERIA else "squared_error",
                splitter="best",
                max_depth=self.max_depth,
                min_samples_split=self.min_samples_split,
                min_samples_leaf=self.min_samples_leaf,
                min_weight_fraction_leaf=self.min_weight_fraction_leaf,
                min_impurity_decrease=self.min_impurity_decrease,
                max_features=self.max_features,
                max_leaf_nodes=self.max_leaf_nodes,
                random_state=states[k],
                ccp_alpha=self.ccp_alpha,
            )
            tree.fit(X, neg_g[:, k], sample_weight=sample_weight, check_input=False)
            # writes only column k of raw_predictions, and reads only the stage's gradient
            _sk_gb._update_terminal_regions(
                self._loss,
                tree.tree_,
                X_csr if X_csr is not None else X,
                np.array(y == k, dtype=np.float64),
                neg_g[:, k],
                raw_predictions,
                sample_weight,
                sample_mask,
                learning_rate=self.learning_rate,
                k=k,
            )
            return tree

        for k, tree in enumerate(pool.map(fit_one, range(k_trees))):
            self.estimators_[i, k] = tree
        return raw_predictions


BACKENDS = ("numba", "sklearn")


def _sklearn_criterion(criterion: str) -> dict:
    """GradientBoostingClassifier's keyword for the trees' criterion: scikit-learn before 1.9
    splits on the one it is given (its default was friedman_mse); from 1.9 the trees split on
    squared error only (`criterion` is deprecated there and has no effect)."""
    if criterion not in gbt.CRITERIA:
        raise BenchError(f"dci criterion {criterion!r} is unknown; choose one of: {', '.join(gbt.CRITERIA)}")
    if gbt.sklearn_tree_criterion() == "friedman_mse":  # a release whose criterion chooses the trees
        return {"criterion": criterion}
    if criterion != "squared_error":
        import sklearn

        raise BenchError(
            f"dci criterion {criterion!r} needs backend='numba': scikit-learn {sklearn.__version__}'s trees "
            f"split on squared_error only"
        )
    return {}


def _check_criterion(backend: str, criterion: str) -> None:
    """Refuse an unknown criterion, or one the backend cannot split on, before any fit."""
    if criterion not in gbt.CRITERIA:
        raise BenchError(f"dci criterion {criterion!r} is unknown; choose one of: {', '.join(gbt.CRITERIA)}")
    if backend == "sklearn":
        _sklearn_criterion(criterion)


def _fit_factor(
    x_train,
    y_train,
    x_test,
    y_test,
    seed: int,
    pool: ThreadPoolExecutor | None,
    backend: str = "numba",
    presorted: gbt.PresortedCodes | None = None,
    workers: int = 1,
    criterion: str = gbt.TREE_CRITERION,
):
    classes = np.unique(y_train)
    if len(classes) < 2:  # a constant factor: nothing to explain, no latent is important for it
        return np.zeros(x_train.shape[1]), 1.0, float(np.mean(y_test == classes[0]))
    if backend == "numba":
        importance, pred_train, pred_test = gbt.fit_predict(
            presorted if presorted is not None else x_train,
            y_train,
            x_test,
            seed,
            pool=pool,
            workers=workers,
            criterion=criterion,
        )
        return (np.abs(importance), float(np.mean(pred_train == y_train)), float(np.mean(pred_test == y_test)))
    if pool is not None and _stage_parallel_supported():
        model = _StageParallelGBC(random_state=seed, **_sklearn_criterion(criterion))
        model._pool = pool
    else:
        model = GradientBoostingClassifier(random_state=seed, **_sklearn_criterion(criterion))
    with quiet_estimators():
        model.fit(x_train, y_train)
    model._pool = None
    importance = np.abs(model.feature_importances_)
    train_acc = float(np.mean(model.predict(x_train) == y_train))
    test_acc = float(np.mean(model.predict(x_test) == y_test))
    return importance, train_acc, test_acc


def importance_matrix(
    train_codes,
    train_factors,
    test_codes,
    test_factors,
    seed: int,
    n_jobs: int | None = 1,
    backend: str = "numba",
    criterion: str = gbt.TREE_CRITERION,
):
    """R (D, K) and the train/test accuracy of each factor's classifier, whose trees split on
    `criterion` ("squared_error", scikit-learn 1.9's, or "friedman_mse", its default up to 1.8).

    The numbers depend neither on `n_jobs` nor on `backend` (beyond rounding where codes repeat).
    """
    if backend not in BACKENDS:
        raise BenchError(f"dci backend {backend!r} is unknown; choose one of: {', '.join(BACKENDS)}")
    _check_criterion(backend, criterion)
    num_factors = train_factors.shape[1]
    jobs = resolve_jobs(n_jobs, 10**6)
    presorted = gbt.PresortedCodes(train_codes) if backend == "numba" else None

    def fit(k: int, pool: ThreadPoolExecutor | None):
        return _fit_factor(
            train_codes, train_factors[:, k], test_codes, test_factors[:, k], seed, pool, backend, presorted, jobs,
            criterion,
        )  # fmt: skip

    if jobs == 1:
        results = [fit(k, None) for k in range(num_factors)]
    elif backend == "numba":  # factor after factor, each stage's class-trees split over the threads
        with ThreadPoolExecutor(jobs) as pool:
            results = [fit(k, pool) for k in range(num_factors)]
    else:
        # Factors run concurrently (largest first); scikit-learn's stage trees share one pool.
        order = sorted(range(num_factors), key=lambda k: -len(np.unique(train_factors[:, k])))
        with ThreadPoolExecutor(jobs) as trees, ThreadPoolExecutor(min(jobs, num_factors)) as outer:
            futures = {k: outer.submit(fit, k, trees) for k in order}
            results = [futures[k].result() for k in range(num_factors)]
    r = np.stack([res[0] for res in results], axis=1)
    return r, np.array([res[1] for res in results]), np.array([res[2] for res in results])


def disentanglement(r: np.ndarray) -> float:
    """sum_d rho_d (1 - H_K(R[d, :])), rho_d = R[d].sum() / R.sum() (uniform if R is all zero)."""
    r = np.asarray(r, dtype=np.float64)
    if r.shape[1] == 1:  # one factor: every latent is trivially about it
        per_code = np.ones(r.shape[0])
    else:
        per_code = 1.0 - scipy.stats.entropy(r.T + 1e-11, base=r.shape[1])
    weights = r if r.sum() > 0 else np.ones_like(r)
    rho = weights.sum(axis=1) / weights.sum()
    return float(np.sum(per_code * rho)) if r.sum() > 0 else 0.0


def completeness(r: np.ndarray) -> float:
    """sum_k w_k (1 - H_D(R[:, k])), w_k = R[:, k].sum() / R.sum() (uniform if R is all zero)."""
    r = np.asarray(r, dtype=np.float64)
    if r.shape[0] == 1:
        per_factor = np.ones(r.shape[1])
    else:
        per_factor = 1.0 - scipy.stats.entropy(r + 1e-11, base=r.shape[0])
    weights = r if r.sum() > 0 else np.ones_like(r)
    w = weights.sum(axis=0) / weights.sum()
    return float(np.sum(per_factor * w)) if r.sum() > 0 else 0.0


def dci_from_importance(r: np.ndarray, train_acc, test_acc, prefix: str = "dci") -> dict[str, float]:
    return {
        prefix: disentanglement(r),
        f"{prefix}_completeness": completeness(r),
        f"{prefix}_informativeness_train": float(np.mean(train_acc)),
        f"{prefix}_informativeness_test": float(np.mean(test_acc)),
    }


def dci(
    train_codes,
    train_factors,
    test_codes,
    test_factors,
    seed: int = 0,
    n_jobs: int | None = 1,
    backend: str = "numba",
    criterion: str = gbt.TREE_CRITERION,
) -> dict[str, float]:
    train_codes, train_factors, test_codes, test_factors = check_pair(
        train_codes, train_factors, test_codes, test_factors, "dci"
    )
    r, train_acc, test_acc = importance_matrix(
        train_codes, train_factors, test_codes, test_factors, seed, n_jobs, backend, criterion
    )
    return dci_from_importance(r, train_acc, test_acc)


@register("dci")
class DCI(Metric):
    num_train = 10_000
    num_test = 5_000
    #: importance "gbt" is the reference's; "lasso" / "random_forest" regress (metrics/dci_regression.py);
    #: criterion: the boosted trees' split, "squared_error" (scikit-learn 1.9's) or "friedman_mse"
    #: (scikit-learn <= 1.8's default, so disentanglement_lib's; docs/metrics.md, DCI's trees)
    params = {
        "n_jobs": -1,
        "backend": "numba",
        "criterion": gbt.TREE_CRITERION,
        "importance": "gbt",
        "alpha": 0.02,
        "max_depth": None,
        "n_estimators": 10,
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.kwargs["importance"] not in ("gbt", "lasso", "random_forest"):
            raise BenchError(
                f"dci importance {self.kwargs['importance']!r} is unknown; choose gbt, lasso or random_forest"
            )
        if self.kwargs["backend"] not in BACKENDS:  # refuse before any model is trained
            raise BenchError(f"dci backend {self.kwargs['backend']!r} is unknown; choose one of: {', '.join(BACKENDS)}")
        if self.kwargs["importance"] == "gbt":
            _check_criterion(self.kwargs["backend"], self.kwargs["criterion"])

    def evaluate(self, dataset, encode, rng: np.random.Generator, codes_cache: dict | None = None) -> dict[str, float]:
        """As every metric; with the exact (numba) backend the per-factor classifiers are fitted by
        metrics/boosted.py (the same trees, importances and predictions, bit for bit) and kept in
        evaluate_many's cache, so DCI-ES, the downstream task and the fairness score, which fit the
        same classifiers on the same sets from the same seed, reuse them instead of fitting again."""
        if self.kwargs["backend"] != "numba" or self.num_test < 1 or self.kwargs["importance"] != "gbt":
            return super().evaluate(dataset, encode, rng, codes_cache)
        from disentbench.metrics.boosted import fit_factors
        from disentbench.metrics.sampling import draw_train_test, sample_key

        sets = draw_train_test(dataset, encode, rng, self.num_train, self.num_test, self.batch_size, codes_cache)
        x, y, xt, yt = check_pair(*sets, "dci")
        seed = estimator_seed(rng)
        key = sample_key(self.num_train, self.num_test, self.batch_size)
        models = fit_factors(x, y, xt, yt, seed, self.kwargs["n_jobs"], codes_cache, key, self.kwargs["criterion"])
        r = np.stack([np.abs(m.importance) for m in models], axis=1)
        train_acc = [np.mean(m.train_pred == y[:, k]) for k, m in enumerate(models)]
        test_acc = [np.mean(m.eval_pred == yt[:, k]) for k, m in enumerate(models)]
        return dci_from_importance(r, train_acc, test_acc)

    def score(self, train_codes, train_factors, test_codes, test_factors, random_state):
        if self.kwargs["importance"] != "gbt":  # another metric: its keys are never `dci`
            from disentbench.metrics.dci_regression import dci_regression

            name = self.registered_name
            return dci_regression(
                train_codes,
                train_factors,
                test_codes,
                test_factors,
                importance=self.kwargs["importance"],
                seed=estimator_seed(random_state),
                alpha=self.kwargs["alpha"],
                max_depth=self.kwargs["max_depth"],
                n_estimators=self.kwargs["n_estimators"],
                prefix=name if name != "dci" else f"dci_{self.kwargs['importance']}",
            )
        train_codes, train_factors, test_codes, test_factors = check_pair(
            train_codes, train_factors, test_codes, test_factors, "dci"
        )
        return dci(
            train_codes,
            train_factors,
            test_codes,
            test_factors,
            seed=estimator_seed(random_state),
            n_jobs=self.kwargs["n_jobs"],
            backend=self.kwargs["backend"],
            criterion=self.kwargs["criterion"],
        )
