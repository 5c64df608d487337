"""One small generic registry (timm-style) shared by methods, metrics and datasets.

A decorator registers a class under a name; `create(name, **kwargs)` builds one; `names()` lists
them. Unknown names give a one-line error naming every registered choice.
"""
from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

from disentbench.bench.errors import BenchError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator: `@registry.register("vae")`. Re-registering a name replaces it."""
        if not isinstance(name, str) or not name:
            raise BenchError(f"{self.kind} name must be a non-empty string, got {name!r}")

        def decorator(cls: type[T]) -> type[T]:
            self._entries[name] = cls
            try:
                cls.registered_name = name  # type: ignore[attr-defined]
            except (AttributeError, TypeError):
                pass
            return cls

        return decorator

    def get(self, name: str) -> type[T]:
        if name not in self._entries:
            choices = ", ".join(self.names()) or "(none)"
            raise BenchError(f"unknown {self.kind} {name!r}; registered {self.kind}s: {choices}")
        return self._entries[name]

    def create(self, name: str, **kwargs: Any) -> T:
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
