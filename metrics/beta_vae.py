"""BetaVAE score (Higgins et al. 2017), as disentanglement_lib computes it.

One point: pick a factor k; draw two batches of 64 factor vectors; copy factor k of the first into
the second; the feature is the mean over pairs of |rep(x1) - rep(x2)|, the label is k. A
LogisticRegression (library defaults, seeded) is fitted on the training points; the score is its
accuracy on the evaluation points. Order of draws (reference order): training points, the
estimator's seed, evaluation points. Needs a dataset because it chooses the factor to fix.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from disentbench.errors import BenchError
from disentbench.metrics.base import Encode, Metric, estimator_seed
from disentbench.metrics.intervention import cycled_group_codes, encode_batches
from disentbench.metrics.registry import register
from disentbench.metrics.utils import one_blas_thread, quiet_estimators


def draw_pairs(
    dataset, num_points: int, batch_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Labels (num_points,) and, per point, the two factor batches stacked (2 * batch_size, K)."""
    labels = np.empty(num_points, dtype=np.int64)
    batches = []
    for i in range(num_points):
        k = int(rng.integers(dataset.num_factors))
        first = dataset.sample_factors(batch_size, rng)
        second = dataset.sample_factors(batch_size, rng)
        second[:, k] = first[:, k]
        labels[i] = k
        batches.append(np.concatenate([first, second]))
    return labels, batches


def pair_features(
    dataset, encode: Encode, batches: list[np.ndarray], batch_size: int, codes_cache: dict | None = None
) -> np.ndarray:
    """Mean |rep(x1) - rep(x2)| per point."""
    return np.stack(
        [
            np.mean(np.abs(codes[:batch_size] - codes[batch_size:]), axis=0)
            for codes in encode_batches(dataset, encode, batches, codes_cache=codes_cache)
        ]
    )


def beta_vae_score(train_x, train_y, eval_x, eval_y, seed: int) -> dict[str, float]:
    """Fit the reference classifier on features and labels; accuracies on train and eval."""
    with quiet_estimators(), one_blas_thread():
        model = LogisticRegression(random_state=seed).fit(train_x, train_y)
        return {
            "beta_vae": float(np.mean(model.predict(eval_x) == eval_y)),
            "beta_vae_train_accuracy": float(np.mean(model.predict(train_x) == train_y)),
        }


@register("beta_vae")
class BetaVAEScore(Metric):
    num_train = 10_000
    num_test = 5_000
    batch_size = 64
    needs_dataset = True

    def evaluate(
        self, dataset, encode: Encode, rng: np.random.Generator, codes_cache: dict | None = None
    ) -> dict[str, float]:
        if self.num_test < 1:
            raise BenchError("beta_vae needs num_test >= 1 evaluation points")
        train_y, train_batches = draw_pairs(dataset, self.num_train, self.batch_size, rng)
        seed = estimator_seed(rng)
        eval_y, eval_batches = draw_pairs(dataset, self.num_test, self.batch_size, rng)
        train_x = pair_features(dataset, encode, train_batches, self.batch_size, codes_cache)
        eval_x = pair_features(dataset, encode, eval_batches, self.batch_size, codes_cache)
        if len(np.unique(train_y)) < 2:
            raise BenchError("beta_vae: the training points cover one factor only; raise num_train")
        return beta_vae_score(train_x, train_y, eval_x, eval_y, seed)


@register("beta_vae_infogancr")
class BetaVAEInfoGANCR(Metric):
    """InfoGAN-CR's `BetaVAEMetric` (fjxmlzn/InfoGAN-CR, `gan/metric.py`), a variant for the published
    table. The points are the groups of its FactorVAE metric (intervention.draw_cycled_groups: 500
    groups, `num_train`, of 100 images, `batch_size`; group i fixes factor i mod K to one value for
    the whole group). Feature: the mean over the pairs (image 0, 1), (2, 3)... of |rep(a) - rep(b)|;
    label: the fixed factor. Classifier: `LogisticRegression()` of the scikit-learn its Python 2.7
    code ran with (before 0.22): liblinear, one-vs-rest, C=1, the intercept penalised; fitted on the
    500 points and scored on those same points (no evaluation set)."""

    num_train = 500
    num_test = 0
    batch_size = 100
    needs_dataset = True
    variant_of = "beta_vae"

    def evaluate(
        self, dataset, encode: Encode, rng: np.random.Generator, codes_cache: dict | None = None
    ) -> dict[str, float]:
        if self.batch_size < 2 or self.batch_size % 2:
            raise BenchError("beta_vae_infogancr needs an even batch_size >= 2 (the images of a group form pairs)")
        labels, groups = cycled_group_codes(dataset, encode, self.num_train, self.batch_size, rng, codes_cache)
        if len(np.unique(labels)) < 2:
            raise BenchError("beta_vae_infogancr: the points cover one factor only; raise num_train")
        features = np.mean(np.abs(groups[:, 0::2] - groups[:, 1::2]), axis=1)
        seed = estimator_seed(rng)
        with quiet_estimators(), one_blas_thread():
            model = OneVsRestClassifier(LogisticRegression(solver="liblinear", random_state=seed))
            model.fit(features, labels)
            return {"beta_vae_infogancr": float(np.mean(model.predict(features) == labels))}
