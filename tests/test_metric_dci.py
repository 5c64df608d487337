"""DCI: the importance-matrix cases of the spec, sanity answers, and both fast estimators (the
numba re-implementation and the stage-parallel scikit-learn fit) equal the plain scikit-learn
GradientBoostingClassifier bit for bit, on continuous codes and where codes repeat."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.ensemble import GradientBoostingClassifier

from disentbench import metrics
from disentbench.bench.errors import BenchError
from disentbench.metrics import gbt
from disentbench.metrics.dci import completeness, dci, disentanglement, importance_matrix

N_TRAIN, N_TEST = 240, 120


def data(seed, n, sizes=(3, 4)):
    rng = np.random.default_rng(seed)
    factors = rng.integers(0, np.array(sizes), (n, len(sizes)))
    return factors.astype(float) + 0.05 * rng.normal(size=factors.shape), factors


def test_importance_matrix_known_answers():
    assert disentanglement(np.eye(5)) == pytest.approx(1.0) and completeness(np.eye(5)) == pytest.approx(1.0)
    stacked = np.vstack([np.eye(5), np.eye(5)])  # each factor found in two of 10 latents
    assert disentanglement(stacked) == pytest.approx(1.0, abs=1e-9)
    assert completeness(stacked) == pytest.approx(1 - np.log(2) / np.log(10), abs=1e-9)
    assert disentanglement(np.zeros((10, 5))) == 0.0 and completeness(np.zeros((10, 5))) == 0.0
    uniform = np.ones((4, 4))
    assert disentanglement(uniform) == pytest.approx(0.0, abs=1e-9)


@pytest.fixture(scope="module")
def perfect():
    (x, f), (xt, ft) = data(0, N_TRAIN), data(1, N_TEST)
    return x, f, xt, ft, dci(x, f, xt, ft, seed=0, n_jobs=1)


def test_perfect_code_scores_high(perfect):
    *_, scores = perfect
    assert scores["dci"] > 0.9 and scores["dci_completeness"] > 0.9
    assert scores["dci_informativeness_test"] == pytest.approx(1.0)


def test_noise_scores_low_and_rotation_lower(perfect):
    x, f, xt, ft, scores = perfect
    rng = np.random.default_rng(2)
    noise = dci(rng.normal(size=x.shape), f, rng.normal(size=xt.shape), ft, seed=0)
    assert noise["dci"] < 0.3
    q = np.array([[np.cos(0.7), -np.sin(0.7)], [np.sin(0.7), np.cos(0.7)]])
    rotated = dci(x @ q, f, xt @ q, ft, seed=0)
    assert rotated["dci"] < scores["dci"] - 0.1


def test_stage_parallel_fit_is_bit_identical_to_sklearn(perfect):
    x, f, xt, ft, _ = perfect
    rng = np.random.default_rng(5)
    x = np.hstack([x, rng.normal(size=(len(x), 1))])  # a noise latent so importances are not trivial
    xt = np.hstack([xt, rng.normal(size=(len(xt), 1))])
    r1, tr1, te1 = importance_matrix(x, f, xt, ft, seed=7, n_jobs=1, backend="sklearn")
    r2, tr2, te2 = importance_matrix(x, f, xt, ft, seed=7, n_jobs=2, backend="sklearn")
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_array_equal(tr1, tr2)
    np.testing.assert_array_equal(te1, te2)
    plain = GradientBoostingClassifier(random_state=7).fit(x, f[:, 1])
    np.testing.assert_array_equal(r2[:, 1], np.abs(plain.feature_importances_))
    assert te2[1] == np.mean(plain.predict(xt) == ft[:, 1])


def test_duplicated_latent_does_not_raise_disentanglement(perfect):
    x, f, xt, ft, scores = perfect
    dup = dci(x[:, [0, 1, 1]], f, xt[:, [0, 1, 1]], ft, seed=0)
    assert dup["dci"] <= scores["dci"] + 1e-9
    assert dup["dci_completeness"] < scores["dci_completeness"]


def test_dead_latent_and_constant_factor_give_no_nan(perfect):
    x, f, xt, ft, _ = perfect
    zeros = lambda a: np.hstack([a, np.zeros((len(a), 1))])  # noqa: E731
    const = lambda a: np.hstack([a, np.zeros((len(a), 1), dtype=np.int64)])  # noqa: E731
    r, _, _ = importance_matrix(zeros(x), const(f), zeros(xt), const(ft), seed=0)
    assert np.all(r[-1] == 0) and np.all(r[:, -1] == 0)
    scores = dci(zeros(x), const(f), zeros(xt), const(ft), seed=0)
    assert all(np.isfinite(v) for v in scores.values())


def test_needs_a_test_set_and_fixed_seed_repeats():
    x, f = data(3, 60)
    with pytest.raises(BenchError):
        metrics.score_arrays("dci", x, f)
    a = metrics.score_arrays("dci", x, f, x, f, seed=1, n_jobs=1)
    assert a == metrics.score_arrays("dci", x, f, x, f, seed=1, n_jobs=1)


def _sklearn_reference(x, y, xt, seed, n_estimators=100):
    model = GradientBoostingClassifier(random_state=seed, n_estimators=n_estimators).fit(x, y)
    return model.feature_importances_, model.predict(x), model.predict(xt)


def _codes(seed, n, sizes=(3, 5, 2), noise=0.4, extra=2):
    rng = np.random.default_rng(seed)
    factors = rng.integers(0, np.array(sizes), (n, len(sizes)))
    x = factors + noise * rng.normal(size=factors.shape)
    return np.hstack([x, rng.normal(size=(n, extra))]), factors


@pytest.mark.parametrize("factor", [0, 1, 2])  # 3 classes, 5 classes, binary
def test_numba_gbt_equals_sklearn_bit_for_bit_on_continuous_codes(factor):
    (x, f), (xt, _) = _codes(10, 300), _codes(11, 150)
    imp, p_train, p_test = gbt.fit_predict(x, f[:, factor], xt, seed=4)
    ref_imp, ref_train, ref_test = _sklearn_reference(x, f[:, factor], xt, seed=4)
    np.testing.assert_array_equal(imp, ref_imp)
    np.testing.assert_array_equal(p_train, ref_train)
    np.testing.assert_array_equal(p_test, ref_test)


def test_numba_gbt_breaks_exact_ties_as_sklearn_does():
    """Duplicated latents tie exactly at every node; scikit-learn's random feature order decides
    which one splits, so equal importances need its xorshift draws and constant bookkeeping."""
    (x, f), (xt, _) = _codes(12, 300), _codes(13, 150)
    cols = [0, 1, 1, 3, 0, 4]
    for seed in (0, 1, 2):
        imp, p_train, _ = gbt.fit_predict(x[:, cols], f[:, 1], xt[:, cols], seed=seed)
        ref_imp, ref_train, _ = _sklearn_reference(x[:, cols], f[:, 1], xt[:, cols], seed=seed)
        np.testing.assert_array_equal(imp, ref_imp)
        np.testing.assert_array_equal(p_train, ref_train)
    assert imp[1] > 0 and imp[2] > 0  # both copies are used: the tie-breaking is exercised


def test_numba_gbt_equals_sklearn_bit_for_bit_on_repeated_values():
    """Discrete codes, rounded codes and a dead latent: equal values leave scikit-learn's unstable
    sort free to reorder samples, which changes how its sums round; that order is replayed too."""
    (x, f), (xt, ft) = _codes(14, 300), _codes(15, 150)
    rows = np.random.default_rng(16).integers(0, 120, 300)  # points drawn again, as from a finite grid
    mixed = np.hstack([x[rows], np.round(x[:, :1], 1)])  # duplicated rows and a rounded latent
    cases = [
        (f.astype(float), ft.astype(float), f[:, 1]),
        (np.round(x, 1), np.round(xt, 1), f[:, 1]),
        (np.hstack([x, np.zeros((300, 1))]), np.hstack([xt, np.zeros((150, 1))]), f[:, 1]),
        (x[rows], xt, f[rows, 1]),
        (mixed, np.hstack([xt, xt[:, :1]]), f[rows, 1]),
    ]
    for (codes, test_codes, labels), seed in zip(cases, (5, 2, 2, 3, 3)):
        imp, p_train, p_test = gbt.fit_predict(codes, labels, test_codes, seed=seed)
        ref_imp, ref_train, ref_test = _sklearn_reference(codes, labels, test_codes, seed=seed)
        np.testing.assert_array_equal(imp, ref_imp)
        np.testing.assert_array_equal(p_train, ref_train)
        np.testing.assert_array_equal(p_test, ref_test)


def test_dci_backends_agree_and_unknown_backend_is_a_clear_error(perfect):
    x, f, xt, ft, scores = perfect
    assert dci(x, f, xt, ft, seed=0, backend="sklearn") == scores
    assert dci(x, f, xt, ft, seed=0, n_jobs=2) == scores  # each stage's class-trees on two threads
    with pytest.raises(BenchError, match="choose one of: numba, sklearn"):
        dci(x, f, xt, ft, backend="xgboost")
    with pytest.raises(BenchError, match="choose one of: numba, sklearn"):
        metrics.create("dci", backend="xgboost")  # at construction, before any training


def test_pairwise_sum_is_numpys_sum():
    rng = np.random.default_rng(0)
    for n in [1, 7, 8, 9, 127, 128, 129, 300, 1000, 4097]:
        a = rng.normal(size=n) * rng.exponential(size=n)
        assert gbt._pairwise_sum(a, 0, n) == np.sum(a)


def test_introsort_replays_sklearns_unstable_sort():
    from sklearn.utils._sorting import _py_simultaneous_sort

    rng = np.random.default_rng(1)
    for n in [2, 15, 16, 17, 100, 1000, 5000]:
        for levels in [1, 3, 50, None]:  # many repeats ... none
            values = (rng.integers(0, levels, n) if levels else rng.normal(size=n)).astype(np.float32)
            ref_values, ref_idx = values.copy(), np.arange(n, dtype=np.intp)
            _py_simultaneous_sort(ref_values, ref_idx, n, use_three_way_partition=True)
            ours_values, ours_idx = values.copy(), np.arange(n, dtype=np.int32)
            every = np.unique(values)  # follow every part: the whole sort
            gbt._introsort3_ties(ours_values, ours_idx, 0, n, every, len(every))
            np.testing.assert_array_equal(ours_idx, ref_idx)
            np.testing.assert_array_equal(ours_values, ref_values)


def test_pruned_introsort_orders_repeated_values_as_the_full_sort():
    from sklearn.utils._sorting import _py_simultaneous_sort

    rng = np.random.default_rng(2)
    for n in [20, 300, 5000]:
        values = rng.normal(size=n).astype(np.float32)
        values[rng.integers(0, n, 12)] = values[rng.integers(0, n, 12)]  # a few repeated values
        ref_values, ref_idx = values.copy(), np.arange(n, dtype=np.intp)
        _py_simultaneous_sort(ref_values, ref_idx, n, use_three_way_partition=True)
        uniq, counts = np.unique(values, return_counts=True)
        ties = uniq[counts > 1].astype(np.float32)
        assert len(ties) > 0
        ours_values, ours_idx = values.copy(), np.arange(n, dtype=np.int32)
        gbt._introsort3_ties(ours_values, ours_idx, 0, n, ties, len(ties))
        for t in ties:
            span = np.flatnonzero(ref_values == t)
            np.testing.assert_array_equal(ours_idx[span], ref_idx[span])


def test_other_scikit_learn_release_is_warned_about_once(monkeypatch):
    import sklearn

    monkeypatch.setattr(sklearn, "__version__", "1.5.2")
    monkeypatch.setattr(gbt, "_version_warned", False)
    x, f = _codes(17, 60)
    with pytest.warns(RuntimeWarning, match="backend='sklearn'"):
        gbt.fit_predict(x, f[:, 0], x, seed=0, n_estimators=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gbt.fit_predict(x, f[:, 0], x, seed=0, n_estimators=2)  # once is enough


def test_numba_gbt_equals_sklearn_on_random_small_problems():
    """Many small random problems (continuous, discrete, rounded codes and a dead latent; 2-5
    classes; 1-14 stages): every one bit for bit scikit-learn's."""
    rng = np.random.default_rng(123)
    checked = 0
    for _ in range(80):
        n, num_f = int(rng.integers(4, 80)), int(rng.integers(1, 5))
        num_classes, kind = int(rng.integers(2, 6)), rng.integers(0, 4)
        x = [
            rng.normal(size=(n, num_f)),
            rng.integers(0, 3, (n, num_f)).astype(float),
            np.round(rng.normal(size=(n, num_f)), 1),
            np.hstack([np.zeros((n, 1)), rng.normal(size=(n, num_f - 1))]),
        ][kind]
        y = rng.integers(0, num_classes, n)
        stages, seed = int(rng.integers(1, 15)), int(rng.integers(0, 1000))
        if len(np.unique(y)) < 2:
            continue
        xt = rng.normal(size=(10, num_f))
        imp, p_train, p_test = gbt.fit_predict(x, y, xt, seed, n_estimators=stages)
        ref_imp, ref_train, ref_test = _sklearn_reference(x, y, xt, seed, n_estimators=stages)
        np.testing.assert_array_equal(imp, ref_imp)
        np.testing.assert_array_equal(p_train, ref_train)
        np.testing.assert_array_equal(p_test, ref_test)
        checked += 1
    assert checked > 60


def test_evaluate_shares_its_classifiers_and_gives_the_same_numbers():
    """DCI's evaluate fits through metrics/boosted.py and caches the classifiers for DCI-ES: its
    numbers equal the score path (gbt.fit_predict) exactly, alone or beside DCI-ES."""
    from disentbench.metrics.base import Metric
    from tests.helpers import IdentityDataset

    dataset = IdentityDataset((3, 4, 2))
    mix = np.random.default_rng(5).normal(size=(3, 5))

    def encode(x):
        return x @ torch.as_tensor(mix) + 0.3 * torch.sin(7 * x.sum(1, keepdim=True))

    dci_metric = metrics.create("dci", num_train=300, num_test=150, n_jobs=2)
    cache: dict = {}
    shared = dci_metric.evaluate(dataset, encode, np.random.default_rng(3), codes_cache=cache)
    assert [k for k in cache if k[0] == "boosted_trees"]  # the fitted classifiers are kept for the others
    fitted_apart = Metric.evaluate(dci_metric, dataset, encode, np.random.default_rng(3))  # via score()
    assert shared == fitted_apart
    both = metrics.evaluate_many(
        {"dci": {"num_train": 300, "num_test": 150}, "dci_es": {"num_train": 300, "num_test": 150}},
        dataset,
        encode,
        seed=3,
    )
    alone = metrics.evaluate_many({"dci": {"num_train": 300, "num_test": 150}}, dataset, encode, seed=3)
    assert {k: both[k] for k in alone} == alone
    assert both["dci_es_disentanglement"] == both["dci"]
