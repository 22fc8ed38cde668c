"""The storage seam: where every change of state goes, and where state is read back from.

The models in memory (provider state, fault rules, console settings, the callback outbox, the
journal) are the working set: calls read them and change them as they always did. Each change is
also handed to the :class:`Store` as one small keyed record, ``(kind, namespace, account, key) ->
JSON value``, or as one appended journal row. Nothing is ever written or read as a whole-state dump:
a namespace's records are read when the namespace is first used (and after a restart), a record is
written when the thing it holds changes.

Durability is a barrier: ``put``/``delete``/``drop`` only queue; :meth:`Store.commit` returns once
everything queued before it is durable. The gateway and the admin API await it before an answer
leaves, so every acknowledged change is stored. Journal rows are not waited for: they are written in
batches, at most :data:`JOURNAL_FLUSH_SECONDS` after they were appended.

Implementations: :class:`~emulator.core.storage.memory.MemoryStore` (the default: nothing outlives
the process) and :class:`~emulator.core.storage.sqlite.SQLiteStore` (``storage.path``).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ...errors import ConfigError, EmulatorError

#: The most a journal row waits in the store's queue before it is written.
JOURNAL_FLUSH_SECONDS = 0.1


class StorageError(ConfigError):
    """The store cannot be opened: a corrupt or foreign file, another schema version, or a data
    directory another process holds. Its message says which, and what to do."""


class StorageFailure(StorageError):
    """The store could not make changes durable while serving (its writer failed, the disk is full,
    the server is gone): :meth:`Store.commit` raises it, and the call it was for is answered with
    the provider's 503-class error instead of an acknowledgement."""


class StoreUnavailable(EmulatorError):
    """A shared store (Redis) did not answer while serving (lost, timed out): the call it was for
    gets the provider's 503-class error; nothing queued is dropped."""


@dataclass(frozen=True, slots=True)
class Record:
    """One keyed piece of state. ``kind`` names what it is (``"<provider>.library"``,
    ``"faults.rule"``); ``account`` is "" for state that belongs to no account; ``value`` is a JSON
    value (dicts, lists, strings, numbers, booleans, None)."""

    kind: str
    namespace: str
    account: str
    key: str
    value: Any


@dataclass(frozen=True, slots=True)
class JournalRow:
    """One journal entry as stored: its id, namespace, the entry's fields as JSON (a dict when
    written, the JSON text when read back, decoded only when the entry is read), the two bodies as
    bytes, the bytes the journal's byte budget counts for it, and the request's header lines as
    received (``name: value`` joined by CRLF: cheaper than JSON, and exactly the bytes sent)."""

    id: int
    namespace: str | None
    doc: dict[str, Any] | str
    request_body: bytes
    response_body: bytes
    size: int = 0
    request_head: bytes = b""


class Store(abc.ABC):
    """The seam every stateful part writes through (see the module docstring)."""

    #: Whether state outlives the process (the models read records back on first use only then).
    durable: bool = False

    # --- keyed records ---------------------------------------------------------------------------

    @abc.abstractmethod
    def put(self, kind: str, namespace: str, account: str, key: str, value: Any) -> None:
        """Queue writing one record (replacing the one with the same address, which then counts as
        written now for :meth:`load`'s order)."""

    @abc.abstractmethod
    def delete(self, kind: str, namespace: str, account: str, key: str) -> None:
        """Queue deleting one record (no error when there is none)."""

    @abc.abstractmethod
    def drop(self, namespace: str | None = None, kind_prefix: str = "") -> None:
        """Queue deleting every record of ``namespace`` (None: of every namespace) whose kind starts
        with ``kind_prefix`` ("" : every kind)."""

    @abc.abstractmethod
    def load(self, namespace: str | None, kind_prefix: str = "") -> Iterator[Record]:
        """The records of ``namespace`` (None: every namespace) whose kind starts with
        ``kind_prefix``, in the order they were last written, everything queued so far included."""

    @abc.abstractmethod
    def namespaces(self, kind_prefix: str = "") -> list[str]:
        """The namespaces that hold records of a kind starting with ``kind_prefix``."""

    # --- small values of the store's own (id counters, eviction counts) ------------------------

    @abc.abstractmethod
    def get_meta(self, key: str, default: Any = None) -> Any: ...

    @abc.abstractmethod
    def put_meta(self, key: str, value: Any) -> None:
        """Queued like :meth:`put`."""

    # --- the journal -----------------------------------------------------------------------------

    @abc.abstractmethod
    def append_entry(self, row: JournalRow) -> None:
        """Queue one journal row; written within :data:`JOURNAL_FLUSH_SECONDS`, not awaited by commit."""

    @abc.abstractmethod
    def load_entries(self, limit: int) -> list[JournalRow]:
        """The newest ``limit`` rows, oldest first."""

    @abc.abstractmethod
    def clear_entries(self, namespace: str | None = None) -> None:
        """Queue deleting the rows of ``namespace`` (None: all)."""

    @abc.abstractmethod
    def trim_entries(self, below_id: int) -> None:
        """Queue deleting every row whose id is below ``below_id`` (evicted from the journal)."""

    # --- durability and life cycle --------------------------------------------------------------

    @property
    @abc.abstractmethod
    def pending(self) -> bool:
        """Whether a change queued (a journal row aside) is not yet durable (asked on every call:
        must be cheap)."""

    @abc.abstractmethod
    async def commit(self) -> None:
        """Return once every change queued before the call is durable (journal rows need not be);
        :class:`StorageFailure` when it cannot be."""

    async def start(self) -> None:
        """Called once the event loop runs, before the first call is served."""
        return None

    @abc.abstractmethod
    async def close(self) -> None:
        """Write everything queued, then release the data directory."""

    def describe(self) -> dict[str, Any]:
        """What GET /_emulator/health says of the store."""
        return {"kind": type(self).__name__, "durable": self.durable}
