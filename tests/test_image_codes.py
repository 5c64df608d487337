"""Codes kept per image (metrics.image_codes): the same scores as encoding every draw, each distinct
image encoded once and always in a full batch, and never kept where a code or an image may change
between calls."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from disentbench import datasets, metrics
from disentbench.bench.runner import scoring_encoder
from disentbench.metrics import image_codes
from disentbench.metrics.base import ENCODE_BATCH_CPU
from tests.helpers import IdentityDataset

SIZES = {
    "beta_vae": {"num_train": 60, "num_test": 30, "batch_size": 8},
    "factor_vae": {"num_train": 60, "num_test": 30, "batch_size": 8, "num_variance_estimate": 256},
    "beta_vae_infogancr": {"num_train": 40, "batch_size": 10},
    "factor_vae_infogancr": {"num_train": 40, "batch_size": 10, "num_std_images": 30},
}


class PerImage(IdentityDataset):
    image_per_factors = True


class Counting:
    """An encoder of the factor vector, row by row (so a row's code cannot depend on its batch):
    two latents follow the first two factors, one the third, two are a fixed pseudo-random function
    of the whole row. Counts the images and batches it is given."""

    def __init__(self, deterministic: bool):
        self.images, self.batch_sizes = 0, []
        if deterministic:
            self.deterministic = True

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.images += len(x)
        self.batch_sizes.append(len(x))
        f = x.to(torch.float64)
        mix = torch.sin(37.0 * f[:, 0] + 11.0 * f[:, 1] + 5.0 * f[:, 2])
        return torch.stack([f[:, 0], 0.3 * f[:, 1] + 0.1 * mix, torch.cos(f[:, 2]), mix, mix * mix], dim=1)


def _score(dataset, encode):
    return metrics.evaluate_many(SIZES, dataset, encode, seed=3)


def test_kept_codes_give_the_scores_of_encoding_every_draw_and_encode_each_image_once():
    kept, every = Counting(deterministic=True), Counting(deterministic=False)
    dataset = PerImage((3, 4, 5))
    assert _score(dataset, kept) == _score(dataset, every)
    # every draw: 90 points x 16 images, 256 + 90 votes x 8, 40 groups x 10 (shared by both
    # InfoGAN-CR variants) and 30 images for the scale
    assert every.images == 90 * 16 + 256 + 90 * 8 + 40 * 10 + 30
    assert kept.images < every.images / 2  # only the 60 distinct images, padded to full batches
    assert set(kept.batch_sizes) == {ENCODE_BATCH_CPU}  # a code never comes from a smaller batch


def test_the_table_holds_each_distinct_image_once_whatever_the_order_of_requests():
    encode = Counting(deterministic=True)
    table = image_codes.ImageCodes(PerImage((3, 4, 5)), encode)
    rng = np.random.default_rng(0)
    first = rng.integers(0, [3, 4, 5], size=(500, 3))
    again = first[::-1].copy()
    a, b = table(first), table(again)
    assert np.array_equal(a, b[::-1])
    assert table.encoded == len(np.unique(first, axis=0))
    expected = encode(torch.from_numpy(first.astype(np.float64))).numpy().astype(np.float32).astype(np.float64)
    assert np.array_equal(a, expected)  # float32 codes widened, as encode_images gives them


@pytest.mark.parametrize("why", ["sampled codes", "nuisance per request", "table too large"])
def test_codes_are_not_kept_where_they_may_change_between_calls(why, monkeypatch):
    dataset, encode = PerImage((3, 4, 5)), Counting(deterministic=True)
    if why == "sampled codes":
        encode = Counting(deterministic=False)
    elif why == "nuisance per request":
        dataset = IdentityDataset((3, 4, 5))
    else:
        monkeypatch.setattr(image_codes, "MAX_BYTES", 8)
    reference = _score(dataset, Counting(deterministic=False))
    assert _score(dataset, encode) == reference
    # every draw encoded; a table found too large has cost one padded batch of its first images
    tried = ENCODE_BATCH_CPU if why == "table too large" else 0
    assert encode.images == 90 * 16 + 256 + 90 * 8 + 40 * 10 + 30 + tried


def test_the_runner_marks_the_encoder_mean_only_and_dsprites_images_follow_their_factors():
    class Model:
        def encode(self, x):
            return x

        def encode_sampled(self, x, generator):
            return x + torch.randn(x.shape, generator=generator)

    assert getattr(scoring_encoder(Model(), "mean", 0, "cpu"), "deterministic", False)
    assert not getattr(scoring_encoder(Model(), "sampled", 0, "cpu"), "deterministic", False)
    dsprites = datasets.create("dsprites", source="procedural")
    assert dsprites.image_per_factors
    f = np.array([[2, 5, 17, 3, 30], [0, 0, 0, 0, 0], [2, 5, 17, 3, 30]])
    alone = dsprites.observations(f[:1])
    assert torch.equal(dsprites.observations(f)[2], alone[0])  # the same image in another request


def test_an_external_encoder_is_kept_only_when_its_function_says_it_is_deterministic():
    from disentbench.bench.score import Encoder

    def plain(x):
        return x

    def marked(x):
        return x

    marked.deterministic = True
    dataset = PerImage((3, 4, 5))
    assert image_codes.image_codes(dataset, Encoder("f", "module", plain, "f"), {}) is None
    assert image_codes.image_codes(dataset, Encoder("f", "module", marked, "f"), {}) is not None


def test_expected_distinct_images_match_a_brute_force_count():
    rng = np.random.default_rng(1)
    for draws, combinations in ((100, 1000), (3000, 1000), (50_000, 7_373)):
        counts = [len(np.unique(rng.integers(combinations, size=draws))) for _ in range(40)]
        expected = image_codes.expected_distinct(draws, combinations)
        assert abs(np.mean(counts) - expected) < 4 * np.std(counts) / np.sqrt(40) + 0.5
