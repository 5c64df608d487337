"""Two variants of the downstream task (metrics/downstream.py) from disentanglement_lib.

`reduced_downstream` (the reference's `reduced_downstream_task`): for each factor j, delete from the
code the `num_remove` latents most important for j (by DCI's gradient-boosted importance, fitted on
the train set and recomputed on the reduced code after each deletion) and predict every factor from
what is left. A disentangled code loses factor j (its accuracy falls to chance) and keeps the others.

`strong_downstream` (the reference's `strong_downstream_task`): strong generalisation under a
covariate shift. Per factor i and experiment, another factor is fixed to one value in the whole train
set and set to other values in the whole test set (the codes are re-rendered and re-encoded from the
changed factors); a classifier of factor i fitted on the shifted train set is tested on the shifted
test set and compared with the unshifted downstream accuracy. It needs the dataset and the encoder.

Both use one classifier family (`predictor`): "gbt" (GradientBoostingClassifier with scikit-learn's
defaults via metrics/gbt.py, the only predictor the reference's configurations bind) or "lr"
(the downstream task's LogisticRegressionCV). Every draw comes from the metric's generator.
"""

from __future__ import annotations

import numpy as np

from disentbench.errors import BenchError
from disentbench.metrics import boosted
from disentbench.metrics.base import Encode, Metric, encode_images, estimator_seed, gather_codes
from disentbench.metrics.downstream import gbt_predictions, lr_accuracy, train_sizes
from disentbench.metrics.registry import register
from disentbench.metrics.sampling import draw_train_test, sample_key
from disentbench.metrics.utils import check_pair, one_blas_thread, resolve_jobs

VARIANT_PREDICTORS = ("gbt", "lr")
#: images rendered per chunk when re-encoding intervened factors (a multiple of both encode batches)
RENDER_CHUNK = 2048


def factor_accuracies(
    x: np.ndarray, y: np.ndarray, xt: np.ndarray, yt: np.ndarray, predictor: str, seed: int, jobs: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) accuracy per factor (columns of y) of one classifier per factor."""
    if predictor == "gbt":
        preds = gbt_predictions(x, y, xt, seed, jobs)
        train = np.array([np.mean(p[0] == y[:, k]) for k, p in enumerate(preds)])
        test = np.array([np.mean(p[1] == yt[:, k]) for k, p in enumerate(preds)])
        return train, test
    with one_blas_thread():  # tiny products: one BLAS thread is fastest
        pairs = np.array([lr_accuracy(x, y[:, k], xt, yt[:, k]) for k in range(y.shape[1])]).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def _check_common(name: str, kwargs: dict, num_test: int) -> None:
    if kwargs["predictor"] not in VARIANT_PREDICTORS:
        raise BenchError(
            f"{name}: predictor must be one of: {', '.join(VARIANT_PREDICTORS)}; got {kwargs['predictor']!r}"
        )
    if int(kwargs["num_sizes"]) < 1:
        raise BenchError(f"{name}: num_sizes must be >= 1")
    if num_test < 1:
        raise BenchError(f"{name} needs num_test >= 1 test points per training size")


def _draw_sets(metric: Metric, dataset, encode: Encode, rng: np.random.Generator, sizes: list[int], cache):
    """Per size (largest first): train set, test set, estimator seed; the largest size's sets come
    through the shared codes cache (the same codes every metric of those sizes draws first)."""
    sets = []
    for i, n in enumerate(sizes):
        if i == 0:
            drawn = draw_train_test(dataset, encode, rng, n, metric.num_test, metric.batch_size, cache)
        else:
            drawn = (
                *gather_codes(dataset, encode, n, rng, metric.batch_size),
                *gather_codes(dataset, encode, metric.num_test, rng, metric.batch_size),
            )
        sets.append((n, check_pair(*drawn, metric.registered_name), estimator_seed(rng)))
    return sets


# --- reduced downstream task ------------------------------------------------------------------


def removed_latents(
    x: np.ndarray, y: np.ndarray, xt: np.ndarray, yt: np.ndarray, seed: int, num_remove: int, jobs: int, first=None
) -> list[list[int]]:
    """Per factor j, the original indices of the `num_remove` latents deleted for it: each round
    deletes the latent of largest boosted-tree importance for j on the current reduced code (the
    reference recomputes the importance after each deletion). `first` (optional): the classifiers
    already fitted on the full code, one per factor, whose importances serve for round one."""
    out = []
    for j in range(y.shape[1]):
        keep = list(range(x.shape[1]))
        for r in range(num_remove):
            if r == 0 and first is not None:
                importance = np.abs(first[j].importance)
            else:
                model = boosted.fit(x[:, keep], y[:, j], xt[:, keep], seed, yt[:, j], workers=jobs)
                importance = np.abs(model.importance)
            del keep[int(np.argmax(importance))]  # first maximum on ties, as np.argmax in the reference
        out.append(sorted(set(range(x.shape[1])) - set(keep)))
    return out


def reduced_downstream_scores(
    sets: list[tuple[int, tuple, int]],
    num_remove: int = 1,
    predictor: str = "gbt",
    n_jobs: int | None = 1,
    cache: dict | None = None,
    cache_key: tuple | None = None,
) -> dict[str, float]:
    """Scores from [(size, (train codes, train factors, test codes, test factors), seed), ...],
    largest size first; `cache`/`cache_key` share the largest size's full-code classifiers."""
    jobs = resolve_jobs(n_jobs, 10**6)
    out: dict[str, float] = {}
    for i, (n, (x, y, xt, yt), seed) in enumerate(sets):
        num_factors = y.shape[1]
        if num_factors < 2:
            raise BenchError("reduced_downstream needs 2 or more factors (it scores the factors left predictable)")
        if num_remove >= x.shape[1]:
            raise BenchError(
                f"reduced_downstream: num_remove ({num_remove}) must leave at least one of the {x.shape[1]} latents"
            )
        first = boosted.fit_factors(x, y, xt, yt, seed, jobs, cache if i == 0 else None, cache_key)
        removed = removed_latents(x, y, xt, yt, seed, num_remove, jobs, first)
        own_train, own_test, other_train, other_test = [], [], [], []
        for j, dims in enumerate(removed):
            keep = [d for d in range(x.shape[1]) if d not in dims]
            train_acc, test_acc = factor_accuracies(x[:, keep], y, xt[:, keep], yt, predictor, seed, jobs)
            for k in range(num_factors):
                out[f"reduced_downstream_{n}_test_factor{k}_removed{j}"] = float(test_acc[k])
                out[f"reduced_downstream_{n}_train_factor{k}_removed{j}"] = float(train_acc[k])
            own_train.append(train_acc[j])
            own_test.append(test_acc[j])
            other_train.extend(np.delete(train_acc, j))
            other_test.extend(np.delete(test_acc, j))
        out[f"reduced_downstream_{n}_others_test"] = float(np.mean(other_test))
        out[f"reduced_downstream_{n}_others_train"] = float(np.mean(other_train))
        out[f"reduced_downstream_{n}_removed_test"] = float(np.mean(own_test))
        out[f"reduced_downstream_{n}_removed_train"] = float(np.mean(own_train))
    out["reduced_downstream"] = out[f"reduced_downstream_{sets[0][0]}_others_test"]
    return out


@register("reduced_downstream")
class ReducedDownstream(Metric):
    """The reference's configuration: one size of 100 train and 100 test points, one latent removed
    per factor, DCI's importance, gradient-boosted trees."""

    num_train = 100
    num_test = 100
    params = {"num_sizes": 1, "num_remove": 1, "predictor": "gbt", "n_jobs": -1}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _check_common("reduced_downstream", self.kwargs, self.num_test)
        if int(self.kwargs["num_remove"]) < 1:
            raise BenchError("reduced_downstream: num_remove must be >= 1")

    def sizes(self) -> list[int]:
        return train_sizes(self.num_train, int(self.kwargs["num_sizes"]))

    def _scores(self, sets, cache=None, cache_key=None) -> dict[str, float]:
        k = self.kwargs
        return reduced_downstream_scores(sets, int(k["num_remove"]), k["predictor"], k["n_jobs"], cache, cache_key)

    def score(self, train_codes, train_factors, test_codes, test_factors, random_state):
        x, y, xt, yt = check_pair(train_codes, train_factors, test_codes, test_factors, "reduced_downstream")
        sizes = train_sizes(len(x), int(self.kwargs["num_sizes"]))
        return self._scores([(n, (x[:n], y[:n], xt, yt), estimator_seed(random_state)) for n in sizes])

    def evaluate(
        self, dataset, encode: Encode, rng: np.random.Generator, codes_cache: dict | None = None
    ) -> dict[str, float]:
        sets = _draw_sets(self, dataset, encode, rng, self.sizes(), codes_cache)
        return self._scores(sets, codes_cache, sample_key(self.sizes()[0], self.num_test, self.batch_size))


# --- strong downstream task -------------------------------------------------------------------


def intervene(
    train_factors: np.ndarray,
    test_factors: np.ndarray,
    target: int,
    factor_sizes: tuple[int, ...],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Copies of the factors with one factor other than `target` (chosen uniformly among those with
    2 or more values) fixed to one uniform value in the train set and set to a uniform one of its
    other values, point by point, in the test set; also the factor and its train value."""
    choices = [f for f in range(len(factor_sizes)) if f != target and factor_sizes[f] > 1]
    if not choices:
        raise BenchError(f"strong_downstream: factor {target} has no other factor with 2 or more values to shift")
    factor = int(choices[int(rng.integers(len(choices)))])
    value = int(rng.integers(factor_sizes[factor]))
    others = rng.integers(factor_sizes[factor] - 1, size=len(test_factors))
    train, test = train_factors.copy(), test_factors.copy()
    train[:, factor] = value
    test[:, factor] = others + (others >= value)  # skips the train value
    return train, test, factor, value


def encode_factors(dataset, encode: Encode, factors: np.ndarray) -> np.ndarray:
    """(n, D) float64 codes of the observations of given factors, rendered in chunks."""
    parts = [
        encode_images(encode, dataset.observations(factors[i : i + RENDER_CHUNK]))
        for i in range(0, len(factors), RENDER_CHUNK)
    ]
    codes = np.concatenate(parts)
    return codes.reshape(len(codes), -1)


@register("strong_downstream")
class StrongDownstream(Metric):
    """The reference's configuration: one size of 1,000 train and 1,000 test points, 2 experiments
    per factor, gradient-boosted trees."""

    num_train = 1_000
    num_test = 1_000
    needs_dataset = True
    params = {"num_sizes": 1, "n_experiment": 2, "predictor": "gbt", "n_jobs": -1}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _check_common("strong_downstream", self.kwargs, self.num_test)
        if int(self.kwargs["n_experiment"]) < 1:
            raise BenchError("strong_downstream: n_experiment must be >= 1")

    def sizes(self) -> list[int]:
        return train_sizes(self.num_train, int(self.kwargs["num_sizes"]))

    def score(self, train_codes, train_factors, test_codes, test_factors, random_state):
        raise BenchError(
            "strong_downstream intervenes on factors and re-encodes them, so it needs a dataset and an "
            "encoder: use metrics.evaluate('strong_downstream', dataset, encode)"
        )

    def evaluate(
        self, dataset, encode: Encode, rng: np.random.Generator, codes_cache: dict | None = None
    ) -> dict[str, float]:
        """Per size: its sets and seed (as `downstream` draws them), the unshifted accuracies, then per
        factor and experiment one intervention (factor, train value, test values) and one fit."""
        if dataset.num_factors < 2:
            raise BenchError("strong_downstream needs a dataset with 2 or more factors")
        k = self.kwargs
        jobs = resolve_jobs(k["n_jobs"], 10**6)
        sizes = self.sizes()
        key = sample_key(sizes[0], self.num_test, self.batch_size)
        out: dict[str, float] = {}
        for i, (n, (x, y, xt, yt), seed) in enumerate(_draw_sets(self, dataset, encode, rng, sizes, codes_cache)):
            if k["predictor"] == "gbt":  # the largest size's classifiers are shared through the cache
                models = boosted.fit_factors(x, y, xt, yt, seed, jobs, codes_cache if i == 0 else None, key)
                train_acc = np.array([np.mean(m.train_pred == y[:, f]) for f, m in enumerate(models)])
                test_acc = np.array([np.mean(m.eval_pred == yt[:, f]) for f, m in enumerate(models)])
            else:
                train_acc, test_acc = factor_accuracies(x, y, xt, yt, "lr", seed, jobs)
            strong_train, strong_test = [], []
            for target in range(y.shape[1]):
                for _ in range(int(k["n_experiment"])):
                    y_int, yt_int, _, _ = intervene(y, yt, target, tuple(dataset.factor_sizes), rng)
                    x_int, xt_int = encode_factors(dataset, encode, y_int), encode_factors(dataset, encode, yt_int)
                    a, b = factor_accuracies(
                        x_int, y_int[:, [target]], xt_int, yt_int[:, [target]], k["predictor"], seed, jobs
                    )
                    strong_train.append(a[0])
                    strong_test.append(b[0])
            mean_test = float(np.mean(test_acc))
            out[f"strong_downstream_{n}_test"] = mean_test
            out[f"strong_downstream_{n}_train"] = float(np.mean(train_acc))
            out[f"strong_downstream_{n}_strong_test"] = float(np.mean(strong_test))
            out[f"strong_downstream_{n}_strong_train"] = float(np.mean(strong_train))
            # the reference's 1 - strong / plain test accuracy; 0 when nothing was predicted at all
            gap = 1.0 - float(np.mean(strong_test)) / mean_test if mean_test > 0 else 0.0
            out[f"strong_downstream_{n}_gap"] = gap
        out["strong_downstream"] = out[f"strong_downstream_{sizes[0]}_strong_test"]
        return out
