"""Moved to `disentbench.registry` (the ground floor every layer imports); this path keeps working."""

from disentbench.registry import Registry, qualified_name  # noqa: F401
