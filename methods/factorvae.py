"""FactorVAE (Kim & Mnih 2018): a VAE plus a discriminator that estimates the total correlation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from disentbench.methods.constraints import Interval
from disentbench.methods.registry import register
from disentbench.methods.vae import VAE


def permute_dims(z: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shuffle every latent dimension independently across the batch: keeps each marginal, breaks
    the dependence between dimensions (a sample of prod_l q(z_l))."""
    n, d = z.shape
    keys = torch.rand((n, d), generator=generator, device=z.device)
    return torch.gather(z, 0, keys.argsort(dim=0))


class Discriminator(nn.Module):
    """MLP of 6 hidden layers x 1000 units, leaky ReLU 0.2, 2 logits: [real (q(z)), permuted]."""

    def __init__(self, latent_dim: int, hidden: int = 1000, layers: int = 6):
        super().__init__()
        mods: list[nn.Module] = []
        width = latent_dim
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            width = hidden
        mods.append(nn.Linear(width, 2))
        self.net = nn.Sequential(*mods)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


@register("factorvae")
class FactorVAE(VAE):
    """Kim & Mnih 2018, "Disentangling by Factorising".

    Objective: recon + KL + gamma * TC, TC = mean(D(z)_real - D(z)_permuted) on the unpermuted batch;
    the discriminator D maximises log p(real | z) + log p(permuted | permute_dims(z)).

    Deviations / choices (as disentanglement_lib, not the paper's two-batch scheme): one batch
    serves both the VAE loss and the permuted samples; the VAE steps first, then D on the same z,
    detached, with its own Adam (lr `disc_lr`, betas (0.5, 0.9)), so the encoder's graph and
    gradients never enter D's update.
    """

    hparams = {"gamma": 30.0, "disc_lr": 1e-4}
    constraints = {"disc_lr": Interval(0, None, closed="neither")}
    reference_grid = {"gamma": [10, 20, 30, 40, 50, 100]}
    #: the reference advances its global step for the VAE and for the discriminator update and stops
    #: at 300,000, so each network is updated 150,000 times; one of our steps updates both
    reference_steps = 150_000
    training_only_modules = ("discriminator",)

    def build(self) -> None:
        super().build()
        self.discriminator = Discriminator(self.latent_dim)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = super().configure_optimizers()
        opts["discriminator"] = torch.optim.Adam(
            self.discriminator.parameters(), lr=self.hp["disc_lr"], betas=(0.5, 0.9)
        )
        return opts

    def total_correlation(self, z: torch.Tensor) -> torch.Tensor:
        """The density-ratio estimate of TC: mean of logit_real - logit_permuted."""
        logits = self.discriminator(z)
        return (logits[:, 0] - logits[:, 1]).mean()

    def regulariser(self, mu, logvar, z, kl, step):
        self._last_z = z.detach()  # the discriminator trains on the same sample, after the VAE
        tc = self.total_correlation(z)
        return kl + self.hp["gamma"] * tc, {"tc": tc}

    def discriminator_loss(self, z: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Cross-entropy of telling z (class 0) from permute_dims(z) (class 1); z is detached."""
        z = z.detach()
        z_perm = permute_dims(z, generator)
        logits = self.discriminator(torch.cat([z, z_perm]))
        labels = torch.cat(
            [
                torch.zeros(len(z), dtype=torch.long, device=z.device),
                torch.ones(len(z), dtype=torch.long, device=z.device),
            ]
        )
        return F.cross_entropy(logits, labels)

    def discriminator_step(self, z: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        opt = self.optimizers["discriminator"]
        loss = self.discriminator_loss(z, generator)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    def train_step(self, x: torch.Tensor, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        logs = super().train_step(x, step, generator)  # VAE update first: D's weights stay intact for its backward
        logs["disc_loss"] = self.discriminator_step(self._last_z, generator)
        return logs
