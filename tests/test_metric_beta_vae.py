"""BetaVAE score: dataset-only entry point, the spec's sampling order, known answers."""

import numpy as np
import pytest
import torch

from disentbench import metrics
from disentbench.bench.errors import BenchError
from disentbench.metrics.beta_vae import draw_pairs, pair_features
from tests.helpers import IdentityDataset


def noise_encoder(seed=0):
    table = torch.from_numpy(np.random.default_rng(seed).normal(size=(60, 4)))
    ds = IdentityDataset()
    return lambda obs: table[torch.from_numpy(ds.index_of(obs.long().numpy()))]


SIZES = dict(num_train=300, num_test=150, batch_size=16)


def test_score_arrays_refuses_with_one_line():
    with pytest.raises(BenchError) as err:
        metrics.score_arrays("beta_vae", np.zeros((4, 2)), np.zeros((4, 2), dtype=int))
    assert "\n" not in str(err.value) and "evaluate" in str(err.value)


def test_perfect_encoder_scores_one_and_noise_near_chance():
    assert metrics.evaluate("beta_vae", IdentityDataset(), lambda o: o, seed=0, **SIZES)["beta_vae"] == pytest.approx(
        1.0
    )
    noise = metrics.evaluate("beta_vae", IdentityDataset(), noise_encoder(), seed=0, **SIZES)["beta_vae"]
    assert abs(noise - 1 / 3) < 0.15


def test_sampling_order_and_features_by_hand():
    ds, rng = IdentityDataset(), np.random.default_rng(5)
    labels, batches = draw_pairs(ds, 3, 4, rng)
    ref = np.random.default_rng(5)
    for i in range(3):
        k = int(ref.integers(3))
        first, second = ref.integers(0, [3, 4, 5], (4, 3)), ref.integers(0, [3, 4, 5], (4, 3))
        second[:, k] = first[:, k]
        assert labels[i] == k
        np.testing.assert_array_equal(batches[i], np.vstack([first, second]))
    feats = pair_features(ds, lambda o: 2 * o, batches, 4)
    np.testing.assert_allclose(feats[0], np.mean(np.abs(2 * batches[0][:4] - 2 * batches[0][4:]), axis=0))


def test_dead_latent_no_nan_and_fixed_seed_repeats():
    enc = lambda o: torch.cat([o, torch.zeros(len(o), 1, dtype=o.dtype)], dim=1)  # noqa: E731
    a = metrics.evaluate("beta_vae", IdentityDataset(), enc, seed=1, **SIZES)
    assert all(np.isfinite(v) for v in a.values())
    assert a == metrics.evaluate("beta_vae", IdentityDataset(), enc, seed=1, **SIZES)
