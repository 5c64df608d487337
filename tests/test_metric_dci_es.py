"""DCI-ES: the tree-keeping boosted classifier equals scikit-learn's (importances, predictions,
staged predictions), explicitness known answers against a brute-force area, perfect/noise codes,
D/C/I equal to `dci`, and one shared fit in evaluate_many."""

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from sklearn.ensemble import GradientBoostingClassifier

from disentbench import metrics
from disentbench.bench.errors import BenchError
from disentbench.metrics import boosted, gbt
from disentbench.metrics.dci_es import dci_es, explicitness_from_losses
from tests.helpers import IdentityDataset


def data(seed, n, sizes=(3, 4), noise=0.05):
    rng = np.random.default_rng(seed)
    factors = rng.integers(0, np.array(sizes), (n, len(sizes)))
    return factors.astype(float) + noise * rng.normal(size=factors.shape), factors


@pytest.mark.parametrize("num_classes", [2, 4])
def test_boosted_trees_equal_sklearn_and_gbt(num_classes):
    rng = np.random.default_rng(num_classes)
    x = np.column_stack([rng.normal(size=300), np.round(rng.normal(size=300), 1), rng.normal(size=300)])
    y = (np.abs(2 * x[:, 0] + x[:, 1]) * 2).astype(int) % num_classes
    xe = rng.normal(size=(120, 3))
    ye = (np.abs(2 * xe[:, 0] + xe[:, 1]) * 2).astype(int) % num_classes
    with ThreadPoolExecutor(2) as pool:
        model = boosted.fit(x, y, xe, seed=3, eval_labels=ye, pool=pool, workers=2)
    importance, train_pred, eval_pred = gbt.fit_predict(x, y, xe, seed=3)
    np.testing.assert_array_equal(model.importance, importance)
    np.testing.assert_array_equal(model.train_pred, train_pred)
    np.testing.assert_array_equal(model.eval_pred, eval_pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = GradientBoostingClassifier(random_state=3).fit(x, y)
    np.testing.assert_array_equal(model.importance, sk.feature_importances_)
    staged = [np.mean(p != ye) for p in sk.staged_predict(xe)]
    np.testing.assert_array_equal(model.staged_eval_error[1:], staged)
    majority = np.bincount(y).argmax()
    assert model.staged_eval_error[0] == np.mean(ye != majority)  # the prior alone
    later = rng.normal(size=(50, 3))  # codes seen after the fit
    np.testing.assert_array_equal(model.predict(later), sk.predict(later))


def brute_force_explicitness(losses, baseline, x, lowest_loss="zero"):
    """The authors' recipe in loops: the running minimum (here also capped at the baseline), its
    trapezoidal area above l* over capacities rescaled to [0, 1], over the triangle baseline / 2."""
    best = baseline
    curve = []
    for loss in losses:
        best = min(best, loss)
        curve.append(best)
    floor = min(curve) if lowest_loss == "curve" else 0.0
    x = (np.asarray(x, float) - x[0]) / (x[-1] - x[0])
    area = sum((x[i + 1] - x[i]) * ((curve[i] - floor) + (curve[i + 1] - floor)) / 2 for i in range(len(x) - 1))
    return 1 - area / (baseline / 2)


def test_explicitness_known_answers():
    # the shapes of issue 26: the authors' code (lowest_loss="curve") scores them 0.00 and 1.0, the
    # former rectangle normaliser above 0 0.50 and 0.625; the default (triangle above 0) 0 and 0.25
    linear = np.linspace(0.8, 0.0, 101)  # a straight line from the baseline down to 0: the triangle
    assert explicitness_from_losses(linear, 0.8) == pytest.approx(0.0, abs=1e-12)
    assert explicitness_from_losses(linear, 0.8, lowest_loss="curve") == pytest.approx(0.0, abs=1e-12)
    constant = np.full(100, 0.3)  # flat at 0.3 from the first probe on
    assert explicitness_from_losses(constant, 0.8) == pytest.approx(1 - 0.3 / 0.4)
    assert explicitness_from_losses(constant, 0.8, lowest_loss="curve") == 1.0
    assert explicitness_from_losses(np.zeros(100), 0.8) == 1.0  # read out by the smallest probe
    # never better than the constant predictor (worse is capped at the baseline): the whole rectangle,
    # twice the triangle, above 0; flat, so nothing above its own lowest loss
    for stuck in (0.8, 0.95):
        assert explicitness_from_losses(np.full(100, stuck), 0.8) == pytest.approx(-1.0)
        assert explicitness_from_losses(np.full(100, stuck), 0.8, lowest_loss="curve") == 1.0
    ramp = np.r_[0.5, np.zeros(10)]  # baseline loss at the smallest capacity, 0 from the next one
    assert explicitness_from_losses(ramp, 0.5) == pytest.approx(1 - 0.1 * 0.25 / 0.25)
    half = np.r_[np.linspace(0.8, 0.4, 51), np.full(50, 0.4)]  # down to 0.4 at mid capacity, then flat
    assert explicitness_from_losses(half, 0.8) == pytest.approx(1 - (0.3 + 0.2) / 0.4)
    assert explicitness_from_losses(half, 0.8, lowest_loss="curve") == pytest.approx(1 - 0.5 * 0.4 / 2 / 0.4)
    assert explicitness_from_losses([0.2], 0.8) == pytest.approx(0.5)  # one probe: a flat curve
    assert explicitness_from_losses([0.2], 0.8, lowest_loss="curve") == 1.0
    rng = np.random.default_rng(0)
    losses = rng.uniform(0, 1, 30)
    caps = np.cumsum(rng.uniform(0.5, 2, 30))
    for lowest in ("zero", "curve"):
        assert explicitness_from_losses(losses, 0.7, caps, lowest_loss=lowest) == pytest.approx(
            brute_force_explicitness(losses, 0.7, caps, lowest)
        )
        assert explicitness_from_losses(losses, 0.7, caps, "log", lowest) == pytest.approx(
            brute_force_explicitness(losses, 0.7, np.log(caps), lowest)
        )
    assert np.isnan(explicitness_from_losses(losses, 0.0))  # nothing to predict
    with pytest.raises(BenchError):
        explicitness_from_losses(losses, 0.7, capacity_scale="sqrt")
    with pytest.raises(BenchError):
        explicitness_from_losses(losses, 0.7, lowest_loss="one")


def test_perfect_noise_and_size():
    (x, f), (xt, ft) = data(0, 240), data(1, 120)
    perfect = dci_es(x, f, xt, ft, seed=0)
    assert perfect["dci_es"] > 0.97 and perfect["dci_es_size"] == 1.0
    rng = np.random.default_rng(2)
    noise = dci_es(rng.normal(size=(240, 4)), f, rng.normal(size=(120, 4)), ft, seed=0)
    assert noise["dci_es"] < -0.8 and noise["dci_es_size"] == 0.5  # about the baseline throughout: near -1
    # measured from its own lowest loss (the authors' code), a noise curve that stays flat scores near 1
    assert (
        dci_es(rng.normal(size=(240, 4)), f, rng.normal(size=(120, 4)), ft, seed=0, lowest_loss="curve")["dci_es"] > 0.9
    )
    # a code that needs many trees (a factor hidden in a fine periodic pattern) is less explicit
    hard = np.column_stack([np.sin(6 * x[:, 0]) + x[:, 0] / 10, x[:, 1]])
    hard_t = np.column_stack([np.sin(6 * xt[:, 0]) + xt[:, 0] / 10, xt[:, 1]])
    assert dci_es(hard, f, hard_t, ft, seed=0)["dci_es"] < perfect["dci_es"]


def test_dci_keys_equal_dci_on_the_same_arrays():
    (x, f), (xt, ft) = data(3, 240, noise=0.6), data(4, 120, noise=0.6)
    ours = metrics.score_arrays("dci_es", x, f, xt, ft, seed=5, n_jobs=1)
    ref = metrics.score_arrays("dci", x, f, xt, ft, seed=5, n_jobs=1)
    for key in ("completeness", "informativeness_train", "informativeness_test"):
        assert ours[f"dci_es_{key}"] == ref[f"dci_{key}"]
    assert ours["dci_es_disentanglement"] == ref["dci"]


def encode(obs):
    return obs + 0.3 * torch.sin(5 * obs)


def test_one_shared_fit_in_evaluate_many(monkeypatch):
    sizes = {"num_train": 200, "num_test": 100, "n_jobs": 1}
    configs = {
        "dci": sizes,
        "dci_es": sizes,
        "downstream": {**sizes, "num_sizes": 1},
        "fairness": {**sizes, "points_per_class": 5},
    }
    calls = []
    real_fit = boosted.fit
    monkeypatch.setattr(boosted, "fit", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    together = metrics.evaluate_many(configs, IdentityDataset((3, 4)), encode, seed=2)
    assert len(calls) == 2  # one classifier per factor, fitted once for three metrics
    separate = {}
    for name, params in configs.items():
        separate.update(metrics.evaluate(name, IdentityDataset((3, 4)), encode, seed=2, **params))
    assert together == separate
    assert together["downstream_gbt_200_test"] == together["dci_informativeness_test"]
    assert together["fairness_predictor_test_accuracy"] == together["dci_informativeness_test"]


def test_bad_options_are_one_line_errors():
    for call in (
        lambda: metrics.create("dci_es", capacity_scale="cubic"),
        lambda: metrics.create("dci_es", lowest_loss="one"),
        lambda: metrics.create("dci_es", num_test=0),
        lambda: metrics.score_arrays("dci_es", np.zeros((5, 2)), np.zeros((5, 1), dtype=int)),
    ):
        with pytest.raises(BenchError) as err:
            call()
        assert "\n" not in str(err.value)


def test_every_result_records_the_trees_split_criterion(monkeypatch):
    """scikit-learn's boosting split on friedman_mse up to 1.8 and on squared error from 1.9 (the
    release metrics/gbt.py replicates): the criterion of each backend goes into every scores.json.
    Both backends split on DCI's option `criterion` (default squared error) on every release."""
    import sklearn

    from disentbench.bench import provenance

    assert gbt.TREE_CRITERION == "squared_error"
    for version, criterion in (("1.8.0", "friedman_mse"), ("0.24.2", "friedman_mse"), ("1.9.1", "squared_error")):
        monkeypatch.setattr(sklearn, "__version__", version)
        assert gbt.sklearn_tree_criterion() == criterion  # the release's default
        assert provenance.versions()["dci_tree_criterion"] == "numba: squared_error; sklearn: squared_error"
