"""metrics/_exact_gbt.py against scikit-learn's GradientBoostingClassifier: same importances (to
1e-9) and the same predicted labels, on codes that exercise ties, dead and duplicated latents."""
import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from metrics._exact_gbt import fit_gbt_importances, fit_predict


def codes(kind: str, k: int, n: int, seed: int):
    rng = np.random.default_rng(seed)
    f = rng.integers(0, k, n)
    x = np.c_[f + 0.3 * rng.normal(size=n), rng.normal(size=(n, 2))]
    if kind == "integer":  # many exact ties
        x = np.round(2 * x)
    elif kind == "dead":
        x = np.c_[x, np.ones(n)]
    elif kind == "duplicated":  # exact ties between features: the splitter's visit order decides
        x = x[:, [0, 1, 0, 2, 1]]
    return x, f


def assert_same(x, y, xt, seed, n_estimators):
    ref = GradientBoostingClassifier(random_state=seed, n_estimators=n_estimators).fit(x, y)
    imp, (pred_train, pred_test) = fit_predict(x, y, [x, xt], seed, n_estimators)
    np.testing.assert_allclose(imp, ref.feature_importances_, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(pred_train, ref.predict(x))
    np.testing.assert_array_equal(pred_test, ref.predict(xt))


@pytest.mark.parametrize("kind", ["continuous", "integer", "dead", "duplicated"])
@pytest.mark.parametrize("k", [2, 3, 12])
def test_equals_sklearn_few_stages(kind, k):
    x, y = codes(kind, k, 400, seed=k)
    xt, _ = codes(kind, k, 150, seed=100 + k)
    assert_same(x, y, xt, seed=k, n_estimators=10)


def test_equals_sklearn_default_stages():
    x, y = codes("continuous", 3, 300, seed=7)
    xt, _ = codes("continuous", 3, 100, seed=8)
    assert_same(x, y, xt, seed=1, n_estimators=100)


def test_fit_gbt_importances_matches_dci_fit():
    from metrics.dci import _fit_factor

    x, y = codes("continuous", 3, 300, seed=11)
    xt, yt = codes("continuous", 3, 120, seed=12)
    ours = fit_gbt_importances(x, y, xt, yt, seed=4, n_estimators=100)
    ref = _fit_factor(x, y, xt, yt, 4, None)
    np.testing.assert_allclose(ours[0], ref[0], rtol=0, atol=1e-9)
    assert ours[1:] == ref[1:]
