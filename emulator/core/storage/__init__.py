"""The storage seam (base.py) and its implementations: memory (the default) and SQLite."""

from .base import (
    JOURNAL_FLUSH_SECONDS,
    JournalRow,
    Record,
    StorageError,
    StorageFailure,
    Store,
    StoreUnavailable,
)
from .memory import MemoryStore
from .sqlite import SQLiteStore

__all__ = [
    "JOURNAL_FLUSH_SECONDS",
    "JournalRow",
    "MemoryStore",
    "Record",
    "SQLiteStore",
    "StorageError",
    "StorageFailure",
    "Store",
    "StoreUnavailable",
]
