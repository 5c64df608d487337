"""The method registry (kept apart from __init__ so method modules can import it)."""

from disentbench.bench.registry import Registry

REGISTRY: Registry = Registry("method")
register = REGISTRY.register
