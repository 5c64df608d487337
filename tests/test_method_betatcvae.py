"""beta-TCVAE: the TC estimators against explicit loops and against known total correlations."""

import math

import pytest
import torch

from disentbench import methods
from disentbench.methods.betatcvae import total_correlation


def _log_normal(x: float, mean: float, logvar: float) -> float:
    return -0.5 * (math.log(2 * math.pi) + logvar + (x - mean) ** 2 / math.exp(logvar))


def _lse(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def _brute_force_tc(z, mu, logvar, n_data: int, estimator: str) -> float:
    """The MWS / MSS formulas with plain Python loops (weights written out case by case)."""
    m, d = len(z), len(z[0])
    total = 0.0
    for j in range(m):
        if estimator == "mws":
            w = [1.0 / (m * n_data)] * m
        else:
            w = [
                1.0 / n_data if i == j else (n_data - m + 1) / (n_data * (m - 1)) if i == (j + 1) % m else 1.0 / (m - 1)
                for i in range(m)
            ]
        joint = _lse(
            [
                math.log(w[i]) + sum(_log_normal(z[j][dim], mu[i][dim], logvar[i][dim]) for dim in range(d))
                for i in range(m)
            ]
        )
        marginals = sum(
            _lse([math.log(w[i]) + _log_normal(z[j][dim], mu[i][dim], logvar[i][dim]) for i in range(m)])
            for dim in range(d)
        )
        total += joint - marginals
    return total / m


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_tc_matches_brute_force_loops(estimator):
    g = torch.Generator().manual_seed(3)
    mu = torch.randn((5, 3), generator=g, dtype=torch.float64)
    logvar = torch.randn((5, 3), generator=g, dtype=torch.float64) * 0.5
    z = mu + torch.exp(0.5 * logvar) * torch.randn((5, 3), generator=g, dtype=torch.float64)
    fast = float(total_correlation(z, mu, logvar, 20, estimator))
    slow = _brute_force_tc(z.tolist(), mu.tolist(), logvar.tolist(), 20, estimator)
    assert fast == pytest.approx(slow, rel=1e-9, abs=1e-9)


def _offset(estimator: str, d: int, n_data: int) -> float:
    """MWS keeps log(MN): its weights sum to 1/N, which adds (D - 1) log N to the TC value."""
    return (d - 1) * math.log(n_data) if estimator == "mws" else 0.0


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_tc_near_zero_for_independent_samples(estimator):
    g = torch.Generator().manual_seed(0)
    m, d, n_data = 1000, 2, 737280
    mu = torch.randn((m, d), generator=g)  # aggregate posterior N(0, 2I): factorised, TC = 0
    logvar = torch.zeros(m, d)
    z = mu + torch.randn((m, d), generator=g)
    tc = float(total_correlation(z, mu, logvar, n_data, estimator)) - _offset(estimator, d, n_data)
    assert abs(tc) < 0.05


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_tc_positive_for_correlated_samples(estimator):
    g = torch.Generator().manual_seed(0)
    m, n_data, s = 1000, 737280, 0.1
    a = torch.randn((m, 1), generator=g)
    mu = a.repeat(1, 2)  # both latents copy one variable: aggregate correlation 1 / (1 + s^2)
    logvar = torch.full((m, 2), 2 * math.log(s))
    z = mu + s * torch.randn((m, 2), generator=g)
    rho = 1 / (1 + s**2)
    exact = -0.5 * math.log(1 - rho**2)  # TC of a bivariate Gaussian
    tc = float(total_correlation(z, mu, logvar, n_data, estimator)) - _offset(estimator, 2, n_data)
    assert tc > 1.0
    assert tc == pytest.approx(exact, abs=0.2)


def test_regulariser_adds_beta_minus_one_tc():
    g = torch.Generator().manual_seed(1)
    mu, logvar = torch.randn((16, 10), generator=g), torch.randn((16, 10), generator=g) * 0.3
    z = mu + torch.exp(0.5 * logvar) * torch.randn((16, 10), generator=g)
    kl = torch.tensor(2.5)
    for beta in (1.0, 4.0):
        m = methods.create("betatcvae", seed=0, beta=beta, estimator="mss", dataset_size=1000)
        term, logs = m.regulariser(mu, logvar, z, kl, step=0)
        expected = 2.5 + (beta - 1) * float(total_correlation(z, mu, logvar, 1000, "mss"))
        assert float(term) == pytest.approx(expected, rel=1e-6)
        assert float(logs["tc"]) == pytest.approx(float(total_correlation(z, mu, logvar, 1000, "mss")), rel=1e-6)
