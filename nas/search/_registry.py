"""Registries of the search's named extensions (samplers, pre-screening selectors): one declaration each.

A registry maps a name to a factory and says which names exist without building anything, so the
settings and the command line can list the choices without importing Optuna or torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from nas.errors import NasError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    factory: Callable[..., T]
    help: str = ""


class Registry(Generic[T]):
    """Name -> factory, filled by `register` (a decorator, or a call with the factory)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, factory: Callable[..., T] | None = None, *, help: str = ""):
        """Declare `name`; used as `@registry.register("name")` over a factory, or with the factory given."""

        def add(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, factory, help or (factory.__doc__ or "").strip().split("\n")[0])
            return factory

        return add(factory) if factory is not None else add

    def forget(self, name: str) -> None:
        """Remove `name` (a test's, or a plugin's being reloaded); unknown names are ignored."""
        self._entries.pop(name, None)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def check(self, name: Any, setting: str) -> None:
        """A NasError naming `setting` for a name that is not registered."""
        if name not in self._entries:
            raise NasError(
                f"{setting}: unknown {self.kind} {name!r} (choose from {', '.join(self._entries)})"
            )

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        self.check(name, self.kind)
        return self._entries[name].factory(*args, **kwargs)
