"""Error catalogues: every subclass of a provider's error base, by its class-level ``code``."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def by_code(base: type[T]) -> dict[str, type[T]]:
    """All (transitive) subclasses of ``base`` that define ``code``, keyed by it."""
    found: dict[str, type[T]] = {}
    pending: list[type[T]] = list(base.__subclasses__())
    while pending:
        cls = pending.pop()
        code = getattr(cls, "code", None)
        if isinstance(code, str):
            found[code] = cls
        pending.extend(cls.__subclasses__())
    return found
