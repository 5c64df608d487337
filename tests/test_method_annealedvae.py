"""AnnealedVAE: the capacity schedule C(t) and the |KL - C| penalty."""

import pytest
import torch

from disentbench import methods
from disentbench.methods.annealedvae import capacity


@pytest.mark.parametrize("step, expected", [(0, 0.0), (1, 25 / 100000), (40000, 10.0), (100000, 25.0), (250000, 25.0)])
def test_capacity_schedule(step, expected):
    assert capacity(step, 25.0, 100000) == pytest.approx(expected)


@pytest.mark.parametrize("kl, expected", [(3.0, 1000 * 2.0), (8.0, 1000 * 3.0), (5.0, 0.0)])
def test_regulariser_pulls_kl_to_capacity(kl, expected):
    m = methods.create("annealedvae", seed=0, c_max=10.0, iteration_threshold=100)
    mu = torch.zeros(4, 10)
    term, logs = m.regulariser(mu, mu, mu, torch.tensor(kl), step=50)  # C(50) = 10 * 50 / 100 = 5
    assert float(logs["capacity"]) == pytest.approx(5.0)
    assert float(term) == pytest.approx(expected)


def test_defaults_follow_the_reference():
    hp = methods.get("annealedvae").validate_hparams({})
    assert hp["gamma"] == 1000.0 and hp["iteration_threshold"] == 100000
    assert methods.get("annealedvae").reference_grid == {"c_max": [5, 10, 25, 50, 75, 100]}
