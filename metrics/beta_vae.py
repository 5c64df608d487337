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

from disentbench.bench.errors import BenchError
from disentbench.metrics.base import Encode, Metric, estimator_seed
from disentbench.metrics.intervention import encode_batches
from disentbench.metrics.registry import register
from disentbench.metrics.utils import quiet_estimators


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


def pair_features(dataset, encode: Encode, batches: list[np.ndarray], batch_size: int) -> np.ndarray:
    """Mean |rep(x1) - rep(x2)| per point."""
    return np.stack(
        [
            np.mean(np.abs(codes[:batch_size] - codes[batch_size:]), axis=0)
            for codes in encode_batches(dataset, encode, batches)
        ]
    )


def beta_vae_score(train_x, train_y, eval_x, eval_y, seed: int) -> dict[str, float]:
    """Fit the reference classifier on features and labels; accuracies on train and eval."""
    with quiet_estimators():
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

    def score(self, train_codes, train_factors, test_codes, test_factors, random_state):
        raise BenchError(
            "beta_vae chooses which factor to fix, so it needs a dataset and an encoder: "
            "use metrics.evaluate('beta_vae', dataset, encode)"
        )

    def evaluate(
        self, dataset, encode: Encode, rng: np.random.Generator, codes_cache: dict | None = None
    ) -> dict[str, float]:
        if self.num_test < 1:
            raise BenchError("beta_vae needs num_test >= 1 evaluation points")
        train_y, train_batches = draw_pairs(dataset, self.num_train, self.batch_size, rng)
        seed = estimator_seed(rng)
        eval_y, eval_batches = draw_pairs(dataset, self.num_test, self.batch_size, rng)
        train_x = pair_features(dataset, encode, train_batches, self.batch_size)
        eval_x = pair_features(dataset, encode, eval_batches, self.batch_size)
        if len(np.unique(train_y)) < 2:
            raise BenchError("beta_vae: the training points cover one factor only; raise num_train")
        return beta_vae_score(train_x, train_y, eval_x, eval_y, seed)
