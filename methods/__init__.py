"""Methods: `register("name")` on a Method subclass; `create(name, **kwargs)`; `list_methods()`."""
from __future__ import annotations

from typing import Any

from disentbench.methods.base import Method
from disentbench.methods.registry import REGISTRY, register


def create(name: str, **kwargs: Any) -> Method:
    return REGISTRY.create(name, **kwargs)


def get(name: str) -> type[Method]:
    return REGISTRY.get(name)


def list_methods() -> list[str]:
    return REGISTRY.names()


from disentbench.methods import vae as _vae  # noqa: E402,F401  (registers vae, betavae)
from disentbench.methods import annealedvae, betatcvae, did, dipvae, factorvae  # noqa: E402,F401  (register the rest)

__all__ = ["Method", "create", "get", "list_methods", "register"]
