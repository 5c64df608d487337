"""beta-TCVAE (Chen et al. 2018): a VAE whose regulariser adds (beta - 1) times a minibatch estimate
of the total correlation of the aggregate posterior."""

from __future__ import annotations

import math

import torch

from disentbench.errors import BenchError
from disentbench.methods.constraints import Interval, Options
from disentbench.methods.registry import register
from disentbench.methods.vae import VAE, gaussian_log_density

#: size of the dSprites factor grid, the benchmark's default dataset (N in the estimators)
DSPRITES_SIZE = 737280


def pairwise_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log q(z_j,l | x_i) for every sample j, example i and latent l: shape (M_j, M_i, D)."""
    return gaussian_log_density(z.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0))


def mss_log_weights(m: int, dataset_size: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """log of the minibatch-stratified-sampling weights (Chen et al. 2018, appendix), shape (M, M).

    Row j weighs the M posteriors used to estimate q(z_j): its own example 1/N, the next example
    (cyclically) (N - M + 1) / (N (M - 1)), the M - 2 others 1 / (M - 1). Every row sums to 1.
    Built with explicit indices (the reference code misplaces two entries of the last rows).
    """
    n = float(dataset_size)
    w = torch.full((m, m), 1.0 / (m - 1), device=device, dtype=torch.float64)
    rows = torch.arange(m, device=device)
    w[rows, (rows + 1) % m] = (n - m + 1) / (n * (m - 1))
    w[rows, rows] = 1.0 / n
    return w.log().to(dtype)


def total_correlation(
    z: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    dataset_size: int,
    estimator: str = "mws",
) -> torch.Tensor:
    """Batch mean of log q(z_j) - sum_l log q(z_jl), q the aggregate posterior, from one batch.

    "mws": log q(z_j) ~ logsumexp_i log q(z_j|x_i) - log(M N), and the same per latent; the
    constants are kept, so the value is the normalised-density TC plus (D - 1) log N (the 1/(MN)
    weights sum to 1/N, not 1). They do not change gradients.
    "mss": the stratified weights of `mss_log_weights` (they sum to 1, no offset).
    """
    m, d = z.shape
    logq = pairwise_log_density(z, mu, logvar)  # (M, M, D)
    if estimator == "mws":
        const = math.log(m * dataset_size)
        log_qz = torch.logsumexp(logq.sum(dim=2), dim=1) - const
        log_prod = (torch.logsumexp(logq, dim=1) - const).sum(dim=1)
    elif estimator == "mss":
        if m < 2 or dataset_size < m - 1:
            raise BenchError(f"betatcvae: the mss estimator needs batch >= 2 and dataset_size >= batch - 1 (batch {m})")
        logw = mss_log_weights(m, dataset_size, device=z.device, dtype=z.dtype)
        log_qz = torch.logsumexp(logq.sum(dim=2) + logw, dim=1)
        log_prod = torch.logsumexp(logq + logw.unsqueeze(2), dim=1).sum(dim=1)
    else:
        raise BenchError(f"unknown TC estimator {estimator!r}; choose mws or mss")
    return (log_qz - log_prod).mean()


@register("betatcvae")
class BetaTCVAE(VAE):
    """Chen, Li, Grosse & Duvenaud 2018, "Isolating Sources of Disentanglement in VAEs".

    Objective (disentanglement_lib form): recon + KL(q(z|x) || p(z)) + (beta - 1) * TC, with TC the
    total correlation of q(z) estimated on the batch from the sampled z.

    Deviations / choices:
    - As the reference library (not the paper's recon + MI + beta TC + dim-KL): the full KL plus
      (beta - 1) TC, which equals the paper's objective with alpha = gamma = 1 in expectation.
    - Minibatch-weighted sampling keeps the constants log(M N) that the reference drops; they
      cancel only partly, so the logged `tc` is the reference value + (D - 1) log(M N). Gradients
      are unchanged. N = `dataset_size` (default: the dSprites grid, 737280; set it for another
      dataset — for "mss" it also changes the weights, hence the gradients).
    - `estimator="mss"` gives minibatch stratified sampling (the paper's other estimator), with the
      weight matrix built by index (the reference code misplaces two entries).
    """

    hparams = {"beta": 6.0, "estimator": "mws", "dataset_size": DSPRITES_SIZE}
    constraints = {
        "estimator": Options("mws", "mss"),
        "dataset_size": Interval(1, None, integer=True),  # the number of distinct training examples
    }
    reference_grid = {"beta": [1, 2, 4, 6, 8, 10]}

    def regulariser(self, mu, logvar, z, kl, step):
        tc = total_correlation(z, mu, logvar, self.hp["dataset_size"], self.hp["estimator"])
        return kl + (self.hp["beta"] - 1.0) * tc, {"tc": tc}
