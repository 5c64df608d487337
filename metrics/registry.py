"""The metric registry (kept apart from __init__ so metric modules can import it)."""

from disentbench.registry import Registry

REGISTRY: Registry = Registry("metric")


def register(name: str, override: bool = False):
    """Class decorator registering a Metric subclass under `name`: `@register("mymetric")`.

    A name another class already holds is an error unless `override=True` (which must name a
    registered metric, so a typo cannot hide); registering the same class again is allowed."""
    return REGISTRY.register(name, override)
