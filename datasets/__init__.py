"""Ground-truth datasets: `create(name, source=..., data_dir=...)`, `list_datasets()`, `register`.

A registered entry is a factory taking (source, data_dir, verify, device) and returning a
GroundTruthDataset. A user's own file is `file:PATH` on the command line and `file-<stem>` in
results (`register_file`).
"""

from __future__ import annotations

import os
from typing import Any

from disentbench.datasets.base import GroundTruthDataset
from disentbench.registry import Registry

_REGISTRY: Registry = Registry("dataset")


def register(name: str, override: bool = False):
    """Decorator registering a dataset factory under `name`: `@register("mydata")` on a callable
    taking (source, data_dir, verify, device) and returning a GroundTruthDataset. A name already
    held is an error unless `override=True`."""
    return _REGISTRY.register(name, override)


def create(name: str, **kwargs: Any) -> GroundTruthDataset:
    """Build a registered dataset; `file:PATH` registers the file first, and a `file-<stem>` name that
    this process has not registered is looked up (see `user_file.lookup`)."""
    if name.startswith(_user_file.SPEC_PREFIX):
        name = register_file(name)
    elif name not in _REGISTRY and name.startswith(_user_file.NAME_PREFIX):
        return _user_file.factory(name)(**kwargs)
    return _REGISTRY.create(name, **kwargs)


def list_datasets() -> list[str]:
    """The names of every registered dataset, sorted (built-ins, plugins and registered files)."""
    return _REGISTRY.names()


def register_file(spec: str | os.PathLike, name: str | None = None, bins: int | None = None) -> str:
    """Register a user's .npz or .h5 (`file:PATH` or a path) as a dataset and return its name
    (default `file-<stem>`); a plugin can call it to give the file a name of its own."""
    name, _ = _user_file.register(spec, name, _user_file.DEFAULT_BINS if bins is None else bins)
    if name not in _REGISTRY:
        register(name)(_user_file.factory(name))
    return name


def register_files(value: Any) -> Any:
    """Dataset names as the CLI and profiles give them (a comma-separated string, a list, "all" or
    None), with each `file:PATH` registered and replaced by its dataset name."""
    if value is None or value == "all":
        return value
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
        return ",".join(register_file(v) if v.startswith(_user_file.SPEC_PREFIX) else v for v in items)
    return [register_file(v) if str(v).startswith(_user_file.SPEC_PREFIX) else v for v in value]


from disentbench.datasets import dsprites as _dsprites  # noqa: E402  (registers below)
from disentbench.datasets import user_file as _user_file  # noqa: E402

register("dsprites")(_dsprites.make_dsprites)

from disentbench.datasets import shapes3d as _shapes3d  # noqa: E402

register("shapes3d")(_shapes3d.make_shapes3d)

from disentbench.datasets import dsprites_variants as _variants  # noqa: E402

register("color_dsprites")(_variants.make_color_dsprites)
register("noisy_dsprites")(_variants.make_noisy_dsprites)
register("scream_dsprites")(_variants.make_scream_dsprites)

from disentbench.datasets import mpi3d as _mpi3d  # noqa: E402

for _name in _mpi3d.REMOTES:
    register(_name)(_mpi3d.make_mpi3d(_name))

from disentbench.datasets import cars3d as _cars3d  # noqa: E402
from disentbench.datasets import smallnorb as _smallnorb  # noqa: E402

register("cars3d")(_cars3d.make_cars3d)
register("smallnorb")(_smallnorb.make_smallnorb)

__all__ = ["GroundTruthDataset", "create", "list_datasets", "register", "register_file", "register_files"]
