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


def encode_batches(
    dataset,
    encode: Encode,
    batches: Iterable[np.ndarray],
    chunk_images: int = 4096,
) -> Iterator[np.ndarray]:
    """Yield the representation (n_i, D) of each factor batch (n_i, K), in order."""
    pending: list[np.ndarray] = []
    pending_n = 0

    def flush() -> Iterator[np.ndarray]:
        factors = np.concatenate(pending)
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
