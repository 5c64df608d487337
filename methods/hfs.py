"""HFS, the Hausdorff Factorized Support regulariser (Roth et al., ICLR 2023, "Disentanglement of
Correlated Factors via Hausdorff Factorized Support"), alone (`hfs`) and on top of beta-VAE
(`betahfs`): a VAE whose regulariser is beta * KL + gamma * HFS.

For a pair of latent dimensions (i, j) and a batch of codes z_1..z_B, the joint support is the set of
the B points (z_ki, z_kj) and the factorized support the B^2 points (z_ai, z_bj) of the cartesian
product of the two one-dimensional supports. Since every joint point is also a factorized one, the
Hausdorff distance between the two sets is its one-sided part:

    H_ij = max_{a, b} min_k (z_ai - z_ki)^2 + (z_bj - z_kj)^2

(squared Euclidean distances, hard max and min, as the reference code's `hausdorff_hard`
matching). HFS is the sum of H_ij over `num_latent_pairs` pairs i < j drawn without replacement at
every step (all pairs when there are no more than that).
"""

from __future__ import annotations

import torch

from disentbench.methods.constraints import Interval, Options
from disentbench.methods.registry import register
from disentbench.methods.vae import VAE


def latent_pairs(latent_dim: int, device=None) -> torch.Tensor:
    """Every pair (i, j), i < j, of latent dimensions in lexicographic order: shape (D(D-1)/2, 2)."""
    return torch.combinations(torch.arange(latent_dim, device=device), r=2).reshape(-1, 2)


def choose_pairs(latent_dim: int, count: int, generator: torch.Generator | None) -> torch.Tensor:
    """`count` distinct pairs drawn uniformly without replacement from `generator` (on its device),
    or every pair, in order and with no draw, when there are no more than `count` of them."""
    pairs = latent_pairs(latent_dim)
    if len(pairs) <= count:
        return pairs
    if generator is None:
        raise RuntimeError("HFS needs the step's generator to draw latent pairs: call loss() or train_step()")
    pick = torch.randperm(len(pairs), generator=generator, device=generator.device)[:count]
    return pairs[pick.cpu()]


def pairwise_hausdorff(codes: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """H_ij for each pair (i, j) of `pairs` over the batch `codes` (B, D): shape (P,).

    H_ij = max over (a, b) of min over k of (z_ai - z_ki)^2 + (z_bj - z_kj)^2, the squared
    distance from the worst point of the pair's factorized support to the batch's joint support.
    Memory O(P B^3).
    """
    if len(pairs) == 0:
        return codes.new_zeros(0)
    pairs = pairs.to(codes.device)
    first = codes[:, pairs[:, 0]].T  # (P, B): z_ki
    second = codes[:, pairs[:, 1]].T  # (P, B): z_kj
    d_first = (first.unsqueeze(2) - first.unsqueeze(1)).pow(2)  # (P, a, k): (z_ai - z_ki)^2
    d_second = (second.unsqueeze(2) - second.unsqueeze(1)).pow(2)  # (P, b, k): (z_bj - z_kj)^2
    dist = d_first.unsqueeze(2) + d_second.unsqueeze(1)  # (P, a, b, k)
    return dist.min(dim=3).values.flatten(1).max(dim=1).values


def hfs_term(codes: torch.Tensor, num_latent_pairs: int, generator: torch.Generator | None) -> torch.Tensor:
    """The HFS term of one batch: the sum of `pairwise_hausdorff` over the drawn pairs (0 for D = 1)."""
    pairs = choose_pairs(codes.shape[1], num_latent_pairs, generator)
    return pairwise_hausdorff(codes, pairs).sum()


@register("betahfs")
class BetaHFS(VAE):
    """beta-VAE + HFS (Roth et al. 2023; reference: facebookresearch/disentangling-correlated-factors,
    `dent/losses/factorizedsupportvae.py`). Objective: recon + beta * KL + gamma * HFS.

    As the reference (`factorizedsupportvae`, its defaults in `parameters.py`): beta 1, gamma 1,
    25 latent pairs per step, the hard Hausdorff distance with squared Euclidean point distances, the
    full B^2 factorized support of the batch, the sum over pairs, the encoder means as the codes,
    the scale regulariser off (its `delta` = 0). Ours: the pairs are drawn from the cell's torch
    generator (the reference uses numpy's global one); `codes=sampled` applies HFS to the sampled z
    (an option the reference does not have). The reference's other matchings (soft, probabilistic,
    mean) and its random factorized-support estimation are not implemented.
    """

    hparams = {"beta": 1.0, "gamma": 1.0, "num_latent_pairs": 25, "codes": "mean"}
    constraints = {
        "beta": Interval(0, None),
        "gamma": Interval(0, None),
        "num_latent_pairs": Interval(1, None, integer=True),
        "codes": Options("mean", "sampled"),
    }
    #: the coarse gamma sweep the reference README and grid files run on top of beta-VAE
    reference_grid = {"gamma": [0.1, 1, 10, 100, 1000, 10000]}

    _pair_generator: torch.Generator | None = None

    def loss(self, x: torch.Tensor, step: int, generator: torch.Generator) -> tuple[torch.Tensor, dict]:
        # the regulariser draws its latent pairs from the step's generator, after the posterior noise
        self._pair_generator = generator
        try:
            return super().loss(x, step, generator)
        finally:
            self._pair_generator = None

    def regulariser(self, mu, logvar, z, kl, step):
        codes = mu if self.hp["codes"] == "mean" else z
        hfs = hfs_term(codes, self.hp["num_latent_pairs"], self._pair_generator)
        return self.hp["beta"] * kl + self.hp["gamma"] * hfs, {"hfs": hfs}


@register("hfs")
class HFS(BetaHFS):
    """HFS alone, as the paper runs it: beta = 0 (no KL term in the loss; `kl` is still logged) and
    gamma = 300, the reference README's example of HFS alone. Its grid is the reference's
    "hfs_only" gamma sweep (nine values, at beta 0)."""

    hparams = {"beta": 0.0, "gamma": 300.0}
    reference_grid = {"gamma": [80, 200, 400, 800, 1200, 1400, 1600, 1800, 2000]}
