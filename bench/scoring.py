"""What a trained model is scored on. The runner's final scores, its learning-curve points and
`rescore` all go through `score_model`, so the three always agree.

- Every cell: each metric on the dataset's own uniform factors (a correlated cell too: its
  metrics score uncorrelated data).
- A correlated cell whose config asks for it (`score_correlated`): also on its correlated
  training distribution, keys `correlated_<key>`.
- A held-out cell (`holdout`): each metric on the combinations it trained on (the seen part; plain
  keys), each metric that can be confined to a set of combinations on the held-out ones
  (`heldout_<key>`), and the reconstruction error on both (`reconstruction_mse`,
  `heldout_reconstruction_mse`).

A metric that intervenes on factors (`needs_dataset`: BetaVAE and FactorVAE scores, fairness,
strong downstream) fixes one factor and redraws the others, so its images leave any chosen set of
combinations: it is not scored on the held-out or correlated set, and `skipped` says why (the
report repeats it). On the seen part it scores as everywhere else; its pairs start from seen
combinations, but an intervened partner may be a held-out one (docs/heldout.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from disentbench import metrics
from disentbench.choices import SCORE_SET_PREFIXES
from disentbench.datasets import correlation, holdout
from disentbench.metrics.base import Encode, encode_batch_size

HELDOUT, CORRELATED = SCORE_SET_PREFIXES
RECONSTRUCTION = "reconstruction_mse"
#: images rendered per `observations` call while measuring reconstruction
RENDER_CHUNK = 1024
INTERVENES = "it intervenes on factors (fixes one, redraws the others), so its images leave the chosen combinations"


def unrestricted_reason(name: str) -> str | None:
    """Why metric `name` cannot score a chosen set of combinations, or None when it can."""
    cls = metrics.REGISTRY.get(name) if name in metrics.REGISTRY else None
    return INTERVENES if getattr(cls, "needs_dataset", False) else None


def confined(sizes: dict[str, dict]) -> tuple[dict[str, dict], dict[str, str]]:
    """(the metrics of `sizes` that can score a chosen set of combinations, {skipped metric: why})."""
    skipped = {name: why for name in sizes if (why := unrestricted_reason(name))}
    return {k: v for k, v in sizes.items() if k not in skipped}, skipped


def reconstruction_error(method, dataset, n: int, rng: np.random.Generator) -> float:
    """Mean over n images drawn from `dataset` (factors from `rng`) of the per-image mean squared
    pixel error of decode(encode(x)) (the HFS code's reconstruction error); images are encoded in
    fixed-size batches, as the metrics encode them."""
    factors = dataset.sample_factors(int(n), rng)
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(factors), RENDER_CHUNK):
            images = dataset.observations(factors[start : start + RENDER_CHUNK])
            step = encode_batch_size(images.device)
            for i in range(0, len(images), step):
                x = images[i : i + step].float()
                error = (method.reconstruct(x).float() - x).reshape(len(x), -1).pow(2).mean(dim=1)
                total += float(error.double().sum())
    return total / len(factors)


def _reconstruction(method, parts: dict[str, Any], n: int, seed: int) -> tuple[dict[str, float], str | None]:
    """`reconstruction_mse` per part ({prefix: dataset}), or why the method has none."""
    out = {}
    for prefix, data in parts.items():
        try:
            out[prefix + RECONSTRUCTION] = reconstruction_error(method, data, n, np.random.default_rng(seed))
        except NotImplementedError:
            return {}, f"{type(method).__name__} has no decoder to reconstruct with"
    return out, None


def score_sets(config: dict[str, Any]) -> list[str]:
    """The sets a cell of `config` is scored on, as key prefixes: "" (its data, or the seen part of a
    held-out cell), HELDOUT (its held-out combinations), CORRELATED (its correlated training
    distribution, when asked). The dry run counts them; score_model scores them."""
    sets = [""]
    if config.get("holdout", holdout.NONE) != holdout.NONE:
        sets.append(HELDOUT)
    if config.get("score_correlated") and config.get("correlation", correlation.NONE) != correlation.NONE:
        sets.append(CORRELATED)
    return sets


def score_model(
    method, encode: Encode, config: dict[str, Any], sizes: dict[str, dict], dataset, seed: int
) -> tuple[dict[str, float], dict[str, Any]]:
    """(scores, what was scored where): the metrics of `sizes` for the cell of `config` on `dataset`
    (the plain dataset; the cell's settings pick the parts). Each set uses generators seeded with
    `seed`, so each equals a separate `metrics.evaluate_many` call on its part."""
    sets = score_sets(config)
    held = config.get("holdout", holdout.NONE)
    info: dict[str, Any] = {}
    if HELDOUT not in sets:
        scores = metrics.evaluate_many(sizes, dataset, encode, seed=seed)
    else:
        seen, unseen = holdout.seen_part(dataset, held), holdout.heldout_part(dataset, held)
        scores = metrics.evaluate_many(sizes, seen, encode, seed=seed)
        kept, skipped = confined(sizes)
        scores.update({HELDOUT + k: v for k, v in metrics.evaluate_many(kept, unseen, encode, seed=seed).items()})
        n = int(config.get("reconstruction_points", 10_000))
        recon, why = _reconstruction(method, {"": seen, HELDOUT: unseen}, n, seed)
        scores.update(recon)
        if why:
            skipped[RECONSTRUCTION] = why
        sizes_ = tuple(int(s) for s in dataset.factor_sizes)
        info["heldout"] = {
            "setting": held,
            "held_out": holdout.get(held).describe(),
            "heldout_fraction": holdout.heldout_fraction(held, sizes_),
            "skipped": skipped,
        }
    if CORRELATED in sets:
        corr = config["correlation"]
        kept, skipped = confined(sizes)
        shifted = metrics.evaluate_many(kept, correlation.correlated(dataset, corr), encode, seed=seed)
        scores.update({CORRELATED + k: v for k, v in shifted.items()})
        info["correlated"] = {"setting": corr, "skipped": skipped}
    return scores, info
