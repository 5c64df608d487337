"""DCI-ES (Eastwood et al., ICLR 2023): DCI plus explicitness (E) and size (S).

Explicitness asks how much probe capacity a representation needs before a factor can be read out:
E = 1 - AULCC / Z, averaged over factors, where AULCC is the area under the loss-capacity curve
above a lowest loss l* and Z the area of the triangle from the baseline loss at the smallest
capacity down to 0 at the largest (half the rectangle baseline x capacity range), as the authors'
code (andreinicolicioiu/DCI-ES, metrics/explitcitness.py) normalises it. l* = 0 (`lowest_loss="zero"`,
the default): the lowest loss the code's comment says the ICLR paper assumes, and the level its
normaliser is measured to; `lowest_loss="curve"` measures from the curve's own lowest loss, as that
code's area does (then a curve that never leaves its lowest loss, noise included, scores 1). Here the probes are DCI's own classifier cut after 1, 2, ...,
100 boosting stages (scikit-learn's GradientBoostingClassifier defaults, seeded as DCI seeds it),
so one fit gives the whole curve and the D, C and I keys equal `dci`'s numbers on the same codes:

- capacity: the number of stages m = 1..100, rescaled linearly to [0, 1] (`capacity_scale="log"`
  rescales log m instead);
- loss: the test error rate after m stages; the curve at m is the lowest loss reached with at most
  m stages, and never above the baseline (the constant predictor is always available);
- baseline loss: the test error of predicting the most frequent training class (the classifier's
  prior, before any stage);
- E_k = 1 - (area of curve_k - l*_k) / (baseline_k / 2), trapezoidal rule; factors whose baseline
  error is 0 (constant in the test set) have nothing to read out and are left out of the mean.
  E lies in [-1, 1]: 1 for a curve at l* from the first probe, 0 for a straight fall from the
  baseline to 0, -1 for a code never better than the baseline; a curve flat at loss l from the
  first probe scores 1 - 2 l / baseline (1 with lowest_loss="curve").

Size is the ratio of the number of factors to the number of latents, S = K / D: 1 for a code with
one latent per factor, smaller for larger codes.
"""

from __future__ import annotations

import numpy as np

from disentbench.errors import BenchError
from disentbench.metrics.base import Encode, Metric, estimator_seed
from disentbench.metrics.boosted import BoostedTrees, fit_factors
from disentbench.metrics.dci import completeness, disentanglement
from disentbench.metrics.registry import register
from disentbench.metrics.sampling import draw_train_test, sample_key
from disentbench.metrics.utils import check_pair

CAPACITY_SCALES = ("linear", "log")
#: where the area under the loss-capacity curve is measured from: 0 (the default) or the curve's own
#: lowest loss (the authors' code)
LOWEST_LOSSES = ("zero", "curve")


def check_capacity_scale(capacity_scale: str, who: str) -> None:
    """One line naming the choices when `capacity_scale` is not one of CAPACITY_SCALES."""
    if capacity_scale not in CAPACITY_SCALES:
        raise BenchError(
            f"{who}: capacity_scale {capacity_scale!r} is unknown; choose one of: {', '.join(CAPACITY_SCALES)}"
        )


def check_lowest_loss(lowest_loss: str, who: str) -> None:
    """One line naming the choices when `lowest_loss` is not one of LOWEST_LOSSES."""
    if lowest_loss not in LOWEST_LOSSES:
        raise BenchError(f"{who}: lowest_loss {lowest_loss!r} is unknown; choose one of: {', '.join(LOWEST_LOSSES)}")


def explicitness_from_losses(
    losses, baseline: float, capacities=None, capacity_scale: str = "linear", lowest_loss: str = "zero"
) -> float:
    """E = 1 - AULCC / Z for one factor.

    losses[m]: the test loss of the probe of capacity capacities[m] (increasing; default 1..M).
    The curve is the running minimum of min(losses, baseline); AULCC is its trapezoidal area over
    capacities rescaled to [0, 1], above l* (0, or the curve's minimum with lowest_loss="curve");
    Z = baseline / 2, the triangle from the baseline at the smallest capacity to 0 at the largest.
    A single capacity counts as a flat curve. NaN when baseline <= 0 (nothing to predict)."""
    losses = np.asarray(losses, dtype=np.float64).reshape(-1)
    if losses.size == 0:
        raise BenchError("explicitness needs the loss of at least one probe")
    if baseline <= 0:
        return float("nan")
    check_capacity_scale(capacity_scale, "explicitness")
    check_lowest_loss(lowest_loss, "explicitness")
    caps = np.arange(1, losses.size + 1, dtype=np.float64) if capacities is None else np.asarray(capacities, float)
    if caps.shape != losses.shape or np.any(np.diff(caps) <= 0) or (capacity_scale == "log" and caps[0] <= 0):
        raise BenchError("explicitness: capacities must be increasing (and positive for a log scale), one per loss")
    curve = np.minimum.accumulate(np.minimum(losses, baseline))
    curve = curve - (curve[-1] if lowest_loss == "curve" else 0.0)  # a running minimum ends at its lowest
    if losses.size == 1:
        area = float(curve[0])
    else:
        x = np.log(caps) if capacity_scale == "log" else caps
        x = (x - x[0]) / (x[-1] - x[0])
        area = float(np.sum(np.diff(x) * (curve[1:] + curve[:-1]) / 2.0))
    return 1.0 - area / (baseline / 2.0)


def scores_from_models(
    models: list[BoostedTrees],
    train_factors: np.ndarray,
    test_factors: np.ndarray,
    num_latents: int,
    capacity_scale: str = "linear",
    lowest_loss: str = "zero",
) -> dict[str, float]:
    """DCI-ES keys from one fitted classifier per factor (fit with the test set as evaluation set)."""
    r = np.stack([np.abs(m.importance) for m in models], axis=1)
    per_factor = []
    for m in models:
        staged = m.staged_eval_error
        per_factor.append(
            explicitness_from_losses(staged[1:], staged[0], capacity_scale=capacity_scale, lowest_loss=lowest_loss)
        )
    valid = np.isfinite(per_factor)
    return {
        "dci_es": float(np.mean(np.asarray(per_factor)[valid])) if valid.any() else 0.0,
        "dci_es_size": train_factors.shape[1] / num_latents,
        "dci_es_disentanglement": disentanglement(r),
        "dci_es_completeness": completeness(r),
        "dci_es_informativeness_train": float(
            np.mean([np.mean(m.train_pred == train_factors[:, k]) for k, m in enumerate(models)])
        ),
        "dci_es_informativeness_test": float(
            np.mean([np.mean(m.eval_pred == test_factors[:, k]) for k, m in enumerate(models)])
        ),
    }


def dci_es(
    train_codes,
    train_factors,
    test_codes,
    test_factors,
    seed: int = 0,
    n_jobs: int | None = 1,
    capacity_scale: str = "linear",
    lowest_loss: str = "zero",
    cache: dict | None = None,
    cache_key: tuple | None = None,
) -> dict[str, float]:
    """DCI-ES on arrays: one seeded boosted classifier per factor, as DCI fits it."""
    check_capacity_scale(capacity_scale, "dci_es")
    check_lowest_loss(lowest_loss, "dci_es")
    train_codes, train_factors, test_codes, test_factors = check_pair(
        train_codes, train_factors, test_codes, test_factors, "dci_es"
    )
    models = fit_factors(train_codes, train_factors, test_codes, test_factors, seed, n_jobs, cache, cache_key)
    return scores_from_models(models, train_factors, test_factors, train_codes.shape[1], capacity_scale, lowest_loss)


@register("dci_es")
class DCIES(Metric):
    num_train = 10_000
    num_test = 5_000
    params = {"n_jobs": -1, "capacity_scale": "linear", "lowest_loss": "zero"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        check_capacity_scale(self.kwargs["capacity_scale"], "dci_es")  # before any model is trained
        check_lowest_loss(self.kwargs["lowest_loss"], "dci_es")
        if self.num_test < 1:
            raise BenchError("dci_es needs num_test >= 1 (the loss-capacity curve is a test loss)")

    def score(self, train_codes, train_factors, test_codes, test_factors, random_state):
        return dci_es(
            train_codes,
            train_factors,
            test_codes,
            test_factors,
            seed=estimator_seed(random_state),
            n_jobs=self.kwargs["n_jobs"],
            capacity_scale=self.kwargs["capacity_scale"],
            lowest_loss=self.kwargs["lowest_loss"],
        )

    def evaluate(
        self, dataset, encode: Encode, rng: np.random.Generator, codes_cache: dict | None = None
    ) -> dict[str, float]:
        """As `Metric.evaluate`; with evaluate_many's cache the classifiers are shared with the other
        metrics that fit them on the same sets from the same seed (downstream, fairness)."""
        sets = draw_train_test(dataset, encode, rng, self.num_train, self.num_test, self.batch_size, codes_cache)
        return dci_es(
            *sets,
            seed=estimator_seed(rng),
            n_jobs=self.kwargs["n_jobs"],
            capacity_scale=self.kwargs["capacity_scale"],
            lowest_loss=self.kwargs["lowest_loss"],
            cache=codes_cache,
            cache_key=sample_key(self.num_train, self.num_test, self.batch_size),
        )
