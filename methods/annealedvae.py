"""AnnealedVAE / beta-VAE-B (Burgess et al. 2018): the KL is pulled towards a growing capacity C(t)."""

from __future__ import annotations

import torch

from disentbench.methods.constraints import Interval
from disentbench.methods.registry import register
from disentbench.methods.vae import VAE


def capacity(step: int, c_max: float, iteration_threshold: int) -> float:
    """C(t) = min(C_max, C_max * t / iteration_threshold): a linear ramp from 0, then flat."""
    return min(c_max, c_max * step / iteration_threshold)


@register("annealedvae")
class AnnealedVAE(VAE):
    """Burgess et al. 2018, "Understanding disentangling in beta-VAE".

    Objective: recon + gamma * |KL - C(t)|, C(t) = min(C_max, C_max * t / iteration_threshold).

    t is the trainer's `step`, 1 at the first update; disentanglement_lib's global step is 0 there,
    so our C(t) runs one step ahead of the reference's (C_max / iteration_threshold = 0.00025 nats,
    kept as it is). iteration_threshold = 100,000, gamma = 1000 as in the reference. With a short step budget
    (the quick profile) C(t) stays near 0, so the run is a strongly KL-penalised VAE: compare
    settings at the reference length only.
    """

    hparams = {"c_max": 25.0, "gamma": 1000.0, "iteration_threshold": 100000}
    constraints = {
        "c_max": Interval(0, None),
        "gamma": Interval(0, None),
        "iteration_threshold": Interval(1, None, integer=True),  # steps to reach C_max
    }
    reference_grid = {"c_max": [5, 10, 25, 50, 75, 100]}

    def regulariser(self, mu, logvar, z, kl, step):
        c = capacity(step, self.hp["c_max"], self.hp["iteration_threshold"])
        return self.hp["gamma"] * (kl - c).abs(), {"capacity": torch.full_like(kl, c)}
