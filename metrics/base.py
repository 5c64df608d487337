"""The plug-in metric interface.

A metric is a small class registered by name. It declares how many train/test points it samples
and scores plain arrays in `score` (a thin wrapper round a pure function). `evaluate` samples
codes from a dataset exactly as docs/metrics.md describes: per batch of 16, factors first,
then observations, all from one seeded generator; train set before test set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch

from disentbench.errors import BenchError

Encode = Callable[[torch.Tensor], torch.Tensor]


#: images per encoder call on the CPU. Convolution kernels are chosen per batch size and round
#: differently (codes differ by ~1e-6 between batch sizes), so one fixed size keeps codes
#: reproducible; 128 is also ~3x faster than thousands at once on a 2-core CPU (activations stay
#: in cache): 14,900 vs 4,400 images/s for the reference encoder.
ENCODE_BATCH_CPU = 128
ENCODE_BATCH_ACCELERATOR = 2048


def encode_batch_size(device: torch.device) -> int:
    return ENCODE_BATCH_CPU if device.type == "cpu" else ENCODE_BATCH_ACCELERATOR


def encode_images(encode: Encode, images: torch.Tensor) -> np.ndarray:
    """(n, D) float64 codes of `images`, encoded in fixed-size batches from the first image on
    (see ENCODE_BATCH_CPU)."""
    step = encode_batch_size(images.device)
    with torch.no_grad():
        parts = [
            encode(images[i : i + step]).detach().float().reshape(min(step, len(images) - i), -1).cpu()
            for i in range(0, len(images), step)
        ]
    return torch.cat(parts).numpy().astype(np.float64)


def encode_full_batches(encode: Encode, images: torch.Tensor) -> np.ndarray:
    """(n, D) float32 codes, every image encoded in a batch of exactly the fixed size (the last one
    padded with copies of the last image), so that no code depends on how many images shared its
    batch (metrics.image_codes keeps them per image)."""
    n, step = len(images), encode_batch_size(images.device)
    pad = -n % step
    if pad:
        images = torch.cat([images, images[-1:].expand(pad, *images.shape[1:])])
    with torch.no_grad():
        parts = [
            encode(images[i : i + step]).detach().float().reshape(step, -1).cpu() for i in range(0, len(images), step)
        ]
    return torch.cat(parts).numpy()[:n]


def gather_codes(
    dataset,
    encode: Encode,
    num_points: int,
    rng: np.random.Generator,
    batch_size: int = 16,
    render_batch: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw `num_points` (factors, codes) pairs: per batch, factors then observations.

    Observations are rendered in larger chunks for speed and encoded in fixed-size batches
    aligned from the first point (what is left over waits for the next chunk), so the codes do
    not depend on `render_batch` or `batch_size`'s chunking.
    """
    factors_list, codes_list, pending, pending_n = [], [], [], 0

    def flush(final: bool = False):
        nonlocal pending, pending_n
        if pending:
            images = torch.cat(pending)
            step = encode_batch_size(images.device)
            keep = len(images) if final else len(images) // step * step
            if keep:
                codes_list.append(encode_images(encode, images[:keep]))
            pending = [images[keep:]] if keep < len(images) else []
            pending_n = len(images) - keep

    drawn = 0
    while drawn < num_points:
        n = min(batch_size, num_points - drawn)
        f = dataset.sample_factors(n, rng)
        factors_list.append(f)
        pending.append(dataset.observations(f))
        pending_n += n
        drawn += n
        if pending_n >= render_batch:
            flush()
    flush(final=True)
    codes = np.concatenate(codes_list).astype(np.float64)
    if codes.ndim != 2:
        codes = codes.reshape(codes.shape[0], -1)
    return codes, np.concatenate(factors_list)


class Metric:
    """Base class. Subclasses set `num_train`/`num_test` defaults and implement `score`."""

    registered_name: ClassVar[str] = "metric"
    num_train: int = 10_000
    num_test: int = 0
    batch_size: int = 16
    #: metrics that choose which factor to fix (BetaVAEScore, FactorVAEScore) need the dataset itself
    needs_dataset: ClassVar[bool] = False
    #: the reference metric this one is a variant of (e.g. "sap" for `sap_continuous`): a variant is
    #: scored only when named (profiles, `rescore --metrics`) and shown only in the published table
    variant_of: ClassVar[str | None] = None
    #: extra keyword parameters and their defaults, e.g. {"num_bins": 20}
    params: ClassVar[dict[str, Any]] = {}

    def __init__(
        self, num_train: int | None = None, num_test: int | None = None, batch_size: int | None = None, **params: Any
    ):
        name = self.registered_name
        unknown = set(params) - set(self.params)
        if unknown:
            allowed = ", ".join(["num_train", "num_test", "batch_size", *self.params])
            raise BenchError(f"metric {name} has no parameter {sorted(unknown)[0]!r}; its parameters: {allowed}")
        if num_train is not None:
            self.num_train = int(num_train)
        if num_test is not None:
            self.num_test = int(num_test)
        if batch_size is not None:
            self.batch_size = int(batch_size)
        for key, size in (("num_train", self.num_train), ("batch_size", self.batch_size)):
            if size < 1:
                raise BenchError(f"metric {name}: {key} must be >= 1, got {size}")
        if self.num_test < 0:
            raise BenchError(f"metric {name}: num_test must be >= 0")
        self.kwargs = {**self.params, **params}

    @property
    def needs_test(self) -> bool:
        return self.num_test > 0

    def score(
        self,
        train_codes: np.ndarray,
        train_factors: np.ndarray,
        test_codes: np.ndarray | None,
        test_factors: np.ndarray | None,
        random_state: np.random.Generator,
    ) -> dict[str, float]:
        if self.needs_dataset:  # it draws its own images (evaluate), so codes alone cannot score it
            name = self.registered_name
            raise BenchError(
                f"{name} chooses which factor to fix, so it needs a dataset and an encoder: "
                f"use metrics.evaluate({name!r}, dataset, encode)"
            )
        raise NotImplementedError

    def sample_key(self) -> tuple:
        """Metrics with equal keys draw identical codes from the same seed (so codes are shared)."""
        return (self.num_train, self.num_test, self.batch_size)

    def evaluate(
        self, dataset, encode: Encode, rng: np.random.Generator, codes_cache: dict | None = None
    ) -> dict[str, float]:
        """Draw the train set, then the test set, then score. With `codes_cache` (shared by
        evaluate_many, fresh generator per metric) a set drawn before is reused: the train set
        depends only on (num_train, batch_size) and the test set on the whole sample key, so e.g.
        MIG's 10,000 codes are SAP's and DCI's train codes too. The generator is left exactly
        where a fresh draw would have left it."""
        cache = {} if codes_cache is None else codes_cache
        train_key = ("train", self.num_train, self.batch_size)
        if train_key not in cache:
            train = gather_codes(dataset, encode, self.num_train, rng, self.batch_size)
            cache[train_key] = (train, rng.bit_generator.state)
        train, state = cache[train_key]
        rng.bit_generator.state = state
        test: tuple = (None, None)
        if self.needs_test:
            test_key = ("test", *self.sample_key())
            if test_key not in cache:
                drawn = gather_codes(dataset, encode, self.num_test, rng, self.batch_size)
                cache[test_key] = (drawn, rng.bit_generator.state)
            test, state = cache[test_key]
            rng.bit_generator.state = state
        return self.score(train[0], train[1], test[0], test[1], random_state=rng)


def estimator_seed(rng: np.random.Generator) -> int:
    """An integer seed for a scikit-learn estimator, drawn from the metric's generator."""
    return int(rng.integers(0, 2**31 - 1))
