"""FactorVAE with the networks of InfoGAN-CR's code (Lin et al., ICML 2020; fjxmlzn/InfoGAN-CR,
FactorVAE_dSprites), registered as `factorvae_infogancr`.

The published FactorVAE row our reference-length run is compared with (Table 1 of that paper: gamma
10 on dSprites, MIG .40) was trained by that code, not by disentanglement_lib, and its networks
differ from the shared backbone. Training `factorvae` and `factorvae_infogancr` on the same seeds is
the A/B that tells whether the networks explain the MIG gap (docs/reference-length.md). Everything
but the networks is `factorvae`'s (objective, optimisers, step order, the discriminator's input).

Their networks, as read in the authors' code (in our words):
- encoder: four 4x4 stride-2 convolutions (32, 32, 64, 64 channels; TF "SAME" padding, which is
  padding 1 here), each followed by ReLU, then a 128-unit linear layer with no activation, then the
  linear mean and log-variance heads (ours: 2x2 kernels in the last two convolutions and a 256-unit
  layer with ReLU);
- decoder: a 128-unit linear layer and a 1024-unit one, each with ReLU, then the same four 4x4
  stride-2 transposed convolutions as ours (ours: 256 units in the first layer);
- discriminator: 5 hidden layers of 1000 units with leaky ReLU 0.2 and 2 logits (their
  `num_layers=6` counts the output layer; ours, as disentanglement_lib: 6 hidden layers).

Not taken over here, each its own switch: their N(0, 0.02) initialisation is the `dcgan` init scheme
(profile key `init`), so networks and initialisation can be tested apart; their length (311,040
iterations of both networks in their code's config) is the profile's `method_steps`; their
discriminator trains on the batch encoded again after the VAE update (ours and disentanglement_lib's:
the VAE step's own sample, detached) and is not offered.
"""

from __future__ import annotations

import torch
from torch import nn

from disentbench.methods.factorvae import Discriminator, FactorVAE
from disentbench.methods.registry import register

#: the encoder's last hidden layer and the decoder's first (theirs; the shared backbone's: 256)
HIDDEN = 128


class InfoGANCREncoder(nn.Module):
    """64x64xC -> (mean, log-variance): four 4x4 stride-2 convolutions with ReLU, a linear layer of
    128 units without activation, two linear heads."""

    def __init__(self, in_channels: int = 1, latent_dim: int = 10):
        super().__init__()
        convs: list[nn.Module] = []
        for c_in, c_out in ((in_channels, 32), (32, 32), (32, 64), (64, 64)):
            convs += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
        self.trunk = nn.Sequential(*convs, nn.Flatten(), nn.Linear(64 * 4 * 4, HIDDEN))
        self.mean = nn.Linear(HIDDEN, latent_dim)
        self.logvar = nn.Linear(HIDDEN, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.mean(h), self.logvar(h)


@register("factorvae_infogancr")
class FactorVAEInfoGANCR(FactorVAE):
    """`factorvae` on InfoGAN-CR's networks (module docstring): the objective and training are
    FactorVAE's; only `build` differs."""

    reference_grid = {"gamma": [1, 10, 20, 40]}  # the gammas of InfoGAN-CR's FactorVAE runs
    #: their code's length: 27 epochs of dSprites at batch 64, each iteration updating both networks
    reference_steps = 311_040

    def build(self) -> None:
        super().build()  # the shared decoder's transposed convolutions; its fully connected part is replaced
        c = self.observation_shape[0]
        self.encoder = InfoGANCREncoder(c, self.latent_dim)
        self.decoder.fc = nn.Sequential(
            nn.Linear(self.latent_dim, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 64 * 4 * 4), nn.ReLU()
        )
        self.discriminator = Discriminator(self.latent_dim, layers=5)
