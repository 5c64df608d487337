"""dci_hist: the approximate DCI is registered apart and behaves like DCI on clear cases."""

import numpy as np

from disentbench import metrics
from disentbench.metrics.dci_hist import dci_hist


def test_registered_apart_from_dci():
    assert "dci_hist" in metrics.list_metrics() and "dci" in metrics.list_metrics()
    assert metrics.REGISTRY.get("dci") is not metrics.REGISTRY.get("dci_hist")


def test_perfect_high_noise_low_no_nan_and_repeatable():
    rng = np.random.default_rng(0)
    f, ft = rng.integers(0, 3, (300, 2)), rng.integers(0, 3, (150, 2))
    x, xt = f + 0.05 * rng.normal(size=f.shape), ft + 0.05 * rng.normal(size=ft.shape)
    perfect = dci_hist(x, f, xt, ft)
    assert perfect["dci_hist"] > 0.9 and perfect["dci_hist_informativeness_test"] > 0.98
    assert dci_hist(rng.normal(size=(300, 4)), f, rng.normal(size=(150, 4)), ft)["dci_hist"] < 0.3
    dead = lambda a: np.hstack([a, np.zeros((len(a), 1))])  # noqa: E731
    assert all(np.isfinite(v) for v in dci_hist(dead(x), f, dead(xt), ft).values())
    assert dci_hist(x, f, xt, ft, seed=3, n_jobs=1) == dci_hist(x, f, xt, ft, seed=3, n_jobs=2)
