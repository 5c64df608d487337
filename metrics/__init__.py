"""Metrics: two entry points for every registered metric.

- `score_arrays(name, train_codes, train_factors, test_codes=None, test_factors=None, seed=0)`
  for codes a user already has;
- `evaluate(name, dataset, encode, seed=0, **overrides)`, which samples from the dataset as the
  spec prescribes.
`evaluate_many` scores several metrics on one model and shares the codes they can share.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from disentbench.errors import BenchError, OutOfMemory
from disentbench.faults import fault_point
from disentbench.metrics.base import Encode, Metric, gather_codes
from disentbench.metrics.registry import REGISTRY, register

__all__ = [
    "Encode",
    "Metric",
    "create",
    "evaluate",
    "evaluate_many",
    "gather_codes",
    "list_metrics",
    "register",
    "score_arrays",
    "versions",
]


def create(name: str, **params: Any) -> Metric:
    """Build the metric registered as `name`; `params` override its sample sizes and options. An
    unknown name or parameter is a one-line BenchError naming the valid ones."""
    return REGISTRY.create(name, **params)


def list_metrics() -> list[str]:
    """The names of every registered metric, sorted (built-ins and the plugins loaded so far)."""
    return REGISTRY.names()


def score_arrays(
    name: str, train_codes, train_factors, test_codes=None, test_factors=None, seed: int = 0, **params: Any
) -> dict[str, float]:
    """Score codes you already have (rows: points; columns: latents, factors) with the metric `name`;
    a metric that draws its own points from a dataset refuses (use `evaluate`)."""
    metric = create(name, **params)
    if metric.needs_dataset:
        raise BenchError(
            f"metric {name} chooses which factor to fix, so it needs a dataset and an encoder: "
            f"use metrics.evaluate({name!r}, dataset, encode)"
        )
    if metric.needs_test and (test_codes is None or test_factors is None):
        raise BenchError(f"metric {name} needs a test set: pass test_codes and test_factors")
    return metric.score(
        np.asarray(train_codes),
        np.asarray(train_factors),
        None if test_codes is None else np.asarray(test_codes),
        None if test_factors is None else np.asarray(test_factors),
        random_state=np.random.default_rng(seed),
    )


def evaluate(name: str, dataset, encode: Encode, seed: int = 0, **overrides: Any) -> dict[str, float]:
    """Score the encoder `encode` (images -> codes) on `dataset`, sampling the points as the
    metric's spec prescribes from a generator seeded with `seed`."""
    return create(name, **overrides).evaluate(dataset, encode, np.random.default_rng(seed))


#: what running out of memory raises: on the host, and on an accelerator (torch >= 2.5)
OUT_OF_MEMORY = (MemoryError, getattr(torch, "OutOfMemoryError", MemoryError))


def evaluate_many(
    configs: Mapping[str, Mapping[str, Any]],
    dataset,
    encode: Encode,
    seed: int = 0,
    cache: dict | None = None,
) -> dict[str, float]:
    """Score every metric in `configs` ({name: overrides}); each gets its own generator seeded with
    `seed`, so the result equals separate `evaluate` calls, but codes drawn once are reused by every
    metric with the same sample sizes (and boosted classifiers fitted once are reused by DCI-ES, the
    downstream task and the fairness score). Run-level metrics (`run_level = True`, i.e. `udr`) are
    skipped: they score several trained models together (metrics.udr.udr_scores). `cache`, when
    given, is the shared store (empty; the dry run reads what was kept in it)."""
    built = {name: create(name, **(params or {})) for name, params in configs.items()}
    cache = {} if cache is None else cache
    out: dict[str, float] = {}
    for name, metric in built.items():
        if getattr(metric, "run_level", False):  # scored from several models at once (udr), not here
            continue
        try:
            out.update(metric.evaluate(dataset, encode, np.random.default_rng(seed), codes_cache=cache))
        except OUT_OF_MEMORY as exc:
            sizes = f"num_train {metric.num_train}, num_test {metric.num_test}, batch_size {metric.batch_size}"
            raise OutOfMemory(
                f"metric {name}", sizes, f"the profile's metrics: {name}: {{num_train: ..., batch_size: ...}}"
            ) from exc
        fault_point("scoring")
    return out


def versions() -> dict[str, str]:
    """Versions of the libraries whose estimators make the numbers (store them with every result:
    the reference pins none, and e.g. scikit-learn's defaults have changed between releases)."""
    import numba
    import scipy
    import sklearn
    import torch

    return {
        "numpy": np.__version__,
        "scikit_learn": sklearn.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__,
        "numba": numba.__version__,
    }


# Each metric module registers its metric when imported.
for _module in (
    "beta_vae",
    "dci",
    "dci_es",
    "dci_hist",
    "dci_regression",
    "downstream",
    "downstream_variants",
    "factor_vae",
    "fairness",
    "infomec",
    "irs",
    "mig",
    "modularity",
    "sap",
    "udr",
    "unsupervised",
):
    importlib.import_module(f"{__name__}.{_module}")
