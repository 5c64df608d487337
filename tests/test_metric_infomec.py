"""InfoMEC: hand-computed InfoM/InfoC on NMI matrices, NMI and InfoE against independent
scikit-learn computations, and perfect / rotated / duplicated / noise codes."""

import numpy as np
import pytest
from scipy.stats import special_ortho_group
from sklearn.feature_selection import mutual_info_classif
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, mutual_info_score
from sklearn.preprocessing import StandardScaler

from disentbench import metrics
from disentbench.bench.errors import BenchError
from disentbench.metrics.infomec import active_latents, infoe, infom_infoc, infomec, normalised_mutual_information


def factors_and_codes(seed, n=1500, sizes=(3, 5, 4), noise=0.05):
    rng = np.random.default_rng(seed)
    f = rng.integers(0, np.array(sizes), (n, len(sizes)))
    return f, f + noise * rng.normal(size=f.shape)


def test_infom_infoc_known_answers():
    assert infom_infoc(np.eye(3), np.ones(3, bool)) == (1.0, 1.0)
    # two latents about factor 0, none about factor 1: modular, not compact
    assert infom_infoc(np.array([[1.0, 1.0], [0.0, 0.0]]), np.ones(2, bool)) == (1.0, 0.0)
    # one latent about both factors: compact, not modular
    assert infom_infoc(np.array([[0.5], [0.5]]), np.ones(1, bool)) == (0.0, 1.0)
    # an inactive latent is left out
    assert infom_infoc(np.array([[1.0, 0.3], [0.0, 0.3]]), np.array([True, False])) == (1.0, 1.0)
    m, c = infom_infoc(np.array([[0.8, 0.2, 0.0], [0.0, 0.0, 0.6]]), np.ones(3, bool))
    assert m == pytest.approx(1.0) and c == pytest.approx(((0.8 + 1.0) / 2 - 1 / 3) / (1 - 1 / 3))
    assert infom_infoc(np.ones((2, 3)), np.zeros(3, bool)) == (0.0, 0.0)


def test_nmi_equals_independent_estimates():
    f, z = factors_and_codes(0, n=600, noise=0.8)
    nmi = normalised_mutual_information(z, f, "ksg", seed=3)
    zs = StandardScaler().fit_transform(z)
    for k in range(3):
        expected = mutual_info_classif(zs, f[:, k], discrete_features=False, n_neighbors=10, random_state=3)
        np.testing.assert_allclose(nmi[k], expected / mutual_info_score(f[:, k], f[:, k]), rtol=1e-12)
    hist = normalised_mutual_information(z, f, "histogram")
    edges = [np.histogram_bin_edges(z[:, d], 20) for d in range(3)]
    binned = np.stack([np.digitize(z[:, d], edges[d][:-1]) for d in range(3)], axis=1)
    for k in range(3):
        for d in range(3):
            h = mutual_info_score(f[:, k], f[:, k])
            assert hist[k, d] == pytest.approx(mutual_info_score(f[:, k], binned[:, d]) / h, rel=1e-12)


def test_infoe_equals_independent_logistic_regressions():
    f, z = factors_and_codes(1, n=500, noise=1.0)
    zs = StandardScaler().fit_transform(z)
    values = []
    for k in range(3):
        model = LogisticRegression(C=np.inf, class_weight="balanced", max_iter=100).fit(zs, f[:, k])
        null = LogisticRegression(C=np.inf, class_weight="balanced", max_iter=100).fit(np.zeros_like(zs), f[:, k])
        h0 = log_loss(f[:, k], null.predict_proba(np.zeros_like(zs)))  # balanced weights: uniform
        assert h0 == pytest.approx(np.log(len(np.unique(f[:, k]))))
        values.append((h0 - log_loss(f[:, k], model.predict_proba(zs))) / h0)
    assert infoe(z, f) == pytest.approx(np.mean(values), rel=1e-9)


@pytest.fixture(scope="module")
def perfect():
    f, z = factors_and_codes(2)
    return f, z, infomec(z, f, seed=0)


def test_perfect_code_scores_near_one(perfect):
    _, _, s = perfect
    assert s["infomec"] > 0.95 and s["infomec_compactness"] > 0.95 and s["infomec_explicitness"] > 0.95
    assert s["infomec_num_active_dims"] == 3


def test_rotation_duplication_and_noise(perfect):
    f, z, s = perfect
    rotated = infomec(z @ special_ortho_group.rvs(3, random_state=1), f)
    assert rotated["infomec"] < s["infomec"] - 0.3 and rotated["infomec_compactness"] < s["infomec_compactness"] - 0.3
    dup = infomec(z[:, [0, 0, 1, 2]], f)  # factor 0 in two latents: still modular, less compact
    assert dup["infomec"] > 0.95 and dup["infomec_compactness"] < s["infomec_compactness"] - 0.2
    noise = infomec(np.random.default_rng(4).normal(size=z.shape), f)
    assert noise["infomec_explicitness"] < 0.02
    dead = infomec(np.column_stack([z, np.full(len(z), 3.0)]), f)  # a constant latent is inactive
    assert dead["infomec_num_active_dims"] == 3 and dead["infomec"] == pytest.approx(s["infomec"])
    assert active_latents(np.zeros((4, 2))).tolist() == [False, False]


def test_registry_entry_and_bad_options():
    f, z = factors_and_codes(5, n=300)
    got = metrics.score_arrays("infomec", z, f, seed=1, mi_estimator="histogram")
    assert set(got) == {"infomec", "infomec_compactness", "infomec_explicitness", "infomec_num_active_dims"}
    assert got == infomec(z, f, seed=int(np.random.default_rng(1).integers(0, 2**31 - 1)), mi_estimator="histogram")
    for call in (
        lambda: metrics.create("infomec", mi_estimator="kde"),
        lambda: metrics.score_arrays("infomec", z, f + 0.5),
    ):
        with pytest.raises(BenchError) as err:
            call()
        assert "\n" not in str(err.value)
