"""DIP-VAE-I and -II (Kumar et al. 2018): match the covariance of the aggregate posterior to I."""

from __future__ import annotations

import torch

from disentbench.methods.constraints import Interval
from disentbench.methods.registry import register
from disentbench.methods.vae import VAE


def covariance(x: torch.Tensor) -> torch.Tensor:
    """Biased (1/n) covariance of the rows of x: (d, d), as the reference computes Cov[mu]."""
    centred = x - x.mean(dim=0, keepdim=True)
    return centred.T @ centred / x.shape[0]


def dip_penalty(cov: torch.Tensor, lambda_od: float, lambda_d: float) -> torch.Tensor:
    """lambda_od * sum(offdiag^2) + lambda_d * sum((diag - 1)^2)."""
    diag = torch.diagonal(cov)
    off = cov - torch.diag(diag)
    return lambda_od * off.pow(2).sum() + lambda_d * (diag - 1).pow(2).sum()


@register("dipvae1")
class DIPVAE1(VAE):
    """Kumar, Sattigeri & Balakrishnan 2018, "Variational Inference of Disentangled Latent Concepts
    from Unlabeled Observations", DIP-VAE-I.

    Objective: recon + KL + l_od * sum(offdiag C^2) + l_d * sum((diag C - 1)^2), C = Cov_batch[mu],
    l_d = lambda_d_factor * l_od (10 for DIP-VAE-I).

    As disentanglement_lib: the biased (1/M) batch covariance, and the full KL kept in the loss.
    """

    hparams = {"lambda_od": 10.0, "lambda_d_factor": 10.0}
    constraints = {"lambda_od": Interval(0, None), "lambda_d_factor": Interval(0, None)}
    reference_grid = {"lambda_od": [1, 2, 5, 10, 20, 50]}

    def posterior_covariance(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return covariance(mu)

    def regulariser(self, mu, logvar, z, kl, step):
        l_od = self.hp["lambda_od"]
        dip = dip_penalty(self.posterior_covariance(mu, logvar), l_od, self.hp["lambda_d_factor"] * l_od)
        return kl + dip, {"dip": dip}


@register("dipvae2")
class DIPVAE2(DIPVAE1):
    """DIP-VAE-II (same paper). Penalises Cov_q(z) = Cov_batch[mu] + mean_batch(diag exp(logvar)),
    with l_d = l_od (lambda_d_factor = 1). Otherwise as DIP-VAE-I."""

    hparams = {"lambda_d_factor": 1.0}

    def posterior_covariance(self, mu, logvar):
        return covariance(mu) + torch.diag(logvar.exp().mean(dim=0))
