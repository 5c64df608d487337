"""Downstream task: each predictor equals an independent fit of the reference's estimator on the
same arrays, known answers (perfect code, noise), sizes, keys, draw order and bad options."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import KFold
from threadpoolctl import threadpool_limits

from disentbench import metrics
from disentbench.bench.errors import BenchError
from disentbench.metrics.base import gather_codes
from disentbench.metrics.downstream import gbt_predictions, lr_accuracy, train_sizes
from tests.helpers import IdentityDataset


def data(seed, n, sizes=(3, 5), noise=0.5):
    rng = np.random.default_rng(seed)
    factors = rng.integers(0, np.array(sizes), (n, len(sizes)))
    codes = np.column_stack([factors + noise * rng.normal(size=factors.shape), rng.normal(size=n)])
    return codes, factors


def test_logistic_regression_equals_the_reference_estimator():
    (x, f), (xt, ft) = data(0, 150), data(1, 80)
    # one BLAS thread, as the metric fits (many tiny products; two threads are many times slower here)
    with threadpool_limits(limits=1, user_api="blas"):
        for k in range(2):
            with warnings.catch_warnings():  # the reference's construction, with scikit-learn's defaults
                warnings.simplefilter("ignore")
                ref = LogisticRegressionCV(Cs=10, cv=KFold(n_splits=5)).fit(x, f[:, k])
            expected = (np.mean(ref.predict(x) == f[:, k]), np.mean(ref.predict(xt) == ft[:, k]))
            assert lr_accuracy(x, f[:, k], xt, ft[:, k]) == expected


def test_boosted_trees_equal_the_reference_estimator():
    (x, f), (xt, _) = data(2, 150), data(3, 80)
    preds = gbt_predictions(x, f, xt, seed=4, jobs=2)
    for k in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = GradientBoostingClassifier(random_state=4).fit(x, f[:, k])
        np.testing.assert_array_equal(preds[k][0], ref.predict(x))
        np.testing.assert_array_equal(preds[k][1], ref.predict(xt))


def test_sizes_ladder():
    assert train_sizes(10_000, 4) == [10_000, 1_000, 100, 10]
    assert train_sizes(1_000, 4) == [1_000, 100, 10, 2]
    assert train_sizes(20, 4) == [20, 2]
    assert metrics.create("downstream").sizes() == [10_000, 1_000, 100, 10]


def test_perfect_code_and_noise_known_answers():
    (x, f), (xt, ft) = data(5, 300, noise=0.05), data(6, 100, noise=0.05)
    perfect = metrics.score_arrays("downstream", x, f, xt, ft, seed=0, num_sizes=2, n_jobs=2)
    assert perfect["downstream"] == perfect["downstream_lr_300_test"] == 1.0
    assert perfect["downstream_gbt_300_test"] == 1.0 and perfect["downstream_gbt_300_min_test"] == 1.0
    assert set(perfect) == {"downstream"} | {
        f"downstream_{p}_{n}_{s}"
        for p in ("lr", "gbt")
        for n in (300, 30)
        for s in ("test", "train", "min_test", "min_train")
    }
    rng = np.random.default_rng(7)
    noise = metrics.score_arrays("downstream", rng.normal(size=(300, 3)), f, rng.normal(size=(100, 3)), ft, num_sizes=1)
    assert noise["downstream_lr_300_test"] < 0.5 and noise["downstream_gbt_300_test"] < 0.5  # chance: 1/3, 1/5
    assert noise["downstream_gbt_300_train"] > 0.9  # trees memorise the noise; the test set says so


def test_per_factor_keys_and_min():
    (x, f), (xt, ft) = data(8, 120), data(9, 60)
    s = metrics.score_arrays("downstream", x, f, xt, ft, num_sizes=1, predictors=["lr"], per_factor=True)
    per = [s["downstream_lr_120_test_factor0"], s["downstream_lr_120_test_factor1"]]
    assert s["downstream_lr_120_test"] == pytest.approx(np.mean(per)) and s["downstream_lr_120_min_test"] == min(per)
    assert s["downstream"] == s["downstream_lr_120_test"] and not any("gbt" in key for key in s)


def test_evaluate_draws_the_largest_size_first_as_dci_does():
    ds = IdentityDataset((3, 4))
    encode = torch.clone
    got = metrics.evaluate("downstream", ds, encode, seed=3, num_train=100, num_test=40, n_jobs=1)
    rng = np.random.default_rng(3)
    sets = []
    for n in (100, 10, 2):
        x, f = gather_codes(ds, encode, n, rng)
        xt, ft = gather_codes(ds, encode, 40, rng)
        rng.integers(0, 2**31 - 1)  # the size's estimator seed
        sets.append((x, f, xt, ft))
    with threadpool_limits(limits=1, user_api="blas"):
        for n, (x, f, xt, ft) in zip((100, 10, 2), sets):
            lr = [lr_accuracy(x, f[:, k], xt, ft[:, k])[1] for k in range(2)]
            assert got[f"downstream_lr_{n}_test"] == pytest.approx(np.mean(lr))
    dci = metrics.evaluate("dci", ds, encode, seed=3, num_train=100, num_test=40, n_jobs=1)
    assert got["downstream_gbt_100_test"] == dci["dci_informativeness_test"]


def test_bad_options_are_one_line_errors():
    for call in (
        lambda: metrics.create("downstream", predictors=["svm"]),
        lambda: metrics.create("downstream", predictors=[]),
        lambda: metrics.create("downstream", num_sizes=0),
        lambda: metrics.create("downstream", num_test=0),
        lambda: metrics.score_arrays("downstream", np.zeros((5, 2)), np.zeros((5, 1), dtype=int)),
    ):
        with pytest.raises(BenchError) as err:
            call()
        assert "\n" not in str(err.value)
