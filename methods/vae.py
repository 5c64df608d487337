"""VAE and beta-VAE on the shared backbone. Subclasses override only `regulariser`."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from disentbench.methods.backbone import ConvDecoder, GaussianEncoder
from disentbench.methods.base import Method
from disentbench.methods.registry import register


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per example, summed over latents: shape (n,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(dim=1)


def bernoulli_reconstruction(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Sigmoid cross-entropy summed over pixels and channels, batch mean."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(z; mu, exp(logvar))."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) * torch.exp(-logvar))


@register("vae")
class VAE(Method):
    """Kingma & Welling 2014. Objective: E_q[-log p(x|z)] + KL(q(z|x) || N(0, I)).

    Bernoulli decoder on logits, Adam(1e-4, 0.9, 0.999), representation = encoder mean, exactly as
    the reference protocol (docs/protocol.md).
    """

    hparams = {}

    def build(self) -> None:
        c = self.observation_shape[0]
        self.encoder = GaussianEncoder(c, self.latent_dim)
        self.decoder = ConvDecoder(self.latent_dim, c)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        params = list(self.encoder.parameters()) + list(self.decoder.parameters())
        return {"vae": torch.optim.Adam(params, lr=self.hp["lr"], betas=(0.9, 0.999), eps=1e-8)}

    def regulariser(
        self, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor, kl: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The term added to the reconstruction loss (batch mean); extra named values to log."""
        return kl, {}

    def sample_posterior(self, mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def loss(self, x: torch.Tensor, step: int, generator: torch.Generator) -> tuple[torch.Tensor, dict]:
        mu, logvar = self.encoder(x)
        z = self.sample_posterior(mu, logvar, generator)
        recon = bernoulli_reconstruction(self.decoder(z), x)
        kl = gaussian_kl(mu, logvar).mean()
        reg, extra = self.regulariser(mu, logvar, z, kl, step)
        loss = recon + reg
        logs = {"loss": loss, "recon": recon, "kl": kl, **extra}
        return loss, {k: v.detach() for k, v in logs.items()}

    def train_step(self, x: torch.Tensor, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        self.train()
        opt = self.optimizers["vae"]
        loss, logs = self.loss(x, step, generator)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return logs

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        self.eval()
        return self.encoder(x)[0]

    @torch.no_grad()
    def encode_sampled(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One draw from q(z|x) per image: the reference's secondary "sampled" representation."""
        self.eval()
        mu, logvar = self.encoder(x)
        return self.sample_posterior(mu, logvar, generator)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        self.eval()
        return torch.sigmoid(self.decoder(z))


@register("betavae")
class BetaVAE(VAE):
    """Higgins et al. 2017, beta-VAE. Objective: recon + beta * KL. Only the regulariser differs."""

    hparams = {"beta": 4.0}
    reference_grid = {"beta": [1, 2, 4, 6, 8, 16]}

    def regulariser(self, mu, logvar, z, kl, step):
        return self.hp["beta"] * kl, {}
