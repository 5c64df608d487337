"""DCI: the importance-matrix cases of the spec, sanity answers, and the fast fit equals the
plain scikit-learn GradientBoostingClassifier bit for bit."""
import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier

import metrics
from bench.errors import BenchError
from metrics.dci import completeness, dci, disentanglement, importance_matrix

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
    r1, tr1, te1 = importance_matrix(x, f, xt, ft, seed=7, n_jobs=1)
    r2, tr2, te2 = importance_matrix(x, f, xt, ft, seed=7, n_jobs=2)
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
