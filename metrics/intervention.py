"""Encode many small factor batches in large chunks (shared by BetaVAE and FactorVAE scores).

Those scores draw thousands of batches of 64 factor vectors. Drawing never depends on the
images, so all factors are drawn first in the spec's order, then rendered and encoded a few
thousand images at a time; with a per-example encoder the representations are identical to
encoding each batch on its own, and far fewer, larger calls are made.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import torch

from metrics.base import Encode


def encode_batches(dataset, encode: Encode, batches: Iterable[np.ndarray], chunk_images: int = 4096,
                   ) -> Iterator[np.ndarray]:
    """Yield the representation (n_i, D) of each factor batch (n_i, K), in order."""
    pending: list[np.ndarray] = []
    pending_n = 0

    def flush() -> Iterator[np.ndarray]:
        factors = np.concatenate(pending)
        with torch.no_grad():
            codes = encode(dataset.observations(factors))
        codes = codes.detach().float().cpu().numpy().astype(np.float64).reshape(len(factors), -1)
        start = 0
        for batch in pending:
            yield codes[start:start + len(batch)]
            start += len(batch)

    for batch in batches:
        pending.append(batch)
        pending_n += len(batch)
        if pending_n >= chunk_images:
            yield from flush()
            pending, pending_n = [], 0
    if pending:
        yield from flush()
