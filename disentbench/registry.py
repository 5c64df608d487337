"""One small generic registry (timm-style) shared by methods, metrics and datasets.

A decorator registers a class under a name; `create(name, **kwargs)` builds one; `names()` lists
them. Unknown names give a one-line error naming every registered choice.

Taking a name that another class already holds is an error unless the caller says
`override=True`: a plugin that silently replaced a built-in would make results that look like the
built-in's. Registering the same definition again (the same object, or the same module:qualname
when a module is re-imported or reloaded) is allowed, so importing a module twice never breaks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from disentbench.errors import BenchError

T = TypeVar("T")


def qualified_name(obj: object) -> str:
    """The "module.Qualname" of a registered class or factory: what tells two definitions apart."""
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, type[T]] = {}

    def register(self, name: str, override: bool = False) -> Callable[[type[T]], type[T]]:
        """Class decorator: `@registry.register("vae")`; `override=True` replaces another class
        registered under that name (and must name a registered entry, so a typo cannot hide)."""
        if not isinstance(name, str) or not name:
            raise BenchError(f"{self.kind} name must be a non-empty string, got {name!r}")

        def decorator(cls: type[T]) -> type[T]:
            existing = self._entries.get(name)
            if override and existing is None:
                choices = ", ".join(self.names()) or "(none)"
                raise BenchError(
                    f"{self.kind} {name!r} is not registered, so override=True replaces nothing; "
                    f"drop override=True or use one of: {choices}"
                )
            if existing is not None and not override and qualified_name(existing) != qualified_name(cls):
                raise BenchError(
                    f"{self.kind} {name!r} is already registered by {qualified_name(existing)}; "
                    f"pass override=True to replace it"
                )
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
