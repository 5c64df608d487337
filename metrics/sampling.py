"""Drawing a train and a test set through `evaluate_many`'s codes cache, for metrics that override
`Metric.evaluate` (they draw more than one pair of sets, or intervene on factors afterwards).

`draw_train_test` follows `Metric.evaluate`'s protocol exactly (the same cache keys, the generator
left where a fresh draw leaves it), so a metric drawing its first sets with it gets the very codes
MIG, SAP, DCI and the others get from the same seed, and shares them.
"""

from __future__ import annotations

import numpy as np

from disentbench.metrics.base import Encode, gather_codes


def draw_train_test(
    dataset,
    encode: Encode,
    rng: np.random.Generator,
    num_train: int,
    num_test: int,
    batch_size: int,
    cache: dict | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train codes, train factors, test codes, test factors), drawn train first, or taken from
    `cache` where a metric with the same sizes drew them from the same seed."""
    cache = {} if cache is None else cache
    train_key = ("train", num_train, batch_size)
    if train_key not in cache:
        drawn = gather_codes(dataset, encode, num_train, rng, batch_size)
        cache[train_key] = (drawn, rng.bit_generator.state)
    train, state = cache[train_key]
    rng.bit_generator.state = state
    test_key = ("test", num_train, num_test, batch_size)
    if test_key not in cache:
        drawn = gather_codes(dataset, encode, num_test, rng, batch_size)
        cache[test_key] = (drawn, rng.bit_generator.state)
    test, state = cache[test_key]
    rng.bit_generator.state = state
    return train[0], train[1], test[0], test[1]


def sample_key(num_train: int, num_test: int, batch_size: int) -> tuple:
    """What names a pair of sets drawn from one seed (Metric.sample_key's value)."""
    return (num_train, num_test, batch_size)
