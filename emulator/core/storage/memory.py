"""The default store: nothing outlives the process.

The models in memory are the whole state, so this store keeps nothing itself: every write is
already "durable" for as long as the process lives, and there is nothing to read back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .base import JournalRow, Record, Store


class MemoryStore(Store):
    durable = False

    def __init__(self) -> None:
        self._meta: dict[str, Any] = {}

    def put(self, kind: str, namespace: str, account: str, key: str, value: Any) -> None:
        pass

    def delete(self, kind: str, namespace: str, account: str, key: str) -> None:
        pass

    def drop(self, namespace: str | None = None, kind_prefix: str = "") -> None:
        pass

    def load(self, namespace: str | None, kind_prefix: str = "") -> Iterator[Record]:
        return iter(())

    def namespaces(self, kind_prefix: str = "") -> list[str]:
        return []

    def get_meta(self, key: str, default: Any = None) -> Any:
        return self._meta.get(key, default)

    def put_meta(self, key: str, value: Any) -> None:
        self._meta[key] = value

    def append_entry(self, row: JournalRow) -> None:
        pass

    def load_entries(self, limit: int) -> list[JournalRow]:
        return []

    def clear_entries(self, namespace: str | None = None) -> None:
        pass

    def trim_entries(self, below_id: int) -> None:
        pass

    @property
    def pending(self) -> bool:
        return False

    async def commit(self) -> None:
        pass

    async def close(self) -> None:
        pass
