"""Fairness: the reference's known answers for its two building blocks, an independent float32
transliteration of its total-variation arithmetic, the whole score against scikit-learn's
classifier on the same draws, fair/unfair codes, and the one-factor refusal before any training."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.ensemble import GradientBoostingClassifier

from disentbench import metrics
from disentbench.bench.errors import BenchError
from disentbench.metrics import boosted
from disentbench.metrics.base import gather_codes
from disentbench.metrics.fairness import aggregate, inter_group_fairness
from tests.helpers import IdentityDataset


def test_inter_group_fairness_reference_known_answer():
    # overall 1/3 : 2/3; class 0 predicts 0 : 1 (TV 1/3), class 1 predicts 1/2 : 1/2 (TV 1/6)
    mean_tv, max_tv = inter_group_fairness(np.array([[0, 100], [100, 100]]))
    assert mean_tv == pytest.approx(1 / 3 * 1 / 3 + 2 / 3 * 1 / 6)
    assert max_tv == pytest.approx(1 / 3)
    assert inter_group_fairness(np.array([[5, 10], [5, 10]])) == (0.0, 0.0)  # same distribution everywhere


def float32_transliteration(counts):
    """The reference's arithmetic element by element: float32 distributions and distances, the
    weighted mean in float64."""
    n_pred, n_sens = counts.shape
    per_class = [int(sum(counts[p, c] for p in range(n_pred))) for c in range(n_sens)]
    row = [np.float32(sum(int(v) for v in counts[p])) for p in range(n_pred)]
    total = np.float32(np.sum(np.array(row, dtype=np.float32)))
    overall = [np.float32(r / total) for r in row]
    tv = []
    for c in range(n_sens):
        diffs = [
            np.abs(np.float32(np.float32(counts[p, c]) / np.float64(per_class[c])) - overall[p]) for p in range(n_pred)
        ]
        acc = np.float32(0)
        for d in diffs:
            acc = np.float32(acc + d)
        tv.append(np.float32(acc / np.float32(2)))
    weighted = [np.float64(tv[c]) * per_class[c] / sum(per_class) for c in range(n_sens)]
    return float(np.sum(weighted)), float(max(tv))


def test_inter_group_fairness_equals_float32_transliteration():
    rng = np.random.default_rng(0)
    for shape in [(3, 4), (7, 2), (40, 6)]:
        counts = rng.integers(0, 60, shape)
        counts[0] += 1  # no empty sensitive class
        mean_tv, max_tv = inter_group_fairness(counts)
        ref_mean, ref_max = float32_transliteration(counts)
        assert mean_tv == pytest.approx(ref_mean, rel=1e-12) and max_tv == ref_max


def test_aggregates_reference_known_answer():
    scores = np.array([[0.0, 2.0, 4.0], [4.0, 0.0, 8.0], [2.0, 10.0, 0.0]])
    out = aggregate(scores, "mean_tv", per_factor=True)
    expected = {
        "pred0_sens1": 2.0, "pred0_sens2": 4.0, "pred1_sens0": 4.0, "pred1_sens2": 8.0,
        "pred2_sens0": 2.0, "pred2_sens1": 10.0,
        "pred0_mean_sens": 3.0, "pred0_max_sens": 4.0, "pred1_mean_sens": 6.0, "pred1_max_sens": 8.0,
        "pred2_mean_sens": 6.0, "pred2_max_sens": 10.0,
        "sens0_mean_pred": 3.0, "sens0_max_pred": 4.0, "sens1_mean_pred": 6.0, "sens1_max_pred": 10.0,
        "sens2_mean_pred": 6.0, "sens2_max_pred": 8.0,
        "mean_sens_mean_pred": 5.0, "mean_sens_max_pred": 22.0 / 3.0, "max_sens_mean_pred": 6.0,
        "max_sens_max_pred": 10.0, "mean_pred_mean_sens": 5.0, "mean_pred_max_sens": 22.0 / 3.0,
        "max_pred_mean_sens": 6.0, "max_pred_max_sens": 10.0,
    }  # fmt: skip
    assert out == pytest.approx({f"fairness_mean_tv_{k}": v for k, v in expected.items()})


def entangled(obs):
    """Factors 0 and 1 only as their sum (and the last factor as it is): a prediction of factor 0
    has to guess, and its guess moves with factor 1."""
    return torch.stack([obs[:, 0] + obs[:, 1], obs[:, -1]], dim=1)


def brute_force_fairness(ds, encode, seed, n_train, n_test, points):
    """The score from the same draws with scikit-learn's own classifier and the reference's steps."""
    rng = np.random.default_rng(seed)
    x, f = gather_codes(ds, encode, n_train, rng)
    gather_codes(ds, encode, n_test, rng)
    est_seed = int(rng.integers(0, 2**31 - 1))
    k = ds.num_factors
    mean_tv = np.zeros((k, k))
    models = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(k):
            models.append(GradientBoostingClassifier(random_state=est_seed).fit(x, f[:, i]))
    for i in range(k):
        for j in range(k):
            if i == j:
                continue
            base = ds.sample_factors(points, rng)
            counts = np.zeros((ds.factor_sizes[i], ds.factor_sizes[j]), dtype=np.int64)
            for c in range(ds.factor_sizes[j]):
                inter = base.copy()
                inter[:, j] = c
                z = encode(ds.observations(inter)).numpy()
                counts[:, c] = np.bincount(models[i].predict(z), minlength=ds.factor_sizes[i])
            mean_tv[i, j] = float32_transliteration(counts)[0]
    off = ~np.eye(k, dtype=bool)
    return float(np.mean([mean_tv[i, off[i]].mean() for i in range(k)]))


def test_equals_scikit_learn_classifier_on_the_same_draws():
    ds = IdentityDataset((3, 4, 2))
    got = metrics.evaluate("fairness", ds, entangled, seed=4, num_train=150, num_test=30, points_per_class=20, n_jobs=1)
    expected = brute_force_fairness(ds, entangled, 4, 150, 30, 20)
    assert expected > 0.05 and got["fairness"] == pytest.approx(expected, rel=1e-12)


def test_fair_code_scores_zero_and_entangled_code_scores_higher():
    ds = IdentityDataset((3, 4, 2))
    sizes = {"num_train": 200, "num_test": 50, "points_per_class": 30, "n_jobs": 1}
    fair = metrics.evaluate("fairness", ds, torch.clone, seed=0, **sizes)
    assert fair["fairness"] == 0.0 and fair["fairness_max_tv_max_pred_max_sens"] == 0.0
    assert fair["fairness_predictor_test_accuracy"] == 1.0
    unfair = metrics.evaluate("fairness", ds, entangled, seed=0, **sizes)
    assert unfair["fairness"] > 0.1
    assert unfair["fairness_max_tv_max_pred_max_sens"] >= unfair["fairness"]
    assert len(unfair) == 1 + 15 + 1  # headline, the other 15 combinations, the predictors' accuracy


def test_one_factor_is_refused_before_any_training(monkeypatch):
    monkeypatch.setattr(boosted, "fit", lambda *a, **k: pytest.fail("trained before refusing"))
    with pytest.raises(BenchError, match="at least two factors") as err:
        metrics.evaluate("fairness", IdentityDataset((5,)), torch.clone, num_train=50, num_test=10)
    assert "\n" not in str(err.value)
    with pytest.raises(BenchError, match="at least two factors"):  # what a planner can call before training a model
        metrics.create("fairness").check_dataset(IdentityDataset((5,)))
    metrics.create("fairness").check_dataset(IdentityDataset((5, 2)))
    for call in (
        lambda: metrics.score_arrays("fairness", np.zeros((5, 2)), np.zeros((5, 2), dtype=int)),
        lambda: metrics.create("fairness", points_per_class=0),
    ):
        with pytest.raises(BenchError) as err:
            call()
        assert "\n" not in str(err.value)
