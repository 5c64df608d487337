"""A fitted gradient-boosted classifier that keeps its trees, built from metrics/gbt.py's kernels.

`gbt.fit_predict` (DCI's estimator) returns importances and predictions and drops the trees. Several
newer metrics need more from the same classifier: DCI-ES reads its test error after every boosting
stage, the fairness score predicts codes drawn after the fit, and the downstream task reads its train
and test accuracies. `fit` grows the trees with gbt's own kernels, stage by stage and class by class
in gbt's order (class k of a stage on worker k % workers), and copies each tree out, so the
importances and predictions are gbt's (scikit-learn's GradientBoostingClassifier's) bit for bit;
tests/test_metric_dci_es.py compares them with `gbt.fit_predict` and scikit-learn.

`fit_factors` fits one classifier per factor, and, given the `codes_cache` of
`metrics.evaluate_many`, shares them: metrics that draw the same train and test sets from the same
seed (DCI-ES, the downstream task's largest size, the fairness score) fit them once.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from disentbench.metrics import gbt
from disentbench.metrics.utils import resolve_jobs

N_ESTIMATORS, LEARNING_RATE, MAX_DEPTH = 100, 0.1, 3  # GradientBoostingClassifier's defaults


@njit(cache=True, nogil=True)
def _add_trees(feature, threshold, left, right, value, x_t, t_count, learning_rate, raw, first, last):
    """Add trees first..last-1 (tree = stage * t_count + class), times the learning rate, to the raw
    predictions of the codes x_t (F, M): the arithmetic and order of gbt's _add_tree_output."""
    for tree in range(first, last):
        k = tree % t_count
        for i in range(x_t.shape[1]):
            node = 0
            while left[tree, node] != -1:
                if x_t[feature[tree, node], i] <= threshold[tree, node]:
                    node = left[tree, node]
                else:
                    node = right[tree, node]
            raw[k, i] += learning_rate * value[tree, node]


@dataclass
class BoostedTrees:
    """GradientBoostingClassifier(random_state=seed) fitted on (codes, labels), trees kept.

    A label constant in the training set gives a classifier without trees that predicts it.
    """

    classes: np.ndarray
    init_raw: np.ndarray  # (T,) the prior's raw prediction
    learning_rate: float
    feature: np.ndarray  # (S * T, 2 ** (depth + 1)) per tree and node; leaves: left == -1
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    importance: np.ndarray  # (F,) feature_importances_ (zeros without trees)
    train_pred: np.ndarray  # predicted labels of the training codes
    eval_pred: np.ndarray  # predicted labels of the evaluation codes given to `fit`
    staged_eval_error: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (S + 1,), see `fit`

    @property
    def t_count(self) -> int:
        return len(self.init_raw)

    def decide(self, raw: np.ndarray) -> np.ndarray:
        """Labels from raw predictions (T, M): argmax, or raw >= 0 with one tree per stage."""
        if len(self.classes) == 1:
            return np.full(raw.shape[1], self.classes[0])
        if self.t_count == 1:
            return self.classes[(raw[0] >= 0).astype(int)]
        return self.classes[np.argmax(raw, axis=0)]

    def raw_predict(self, codes: np.ndarray) -> np.ndarray:
        x_t = np.ascontiguousarray(np.asarray(codes, dtype=np.float32).T)
        raw = np.repeat(self.init_raw[:, None], x_t.shape[1], axis=1)
        if len(self.classes) > 1:
            _add_trees(
                self.feature, self.threshold, self.left, self.right, self.value, x_t,
                self.t_count, self.learning_rate, raw, 0, self.feature.shape[0],
            )  # fmt: skip
        return raw

    def predict(self, codes: np.ndarray) -> np.ndarray:
        return self.decide(self.raw_predict(codes))


def _constant(label, num_features: int, n_train: int, eval_labels, n_eval: int) -> BoostedTrees:
    empty = np.zeros((0, 2 ** (MAX_DEPTH + 1)))
    staged = np.zeros(0)
    if eval_labels is not None:
        staged = np.full(N_ESTIMATORS + 1, float(np.mean(np.asarray(eval_labels) != label)))
    return BoostedTrees(
        classes=np.array([label]),
        init_raw=np.zeros(1),
        learning_rate=LEARNING_RATE,
        feature=empty.astype(np.int64),
        threshold=empty,
        left=empty.astype(np.int64),
        right=empty.astype(np.int64),
        value=empty,
        importance=np.zeros(num_features),
        train_pred=np.full(n_train, label),
        eval_pred=np.full(n_eval, label),
        staged_eval_error=staged,
    )


def fit(
    codes: gbt.PresortedCodes | np.ndarray,
    labels,
    eval_codes,
    seed: int,
    eval_labels=None,
    pool: ThreadPoolExecutor | None = None,
    workers: int = 1,
    criterion: str = gbt.TREE_CRITERION,
) -> BoostedTrees:
    """Fit like GradientBoostingClassifier(random_state=seed) and keep the trees (split on
    `criterion`: "squared_error", scikit-learn 1.9's, or "friedman_mse", its default up to 1.8).

    With `eval_labels`, `staged_eval_error[m]` is the error rate on the evaluation codes of the
    classifier cut after m stages (m = 0: the prior alone, which predicts the most frequent
    training label), the staged_predict of scikit-learn.
    """
    friedman = gbt.friedman_flag(criterion)
    gbt._warn_if_other_sklearn()
    data = codes if isinstance(codes, gbt.PresortedCodes) else gbt.PresortedCodes(codes)
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != data.num_samples:
        raise ValueError(f"{len(labels)} labels for {data.num_samples} codes")
    x_eval = np.asarray(eval_codes, dtype=np.float32)
    classes, y_enc = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        return _constant(classes[0], data.num_features, data.num_samples, eval_labels, len(x_eval))
    num_classes = len(classes)
    init = gbt._init_raw(y_enc, num_classes)
    t_count = 1 if num_classes == 2 else num_classes
    n_trees = N_ESTIMATORS * t_count
    seeds = np.random.RandomState(seed).randint(0, gbt.RAND_R_MAX, size=n_trees).astype(np.int64)
    x_eval_t = np.ascontiguousarray(x_eval.T)
    tied, dup = data.repeats(y_enc)
    y64 = y_enc.astype(np.int64)
    n, m = data.num_samples, x_eval_t.shape[1]
    raw = np.repeat(init[:, None], n, axis=1)
    raw_eval = np.repeat(init[:, None], m, axis=1)
    g = np.empty((t_count, n))
    importances = np.zeros((n_trees, data.num_features))
    relevant = np.zeros(n_trees, dtype=np.bool_)
    cap = 2 ** (MAX_DEPTH + 1)
    feature, left, right = (np.full((n_trees, cap), -1, np.int64) for _ in range(3))
    threshold, value = np.zeros((n_trees, cap)), np.zeros((n_trees, cap))
    workers = max(1, min(workers if pool is not None else 1, t_count))
    groups = [np.arange(w, t_count, workers) for w in range(workers)]
    spaces = [gbt._workspace(n, data.num_features, MAX_DEPTH) for _ in range(workers)]
    tree_data = gbt.TreeData(data.codes_t, data.values, data.order, tied, dup)

    def grow(ks: np.ndarray, stage: int, ws) -> None:
        for k in ks:  # one class at a time, so each tree can be copied before the next overwrites it
            gbt._stage_trees(
                ks[ks == k], stage, tree_data, x_eval_t, y64, num_classes, seeds, LEARNING_RATE,
                MAX_DEPTH, g, raw, raw_eval, importances, relevant, ws, friedman,
            )  # fmt: skip
            t = stage * t_count + k
            feature[t], threshold[t] = ws.tree.feature[:cap], ws.tree.threshold[:cap]
            left[t], right[t], value[t] = ws.tree.left[:cap], ws.tree.right[:cap], ws.tree.value[:cap]

    model = BoostedTrees(
        classes, init, LEARNING_RATE, feature, threshold, left, right, value, np.zeros(0), np.zeros(0), np.zeros(0)
    )
    staged = []
    if eval_labels is not None:
        eval_labels = np.asarray(eval_labels).reshape(-1)
        staged.append(float(np.mean(model.decide(raw_eval) != eval_labels)))
    for stage in range(N_ESTIMATORS):
        gbt._neg_gradient(raw, y64, g)
        if workers == 1:
            grow(groups[0], stage, spaces[0])
        else:
            for future in [pool.submit(grow, ks, stage, ws) for ks, ws in zip(groups, spaces)]:
                future.result()
        if eval_labels is not None:
            staged.append(float(np.mean(model.decide(raw_eval) != eval_labels)))
    if relevant.any():
        avg = np.mean(importances[relevant], axis=0, dtype=np.float64)
        model.importance = avg / np.sum(avg)
    else:
        model.importance = np.zeros(data.num_features)
    model.train_pred, model.eval_pred = model.decide(raw), model.decide(raw_eval)
    model.staged_eval_error = np.asarray(staged)
    return model


def fit_factors(
    train_codes: np.ndarray,
    train_factors: np.ndarray,
    test_codes: np.ndarray,
    test_factors: np.ndarray,
    seed: int,
    n_jobs: int | None = 1,
    cache: dict | None = None,
    cache_key: tuple | None = None,
    criterion: str = gbt.TREE_CRITERION,
) -> list[BoostedTrees]:
    """One classifier per factor (test set: the evaluation codes, with staged errors), each seeded
    with `seed` as DCI seeds them, its trees split on `criterion`. With a cache and a key naming the
    codes (the sample key of metrics.base), a later call with the same key, seed and criterion
    returns the same fitted classifiers."""
    gbt.friedman_flag(criterion)
    key = None if cache is None or cache_key is None else ("boosted_trees", *cache_key, int(seed), criterion)
    if key is not None and key in cache:
        return cache[key]
    jobs = resolve_jobs(n_jobs, 10**6)
    presorted = gbt.PresortedCodes(train_codes)

    def run(pool: ThreadPoolExecutor | None) -> list[BoostedTrees]:
        return [
            fit(presorted, train_factors[:, k], test_codes, seed, test_factors[:, k], pool, jobs, criterion)
            for k in range(train_factors.shape[1])
        ]

    if jobs == 1:
        models = run(None)
    else:
        with ThreadPoolExecutor(jobs) as pool:
            models = run(pool)
    if key is not None:
        cache[key] = models
    return models


def warm_up() -> None:
    """Compile (or load from numba's cache) gbt's kernels and this module's tree walker on a tiny
    problem, so that timing a real fit does not include compilation."""
    gbt.warm_up()
    rng = np.random.default_rng(0)
    codes = np.round(rng.normal(size=(40, 2)), 1)
    for num_classes in (2, 3):
        for criterion in gbt.CRITERIA:
            fit(codes, np.arange(40) % num_classes, codes[:5], seed=0, criterion=criterion).predict(codes[:5])
