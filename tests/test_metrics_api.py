"""The metrics entry points: registry, versions, evaluate_many == separate evaluate calls, errors."""

import numpy as np
import pytest
import torch

from disentbench import metrics
from disentbench.bench.errors import BenchError
from disentbench.metrics.base import gather_codes
from tests.helpers import IdentityDataset


def encode(obs):
    return torch.cat(
        [obs + 0.1 * torch.sin(7 * obs.sum(dim=1, keepdim=True)), torch.zeros(len(obs), 1, dtype=obs.dtype)], 1
    )


SMALL = {"num_train": 200, "num_test": 100}
CONFIGS = {
    "mig": {"num_train": 200},
    "irs": {"num_train": 200},
    "unsupervised": {"num_train": 200},
    "sap": SMALL,
    "modularity": SMALL,
    "dci": {**SMALL, "n_jobs": 1},
    "dci_hist": {**SMALL, "n_jobs": 1},
    "beta_vae": {**SMALL, "batch_size": 8},
    "factor_vae": {**SMALL, "num_variance_estimate": 200},
}


def test_every_metric_of_the_spec_is_registered_and_versions_are_recorded():
    assert set(CONFIGS) <= set(metrics.list_metrics())
    v = metrics.versions()
    assert {"numpy", "scikit_learn", "scipy"} <= set(v) and v["numpy"] == np.__version__


def test_evaluate_many_equals_separate_evaluate_calls_and_no_nan():
    together = metrics.evaluate_many(CONFIGS, IdentityDataset((3, 4)), encode, seed=3)
    separate = {}
    for name, params in CONFIGS.items():
        separate.update(metrics.evaluate(name, IdentityDataset((3, 4)), encode, seed=3, **params))
    assert together == separate
    assert all(np.isfinite(v) for v in together.values())
    for name in CONFIGS:
        assert name in together  # the headline key is the registered name


def test_codes_follow_the_spec_sampling_order():
    rng = np.random.default_rng(0)
    codes, factors = gather_codes(IdentityDataset((3, 4)), lambda o: o, 40, rng, batch_size=16)
    ref = np.random.default_rng(0)
    expected = np.vstack([ref.integers(0, [3, 4], (n, 2)) for n in (16, 16, 8)])
    np.testing.assert_array_equal(factors, expected)
    np.testing.assert_array_equal(codes, expected)


def test_user_errors_are_one_line_bench_errors():
    for call in (
        lambda: metrics.create("nope"),
        lambda: metrics.create("mig", bins=3),
        lambda: metrics.score_arrays("sap", np.zeros((5, 2)), np.zeros((5, 1), dtype=int)),
        lambda: metrics.score_arrays("mig", np.zeros((5, 2)), np.full((5, 1), 0.5)),
        lambda: metrics.score_arrays("factor_vae", np.zeros((5, 2)), np.zeros((5, 1), dtype=int)),
    ):
        with pytest.raises(BenchError) as err:
            call()
        assert "\n" not in str(err.value)


def test_codes_do_not_depend_on_how_observations_are_chunked():
    """A real convolution rounds differently per batch size; codes are encoded in fixed batches
    aligned from the first point, so the render chunking does not change a single bit."""
    from disentbench import datasets, methods
    from disentbench.metrics.base import ENCODE_BATCH_CPU, encode_images

    ds = datasets.create("dsprites", source="procedural")
    model = methods.create("vae", observation_shape=ds.observation_shape, seed=0)
    runs = [
        gather_codes(ds, model.encode, 600, np.random.default_rng(5), batch_size=16, render_batch=chunk)
        for chunk in (4096, 16, 100)
    ]
    for codes, factors in runs[1:]:
        np.testing.assert_array_equal(codes, runs[0][0])
        np.testing.assert_array_equal(factors, runs[0][1])
    images = ds.observations(runs[0][1])
    with torch.no_grad():
        by_hand = torch.cat([model.encode(images[i : i + ENCODE_BATCH_CPU]) for i in range(0, 600, ENCODE_BATCH_CPU)])
    np.testing.assert_array_equal(encode_images(model.encode, images), by_hand.numpy().astype(np.float64))
