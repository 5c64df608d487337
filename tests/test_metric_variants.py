"""The metric variants of the published table (issue 27), each against an independent brute-force
computation on one fixed representation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import Lasso
from sklearn.metrics import mutual_info_score
from sklearn.svm import LinearSVC

from disentbench import metrics
from disentbench.metrics.base import estimator_seed


def fixed_representation(n: int = 900):
    """Five dSprites-like factors (shape 3 classes, then 6, 40, 32, 32 values) and 7 latents: four
    noisy single factors, one mixture, one dead latent and noise."""
    rng = np.random.default_rng(7)
    f = np.stack([rng.integers(0, size, n) for size in (3, 6, 40, 32, 32)], axis=1)
    z = np.stack(
        [
            f[:, 0] + rng.normal(0, 0.4, n),
            f[:, 1] + rng.normal(0, 0.8, n),
            f[:, 2] / 4 + rng.normal(0, 1.0, n),
            f[:, 3] / 3 + 0.5 * f[:, 4] / 3 + rng.normal(0, 1.0, n),
            np.zeros(n),
            f[:, 4] / 3 + rng.normal(0, 1.0, n),
            rng.normal(0, 1, n),
        ],
        axis=1,
    )
    return z, f


def seed_of(seed: int = 0) -> int:
    return estimator_seed(np.random.default_rng(seed))


def r2_line(x, y) -> float:
    """R^2 of the least-squares line y ~ a x + b, from its residuals."""
    if np.var(x) == 0 or np.var(y) == 0:
        return 0.0
    a, b = np.polyfit(x, y, 1)
    return 1 - np.sum((y - (a * x + b)) ** 2) / np.sum((y - y.mean()) ** 2)


def gap(matrix) -> float:
    out = []
    for k in range(matrix.shape[1]):
        col = sorted(matrix[:, k], reverse=True)
        out.append(col[0] - col[1])
    return float(np.mean(out))


def test_sap_continuous_is_the_gap_of_single_latent_r2():
    z, f = fixed_representation()
    brute = np.array([[r2_line(z[:, d], f[:, k].astype(float)) for k in range(5)] for d in range(7)])
    got = metrics.score_arrays("sap_continuous", z, f)
    assert set(got) == {"sap_continuous"}
    assert got["sap_continuous"] == pytest.approx(gap(brute), abs=1e-10)


def test_sap_infogancr_mixes_train_accuracy_for_shape_and_r2_for_the_rest():
    z, f = fixed_representation()
    seed = seed_of()
    brute = np.zeros((7, 5))
    for d in range(7):
        svc = LinearSVC(C=0.01, class_weight="balanced", random_state=seed).fit(z[:, [d]], f[:, 0])
        brute[d, 0] = np.mean(svc.predict(z[:, [d]]) == f[:, 0])  # scored on the points it was fitted on
        for k in range(1, 5):
            brute[d, k] = r2_line(z[:, d], f[:, k].astype(float))
    got = metrics.score_arrays("sap_infogancr", z, f)
    assert got == {"sap_infogancr": pytest.approx(gap(brute), abs=1e-10)}
    assert metrics.create("sap_infogancr").num_train == 73_728


def test_mig_infogancr_is_the_reference_formula_by_hand():
    z, f = fixed_representation()
    binned = np.stack([np.digitize(z[:, d], np.histogram(z[:, d], 20)[1][:-1]) for d in range(7)], axis=1)
    gaps = []
    for k in range(5):
        mi = sorted((mutual_info_score(f[:, k], binned[:, d]) for d in range(7)), reverse=True)
        gaps.append((mi[0] - mi[1]) / mutual_info_score(f[:, k], f[:, k]))
    got = metrics.score_arrays("mig_infogancr", z, f)
    assert got == {"mig_infogancr": pytest.approx(np.mean(gaps), abs=1e-12)}
    assert metrics.create("mig_infogancr").num_train == 73_728


def standardised(x):
    std = x.std(0)
    return (x - x.mean(0)) / np.where(std > 0, std, 1.0)


def dci_by_hand(r: np.ndarray) -> tuple[float, float]:
    """Eastwood & Williams' disentanglement and (importance-weighted) completeness by loops."""
    d_count, k_count = r.shape
    dis, comp = 0.0, 0.0
    for d in range(d_count):
        p = r[d] / r[d].sum() if r[d].sum() > 0 else np.full(k_count, 1 / k_count)
        h = -sum(q * np.log(q) / np.log(k_count) for q in p if q > 0)
        dis += (1 - h) * r[d].sum() / r.sum()
    for k in range(k_count):
        p = r[:, k] / r[:, k].sum()
        h = -sum(q * np.log(q) / np.log(d_count) for q in p if q > 0)
        comp += (1 - h) * r[:, k].sum() / r.sum()
    return dis, comp


def test_dci_lasso_importances_are_a_plain_lasso_fit():
    z, f = fixed_representation()
    seed = seed_of()
    x, y = standardised(z), standardised(f.astype(float))
    r = np.stack([np.abs(Lasso(alpha=0.02, random_state=seed).fit(x, y[:, k]).coef_) for k in range(5)], axis=1)
    dis, comp = dci_by_hand(r)
    got = metrics.score_arrays("dci_lasso", z, f)
    assert got["dci_lasso"] == pytest.approx(dis, abs=1e-8)
    assert got["dci_lasso_completeness"] == pytest.approx(comp, abs=1e-8)
    assert "dci" not in got
    # the same through dci's option, under the variant's key, never `dci`
    option = metrics.score_arrays("dci", z, f, z, f, importance="lasso")
    assert option["dci_lasso"] == pytest.approx(dis, abs=1e-8) and "dci" not in option


def test_dci_random_forest_importances_are_a_plain_forest_fit():
    z, f = fixed_representation()
    seed = seed_of()
    x, y = standardised(z), standardised(f.astype(float))
    r = np.stack(
        [
            RandomForestRegressor(n_estimators=10, max_depth=depth, random_state=seed)
            .fit(x, y[:, k])
            .feature_importances_
            for k, depth in enumerate((4, 2, 4, 2, 2))
        ],
        axis=1,
    )
    dis, comp = dci_by_hand(r)
    got = metrics.score_arrays("dci_random_forest", z, f)
    assert got["dci_random_forest"] == pytest.approx(dis, abs=1e-8)
    assert got["dci_random_forest_completeness"] == pytest.approx(comp, abs=1e-8)


def test_the_reference_defaults_are_unchanged_and_variants_are_marked():
    assert metrics.create("dci").kwargs["importance"] == "gbt"
    assert metrics.create("sap").kwargs["continuous_factors"] is False
    for name in ("sap_continuous", "sap_infogancr", "mig_infogancr", "dci_lasso", "dci_random_forest"):
        assert type(metrics.create(name)).variant_of in ("sap", "mig", "dci")
    for name in ("sap", "mig", "dci"):
        assert type(metrics.create(name)).variant_of is None
    with pytest.raises(Exception, match="importance"):
        metrics.create("dci", importance="ridge")
