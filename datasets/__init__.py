"""Ground-truth datasets: `create(name, source=..., data_dir=...)`, `list_datasets()`, `register`.

A registered entry is a factory taking (source, data_dir, verify, device) and returning a
GroundTruthDataset.
"""

from __future__ import annotations

from typing import Any

from disentbench.bench.registry import Registry
from disentbench.datasets.base import GroundTruthDataset

_REGISTRY: Registry = Registry("dataset")
register = _REGISTRY.register


def create(name: str, **kwargs: Any) -> GroundTruthDataset:
    return _REGISTRY.create(name, **kwargs)


def list_datasets() -> list[str]:
    return _REGISTRY.names()


from disentbench.datasets import dsprites as _dsprites  # noqa: E402  (registers below)

register("dsprites")(_dsprites.make_dsprites)

from disentbench.datasets import shapes3d as _shapes3d  # noqa: E402

register("shapes3d")(_shapes3d.make_shapes3d)

__all__ = ["GroundTruthDataset", "create", "list_datasets", "register"]
