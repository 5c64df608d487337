"""The method registry (kept apart from __init__ so method modules can import it)."""
from bench.registry import Registry

REGISTRY: Registry = Registry("method")
register = REGISTRY.register
