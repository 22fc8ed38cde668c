"""State kept per namespace: what one namespace's calls build up, apart from every other's.

Parallel tests share one emulator by naming a namespace each (core/call.py, NAMESPACE_HEADER); each
namespace gets its own provider state, made from the start config on first use. Namespaces come
and go with the tests that name them, so the store keeps the most recently used
:data:`MAX_NAMESPACES` and forgets the others (the default namespace is never forgotten): memory stays
flat however many tests a long session runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .call import DEFAULT_NAMESPACE

T = TypeVar("T")

#: Namespaces whose state is kept, the least recently used forgotten first.
MAX_NAMESPACES = 1_000


class PerNamespace(Generic[T]):
    """One value per namespace, made by ``factory`` on first use; at most ``limit`` kept."""

    def __init__(
        self,
        factory: Callable[[str], T],
        limit: int = MAX_NAMESPACES,
        *,
        on_forget: Callable[[str], None] | None = None,
    ) -> None:
        self._factory = factory
        self._limit = max(1, limit)
        self._values: dict[str, T] = {}
        #: Told which namespace was forgotten for want of room (a stored copy goes with it).
        self._on_forget = on_forget

    def get(self, namespace: str) -> T:
        """The namespace's value, made now if it has none (the least recently used one goes when
        that makes one too many)."""
        value = self._values.get(namespace)
        if value is None:
            value = self._factory(namespace)
        self.put(namespace, value)
        return value

    def put(self, namespace: str, value: T) -> None:
        """Set the namespace's value (a snapshot loaded, state read back), as its most recent use;
        the least recently used one goes when that makes one too many."""
        values = self._values
        if values.pop(namespace, None) is None and len(values) >= self._limit:
            oldest = next((ns for ns in values if ns != DEFAULT_NAMESPACE), None)
            if oldest is not None:
                del values[oldest]
                if self._on_forget is not None:
                    self._on_forget(oldest)
        # Re-inserted: the dict's order is the order of use, oldest first.
        values[namespace] = value

    def peek(self, namespace: str) -> T | None:
        """The namespace's value if it has one, without making one or counting as a use."""
        return self._values.get(namespace)

    def items(self, namespace: str | None = None) -> Iterator[tuple[str, T]]:
        """(namespace, value) of every namespace that has one, or of ``namespace`` only."""
        if namespace is None:
            yield from list(self._values.items())
        elif (value := self._values.get(namespace)) is not None:
            yield namespace, value

    def reset(self, namespace: str | None = None) -> None:
        """Forget one namespace's value (None: every namespace's): it is made afresh when next used."""
        if namespace is None:
            self._values.clear()
        else:
            self._values.pop(namespace, None)

    def __len__(self) -> int:
        return len(self._values)
