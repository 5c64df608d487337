"""DIP-VAE-I/II: the covariance penalty against a numpy computation on a fixed batch."""

import numpy as np
import pytest
import torch

from disentbench import methods


def _numpy_penalty(cov: np.ndarray, l_od: float, l_d: float) -> float:
    off = cov - np.diag(np.diag(cov))
    return l_od * float((off**2).sum()) + l_d * float(((np.diag(cov) - 1) ** 2).sum())


@pytest.mark.parametrize("name, d_factor", [("dipvae1", 10.0), ("dipvae2", 1.0)])
def test_covariance_penalty_matches_numpy(name, d_factor):
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(32, 5)) @ rng.normal(size=(5, 5))  # correlated means
    logvar = rng.normal(scale=0.5, size=(32, 5))
    cov = np.cov(mu, rowvar=False, bias=True)
    if name == "dipvae2":
        cov = cov + np.diag(np.exp(logvar).mean(axis=0))
    l_od = 2.0
    expected = _numpy_penalty(cov, l_od, d_factor * l_od)

    m = methods.create(name, seed=0, latent_dim=5, lambda_od=l_od)
    assert m.hp["lambda_d_factor"] == d_factor  # the paper's l_d = 10 l_od (I) and l_d = l_od (II)
    mu_t, lv_t = torch.tensor(mu), torch.tensor(logvar)
    kl = torch.tensor(3.0, dtype=torch.float64)
    term, logs = m.regulariser(mu_t, lv_t, mu_t, kl, step=0)
    assert float(logs["dip"]) == pytest.approx(expected, rel=1e-10)
    assert float(term) == pytest.approx(3.0 + expected, rel=1e-10)


def test_penalty_is_zero_for_whitened_means():
    rng = np.random.default_rng(1)
    raw = rng.normal(size=(64, 4))
    centred = raw - raw.mean(axis=0)
    white = centred @ np.linalg.inv(np.linalg.cholesky(np.cov(centred, rowvar=False, bias=True))).T
    m = methods.create("dipvae1", seed=0, latent_dim=4)
    mu = torch.tensor(white)
    _, logs = m.regulariser(mu, torch.zeros_like(mu), mu, torch.tensor(0.0), step=0)
    assert float(logs["dip"]) == pytest.approx(0.0, abs=1e-9)
