"""The metric registry (kept apart from __init__ so metric modules can import it)."""

from disentbench.bench.registry import Registry

REGISTRY: Registry = Registry("metric")
register = REGISTRY.register
