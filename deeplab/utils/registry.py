"""`Registry`: the one shape of every extension point (backbones, heads, export formats,
losses, datasets and their palettes, zoo entries).

A registry maps names to entries in registration order. `register(name, entry)` adds one
(a second entry of the same name is a programming error), `lookup(name)` returns it or
raises an error that names every registered choice, and the registry iterates like a
read-only dict (`names()`, `items()`, `in`), which is what registry-driven tests use. An
optional `load` callable fills the registry on first use (once, thread-safe), for entries
that live in modules only imported when needed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Mapping, Generic[T]):
    """Named entries of one kind ("model_variant", "head", "export format", ...).

    kind: what an entry is, used in error messages.
    error: exception type `lookup` raises for an unknown name (ValueError by default;
      entry points turn it into a one-line message and exit status 2).
    load: called once, on first access, to register the built-in entries.
    """

    def __init__(self, kind: str, error: type[Exception] = ValueError,
                 load: Callable[[Registry[T]], None] | None = None):
        self.kind = kind
        self.error = error
        self._entries: dict[str, T] = {}
        self._load = load
        self._loading = False
        self._lock = threading.RLock()

    def _entries_loaded(self) -> dict[str, T]:
        if self._load is not None:
            with self._lock:
                if self._load is not None and not self._loading:
                    self._loading = True  # register() calls back while loading
                    try:
                        self._load(self)
                        self._load = None
                    finally:
                        self._loading = False
        return self._entries

    def register(self, name: str, entry: T, replace: bool = False) -> T:
        """Adds `entry` under `name` and returns it; ValueError if `name` is taken, unless
        `replace` (the entry then keeps the old one's place)."""
        entries = self._entries_loaded()
        if name in entries and not replace:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Removes `name` if registered (for tests and plugins)."""
        self._entries_loaded().pop(name, None)

    def lookup(self, name: str) -> T:
        """The entry `name`; `error` naming every registered choice otherwise."""
        entries = self._entries_loaded()
        if name not in entries:
            raise self.error(f"unknown {self.kind} {name!r}; registered: "
                             f"{', '.join(entries) or '(none)'}")
        return entries[name]

    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order."""
        return tuple(self._entries_loaded())

    def __getitem__(self, name: str) -> T:
        return self._entries_loaded()[name]

    def __setitem__(self, name: str, entry: T) -> None:
        """`register` (so pytest's monkeypatch.setitem adds an entry for one test)."""
        self.register(name, entry)

    def __delitem__(self, name: str) -> None:
        self._entries_loaded().pop(name)

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._entries_loaded()))

    def __len__(self) -> int:
        return len(self._entries_loaded())

    def __contains__(self, name) -> bool:
        return name in self._entries_loaded()

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"
