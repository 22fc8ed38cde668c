"""Write-through collections: the models' bounded dicts and logs, each change also a store record.

A model keeps its working set in these instead of plain dicts and lists. When the store is not
durable (memory, the default) they cost one attribute test per change: nothing is encoded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, Protocol, TypeVar

from ..namespaces import PerNamespace
from .base import Record, Store
from .codec import decode, encode

V = TypeVar("V")


class Sink:
    """Where one part of the state (a namespace, an account) writes its records."""

    __slots__ = ("store", "namespace", "account", "durable")

    def __init__(self, store: Store | None, namespace: str, account: str = "") -> None:
        self.store = store
        self.namespace = namespace
        self.account = account
        #: Whether writes go anywhere (False: a memory store, or the state being restored).
        self.durable = store is not None and store.durable

    def put(self, kind: str, key: str, value: Any) -> None:
        if self.durable:
            assert self.store is not None
            self.store.put(kind, self.namespace, self.account, key, value)

    def delete(self, kind: str, key: str) -> None:
        if self.durable:
            assert self.store is not None
            self.store.delete(kind, self.namespace, self.account, key)


#: A sink that writes nothing (state that is not stored, tests).
NOWHERE = Sink(None, "")


class Records(Generic[V]):
    """An insertion-ordered map of the newest ``limit`` values (None: no limit), written through to
    ``sink`` under ``kind``. A value set again becomes the newest; past the limit the oldest goes."""

    __slots__ = ("kind", "cls", "limit", "sink", "_items", "_encode")

    def __init__(
        self,
        sink: Sink,
        kind: str,
        cls: type[V],
        limit: int | None = None,
        *,
        to_json: Callable[[V], Any] = encode,
    ) -> None:
        self.sink = sink
        self.kind = kind
        self.cls = cls
        self.limit = limit
        self._items: dict[str, V] = {}
        self._encode = to_json

    def get(self, key: str) -> V | None:
        return self._items.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __getitem__(self, key: str) -> V:
        return self._items[key]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def values(self) -> list[V]:
        return list(self._items.values())

    def items(self) -> list[tuple[str, V]]:
        return list(self._items.items())

    def set(self, key: str, value: V) -> None:
        items = self._items
        items.pop(key, None)
        items[key] = value
        sink = self.sink
        if sink.durable:
            sink.put(self.kind, key, self._encode(value))
        if self.limit is not None:
            while len(items) > self.limit:
                gone = next(iter(items))
                del items[gone]
                sink.delete(self.kind, gone)

    def pop(self, key: str) -> V | None:
        value = self._items.pop(key, None)
        if value is not None:
            self.sink.delete(self.kind, key)
        return value

    def discard(self, key: str) -> None:
        """Forget a value another replica deleted (nothing written)."""
        self._items.pop(key, None)

    def restore(self, key: str, raw: Any) -> V:
        """Put back a stored value (nothing written)."""
        value: V = decode(raw, self.cls)
        self._items.pop(key, None)
        self._items[key] = value
        return value


class Log(Generic[V]):
    """The newest ``limit`` values appended, oldest first, each stored under its sequence number."""

    __slots__ = ("_records", "_next")

    def __init__(self, sink: Sink, kind: str, cls: type[V], limit: int) -> None:
        self._records: Records[V] = Records(sink, kind, cls, limit)
        self._next = 1

    def append(self, value: V) -> None:
        self._records.set(f"{self._next:012d}", value)
        self._next += 1

    def restore(self, key: str, raw: Any) -> None:
        self._records.restore(key, raw)
        self._next = max(self._next, int(key) + 1)

    def __len__(self) -> int:
        return len(self._records)

    def items(self) -> list[tuple[str, V]]:
        return self._records.items()

    def __iter__(self) -> Iterator[V]:
        return iter(self._records.values())

    def __getitem__(self, index: int) -> V:
        return self._records.values()[index]


class Restorable(Protocol):
    def restore(self, record: Record) -> None: ...


A = TypeVar("A")
S = TypeVar("S", bound=Restorable)


def restore_namespace(
    store: Store | None,
    seed: Callable[[str, str], Iterable[Record]] | None,
    namespace: str,
    prefix: str,
    accounts: Mapping[str, A],
    make: Callable[[A, Sink, bool], S],
    stored: Iterable[Record] | None = None,
) -> dict[str, S]:
    """One namespace's state of every account, made on the namespace's first use.

    From the store's records when it holds any of the namespace (a restart); else from the seed
    (``--state``, a snapshot) and the config. An account whose records include its ``<prefix>state``
    record is made from the records alone (the config's libraries, say, are not added again: the
    records say what became of them); otherwise from the config, with its records laid over it.
    ``make(account, sink, from_config)`` builds one state writing to ``sink``.
    """
    durable = store is not None and store.durable
    grouped: dict[str, list[Record]] = {}
    if durable:
        assert store is not None
        # ``stored``: the caller read them already.
        for r in store.load(namespace, prefix) if stored is None else stored:
            grouped.setdefault(r.account, []).append(r)
    seeded = not grouped and seed is not None
    if seeded:
        assert seed is not None
        for r in seed(namespace, prefix):
            grouped.setdefault(r.account, []).append(r)
    marker = prefix + "state"
    states: dict[str, S] = {}
    for key, account in accounts.items():
        records = grouped.get(key, [])
        sink = Sink(store, namespace, key)
        whole = any(r.kind == marker for r in records)
        if whole:
            sink.durable = False
        state = make(account, sink, not whole)
        sink.durable = False
        for r in records:
            state.restore(r)
        sink.durable = durable
        if seeded or not whole:
            for r in records:
                sink.put(r.kind, r.key, r.value)
        states[key] = state
    return states


class Stateful(Restorable, Protocol):
    def dump(self) -> Iterator[tuple[str, str, Any]]: ...

    def follow(self, kind: str, key: str, value: Any) -> bool:
        """Apply one record another replica wrote (``value`` :data:`DELETED`: it deleted it), or
        answer False when this state cannot take it alone (the namespace is then read back)."""
        ...


#: The value :meth:`Stateful.follow` gets for a deleted record.
DELETED: Any = object()


SS = TypeVar("SS", bound=Stateful)


class Spaces(Generic[A, SS]):
    """A provider's state of every account in each namespace, kept in memory and written through
    to the store: made on a namespace's first use (:func:`restore_namespace`), the least recently
    used namespace forgotten past ``limit`` (its records with it)."""

    def __init__(
        self,
        prefix: str,
        accounts: Mapping[str, A],
        make: Callable[[str, A, Sink, bool], SS],
        *,
        limit: int,
        store: Store | None = None,
        seed: Callable[[str, str], Iterable[Record]] | None = None,
    ) -> None:
        self.prefix = prefix
        self._accounts = dict(accounts)
        self._make = make
        self._store = store
        self._seed = seed
        self._spaces: PerNamespace[dict[str, SS]] = PerNamespace(self._start, limit, on_forget=self._drop)

    def _start(
        self,
        namespace: str,
        seed: Callable[[str, str], Iterable[Record]] | None = None,
        stored: Iterable[Record] | None = None,
    ) -> dict[str, SS]:
        return restore_namespace(
            self._store,
            seed or self._seed,
            namespace,
            self.prefix,
            self._accounts,
            lambda account, sink, from_config: self._make(namespace, account, sink, from_config),
            stored,
        )

    def _drop(self, namespace: str | None) -> None:
        if self._store is not None:
            self._store.drop(namespace, self.prefix)

    def get(self, namespace: str) -> dict[str, SS]:
        return self._spaces.get(namespace)

    def follow(self, change: tuple[str, Any]) -> None:
        """Another replica's change (core/replicas.Follower): applied to the namespace's state in
        memory when its state can take it, else the namespace is forgotten here (not in the store)
        and read back on its next use; a namespace not in memory has nothing to bring up to date."""
        op, what = change
        if op == "drop":
            self._spaces.reset(what.namespace)
            return
        states = self._spaces.peek(what.namespace)
        if states is None:
            return
        state = states.get(what.account)
        value = what.value if op == "put" else DELETED
        if state is None or not state.follow(what.kind, what.key, value):
            self._spaces.reset(what.namespace)

    def touch(self, namespace: str) -> None:
        if self._spaces.peek(namespace) is None:
            self._spaces.get(namespace)

    def items(self, namespace: str | None = None) -> Iterator[tuple[str, dict[str, SS]]]:
        """The namespaces in use (or ``namespace``), those only the store holds made first (after a
        restart, or made by another replica)."""
        self._load_stored(namespace)
        return self._spaces.items(namespace)

    def _load_stored(self, namespace: str | None) -> None:
        store = self._store
        if store is None or not store.durable:
            return
        if namespace is None:
            for ns in store.namespaces(self.prefix):
                self.touch(ns)
        elif self._spaces.peek(namespace) is None:
            stored = list(store.load(namespace, self.prefix))
            if stored:  # read once: the state is made from them
                self._spaces.put(namespace, self._start(namespace, stored=stored))

    def reset(self, namespace: str | None = None) -> None:
        """Back to the start (config and seed): one namespace, or every namespace (None)."""
        self._spaces.reset(namespace)
        self._drop(namespace)

    def dump(self, namespace: str | None = None) -> Iterator[Record]:
        """Every record of the namespaces in use or stored (or of one), for a snapshot."""
        if self._store is not None and self._store.durable:
            stored = self._store.namespaces(self.prefix) if namespace is None else [namespace]
            for ns in stored:
                if self._spaces.peek(ns) is None:
                    self._spaces.get(ns)  # made from its records
        for ns, states in self._spaces.items(namespace):
            for account, state in states.items():
                for kind, key, value in state.dump():
                    yield Record(kind, ns, account, key, value)

    def load(self, records: Iterable[Record]) -> None:
        """Replace the state of each namespace ``records`` name with them (a snapshot)."""
        by_ns: dict[str, list[Record]] = {}
        for r in records:
            if r.kind.startswith(self.prefix):
                by_ns.setdefault(r.namespace, []).append(r)
        for ns, recs in by_ns.items():
            self.reset(ns)
            self._spaces.put(ns, self._start(ns, lambda n, p, recs=recs: recs))  # type: ignore[misc]
