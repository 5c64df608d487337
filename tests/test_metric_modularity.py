"""Modularity and explicitness: the spec's known answers, sklearn cross-check, no NaN."""

import itertools

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import label_binarize

from disentbench import metrics
from disentbench.metrics.modularity import explicitness, modularity, modularity_from_mi


def grid(sizes, repeats):
    g = np.array(list(itertools.product(*[range(s) for s in sizes])), dtype=np.int64)
    return np.tile(g, (repeats, 1))


def test_modularity_known_answers():
    assert modularity_from_mi(np.eye(3)) == pytest.approx(1.0)
    assert modularity_from_mi(np.diag([1.0, 1.0, 0.0])) == pytest.approx(2 / 3)
    assert modularity_from_mi(np.zeros((3, 3))) == 0.0
    # one latent carrying two factors equally: deviation 1 -> 0
    assert modularity_from_mi(np.array([[1.0, 1.0]])) == pytest.approx(0.0)
    factors = grid((3, 4, 5), 2)
    assert modularity(factors.astype(float), factors) == pytest.approx(1.0)
    codes = np.hstack([factors[:, :2].astype(float), np.zeros((len(factors), 1))])
    assert modularity(codes, factors[:, :2]) == pytest.approx(2 / 3)
    assert modularity(np.zeros((len(factors), 3)), factors) == 0.0


def test_explicitness_matches_sklearn_by_hand():
    rng = np.random.default_rng(0)
    f, ft = rng.integers(0, 3, (300, 2)), rng.integers(0, 3, (150, 2))
    x, xt = f + rng.normal(size=f.shape), ft + rng.normal(size=ft.shape)
    train, test = explicitness(x, f, xt, ft, seed=0, n_jobs=1)
    mean, std = x.mean(axis=0), x.std(axis=0)
    aucs = []
    for k in range(2):
        model = LogisticRegression().fit((x - mean) / std, f[:, k])
        proba = model.predict_proba((xt - mean) / std)
        aucs.append(roc_auc_score(label_binarize(ft[:, k], classes=[0, 1, 2]), proba, average="macro"))
    assert test == pytest.approx(np.mean(aucs), abs=1e-12)
    assert 0.5 < test < 1.0 and 0.5 < train < 1.0
    assert (train, test) == explicitness(x, f, xt, ft, seed=0, n_jobs=2)


def test_perfect_noise_and_dead_latent():
    rng = np.random.default_rng(1)
    f, ft = rng.integers(0, 2, (300, 2)), rng.integers(0, 2, (150, 2))
    x, xt = f + 0.01 * rng.normal(size=f.shape), ft + 0.01 * rng.normal(size=ft.shape)
    assert explicitness(x, f, xt, ft)[1] == pytest.approx(1.0)
    noise = explicitness(rng.normal(size=(300, 2)), f, rng.normal(size=(150, 2)), ft)[1]
    assert abs(noise - 0.5) < 0.1
    dead = lambda a: np.hstack([a, np.zeros((len(a), 1))])  # noqa: E731
    scores = metrics.score_arrays("modularity", dead(x), f, dead(xt), ft)
    assert all(np.isfinite(v) for v in scores.values())
    assert scores["modularity_explicitness"] == pytest.approx(1.0)
    assert scores["modularity"] == pytest.approx(2 / 3, abs=0.02)  # two modular latents, one dead


def test_fixed_seed_gives_identical_numbers_twice():
    rng = np.random.default_rng(2)
    x, f = rng.normal(size=(200, 3)), rng.integers(0, 3, (200, 2))
    assert metrics.score_arrays("modularity", x, f, x, f, seed=4) == metrics.score_arrays(
        "modularity", x, f, x, f, seed=4
    )
