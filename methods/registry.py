"""The method registry (kept apart from __init__ so method modules can import it)."""

from disentbench.registry import Registry

REGISTRY: Registry = Registry("method")


def register(name: str, override: bool = False):
    """Class decorator registering a Method subclass under `name`: `@register("mymethod")`.

    A name another class already holds is an error unless `override=True` (which must name a
    registered method, so a typo cannot hide); registering the same class again is allowed."""
    return REGISTRY.register(name, override)
