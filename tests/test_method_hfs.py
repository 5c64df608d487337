"""HFS (Hausdorff Factorized Support): the term against explicit loops over pairs and support points,
known answers (a full grid gives 0, a diagonal its hand value), the pair draw, and a few steps."""

import itertools
import math

import numpy as np
import pytest
import torch

from disentbench import datasets, methods
from disentbench.errors import BenchError
from disentbench.methods.hfs import choose_pairs, hfs_term, latent_pairs, pairwise_hausdorff

pytestmark = pytest.mark.usefixtures("one_thread")


def _brute_force_hfs(z: list[list[float]], pairs) -> float:
    """Sum over pairs (i, j) of max over factorized points (z_ai, z_bj) of the squared distance to the
    nearest joint point (z_ki, z_kj), with plain loops."""
    n = len(z)
    total = 0.0
    for i, j in pairs:
        worst = 0.0
        for a in range(n):
            for b in range(n):
                nearest = math.inf
                for k in range(n):
                    nearest = min(nearest, (z[a][i] - z[k][i]) ** 2 + (z[b][j] - z[k][j]) ** 2)
                worst = max(worst, nearest)
        total += worst
    return total


def test_all_pairs_matches_brute_force_loops():
    g = torch.Generator().manual_seed(4)
    z = torch.randn((6, 4), generator=g, dtype=torch.float64)
    every = list(itertools.combinations(range(4), 2))
    assert latent_pairs(4).tolist() == [list(p) for p in every]
    fast = float(hfs_term(z, num_latent_pairs=6, generator=None))  # 6 = all pairs: no draw needed
    assert fast == pytest.approx(_brute_force_hfs(z.tolist(), every), rel=1e-12)
    per_pair = pairwise_hausdorff(z, latent_pairs(4))
    for value, pair in zip(per_pair.tolist(), every):
        assert value == pytest.approx(_brute_force_hfs(z.tolist(), [pair]), rel=1e-12)


def test_drawn_pairs_match_brute_force_on_the_same_pairs():
    g = torch.Generator().manual_seed(5)
    z = torch.randn((5, 6), generator=g, dtype=torch.float64)  # 15 pairs, 4 drawn
    drawn = choose_pairs(6, 4, torch.Generator().manual_seed(9)).tolist()
    assert len(drawn) == 4 and len({tuple(p) for p in drawn}) == 4
    assert all(0 <= i < j < 6 for i, j in drawn)
    fast = float(hfs_term(z, 4, torch.Generator().manual_seed(9)))
    assert fast == pytest.approx(_brute_force_hfs(z.tolist(), drawn), rel=1e-12)
    other = {tuple(p) for s in range(20) for p in choose_pairs(6, 4, torch.Generator().manual_seed(s)).tolist()}
    assert len(other) > 4  # the draw changes with the generator


def test_full_grid_covers_the_factorized_support():
    a, b = torch.meshgrid(torch.tensor([-1.0, 0.5, 2.0]), torch.tensor([0.0, 3.0]), indexing="ij")
    z = torch.stack([a.flatten(), b.flatten()], dim=1)  # every (a, b) combination is in the batch
    assert float(hfs_term(z, 25, None)) == 0.0
    z3 = torch.cat([z, torch.zeros(len(z), 1)], dim=1)  # a constant third latent: every pair covered
    assert float(hfs_term(z3, 25, None)) == 0.0


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_diagonal_gives_the_hand_value(scale):
    # codes (0, 0), (s, s), (2s, 2s): the worst factorized points are the corners (0, 2s) and (2s, 0),
    # nearest joint point (s, s) at squared distance s^2 + s^2 = 2 s^2.
    t = scale * torch.tensor([0.0, 1.0, 2.0])
    z = torch.stack([t, t], dim=1)
    assert float(hfs_term(z, 25, None)) == pytest.approx(2 * scale**2)
    assert _brute_force_hfs(z.tolist(), [(0, 1)]) == pytest.approx(2 * scale**2)
    # two points (0, 0), (1, 1): corners (0, 1), (1, 0) at squared distance 1 from either
    assert float(hfs_term(torch.tensor([[0.0, 0.0], [1.0, 1.0]]), 25, None)) == pytest.approx(1.0)


def test_one_latent_has_no_pairs():
    assert float(hfs_term(torch.randn(4, 1), 25, None)) == 0.0


def test_regulariser_is_beta_kl_plus_gamma_hfs_on_the_means():
    g = torch.Generator().manual_seed(1)
    mu, logvar = torch.randn((8, 4), generator=g), torch.randn((8, 4), generator=g) * 0.3
    z = mu + torch.exp(0.5 * logvar) * torch.randn((8, 4), generator=g)
    kl = torch.tensor(2.5)
    every = list(itertools.combinations(range(4), 2))
    for name, beta, gamma in (("betahfs", 4.0, 10.0), ("hfs", 0.0, 300.0)):
        m = methods.create(name, seed=0, latent_dim=4, **({"beta": beta, "gamma": gamma} if name == "betahfs" else {}))
        term, logs = m.regulariser(mu, logvar, z, kl, step=0)  # 6 pairs <= 25: all of them, no draw
        hfs = _brute_force_hfs(mu.tolist(), every)
        assert float(logs["hfs"]) == pytest.approx(hfs, rel=1e-5)
        assert float(term) == pytest.approx(beta * 2.5 + gamma * hfs, rel=1e-5)
    m = methods.create("betahfs", seed=0, latent_dim=4, codes="sampled")
    _, logs = m.regulariser(mu, logvar, z, kl, step=0)
    assert float(logs["hfs"]) == pytest.approx(_brute_force_hfs(z.tolist(), every), rel=1e-5)


def test_defaults_grids_and_bad_values():
    assert methods.get("betahfs").defaults["beta"] == 1.0 and methods.get("betahfs").defaults["gamma"] == 1.0
    assert methods.get("hfs").defaults["beta"] == 0.0 and methods.get("hfs").defaults["gamma"] == 300.0
    assert methods.get("betahfs").reference_grid == {"gamma": [0.1, 1, 10, 100, 1000, 10000]}
    with pytest.raises(BenchError, match="gamma=-1"):
        methods.get("hfs").validate_hparams({"gamma": -1})
    with pytest.raises(BenchError, match="codes="):
        methods.get("betahfs").validate_hparams({"codes": "median"})
    with pytest.raises(BenchError, match="num_latent_pairs=0"):
        methods.get("betahfs").validate_hparams({"num_latent_pairs": 0})


@pytest.mark.parametrize("name", ["hfs", "betahfs"])
def test_a_few_steps_train_without_nan_and_log_the_term(name):
    ds = datasets.create("dsprites", source="procedural")
    x = ds.observations(ds.sample_factors(8, np.random.default_rng(0)))
    m = methods.create(name, seed=0, num_latent_pairs=5)  # 5 of the 45 pairs: the draw is used
    g = torch.Generator().manual_seed(0)
    before = [p.detach().clone() for p in m.encoder.parameters()]
    for step in range(3):
        logs = m.train_step(x, step, g)
        assert {"loss", "recon", "kl", "hfs"} <= set(logs)
        assert all(torch.isfinite(v).all() for v in logs.values())
        assert float(logs["hfs"]) >= 0.0
    assert any(not torch.equal(a, b) for a, b in zip(before, m.encoder.parameters()))
