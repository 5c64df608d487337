"""Unfairness of a downstream classifier (Locatello et al. 2019, "On the Fairness of Disentangled
Representations", Section 4), as disentanglement_lib's fairness.py computes it.

For each target factor i a gradient-boosted classifier (scikit-learn's defaults, the reference's
predictor) learns i from the code. For each other factor j (the sensitive one): draw
`points_per_class` (100) factor vectors once; for every value c of j, set factor j of all of them to
c, render, encode and predict i. counts[:, c] is the histogram of the predictions. The unfairness of
(i, j) is the total variation distance between each sensitive class's prediction distribution and
the overall one: its mean weighted by the classes' counts (`mean_tv`) and its maximum (`max_tv`).
They are then averaged or maximised over targets and sensitive factors in every combination.

Keys: `fairness` is the paper's score (the reference's `mean_fairness:mean_pred:mean_sens`). For
stat in (mean_tv, max_tv), the reference's `{mean|max}_fairness:{a}:{b}` is
`fairness_{stat}_{a}_{b}` for the eight (a, b) in mean/max_pred x mean/max_sens in either order
(`fairness_mean_tv_mean_pred_mean_sens` is not repeated: it is `fairness`). With
`per_factor=True`: `fairness_{stat}_pred{i}_sens{j}`, `_pred{i}_mean_sens`, `_pred{i}_max_sens`,
`_sens{j}_mean_pred`, `_sens{j}_max_pred`. `fairness_predictor_test_accuracy`: the classifiers'
mean test accuracy (the reference reports none).

Sizes and draws: `num_train` 10,000 training points, then `num_test` 5,000 test points (not in the
reference: they score the classifiers, and make the sets and the estimator seed DCI's, so in
`evaluate_many` the classifiers are fitted once for DCI-ES, the downstream task and this score),
then the estimator seed, then the intervention batches in the reference's order (target, then
sensitive factor). The reference's arithmetic is kept, float32 where it uses float32.
Needs a dataset (it intervenes on factors) with at least two factors.
"""

from __future__ import annotations

import numpy as np

from disentbench.errors import BenchError
from disentbench.metrics.base import Encode, Metric, estimator_seed
from disentbench.metrics.boosted import fit_factors
from disentbench.metrics.intervention import encode_batches
from disentbench.metrics.registry import register
from disentbench.metrics.sampling import draw_train_test, sample_key

COMBOS = (
    ("mean_sens", "mean_pred"),
    ("mean_sens", "max_pred"),
    ("max_sens", "mean_pred"),
    ("max_sens", "max_pred"),
    ("mean_pred", "mean_sens"),
    ("mean_pred", "max_sens"),
    ("max_pred", "mean_sens"),
    ("max_pred", "max_sens"),
)


def inter_group_fairness(counts: np.ndarray) -> tuple[float, float]:
    """(count-weighted mean, max) over sensitive classes of the total variation distance between
    each class's prediction distribution and the overall one. counts: (predicted classes,
    sensitive classes), every column non-empty. float32 where the reference computes in float32."""
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] < 1 or np.any(counts.sum(axis=0) <= 0):
        raise BenchError("inter_group_fairness needs a (predictions, sensitive classes) table with no empty column")
    overall = np.sum(counts, axis=1, dtype=np.float32)
    overall /= overall.sum()
    per_class = np.sum(counts, axis=0)
    conditional = np.array(counts, dtype=np.float32)
    conditional /= per_class[None, :]
    tv = np.sum(np.abs(conditional - overall[:, None]), axis=0) / 2.0
    weighted = tv * per_class
    weighted /= per_class.sum()
    return float(np.sum(weighted)), float(np.max(tv))


def aggregate(matrix: np.ndarray, stat: str, per_factor: bool = False) -> dict[str, float]:
    """Keys for one (target, sensitive) matrix; the diagonal (a factor against itself) is ignored."""
    m = np.asarray(matrix, dtype=np.float64)
    k = m.shape[0]
    off = ~np.eye(k, dtype=bool)
    rows = [m[i, off[i]] for i in range(k)]  # target i against every sensitive factor
    cols = [m[off[:, j], j] for j in range(k)]  # sensitive factor j, every target
    reduce = {"mean": np.mean, "max": np.max}
    row = {s: np.array([reduce[s](r) for r in rows]) for s in reduce}  # over sensitive factors
    col = {s: np.array([reduce[s](c) for c in cols]) for s in reduce}  # over targets
    out = {}
    for outer, inner in COMBOS:
        outer_stat, outer_axis = outer.split("_")
        inner_stat = inner.split("_")[0]
        values = col[inner_stat] if outer_axis == "sens" else row[inner_stat]
        out[f"fairness_{stat}_{outer}_{inner}"] = float(reduce[outer_stat](values))
    if per_factor:
        for i in range(k):
            for j in range(k):
                if i != j:
                    out[f"fairness_{stat}_pred{i}_sens{j}"] = float(m[i, j])
            out[f"fairness_{stat}_pred{i}_mean_sens"] = float(row["mean"][i])
            out[f"fairness_{stat}_pred{i}_max_sens"] = float(row["max"][i])
        for j in range(k):
            out[f"fairness_{stat}_sens{j}_mean_pred"] = float(col["mean"][j])
            out[f"fairness_{stat}_sens{j}_max_pred"] = float(col["max"][j])
    return out


def fairness_scores(mean_tv: np.ndarray, max_tv: np.ndarray, per_factor: bool = False) -> dict[str, float]:
    """All keys from the two (target, sensitive) matrices."""
    out = {"fairness": aggregate(mean_tv, "mean_tv")["fairness_mean_tv_mean_pred_mean_sens"]}
    for matrix, stat in ((mean_tv, "mean_tv"), (max_tv, "max_tv")):
        keys = aggregate(matrix, stat, per_factor)
        keys.pop("fairness_mean_tv_mean_pred_mean_sens", None)
        out.update(keys)
    return out


def draw_interventions(dataset, points_per_class: int, rng: np.random.Generator) -> list[tuple[int, int, np.ndarray]]:
    """[(target i, sensitive j, factors (n_j * points, K))]: per (i, j != i) one draw of base
    factors, then factor j set to each of its values in turn (blocks of `points_per_class`)."""
    out = []
    sizes = dataset.factor_sizes
    for i in range(dataset.num_factors):
        for j in range(dataset.num_factors):
            if i == j:
                continue
            base = dataset.sample_factors(points_per_class, rng)
            blocks = []
            for c in range(sizes[j]):
                block = base.copy()
                block[:, j] = c
                blocks.append(block)
            out.append((i, j, np.concatenate(blocks)))
    return out


@register("fairness")
class Fairness(Metric):
    num_train = 10_000
    num_test = 5_000
    needs_dataset = True
    params = {"points_per_class": 100, "per_factor": False, "n_jobs": -1}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if int(self.kwargs["points_per_class"]) < 1:
            raise BenchError("fairness: points_per_class must be >= 1")
        if self.num_test < 1:
            raise BenchError("fairness needs num_test >= 1")

    def score(self, train_codes, train_factors, test_codes, test_factors, random_state):
        raise BenchError(
            "fairness intervenes on factors, so it needs a dataset and an encoder: "
            "use metrics.evaluate('fairness', dataset, encode)"
        )

    def check_dataset(self, dataset) -> None:
        """Refuse a dataset this score cannot serve (call it before training a model for it)."""
        if dataset.num_factors < 2:
            raise BenchError(
                f"fairness needs a dataset with at least two factors (a target and a sensitive one); "
                f"{getattr(dataset, 'name', 'this dataset')} has {dataset.num_factors}"
            )

    def evaluate(
        self, dataset, encode: Encode, rng: np.random.Generator, codes_cache: dict | None = None
    ) -> dict[str, float]:
        self.check_dataset(dataset)
        x, y, xt, yt = draw_train_test(
            dataset, encode, rng, self.num_train, self.num_test, self.batch_size, codes_cache
        )
        seed = estimator_seed(rng)
        groups = draw_interventions(dataset, int(self.kwargs["points_per_class"]), rng)
        codes = list(encode_batches(dataset, encode, [f for _, _, f in groups]))
        models = fit_factors(
            x,
            y,
            xt,
            yt,
            seed,
            self.kwargs["n_jobs"],
            codes_cache,
            sample_key(self.num_train, self.num_test, self.batch_size),
        )
        k = dataset.num_factors
        mean_tv, max_tv = np.zeros((k, k)), np.zeros((k, k))
        points = int(self.kwargs["points_per_class"])
        for (i, j, _), z in zip(groups, codes):
            predictions = models[i].predict(z).astype(np.int64)
            counts = np.stack(
                [
                    np.bincount(predictions[c * points : (c + 1) * points], minlength=dataset.factor_sizes[i])
                    for c in range(dataset.factor_sizes[j])
                ],
                axis=1,
            )
            mean_tv[i, j], max_tv[i, j] = inter_group_fairness(counts)
        out = fairness_scores(mean_tv, max_tv, bool(self.kwargs["per_factor"]))
        out["fairness_predictor_test_accuracy"] = float(
            np.mean([np.mean(m.eval_pred == yt[:, i]) for i, m in enumerate(models)])
        )
        return out
