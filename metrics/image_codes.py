"""Codes kept per image, for the metrics that encode millions of draws of a few hundred thousand images.

At the reference sizes the BetaVAE score encodes 1.9 million images and the FactorVAE score 1
million, drawn with replacement from dSprites' 737,280: rendering and encoding them was ~90% of a
scoring on a CPU (25-30 minutes a model on one core). Where both sides allow it, each distinct
image is rendered and encoded once and its code looked up afterwards:

- the encoder is deterministic (`deterministic_encoder` marks it; the runner marks the encoder
  mean, never a posterior draw, which must be fresh at every use), and
- the dataset's image is a function of each row's factors alone (`image_per_factors`: dSprites and
  3DShapes; not a dataset that draws a nuisance per request).

Each missing image is encoded in a batch of exactly the fixed size (metrics.base.encode_full_batches),
so a code does not depend on which other images shared its batch: where a device's convolutions give
a row the same result at a fixed batch size whatever its neighbours (checked on the CPU), the scores
equal those of encoding every draw, bit for bit. The table is one float32 row per factor combination
and is kept only below MAX_BYTES (dSprites with 10 latents: 29 MB).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from disentbench.metrics.base import Encode, encode_full_batches, encode_images

#: the largest table of codes kept (combinations x latents x 4 bytes); larger spaces encode every draw
MAX_BYTES = 256 * 2**20
#: where evaluate_many's shared cache holds the table
KEY = "image_codes"


def deterministic_encoder(encode: Callable[[torch.Tensor], torch.Tensor]) -> Encode:
    """`encode`, marked as giving an image the same code at every call (its codes may be kept)."""

    def marked(images: torch.Tensor) -> torch.Tensor:
        return encode(images)

    marked.deterministic = True  # type: ignore[attr-defined]
    return marked


class ImageCodes:
    """Codes of `dataset`'s images under `encode`, filled on demand, looked up by factor vector."""

    def __init__(self, dataset, encode: Encode):
        self.dataset, self.encode = dataset, encode
        self.sizes = tuple(int(s) for s in dataset.factor_sizes)
        self.have = np.zeros(int(np.prod(self.sizes)), dtype=bool)
        self.codes: np.ndarray | None = None
        self.encoded = 0  # distinct images rendered and encoded so far
        self.drawn = 0  # images asked for (the dry run extrapolates encoded from drawn)
        self.too_big = False  # the table would exceed MAX_BYTES: every draw is encoded instead

    def __call__(self, factors: np.ndarray) -> np.ndarray:
        """(n, D) float64 codes of the factor vectors (n, K), as metrics.base.encode_images gives them."""
        factors = np.asarray(factors, dtype=np.int64)
        self.drawn += len(factors)
        index = np.ravel_multi_index(tuple(factors.T), self.sizes)
        missing = ~self.have[index]
        need, first = np.unique(index[missing], return_index=True)
        if need.size:
            fresh = encode_full_batches(self.encode, self.dataset.observations(factors[missing][first]))
            self.encoded += len(need)
            if self.codes is None:
                if self.have.size * fresh.shape[1] * 4 > MAX_BYTES:  # from now on as if there were no table
                    self.too_big = True
                    return encode_images(self.encode, self.dataset.observations(factors)).reshape(len(factors), -1)
                self.codes = np.empty((self.have.size, fresh.shape[1]), dtype=np.float32)
            self.codes[need] = fresh
            self.have[need] = True
        assert self.codes is not None
        return self.codes[index].astype(np.float64)


def image_codes(dataset, encode: Encode, cache: dict | None) -> ImageCodes | None:
    """The shared table of `cache` (evaluate_many's, one dataset and encoder) when the encoder and
    the dataset allow one, else None (encode every draw)."""
    if cache is None or not getattr(encode, "deterministic", False) or not getattr(dataset, "image_per_factors", False):
        return None
    table = cache.get(KEY)
    if table is None or table.dataset is not dataset or table.encode is not encode:
        table = cache[KEY] = ImageCodes(dataset, encode)
    return None if table.too_big else table


def expected_distinct(draws: float, combinations: int) -> float:
    """Expected number of distinct images among `draws` uniform draws with replacement from
    `combinations`: N (1 - exp(-draws / N)), what a table encodes for that many draws."""
    n = float(combinations)
    return n * -np.expm1(-float(draws) / n)
