"""The shared "conv" backbone of the reference protocol (Locatello et al. 2019), used by every method
(docs/protocol.md).

Encoder trunk: 4 convolutions + a 256-unit linear layer, ReLU everywhere. Heads are added by the
methods (Gaussian mean/log-variance for VAEs; a critic score or code for GANs).
"""

from __future__ import annotations

import math

import torch
from torch import nn

TRUNK_FEATURES = 256


class EncoderTrunk(nn.Module):
    """64x64xC -> 256 features (the reference encoder without its heads)."""

    def __init__(self, in_channels: int = 1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, 32, 4, stride=2, padding=1),
            nn.ReLU(),  # 32x32
            nn.Conv2d(32, 32, 4, stride=2, padding=1),
            nn.ReLU(),  # 16x16
            nn.Conv2d(32, 64, 2, stride=2),
            nn.ReLU(),  # 8x8
            nn.Conv2d(64, 64, 2, stride=2),
            nn.ReLU(),  # 4x4
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, TRUNK_FEATURES),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class GaussianEncoder(nn.Module):
    """Trunk + two linear heads: mean and log-variance of q(z|x)."""

    def __init__(self, in_channels: int = 1, latent_dim: int = 10):
        super().__init__()
        self.trunk = EncoderTrunk(in_channels)
        self.mean = nn.Linear(TRUNK_FEATURES, latent_dim)
        self.logvar = nn.Linear(TRUNK_FEATURES, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.mean(h), self.logvar(h)


DECODER_NORMS = ("none", "batch")


class ConvDecoder(nn.Module):
    """z -> logits of a 64x64xC image (no output activation).

    `norm="batch"` puts batch normalisation after every hidden layer (before its ReLU), as DCGAN-style
    GAN generators have it (InfoGAN-CR's among them); the reference VAE decoder has none ("none")."""

    def __init__(self, latent_dim: int = 10, out_channels: int = 1, norm: str = "none"):
        super().__init__()
        if norm not in DECODER_NORMS:
            raise ValueError(f"unknown decoder norm {norm!r}; choose one of {', '.join(DECODER_NORMS)}")
        batch = norm == "batch"

        def hidden(layer: nn.Module, width: int, dims: int) -> list[nn.Module]:
            normalise = [nn.BatchNorm1d(width) if dims == 1 else nn.BatchNorm2d(width)] if batch else []
            return [layer, *normalise, nn.ReLU()]

        self.fc = nn.Sequential(*hidden(nn.Linear(latent_dim, 256), 256, 1), *hidden(nn.Linear(256, 1024), 1024, 1))
        self.deconv = nn.Sequential(
            *hidden(nn.ConvTranspose2d(64, 64, 4, stride=2, padding=1), 64, 2),  # 8x8
            *hidden(nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), 32, 2),  # 16x16
            *hidden(nn.ConvTranspose2d(32, 32, 4, stride=2, padding=1), 32, 2),  # 32x32
            nn.ConvTranspose2d(32, out_channels, 4, stride=2, padding=1),  # 64x64
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.fc(z).view(-1, 64, 4, 4))


INIT_SCHEMES = ("reference", "torch", "dcgan")
#: "dcgan": the N(0, 0.02) initialiser of the DCGAN-style TF code InfoGAN-CR's models use
DCGAN_STD = 0.02


@torch.no_grad()
def initialise(module: nn.Module, scheme: str, generator: torch.Generator) -> None:
    """(Re-)initialise every conv/linear layer from an explicit generator.

    "reference": Glorot-uniform kernels, zero biases (disentanglement_lib, TF1).
    "torch": PyTorch's own default (Kaiming-uniform a=sqrt(5), fan-in uniform bias), but seeded.
    "dcgan": the DCGAN-style TF ops of InfoGAN-CR's code: convolution kernels truncated normal (std
    0.02, cut at two standard deviations, as TF's truncated_normal_initializer), transposed
    convolution and linear weights normal (std 0.02), zero biases.
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; choose one of {', '.join(INIT_SCHEMES)}")
    for m in module.modules():
        if not isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            continue
        if scheme == "reference":
            nn.init.xavier_uniform_(m.weight, generator=generator)
            if m.bias is not None:
                m.bias.zero_()
        elif scheme == "dcgan":
            if isinstance(m, nn.Conv2d):
                nn.init.trunc_normal_(m.weight, 0.0, DCGAN_STD, -2 * DCGAN_STD, 2 * DCGAN_STD, generator=generator)
            else:
                nn.init.normal_(m.weight, 0.0, DCGAN_STD, generator=generator)
            if m.bias is not None:
                m.bias.zero_()
        else:
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            if m.bias is not None:
                fan_in, _ = nn.init._calculate_fan_in_and_fan_out(m.weight)
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)
