"""Methods: `register("name")` on a Method subclass (`override=True` to replace a registered one);
`create(name, **kwargs)`; `list_methods()`; `Interval` / `Options` for a method's `constraints`."""

from __future__ import annotations

from typing import Any

from disentbench.methods.base import Method
from disentbench.methods.constraints import Interval, Options
from disentbench.methods.registry import REGISTRY, register


def create(name: str, **kwargs: Any) -> Method:
    """Build the method registered as `name`; `kwargs` are its hyperparameters (and `device`).
    An unknown name is a one-line BenchError naming every registered method."""
    return REGISTRY.create(name, **kwargs)


def get(name: str) -> type[Method]:
    """The Method subclass registered as `name` (not an instance); unknown names as in `create`."""
    return REGISTRY.get(name)


def list_methods() -> list[str]:
    """The names of every registered method, sorted (built-ins and the plugins loaded so far)."""
    return REGISTRY.names()


from disentbench.methods import (  # noqa: E402,F401  (register the rest)
    annealedvae,
    betatcvae,
    did,
    dipvae,
    factorvae,
    factorvae_infogancr,  # factorvae on InfoGAN-CR's networks
    hfs,  # hfs, betahfs
    infogan,  # infogan, infogancr
    semisupervised,  # s2betavae, s2factorvae, s2betatcvae, s2dipvae1, s2dipvae2
    weak,  # gvae, mlvae, adagvae, adamlvae
)
from disentbench.methods import vae as _vae  # noqa: E402,F401  (registers vae, betavae)

__all__ = ["Interval", "Method", "Options", "create", "get", "list_methods", "register"]
