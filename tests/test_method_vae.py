"""VAE / beta-VAE: the loss against a hand computation of the ELBO terms; beta scales only the KL."""

import numpy as np
import pytest
import torch

from disentbench import datasets, methods

pytestmark = pytest.mark.usefixtures("one_thread")


def _batch(n: int = 6) -> torch.Tensor:
    ds = datasets.create("dsprites", source="procedural")
    return ds.observations(ds.sample_factors(n, np.random.default_rng(0)))


def _hand_elbo_terms(m, x: torch.Tensor, seed: int) -> tuple[float, float]:
    """Recon = sum of sigmoid cross-entropies / n, KL = 0.5 sum(mu^2 + s^2 - log s^2 - 1) / n, in float64."""
    with torch.no_grad():
        mu, logvar = m.encoder(x)
        eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(seed))
        logits = m.decoder(mu + torch.exp(0.5 * logvar) * eps).double().numpy()
    t, mu, logvar = x.double().numpy(), mu.double().numpy(), logvar.double().numpy()
    ce = np.maximum(logits, 0) - logits * t + np.log1p(np.exp(-np.abs(logits)))
    kl = 0.5 * (mu**2 + np.exp(logvar) - logvar - 1)
    return float(ce.sum() / len(t)), float(kl.sum() / len(t))


def test_vae_loss_equals_hand_computed_elbo():
    m = methods.create("vae", seed=0)
    with torch.no_grad():  # a non-trivial posterior, so the KL term is not ~0
        m.encoder.mean.bias.fill_(0.7)
        m.encoder.logvar.bias.fill_(-0.5)
    x = _batch()
    recon, kl = _hand_elbo_terms(m, x, seed=11)
    loss, logs = m.loss(x, 0, torch.Generator().manual_seed(11))
    assert float(logs["recon"]) == pytest.approx(recon, rel=1e-5)
    assert float(logs["kl"]) == pytest.approx(kl, rel=1e-5)
    assert float(loss.detach()) == pytest.approx(recon + kl, rel=1e-5)


def test_beta_scales_only_the_kl_term():
    x = _batch()
    out = {}
    for beta in (1.0, 4.0):
        m = methods.create("betavae", seed=0, beta=beta)
        with torch.no_grad():
            m.encoder.mean.bias.fill_(0.7)
        _, out[beta] = m.loss(x, 0, torch.Generator().manual_seed(2))
    assert float(out[1.0]["recon"]) == float(out[4.0]["recon"])
    assert float(out[1.0]["kl"]) == float(out[4.0]["kl"]) > 1.0
    assert float(out[4.0]["loss"]) == pytest.approx(float(out[4.0]["recon"] + 4 * out[4.0]["kl"]), rel=1e-6)
    assert float(out[4.0]["loss"] - out[1.0]["loss"]) == pytest.approx(3 * float(out[1.0]["kl"]), rel=1e-4)


def test_a_few_hundred_steps_lower_the_loss():
    ds = datasets.create("dsprites", source="procedural")
    rng = np.random.default_rng(1)
    m = methods.create("betavae", seed=0)
    g = torch.Generator().manual_seed(0)
    losses = [float(m.train_step(ds.observations(ds.sample_factors(8, rng)), s, g)["loss"]) for s in range(200)]
    first, last = np.mean(losses[:20]), np.mean(losses[-20:])
    assert np.isfinite(losses).all()
    assert last < 0.5 * first  # ~2840 nats at init; the empty background alone is learnt quickly
