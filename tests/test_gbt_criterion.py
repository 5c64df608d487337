"""DCI's trees split on friedman_mse on request (scikit-learn <= 1.8's boosting default, so that of
disentanglement_lib's published runs): bit for bit scikit-learn 1.8.0's GradientBoostingClassifier
(criterion="friedman_mse") on codes with repeated values, a dead and a duplicated latent, against
values recorded from it, and against the installed scikit-learn where its criterion still chooses
the trees (before 1.9). The default (squared error) is unchanged: tests/test_metric_dci.py."""

import numpy as np
import pytest
import torch
from sklearn.ensemble import GradientBoostingClassifier

from disentbench import metrics
from disentbench.bench.errors import BenchError
from disentbench.metrics import boosted, gbt
from disentbench.metrics.dci import dci

#: installed scikit-learn builds friedman_mse trees (from 1.9 `criterion` has no effect)
SKLEARN_HAS_FRIEDMAN = gbt.sklearn_tree_criterion() == "friedman_mse"


def _problem():
    """Rounded, continuous and discrete latents, a dead one and a duplicate (exact ties between
    features); evaluation codes rounded too."""
    rng = np.random.default_rng(2024)
    f = rng.integers(0, 4, (300, 2))
    x = np.column_stack(
        [
            np.round(f[:, 0] + 0.6 * rng.normal(size=300), 1),
            f[:, 1] + 0.5 * rng.normal(size=300),
            rng.integers(0, 3, 300).astype(float),
            np.zeros(300),
        ]
    )
    x = np.column_stack([x, x[:, 1]])
    xt = np.round(rng.normal(size=(100, 5)) + 1.5, 1)
    return x, f, xt


#: GradientBoostingClassifier(criterion="friedman_mse", random_state=seed) of scikit-learn 1.8.0 (the
#: parameters DCI uses: its defaults) on _problem(): feature_importances_ (float.hex), predict(x),
#: predict(xt); labels: factor 0 (4 classes, seed 3) and factor 1 > 1 (binary, seed 5)
SKLEARN_18 = {
    "multi": (
        3,
        ["0x1.60a8d82005ef0p-1", "0x1.1f5adc9b18992p-3", "0x1.f2e4cb7df2321p-7", "0x0.0p+0", "0x1.3ed3762cf087ep-3"],
        "0013303031133120022103323131003312111100120330010002232230231223212000320001012233130012111032230332"
        "0221211221130012133010313231210111020333132312323311302312233130132010300210002131132100332333313020"
        "1012211231201212100200331113101111332330330023010313030023132211112221023233210100222011303020110220",
        "3121021103112112003231212100301122230213021012330112212302321011202103231312310101311322203321131113",
    ),
    "binary": (
        5,
        ["0x1.b46974cefe19ap-6", "0x1.5b9b1f4855009p-1", "0x1.a3a866672cbb5p-6", "0x0.0p+0", "0x1.1348a3bbf3519p-2"],
        "1001100000110100111000010010000010100110001101010010000100011001001100000010101010010001000010101101"
        "0000110100001011111011100110000100001100000011010100011111111100100011111011100010100110001011110100"
        "1111101001110011011111101011110001100101110000010010001001110111111011100011101001001000011010110101",
        "0100001000100000001101010000000100111111100100000101110000100100010011001110000010000000000000101001",
    ),
}


def _labels(f, case):
    return f[:, 0] if case == "multi" else (f[:, 1] > 1).astype(int)


def _digits(a):
    return "".join(str(int(v)) for v in a)


@pytest.mark.parametrize("case", ["multi", "binary"])
def test_friedman_trees_equal_sklearn_18_bit_for_bit(case):
    x, f, xt = _problem()
    seed, imp_hex, train_pred, eval_pred = SKLEARN_18[case]
    imp, p_train, p_eval = gbt.fit_predict(x, _labels(f, case), xt, seed, criterion="friedman_mse")
    np.testing.assert_array_equal(imp, np.array([float.fromhex(h) for h in imp_hex]))
    assert _digits(p_train) == train_pred
    assert _digits(p_eval) == eval_pred
    model = boosted.fit(x, _labels(f, case), xt, seed, criterion="friedman_mse")  # DCI's evaluate path
    np.testing.assert_array_equal(model.importance, imp)
    np.testing.assert_array_equal(model.eval_pred, p_eval)
    np.testing.assert_array_equal(model.predict(xt), p_eval)
    # the criterion matters here: squared error grows other trees
    assert not np.array_equal(gbt.fit_predict(x, _labels(f, case), xt, seed)[0], imp)


@pytest.mark.skipif(not SKLEARN_HAS_FRIEDMAN, reason="installed scikit-learn (>= 1.9) has no friedman_mse trees")
@pytest.mark.parametrize("criterion", gbt.CRITERIA)
def test_criteria_equal_installed_sklearn(criterion):
    """Where the installed scikit-learn (<= 1.8) still splits on the criterion it is given."""
    x, f, xt = _problem()
    for case in ("multi", "binary"):
        seed = SKLEARN_18[case][0]
        y = _labels(f, case)
        model = GradientBoostingClassifier(criterion=criterion, random_state=seed).fit(x, y)
        imp, p_train, p_eval = gbt.fit_predict(x, y, xt, seed, criterion=criterion)
        if criterion == "friedman_mse":  # squared error replicates 1.9's sort of repeated values
            np.testing.assert_array_equal(imp, model.feature_importances_)
            np.testing.assert_array_equal(p_train, model.predict(x))
            np.testing.assert_array_equal(p_eval, model.predict(xt))
    x = x + 1e-3 * np.random.default_rng(0).normal(size=x.shape)  # without repeats both sorts agree
    for criterion_ in gbt.CRITERIA:
        model = GradientBoostingClassifier(criterion=criterion_, random_state=1).fit(x, f[:, 1])
        imp, p_train, _ = gbt.fit_predict(x, f[:, 1], xt, 1, criterion=criterion_)
        np.testing.assert_array_equal(imp, model.feature_importances_)
        np.testing.assert_array_equal(p_train, model.predict(x))


def test_unknown_criterion_is_refused():
    x, f, xt = _problem()
    with pytest.raises(ValueError, match="friedman_mse"):
        gbt.fit_predict(x, f[:, 0], xt, 0, criterion="mse")
    with pytest.raises(ValueError):
        boosted.fit(x, f[:, 0], xt, 0, criterion="absolute_error")
    with pytest.raises(BenchError, match="criterion"):
        metrics.create("dci", criterion="gini")
    with pytest.raises(BenchError, match="criterion"):
        dci(x, f, xt, f[:100], criterion="gini")


@pytest.mark.skipif(SKLEARN_HAS_FRIEDMAN, reason="installed scikit-learn still has friedman_mse trees")
def test_sklearn_backend_refuses_friedman_where_sklearn_has_none():
    x, f, xt = _problem()
    with pytest.raises(BenchError, match="backend='numba'"):
        metrics.create("dci", backend="sklearn", criterion="friedman_mse")
    with pytest.raises(BenchError, match="backend='numba'"):
        dci(x, f, xt, f[:100], backend="sklearn", criterion="friedman_mse")


def test_dci_option_default_unchanged_and_friedman_cached_apart():
    """DCI's `criterion` option: the default is squared error (the numbers of before); friedman_mse
    gives the 1.8 trees; the evaluate path (boosted.py, cached) equals the score path for both, and
    classifiers of the two criteria are never taken from the cache for one another."""
    from disentbench.metrics.base import Metric
    from tests.helpers import IdentityDataset

    dataset = IdentityDataset((3, 4, 2))
    mix = np.random.default_rng(5).normal(size=(3, 4))

    def encode(x):
        return torch.round((x @ torch.as_tensor(mix)) * 4) / 4  # repeated values

    sizes = {"num_train": 200, "num_test": 100, "n_jobs": 1}
    cache: dict = {}
    default = metrics.create("dci", **sizes).evaluate(dataset, encode, np.random.default_rng(3), codes_cache=cache)
    explicit = metrics.create("dci", criterion="squared_error", **sizes)
    assert explicit.evaluate(dataset, encode, np.random.default_rng(3)) == default
    friedman = metrics.create("dci", criterion="friedman_mse", **sizes)
    shared = friedman.evaluate(dataset, encode, np.random.default_rng(3), codes_cache=cache)
    assert shared != default
    assert sorted(k[-1] for k in cache if k[0] == "boosted_trees") == ["friedman_mse", "squared_error"]
    assert Metric.evaluate(friedman, dataset, encode, np.random.default_rng(3)) == shared  # via score()


def test_provenance_names_the_criterion():
    assert gbt.tree_criteria() == "numba: squared_error; sklearn: squared_error"
    assert gbt.tree_criteria("friedman_mse") == "numba: friedman_mse; sklearn: friedman_mse"


def test_the_recorded_criterion_is_the_one_the_profile_asks_dci_for():
    from disentbench.bench import provenance

    assert "friedman_mse" not in provenance.versions()["dci_tree_criterion"]
    asked = provenance.versions({"dci": {"criterion": "friedman_mse", "num_train": 10}})["dci_tree_criterion"]
    assert asked.startswith("numba: friedman_mse")
