"""FactorVAE: the dimension-wise permutation, the detached discriminator step, the TC term's sign."""

import math

import pytest
import torch
from torch import nn

from disentbench import methods
from disentbench.methods.factorvae import permute_dims

pytestmark = pytest.mark.usefixtures("one_thread")


def _correlated(n: int, rho: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn((2, n), generator=g)
    return torch.stack([a, rho * a + math.sqrt(1 - rho**2) * b], dim=1)


def test_permutation_keeps_marginals_and_breaks_dependence():
    g = torch.Generator().manual_seed(0)
    base = torch.randn((2000, 1), generator=g)
    z = torch.cat([base, 2 * base + 1, -(base**3)], dim=1)  # three fully dependent columns
    zp = permute_dims(z, torch.Generator().manual_seed(1))
    assert torch.equal(zp.sort(dim=0).values, z.sort(dim=0).values)  # every marginal kept exactly
    corr = torch.corrcoef(zp.T)
    assert corr[0, 1].abs() < 0.1 and corr[0, 2].abs() < 0.1 and corr[1, 2].abs() < 0.1
    assert torch.corrcoef(z.T)[0, 1] > 0.99
    # the dimensions are shuffled independently (not one shared permutation of the rows)
    assert not torch.equal(zp[:, 0].argsort(), zp[:, 1].argsort())


def test_discriminator_step_leaves_encoder_gradients_untouched():
    m = methods.create("factorvae", seed=0)
    g = torch.Generator().manual_seed(0)
    x = torch.rand((8, 1, 64, 64), generator=g).round()
    loss, _ = m.loss(x, 0, g)
    loss.backward()
    vae_params = list(m.encoder.parameters()) + list(m.decoder.parameters())
    grads = [p.grad.clone() for p in vae_params]
    weights = [p.detach().clone() for p in vae_params]
    disc_before = [p.detach().clone() for p in m.discriminator.parameters()]
    m.discriminator_step(m._last_z, g)
    for p, gr, w in zip(vae_params, grads, weights):
        assert torch.equal(p.grad, gr) and torch.equal(p.detach(), w)
    assert any(not torch.equal(a, p) for a, p in zip(disc_before, m.discriminator.parameters()))


def test_discriminator_loss_is_detached_from_a_live_encoder_graph():
    m = methods.create("factorvae", seed=0)
    g = torch.Generator().manual_seed(0)
    mu, logvar = m.encoder(torch.rand((8, 1, 64, 64), generator=g))
    z = m.sample_posterior(mu, logvar, g)  # still attached to the encoder
    m.discriminator_step(z, g)
    assert all(p.grad is None for p in m.encoder.parameters())


class _KnownRight(nn.Module):
    """The Bayes-optimal discriminator for a standard bivariate Gaussian with correlation rho:
    logit_real - logit_permuted = log q(z) - log q(z_1) q(z_2)."""

    def __init__(self, rho: float, swap: bool = False):
        super().__init__()
        self.rho, self.swap = rho, swap

    def forward(self, z):
        r = self.rho
        quad = (z[:, 0] ** 2 - 2 * r * z[:, 0] * z[:, 1] + z[:, 1] ** 2) / (1 - r**2)
        log_joint = -math.log(2 * math.pi) - 0.5 * math.log(1 - r**2) - 0.5 * quad
        log_prod = -math.log(2 * math.pi) - 0.5 * (z**2).sum(dim=1)
        out = torch.stack([log_joint, log_prod], dim=1)
        return out.flip(1) if self.swap else out


def test_tc_term_sign_with_a_known_right_discriminator():
    m = methods.create("factorvae", seed=0, latent_dim=2)
    rho = 0.9
    m.discriminator = _KnownRight(rho)
    tc_corr = float(m.total_correlation(_correlated(20000, rho, seed=1)))
    assert tc_corr == pytest.approx(-0.5 * math.log(1 - rho**2), abs=0.05)  # the true TC, > 0
    # on samples of the product of marginals the same discriminator gives the negative KL(prod || q)
    assert float(m.total_correlation(_correlated(20000, 0.0, seed=2))) < 0
    m.discriminator = _KnownRight(rho, swap=True)
    assert float(m.total_correlation(_correlated(20000, rho, seed=1))) < 0


def test_discriminator_loss_prefers_the_right_discriminator():
    m = methods.create("factorvae", seed=0, latent_dim=2)
    z = _correlated(4000, 0.9, seed=3)
    m.discriminator = _KnownRight(0.9)
    right = float(m.discriminator_loss(z, torch.Generator().manual_seed(0)))
    m.discriminator = _KnownRight(0.9, swap=True)
    wrong = float(m.discriminator_loss(z, torch.Generator().manual_seed(0)))
    assert right < math.log(2) < wrong


def test_discriminator_learns_to_detect_correlation():
    m = methods.create("factorvae", seed=0, latent_dim=2, disc_lr=1e-3)
    z = _correlated(64, 0.95, seed=4)
    g = torch.Generator().manual_seed(0)
    losses = [float(m.discriminator_step(z, g)) for _ in range(30)]
    assert sum(losses[-5:]) / 5 < math.log(2) - 0.05
    with torch.no_grad():
        assert float(m.total_correlation(z)) > 0.2
