"""FactorVAE score: known answers, real active counts, chunked encoding equals per-batch."""

import numpy as np
import pytest
import torch

from disentbench import metrics
from disentbench.bench.errors import BenchError
from disentbench.metrics.factor_vae import majority_accuracy, vote_table
from disentbench.metrics.intervention import encode_batches
from tests.helpers import IdentityDataset

SIZES = dict(num_train=300, num_test=150, num_variance_estimate=500)


def test_score_arrays_refuses():
    with pytest.raises(BenchError):
        metrics.score_arrays("factor_vae", np.zeros((4, 2)), np.zeros((4, 2), dtype=int))


def test_perfect_encoder_and_real_active_count():
    dead_and_scaled = lambda o: torch.cat([o, torch.zeros(len(o), 1, dtype=o.dtype)], dim=1)  # noqa: E731
    scores = metrics.evaluate("factor_vae", IdentityDataset(), dead_and_scaled, seed=0, **SIZES)
    assert scores["factor_vae"] == pytest.approx(1.0)
    assert scores["factor_vae_num_active_dims"] == 3 and isinstance(scores["factor_vae_num_active_dims"], int)
    dead = metrics.evaluate("factor_vae", IdentityDataset(), lambda o: 0 * o, seed=0, **SIZES)
    assert dead == {"factor_vae": 0.0, "factor_vae_train_accuracy": 0.0, "factor_vae_num_active_dims": 0}


def test_noise_encoder_near_chance():
    gen = torch.Generator().manual_seed(0)
    enc = lambda o: torch.randn(len(o), 4, generator=gen, dtype=o.dtype)  # noqa: E731  (unrelated to factors)
    assert abs(metrics.evaluate("factor_vae", IdentityDataset(), enc, seed=0, **SIZES)["factor_vae"] - 1 / 3) < 0.15


def test_majority_vote_by_hand():
    train = vote_table(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 0, 0, 1, 1, 0]), 3, 2)
    np.testing.assert_array_equal(train, [[2, 0], [1, 0], [1, 2]])
    train_acc, eval_acc = majority_accuracy(train, np.array([[1, 1], [0, 0], [0, 2]]))
    assert train_acc == pytest.approx(4 / 6) and eval_acc == pytest.approx(3 / 4)


def test_chunked_encoding_equals_per_batch_and_seed_repeats():
    ds, rng = IdentityDataset(), np.random.default_rng(1)
    batches = [ds.sample_factors(n, rng) for n in (5, 64, 7, 64)]
    enc = lambda o: torch.sin(o @ torch.ones(3, 2, dtype=o.dtype))  # noqa: E731
    for got, batch in zip(encode_batches(ds, enc, batches, chunk_images=70), batches):
        np.testing.assert_array_equal(got, enc(ds.observations(batch)).float().numpy().astype(np.float64))
    a = metrics.evaluate("factor_vae", ds, enc, seed=2, **SIZES)
    assert a == metrics.evaluate("factor_vae", ds, enc, seed=2, **SIZES)


def test_zero_prune_threshold_with_a_dead_latent_is_silent_and_votes_like_the_reference():
    """prune_threshold=0 keeps a constant latent active: its ratio is 0/0 and numpy's argmin returns
    the first NaN, so every vote goes to it (the reference's behaviour), and no warning is printed."""
    dead_first = lambda o: torch.cat([torch.zeros(len(o), 1, dtype=o.dtype), o], dim=1)  # noqa: E731
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = metrics.evaluate("factor_vae", IdentityDataset(), dead_first, seed=0, prune_threshold=0.0, **SIZES)
    assert scores["factor_vae_num_active_dims"] == 4
    # all votes land on latent 0, so the majority classifier predicts one factor: accuracy = its share
    rng = np.random.default_rng(0)
    ds = IdentityDataset()
    ds.sample_factors(SIZES["num_variance_estimate"], rng)
    from disentbench.metrics.factor_vae import draw_votes_factors

    train_labels, _ = draw_votes_factors(ds, SIZES["num_train"], 64, rng)
    eval_labels, _ = draw_votes_factors(ds, SIZES["num_test"], 64, rng)
    majority = np.argmax(np.bincount(train_labels, minlength=3))
    assert scores["factor_vae"] == pytest.approx(np.mean(eval_labels == majority))
