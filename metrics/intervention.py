"""Encode many small factor batches in large chunks (shared by BetaVAE and FactorVAE scores).

Those scores draw thousands of batches of 64 factor vectors. Drawing never depends on the
images, so all factors are drawn first in the spec's order, then rendered a few thousand images
at a time and encoded in fixed-size batches (metrics.base.encode_images); far fewer calls are
made. Convolutions round differently per batch size (~1e-6 on CPU), so codes are reproducible
for a given configuration rather than identical to encoding each batch of 64 on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from disentbench.metrics.base import Encode, encode_images
from disentbench.metrics.image_codes import image_codes


def encode_batches(
    dataset,
    encode: Encode,
    batches: Iterable[np.ndarray],
    chunk_images: int = 4096,
    codes_cache: dict | None = None,
) -> Iterator[np.ndarray]:
    """Yield the representation (n_i, D) of each factor batch (n_i, K), in order. With `codes_cache`
    (evaluate_many's), an image already encoded is looked up where the encoder and the dataset allow
    it (metrics.image_codes)."""
    pending: list[np.ndarray] = []
    pending_n = 0
    table = image_codes(dataset, encode, codes_cache)

    def flush() -> Iterator[np.ndarray]:
        factors = np.concatenate(pending)
        if table is not None and not table.too_big:
            codes = table(factors)
        else:
            codes = encode_images(encode, dataset.observations(factors)).reshape(len(factors), -1)
        start = 0
        for batch in pending:
            yield codes[start : start + len(batch)]
            start += len(batch)

    for batch in batches:
        pending.append(batch)
        pending_n += len(batch)
        if pending_n >= chunk_images:
            yield from flush()
            pending, pending_n = [], 0
    if pending:
        yield from flush()


def draw_cycled_groups(
    dataset, num_groups: int, group_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[np.ndarray]]:
    """InfoGAN-CR's fixed-factor groups (`load_data.py` of fjxmlzn/InfoGAN-CR): group i fixes factor
    i mod K, cycling over the factors rather than drawing one. Per group: `group_size` factor vectors,
    every factor uniform, then one value of the fixed factor, uniform, given to all of them.
    Labels (num_groups,) and the factor batches (group_size, K)."""
    sizes = np.asarray(dataset.factor_sizes, dtype=np.int64)
    labels = np.arange(num_groups, dtype=np.int64) % dataset.num_factors
    batches = []
    for k in labels:
        factors = dataset.sample_factors(group_size, rng)
        factors[:, k] = rng.integers(sizes[k])
        batches.append(factors)
    return labels, batches


def cycled_group_codes(
    dataset, encode: Encode, num_groups: int, group_size: int, rng: np.random.Generator, codes_cache: dict | None
) -> tuple[np.ndarray, np.ndarray]:
    """Labels (num_groups,) and codes (num_groups, group_size, D) of `draw_cycled_groups`. InfoGAN-CR
    scores its FactorVAE and BetaVAE metrics on the very same groups; drawn first from a fresh
    generator they are the same here too, so `codes_cache` keeps them for the other metric and leaves
    the generator where a fresh draw would."""
    cache = {} if codes_cache is None else codes_cache
    key = ("cycled_groups", num_groups, group_size)
    if key not in cache:
        labels, batches = draw_cycled_groups(dataset, num_groups, group_size, rng)
        codes = np.stack(list(encode_batches(dataset, encode, batches, codes_cache=cache)))
        cache[key] = ((labels, codes), rng.bit_generator.state)
    drawn, state = cache[key]
    rng.bit_generator.state = state
    return drawn
