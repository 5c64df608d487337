"""InfoGAN-CR's FactorVAE and BetaVAE scores (issue 27: `factor_vae_infogancr`, `beta_vae_infogancr`),
each against a brute-force computation written with loops on a fixed dataset and encoder, and their
known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from disentbench import metrics
from disentbench.bench.rescore import default_metrics
from tests.helpers import IdentityDataset

SIZES = (3, 4, 5)
SEED = 3
GROUPS, GROUP = 60, 10  # small sizes for the brute force; the defaults are checked separately


def mixed_code(x: torch.Tensor) -> torch.Tensor:
    """A fixed, imperfect code of the factor vector: noisy single factors, a mixture, a nearly dead
    latent (never pruned by this variant) and a latent that is a nuisance of all three."""
    f0, f1, f2 = x[:, 0], x[:, 1], x[:, 2]
    return torch.stack(
        [
            f0 + 0.4 * torch.sin(7.0 * f1 + 3.0 * f2),
            0.5 * f1 + 0.6 * torch.cos(3.0 * f2 + f0),
            0.3 * f2 + 0.2 * f1 + 0.3 * torch.sin(5.0 * f0 * f1),
            1e-3 * torch.sin(f0 + 2.0 * f1 + 3.0 * f2),
            torch.sin(11.0 * f0 + 5.0 * f1 * f2),
        ],
        dim=1,
    ).float()


def code_of(factors: np.ndarray, encode=mixed_code) -> np.ndarray:
    return encode(torch.from_numpy(factors.astype(np.float64))).double().numpy()


def groups_by_hand(rng: np.random.Generator) -> tuple[list[int], list[np.ndarray]]:
    """Group i fixes factor i mod 3: every factor uniform, then one value for the fixed factor."""
    labels, groups = [], []
    for i in range(GROUPS):
        k = i % len(SIZES)
        factors = rng.integers(0, SIZES, size=(GROUP, len(SIZES)))
        factors[:, k] = rng.integers(SIZES[k])
        labels.append(k)
        groups.append(factors)
    return labels, groups


def std0(column) -> float:
    mean = sum(column) / len(column)
    return math.sqrt(sum((v - mean) ** 2 for v in column) / len(column))


def test_factor_vae_infogancr_is_its_vote_scheme_by_hand():
    dataset, num_std = IdentityDataset(SIZES), 30
    rng = np.random.default_rng(SEED)
    labels, groups = groups_by_hand(rng)
    index = rng.choice(len(dataset), size=num_std, replace=False)  # a share of the images, no repeats
    std_codes = code_of(np.stack(np.unravel_index(index, SIZES), axis=1))
    scale = [std0(std_codes[:, d]) for d in range(std_codes.shape[1])]
    table: dict[tuple[int, int], int] = {}
    for k, factors in zip(labels, groups):
        codes = code_of(factors)
        ratio = [std0(codes[:, d] / scale[d]) for d in range(codes.shape[1])]
        d = ratio.index(min(ratio))
        table[d, k] = table.get((d, k), 0) + 1
    majorities = [max(table.get((d, k), 0) for k in range(3)) for d in range(5)]
    expected = sum(majorities) / GROUPS
    revised = sum(sorted(majorities, reverse=True)[:3]) / GROUPS

    got = metrics.evaluate(
        "factor_vae_infogancr", dataset, mixed_code, seed=SEED,
        num_train=GROUPS, batch_size=GROUP, num_std_images=num_std,
    )  # fmt: skip
    assert got["factor_vae_infogancr"] == pytest.approx(expected, abs=1e-12)
    assert got["factor_vae_infogancr_revised"] == pytest.approx(revised, abs=1e-12)
    assert 0.4 < expected < 1.0  # an informative, imperfect code


def test_beta_vae_infogancr_is_its_point_scheme_by_hand():
    dataset = IdentityDataset(SIZES)
    rng = np.random.default_rng(SEED)
    labels, groups = groups_by_hand(rng)
    features = []
    for factors in groups:
        codes = code_of(factors)
        pairs = [np.abs(codes[2 * j] - codes[2 * j + 1]) for j in range(GROUP // 2)]
        features.append(sum(pairs) / len(pairs))
    x, y = np.array(features), np.array(labels)
    seed = int(rng.integers(0, 2**31 - 1))
    # one-vs-rest by hand: one liblinear logistic regression per factor, the largest decision wins
    scores = np.stack(
        [
            LogisticRegression(solver="liblinear", random_state=seed).fit(x, y == k).decision_function(x)
            for k in range(3)
        ],
        axis=1,
    )
    correct = sum(int(np.argmax(scores[i]) == y[i]) for i in range(len(y)))  # scored on its own points

    got = metrics.evaluate("beta_vae_infogancr", dataset, mixed_code, seed=SEED, num_train=GROUPS, batch_size=GROUP)
    assert got == {"beta_vae_infogancr": pytest.approx(correct / GROUPS, abs=1e-12)}


def identity_code(x: torch.Tensor) -> torch.Tensor:
    return x.float()


def noise_code():
    generator = torch.Generator().manual_seed(0)
    return lambda x: torch.randn(len(x), 4, generator=generator)


@pytest.mark.parametrize("name", ["factor_vae_infogancr", "beta_vae_infogancr"])
def test_a_perfect_code_scores_one_and_a_code_blind_to_the_factors_about_chance(name):
    dataset = IdentityDataset(SIZES)
    assert metrics.evaluate(name, dataset, identity_code, seed=1)[name] == 1.0
    chance = metrics.evaluate(name, dataset, noise_code(), seed=1)[name]
    assert 0.25 < chance < 0.5  # three factors: 1/3 plus what a majority or a fit finds in noise


def test_a_constant_latent_takes_every_vote_as_in_the_source():
    """No pruning: a latent with zero spread gives 0/0 = NaN, which argmin picks first."""
    dataset = IdentityDataset(SIZES)
    dead_first = lambda x: torch.cat([torch.zeros(len(x), 1), x.float()], dim=1)  # noqa: E731
    got = metrics.evaluate("factor_vae_infogancr", dataset, dead_first, seed=0)
    assert got["factor_vae_infogancr"] == pytest.approx(167 / 500)  # 500 cycled votes: 167, 167, 166


def test_defaults_sharing_and_variant_marks():
    for name, parent in (("factor_vae_infogancr", "factor_vae"), ("beta_vae_infogancr", "beta_vae")):
        metric = metrics.create(name)
        assert (metric.num_train, metric.num_test, metric.batch_size) == (500, 0, 100)
        assert type(metric).variant_of == parent
        assert name not in default_metrics()  # computed only when named
    dataset = IdentityDataset((4, 5, 6, 7))
    assert metrics.create("factor_vae_infogancr").kwargs["num_std_images"] is None  # len // 10: 73,728 on dSprites
    configs = {"factor_vae_infogancr": {}, "beta_vae_infogancr": {}}
    together = metrics.evaluate_many(configs, dataset, mixed_code, seed=5)  # the groups are encoded once
    apart = metrics.evaluate("factor_vae_infogancr", dataset, mixed_code, seed=5)
    apart.update(metrics.evaluate("beta_vae_infogancr", dataset, mixed_code, seed=5))
    assert together == apart
    with pytest.raises(Exception, match="even"):
        metrics.evaluate("beta_vae_infogancr", dataset, mixed_code, batch_size=7)
