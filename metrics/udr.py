"""UDR, Unsupervised Disentanglement Ranking (Duan et al., ICLR 2020), as disentanglement_lib's
udr_sklearn computes it.

UDR needs no labels but several models: those of one setting (method, hyper-parameters, dataset)
trained with different seeds, encoding the same images. A model that disentangles should agree,
up to permutation and sign of its latents, with the other seeds' models that disentangle. So UDR is
a run-level score, computed from the codes of several models once they are trained: `udr_scores`.

For every ordered pair (i, j) of models:
1. Each model's codes are standardised (StandardScaler: mean 0, std 1, a constant latent stays 0)
   and every latent whose informativeness (the mean KL of its posterior to the prior, from `kls`)
   is at most 0.01 is zeroed.
2. Similarity R (D_i, D_j) between latents: `correlation="lasso"` (the reference's default) fits
   Lasso(alpha=0.1) predicting model j's codes from model i's and takes |coefficients|;
   `"spearman"` takes |Spearman correlation| of every pair of latents.
3. Informative latents only (KL > `kl_threshold`, 0.01; `filter_low_kl=False` keeps all): R is
   cut to them. UDR_ij = (mean over columns of max^2 / sum + mean over rows of max^2 / sum) / 2,
   a 0 / 0 counting as 0. (The paper weights the two sums by the numbers of informative latents,
   1 / (d_i + d_j) times their sum; the two agree when both models have as many informative latents:
   `pooling="paper"` gives the paper's form.)
4. Model j's UDR is the median over i != j of UDR_ij (the reference's column median).

Informativeness: pass the per-latent KL of each model (`gaussian_kl` computes it from the encoder's
means and log-variances). Without KLs (models with no posterior) a latent is informative when its
standard deviation over the sample is at least `std_threshold` (0.05, FactorVAE's active-latent rule);
the codes are then not zeroed before the correlation, as there is no KL to zero them by.

Sizes: the reference's configuration scores 1,000 images (`UDR.num_train`). `gather_model_codes`
draws them once for all models and computes the KLs from each model's posterior.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.stats
import torch
from sklearn.linear_model import Lasso

from disentbench.errors import BenchError
from disentbench.metrics.base import Encode, Metric, encode_batch_size, gather_codes
from disentbench.metrics.registry import register
from disentbench.metrics.utils import quiet_estimators

CORRELATIONS = ("lasso", "spearman")
POOLINGS = ("reference", "paper")


def gaussian_kl(mean: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Per latent, the mean over points of KL(N(mean, exp(logvar)) || N(0, 1)): (N, D) -> (D,)."""
    mean, logvar = np.asarray(mean, dtype=np.float64), np.asarray(logvar, dtype=np.float64)
    return np.mean(0.5 * (np.square(mean) + np.exp(logvar) - logvar - 1.0), axis=0)


def standardise(codes: np.ndarray) -> np.ndarray:
    """StandardScaler's transform: (x - mean) / std (ddof 0), std 0 replaced by 1."""
    std = codes.std(axis=0)
    return (codes - codes.mean(axis=0)) / np.where(std == 0, 1.0, std)


def lasso_similarity(a: np.ndarray, b: np.ndarray, alpha: float = 0.1) -> np.ndarray:
    """|Lasso(alpha) coefficients| predicting every latent of b from a, as (D_a, D_b)."""
    with quiet_estimators():
        model = Lasso(alpha=alpha).fit(a, b)
    return np.abs(np.asarray(model.coef_).reshape(b.shape[1], a.shape[1])).T


def spearman_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|Spearman correlation| of every latent of a with every latent of b, (D_a, D_b); a constant
    latent correlates NaN, as scipy returns it."""
    out = np.empty((a.shape[1], b.shape[1]))
    with np.errstate(all="ignore"), quiet_estimators():
        for i in range(a.shape[1]):
            for j in range(b.shape[1]):
                out[i, j] = scipy.stats.spearmanr(a[:, i], b[:, j]).statistic
    return np.abs(out)


def relative_strength(r: np.ndarray, pooling: str = "reference") -> float:
    """UDR_ij from a similarity matrix R (rows: latents of i, columns: latents of j).

    reference: (mean_columns max^2 / sum + mean_rows max^2 / sum) / 2, 0 / 0 -> 0 (NaN -> 0);
    paper: (sum_columns + sum_rows) / (number of columns + rows)."""
    r = np.asarray(r, dtype=np.float64)
    if r.size == 0:
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        cols = np.nan_to_num(np.max(r, axis=0) ** 2 / np.sum(r, axis=0), nan=0.0)
        rows = np.nan_to_num(np.max(r, axis=1) ** 2 / np.sum(r, axis=1), nan=0.0)
    if pooling == "paper":
        return float((cols.sum() + rows.sum()) / (cols.size + rows.size))
    return float((np.mean(cols) + np.mean(rows)) / 2)


def udr_scores(
    codes: Sequence[np.ndarray],
    kls: Sequence[np.ndarray] | None = None,
    correlation: str = "lasso",
    filter_low_kl: bool = True,
    kl_threshold: float = 0.01,
    std_threshold: float = 0.05,
    pooling: str = "reference",
) -> dict:
    """UDR of each of M >= 2 models from their codes of the same images.

    codes: M arrays (N, D_m), row n of every array the same image. kls: M arrays (D_m,) of per-latent
    KL (see `gaussian_kl`), or None. Returns {"udr": (M,) array, model m's score, "pairwise": (M, M)
    UDR_ij (diagonal 0), "informative": list of M boolean masks}.
    """
    if correlation not in CORRELATIONS:
        raise BenchError(f"udr: correlation {correlation!r} is unknown; choose one of: {', '.join(CORRELATIONS)}")
    if pooling not in POOLINGS:
        raise BenchError(f"udr: pooling {pooling!r} is unknown; choose one of: {', '.join(POOLINGS)}")
    codes = [np.asarray(c, dtype=np.float64) for c in codes]
    if len(codes) < 2:
        raise BenchError(
            f"udr compares models of one setting trained with different seeds: it needs at least 2 models, "
            f"got {len(codes)} (train more seeds of this setting)"
        )
    n = codes[0].shape[0] if codes[0].ndim == 2 else -1
    if any(c.ndim != 2 or c.shape[0] != n or c.shape[1] < 1 for c in codes) or n < 2:
        raise BenchError("udr: every model's codes must be (N, D) arrays over the same N >= 2 images")
    if any(not np.isfinite(c).all() for c in codes):
        raise BenchError("udr: codes contain NaN or infinite values")
    if kls is not None:
        kls = [np.asarray(k, dtype=np.float64).reshape(-1) for k in kls]
        if len(kls) != len(codes) or any(k.size != c.shape[1] for k, c in zip(kls, codes)):
            raise BenchError("udr: pass one KL vector per model, one entry per latent")
        reps = [standardise(c) * (k > 0.01) for c, k in zip(codes, kls)]
        informative = [k > kl_threshold for k in kls]
    else:
        reps = [standardise(c) for c in codes]
        informative = [c.std(axis=0) >= std_threshold for c in codes]
    m = len(codes)
    pairwise = np.zeros((m, m))
    for i in range(m):
        for j in range(m):
            if i == j:
                continue
            if correlation == "lasso":
                r = lasso_similarity(reps[i], reps[j])
            else:
                r = spearman_similarity(reps[i], reps[j])
            if filter_low_kl:
                r = r[informative[i]][:, informative[j]]
            pairwise[i, j] = relative_strength(r, pooling)
    scores = np.array([np.median(np.delete(pairwise[:, j], j)) for j in range(m)])
    return {"udr": scores, "pairwise": pairwise, "informative": informative}


def gather_model_codes(
    dataset,
    encoders: Sequence[Encode],
    num_points: int = 1_000,
    seed: int = 0,
    posteriors: Sequence[Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]] | None = None,
    batch_size: int = 16,
) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """The inputs of `udr_scores`: every model's codes of the same `num_points` images (drawn as
    gather_codes draws them, from a fresh generator seeded with `seed` for each model, so the images
    are identical) and, given each model's `posterior` (images -> (mean, log-variance)), its
    per-latent KL on those images."""
    codes, kls = [], []
    for m, encode in enumerate(encoders):
        z, factors = gather_codes(dataset, encode, num_points, np.random.default_rng(seed), batch_size)
        codes.append(z)
        if posteriors is not None:
            images = dataset.observations(factors)
            step = encode_batch_size(images.device)
            with torch.no_grad():
                parts = [posteriors[m](images[i : i + step]) for i in range(0, len(images), step)]
            mean = torch.cat([p[0] for p in parts]).double().cpu().numpy()
            logvar = torch.cat([p[1] for p in parts]).double().cpu().numpy()
            kls.append(gaussian_kl(mean.reshape(len(images), -1), logvar.reshape(len(images), -1)))
    return codes, (kls if posteriors is not None else None)


@register("udr")
class UDR(Metric):
    """Registered so it is listed; scored at the run level by `udr_scores` (evaluate_many skips it)."""

    num_train = 1_000
    num_test = 0
    #: scored from several trained models together, not per cell
    run_level = True
    params = {
        "correlation": "lasso",
        "filter_low_kl": True,
        "kl_threshold": 0.01,
        "std_threshold": 0.05,
        "pooling": "reference",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.kwargs["correlation"] not in CORRELATIONS:
            raise BenchError(
                f"udr: correlation {self.kwargs['correlation']!r} is unknown; choose one of: {', '.join(CORRELATIONS)}"
            )
        if self.kwargs["pooling"] not in POOLINGS:
            raise BenchError(
                f"udr: pooling {self.kwargs['pooling']!r} is unknown; choose one of: {', '.join(POOLINGS)}"
            )

    def _refuse(self):
        raise BenchError(
            "udr is a run-level metric: it compares the models of one setting trained with different seeds; "
            "score their codes of the same images with metrics.udr.udr_scores([codes_1, codes_2, ...])"
        )

    def score(self, train_codes, train_factors, test_codes, test_factors, random_state):
        self._refuse()

    def evaluate(self, dataset, encode, rng, codes_cache=None):
        self._refuse()

    def score_models(self, codes: Sequence[np.ndarray], kls: Sequence[np.ndarray] | None = None) -> dict:
        """udr_scores with this metric's options."""
        return udr_scores(codes, kls, **self.kwargs)
