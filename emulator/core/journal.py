"""Recorded exchanges: bounded, filterable, awaitable.

Every request in (and every callback attempt out) becomes an :class:`Entry`. The journal keeps the
newest entries within two bounds, ``capacity`` entries and ``max_bytes`` bytes (bodies, request heads
and URLs as received); older ones are evicted and counted, so a test can tell "never sent" from "sent,
then evicted". Waiting for traffic is a first-class call with a timeout that, on failure, shows the
closest entries (pytest-httpserver's "similar requests").

The admin token never enters it: where a request header carries the token, the journal stores
``[redacted]`` in its place (the console's own calls are journaled with their Authorization header).

Replicas sharing one store share one journal (core/shared_journal.py, the :class:`Shared` seam):
each holds its own entries and, brought in before a query, the others' (``foreign``), so every
query below answers for all of them.
"""

from __future__ import annotations

import asyncio
import base64
import heapq
import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, Protocol

from ..errors import InvalidInput, Timeout
from .paths import MISSING, lookup, text_forms
from .storage import JournalRow, Store

Direction = Literal["in", "out"]


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    time: float
    direction: Direction
    method: str
    url: str
    path: str
    query: tuple[tuple[str, str], ...]
    request_headers: tuple[tuple[str, str], ...]
    request_body: bytes
    provider: str | None = None
    action: str | None = None
    account: str | None = None
    namespace: str | None = None
    parsed: Any = None
    status: int | None = None
    response_headers: tuple[tuple[str, str], ...] = ()
    response_body: bytes = b""
    duration: float = 0.0
    fault: str | None = None
    correlation_id: str | None = None
    #: Why there is no response (connection refused, timeout, ...), for outbound attempts.
    error: str | None = None
    #: The request body's real length when ``request_body`` holds only its first bytes (a refused
    #: call's body is kept up to ``journal.max_body_bytes``); -1 when the length is unknown (a
    #: chunked body cut before its end). None: ``request_body`` is the whole body.
    request_body_size: int | None = None
    #: The request's contract violations (``{"location", "message"}`` each) under
    #: contract.strict_requests "warn" or "error"; None when none were found or none were looked for.
    violations: list[dict[str, str]] | None = None
    #: Recorded by another process (another replica, or an earlier run) and read from the store.
    foreign: bool = field(default=False, compare=False)

    @property
    def request_size(self) -> int:
        """The request body's real length (-1: unknown)."""
        return len(self.request_body) if self.request_body_size is None else self.request_body_size

    def header(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.request_headers if k.lower() == lname), None)

    def to_dict(self) -> dict[str, Any]:
        req_text, req_enc = _body_text(self.request_body)
        resp_text, resp_enc = _body_text(self.response_body)
        return {
            "id": self.id,
            "time": _iso(self.time),
            "timestamp": self.time,
            "direction": self.direction,
            "provider": self.provider,
            "action": self.action,
            "account": self.account,
            "namespace": self.namespace,
            "correlationId": self.correlation_id,
            "fault": self.fault,
            "durationMs": round(self.duration * 1000, 3),
            "error": self.error,
            "request": {
                "method": self.method,
                "url": self.url,
                "path": self.path,
                "query": [list(p) for p in self.query],
                "headers": [list(h) for h in self.request_headers],
                "body": req_text,
                "bodyEncoding": req_enc,
                "bodySize": self.request_size,
                "bodyTruncated": self.request_body_size is not None,
                "parsed": self.parsed,
            },
            "violations": self.violations,
            "response": {
                "status": self.status,
                "headers": [list(h) for h in self.response_headers],
                "body": resp_text,
                "bodyEncoding": resp_enc,
            },
        }


def _body_text(body: bytes) -> tuple[str, str]:
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(body).decode(), "base64"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FilterError(InvalidInput):
    """A filter parameter is not understood; the message says which and why."""


@dataclass(frozen=True)
class Filter:
    """Which entries to select. Every criterion left ``None`` matches everything."""

    provider: str | None = None
    action: str | None = None
    direction: Direction | None = None
    method: str | None = None
    path: str | None = None
    account: str | None = None
    status: int | None = None
    namespace: str | None = None
    correlation_id: str | None = None
    #: (dotted field path in the parsed body, expected value as text)
    body: tuple[tuple[str, str], ...] = ()
    since: float | None = None
    limit: int | None = None
    order: Literal["asc", "desc"] = "asc"

    #: The query-parameter names of the admin API, for messages.
    PARAMS = (
        "provider",
        "action",
        "direction",
        "method",
        "path",
        "account",
        "status",
        "namespace",
        "correlationId",
        "body.<field>",
        "since",
        "limit",
        "order",
    )

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> Filter:
        """Build from query parameters (``body.url=...`` for body fields, ``since`` as epoch seconds
        or ISO 8601)."""
        values: dict[str, Any] = {}
        body: list[tuple[str, str]] = []
        for key, raw in params.items():
            if key.startswith("body."):
                if len(key) == 5:
                    raise FilterError("body.<field>: the field path is empty")
                body.append((key[5:], raw))
            elif key in ("provider", "action", "method", "path", "account", "namespace"):
                values[key] = raw.upper() if key == "method" else raw
            elif key == "correlationId":
                values["correlation_id"] = raw
            elif key == "direction":
                if raw not in ("in", "out"):
                    raise FilterError(f"direction must be 'in' or 'out', not {raw!r}")
                values["direction"] = raw
            elif key == "status":
                values["status"] = _int_param(key, raw, 100, 599)
            elif key == "limit":
                values["limit"] = _int_param(key, raw, 0, None)
            elif key == "order":
                if raw not in ("asc", "desc"):
                    raise FilterError(f"order must be 'asc' or 'desc', not {raw!r}")
                values["order"] = raw
            elif key == "since":
                values["since"] = _time_param(raw)
            elif key in ("count", "timeout"):
                continue  # the wait endpoint's own parameters
            else:
                raise FilterError(f"unknown filter {key!r} (known: {', '.join(cls.PARAMS)})")
        return cls(body=tuple(body), **values)

    def criteria(self) -> dict[str, Any]:
        skip = {"limit", "order", "body"}
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        return {k: v for k, v in out.items() if v is not None}

    def mismatches(self, entry: Entry) -> int:
        """How many criteria ``entry`` fails (0 = it matches)."""
        misses = 0
        for name, want in self.criteria().items():
            if name == "since":
                misses += entry.time < want
            elif name == "method":
                misses += entry.method.upper() != want
            else:
                misses += getattr(entry, name) != want
        for path, want in self.body:
            misses += not _body_field_equals(entry.parsed, path, want)
        return misses

    def matches(self, entry: Entry) -> bool:
        return self.mismatches(entry) == 0

    def describe(self) -> str:
        parts = [f"{k}={v!r}" for k, v in self.criteria().items()]
        parts += [f"body.{p}={v!r}" for p, v in self.body]
        return ", ".join(parts) or "any entry"


def _int_param(key: str, raw: str, low: int, high: int | None) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise FilterError(f"{key} must be an integer, not {raw!r}") from None
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise FilterError(f"{key} must be {bound}, not {value}")
    return value


def _time_param(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise FilterError(f"since must be epoch seconds or ISO 8601, not {raw!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _body_field_equals(parsed: Any, path: str, want: str) -> bool:
    node = lookup(parsed, path.split("."))
    return node is not MISSING and want in text_forms(node)


class WaitTimeout(Timeout):
    """Fewer entries than awaited arrived in time; ``closest`` holds the nearest misses."""

    def __init__(
        self, flt: Filter, want: int, got: Sequence[Entry], closest: Sequence[Entry], timeout: float
    ) -> None:
        self.filter = flt
        self.want = want
        self.got = list(got)
        self.closest = list(closest)
        lines = [
            f"waited {timeout:g}s for {want} entr{'y' if want == 1 else 'ies'} matching "
            f"{flt.describe()}; {len(got)} arrived"
        ]
        lines += describe_closest(closest)
        super().__init__("\n".join(lines))


def describe_closest(closest: Iterable[Entry]) -> list[str]:
    entries = list(closest)
    if not entries:
        return ["no entries were recorded at all"]
    lines = ["closest recorded entries:"]
    for e in entries:
        lines.append(
            f"  #{e.id} {e.direction} {e.method} {e.path} provider={e.provider} action={e.action} "
            f"account={e.account} namespace={e.namespace} status={e.status}"
        )
    return lines


@dataclass
class _Waiter:
    flt: Filter
    want: int
    future: asyncio.Future[None]
    found: int = 0


class Raw(NamedTuple):
    """An inbound exchange as the parts the server holds anyway: the request's header bytes as
    received, the response's header map, the bodies. The :class:`Entry` is made from them when the
    journal is read, not on every call (building each one up front, header copies and the XML's
    nested view included, was a tenth of a call's own work: bench/RESULTS.md)."""

    id: int
    time: float
    method: str
    url: str
    path: str
    query: tuple[tuple[str, str], ...]
    raw_headers: tuple[tuple[bytes, bytes], ...]
    request_body: bytes
    provider: str | None
    action: str | None
    account: str | None
    namespace: str | None
    #: The parsed body when it was worked out during the call; else ``view`` makes it from the body.
    parsed: Any
    view: Callable[[bytes], Any] | None
    status: int | None
    response_headers: Iterable[tuple[str, str]] | Any
    response_body: bytes
    duration: float
    fault: str | None
    correlation_id: str | None
    error: str | None
    request_body_size: int | None = None
    violations: list[dict[str, str]] | None = None

    def entry(self, with_view: bool = True) -> Entry:
        """The Entry; ``with_view`` False leaves ``parsed`` as the call left it (an export that shows
        no parsed body need not parse every body again)."""
        # Decoded as aiohttp decodes them for request.headers.
        headers = tuple(
            (k.decode("utf-8", "surrogateescape"), v.decode("utf-8", "surrogateescape"))
            for k, v in self.raw_headers
        )
        parsed = self.parsed
        if parsed is None and self.view is not None and with_view:
            parsed = self.view(self.request_body)
        response_headers = self.response_headers
        return Entry(
            id=self.id,
            time=self.time,
            direction="in",
            method=self.method,
            url=self.url,
            path=self.path,
            query=self.query,
            request_headers=headers,
            request_body=self.request_body,
            provider=self.provider,
            action=self.action,
            account=self.account,
            namespace=self.namespace,
            parsed=parsed,
            status=self.status,
            response_headers=tuple(response_headers.items())
            if hasattr(response_headers, "items")
            else tuple(response_headers),
            response_body=self.response_body,
            duration=self.duration,
            fault=self.fault,
            correlation_id=self.correlation_id,
            error=self.error,
            request_body_size=self.request_body_size,
            violations=self.violations,
        )

    def size(self) -> int:
        """Bytes this exchange holds as received: bodies, request head and URL (what the byte budget
        counts; the response head is the emulator's own, a few hundred bytes, not counted)."""
        head = 0
        for k, v in self.raw_headers:
            head += len(k) + len(v)
        return len(self.request_body) + len(self.response_body) + head + len(self.url)


class Stored(NamedTuple):
    """An entry read back from the store at start: decoded when the journal is first read, so a
    restart with a full journal does not decode 10,000 documents before it serves."""

    id: int
    namespace: str | None
    row: JournalRow
    #: The journal's views by provider, for a body whose parsed form was not stored.
    views: Mapping[str, Callable[[bytes], Any]]
    #: When the call was received, where the row tells it without decoding (0: not known).
    time: float = 0.0

    def entry(self, with_view: bool = True) -> Entry:
        return _from_row(self.row, self.views if with_view else None)


#: What the journal holds: entries, and the two kinds made into entries when read.
Item = Entry | Raw | Stored


def _entry_size(entry: Entry) -> int:
    head = sum(len(k) + len(v) for k, v in entry.request_headers)
    return len(entry.request_body) + len(entry.response_body) + head + len(entry.url)


REDACTED = "[redacted]"
#: How long a recorded entry waits before it goes to the store: its answer is sent by then. With
#: the store's own batching, what a kill -9 can lose stays within JOURNAL_FLUSH_SECONDS.
UNWRITTEN_SECONDS = 0.02
#: Entry fields stored as the row's JSON document (the bodies are stored as bytes beside it).
_DOC_FIELDS = tuple(
    f.name for f in fields(Entry) if f.name not in ("request_body", "response_body", "foreign")
)
_PAIRS = ("query", "request_headers", "response_headers")


def _head(pairs: Iterable[tuple[str, str]]) -> str:
    """Header pairs as one string, ``name: value`` a line (a JSON list of pairs costs twice as much
    to encode). Lossless: a header name holds no colon, and no name or value a line break."""
    return "\r\n".join([f"{k}: {v}" for k, v in pairs])


def _pairs(head: str | list[list[str]]) -> tuple[tuple[str, str], ...]:
    if not isinstance(head, str):
        return tuple((k, v) for k, v in head)
    if not head:
        return ()
    return tuple(tuple(line.split(": ", 1)) for line in head.split("\r\n"))  # type: ignore[misc]


def _to_row(entry: Entry) -> JournalRow:
    doc = {name: getattr(entry, name) for name in _DOC_FIELDS if name != "request_headers"}
    doc["response_headers"] = _head(entry.response_headers)
    head = _head(entry.request_headers).encode("utf-8", "surrogateescape")
    return JournalRow(
        entry.id, entry.namespace, doc, entry.request_body, entry.response_body, _entry_size(entry), head
    )


def _raw_row(raw: Raw) -> JournalRow:
    """What :func:`_to_row` makes of ``raw.entry()``, without making the Entry. The parsed form of a
    provider's body is not stored (``viewed``: made again from the body when the row is read, as
    the provider's journal view makes it): encoding it cost more than the rest of the row."""
    viewed = raw.provider is not None and (raw.parsed is not None or raw.view is not None)
    parsed = None if viewed else raw.parsed
    doc = {
        "id": raw.id,
        "time": raw.time,
        "direction": "in",
        "method": raw.method,
        "url": raw.url,
        "path": raw.path,
        "query": raw.query,
        "provider": raw.provider,
        "action": raw.action,
        "account": raw.account,
        "namespace": raw.namespace,
        "parsed": parsed,
        "status": raw.status,
        "response_headers": _head(
            raw.response_headers.items() if hasattr(raw.response_headers, "items") else raw.response_headers
        ),
        "duration": raw.duration,
        "fault": raw.fault,
        "correlation_id": raw.correlation_id,
        "error": raw.error,
        "request_body_size": raw.request_body_size,
        "violations": raw.violations,
        "viewed": viewed,
    }
    head = b"\r\n".join([k + b": " + v for k, v in raw.raw_headers])
    return JournalRow(raw.id, raw.namespace, doc, raw.request_body, raw.response_body, raw.size(), head)


def _from_row(row: JournalRow, views: Mapping[str, Callable[[bytes], Any]] | None = None) -> Entry:
    doc = json.loads(row.doc) if isinstance(row.doc, str) else dict(row.doc)
    if doc.pop("viewed", False) and views and (view := views.get(doc.get("provider") or "")) is not None:
        doc["parsed"] = view(row.request_body)
    for name in _PAIRS:
        doc[name] = _pairs(doc.get(name, ()))
    if "request_headers" not in doc or row.request_head:
        doc["request_headers"] = _pairs(row.request_head.decode("utf-8", "surrogateescape"))
    return Entry(**doc, request_body=row.request_body, response_body=row.response_body, foreign=True)


def _row_time(row: JournalRow) -> float:
    return float(row.doc.get("time") or 0.0) if isinstance(row.doc, dict) else 0.0


def _row_size(row: JournalRow) -> int:
    """The bytes a row counts for (:meth:`Raw.size`): as written, else from its parts."""
    if row.size:
        return row.size
    url = row.doc.get("url", "") if isinstance(row.doc, dict) else ""
    return len(row.request_body) + len(row.response_body) + len(row.request_head) + len(url)


def _time_of(pair: tuple[Item, int]) -> float:
    return pair[0].time


def _is_foreign(item: Item | Entry | Raw) -> bool:
    return isinstance(item, Stored) or (isinstance(item, Entry) and item.foreign)


class Shared(Protocol):
    """The journal of several processes sharing one store (core/shared_journal.py): it numbers the
    entries (unique across the processes) and brings the others' entries in."""

    def next_id(self) -> int: ...

    async def catch_up(self) -> None:
        """Bring in every entry the others wrote before the call (StoreUnavailable: it cannot)."""

    def watch(self) -> None:
        """Someone waits or listens: keep bringing the others' entries in as they come, while
        :attr:`Journal.watched`."""

    def cleared(self, namespace: str | None) -> None:
        """This process cleared the journal (of ``namespace``): tell the others."""


def _matching(items: Iterable[Item], flt: Filter, with_view: bool) -> Iterator[Entry]:
    left = flt.limit
    for item in items:
        if left is not None and left <= 0:
            return
        entry = item if isinstance(item, Entry) else item.entry(with_view)
        if flt.matches(entry):
            if left is not None:
                left -= 1
            yield entry


@dataclass
class Journal:
    """The bounded record of exchanges. ``capacity`` 0 disables recording."""

    capacity: int = 10_000
    #: Most bytes kept (:meth:`Raw.size`); the oldest entries are evicted past it.
    max_bytes: int = 64 * 1024 * 1024
    #: Bytes of a refused call's request body kept (the recorder cuts it; the real length is kept).
    max_body_bytes: int = 64 * 1024
    #: Replaced by ``[redacted]`` wherever a request header carries it (the admin token).
    secret: str | None = None
    #: Entries evicted, past either bound; of them, those evicted for the byte budget.
    evicted: int = 0
    evicted_for_bytes: int = 0
    #: Request bodies kept only in part.
    truncated: int = 0
    _entries: deque[Item] = field(default_factory=deque)
    #: The size of each stored item, in the same order.
    _sizes: deque[int] = field(default_factory=deque)
    _bytes: int = 0
    _next_id: int = 1
    _waiters: list[_Waiter] = field(default_factory=list)
    #: How many stored items are still Raw (0: nothing to make before a read).
    _raw: int = 0
    #: ``secret`` as the raw header bytes carry it, encoded once.
    _secret_bytes: bytes = field(init=False, default=b"")
    #: Where each entry is also written (core/storage), when durable: in batches, not awaited.
    store: Store | None = None
    #: Each provider's view of a request body (the parsed form an entry shows), for entries read
    #: back from the store: a row keeps the parsed form only when the call made it.
    views: dict[str, Callable[[bytes], Any]] = field(default_factory=dict)
    #: Entries recorded but not yet handed to the store (see :meth:`_write`).
    _unwritten: list[Entry | Raw] = field(default_factory=list)
    #: ``evicted`` as last written to the store.
    _evicted_written: int = 0
    #: Told of every stored item (:meth:`subscribe`); empty, they cost one truth test a call.
    _listeners: list[Callable[[Item], None]] = field(default_factory=list)
    #: Set when other processes share the store's journal (replicas on one Redis): they number
    #: the entries, and their entries are brought in (:meth:`add_foreign`) before a query.
    shared: Shared | None = None

    def __post_init__(self) -> None:
        if self.secret is not None:
            self._secret_bytes = self.secret.encode("utf-8", "surrogateescape")
        if self.store is not None and not self.store.durable:
            self.store = None

    def restore(self) -> int:
        """At start: the newest entries the store holds (within both bounds) and the counts; the
        numbering goes on after them. Returns how many entries came back."""
        store = self.store
        if store is None:
            return 0
        counts = store.get_meta("journal.counts") or {}
        rows = store.load_entries(self.capacity)
        self.store = None  # nothing read back is written again
        try:
            for row in rows:
                self._raw += 1
                self._store(Stored(row.id, row.namespace, row, self.views, _row_time(row)), row.size)
        finally:
            self.store = store
        self.evicted = int(counts.get("evicted", 0)) + self.evicted
        self.evicted_for_bytes = int(counts.get("evictedForBytes", 0)) + self.evicted_for_bytes
        self.truncated = int(counts.get("truncated", 0))
        self._next_id = max(int(counts.get("nextId", 1)), rows[-1].id + 1 if rows else 1)
        self._evicted_written = self.evicted
        return len(rows)

    def _write(self, item: Entry | Raw) -> None:
        """Hand ``item`` to the store a moment later, on this loop, once its answer has been sent:
        the head aiohttp and the providers' hooks finish only then (and the row is encoded off
        the call's own path)."""
        self._unwritten.append(item)
        if len(self._unwritten) == 1:
            try:
                asyncio.get_running_loop().call_later(UNWRITTEN_SECONDS, self.write_pending)
            except RuntimeError:  # no loop (a test recording by hand): now
                self.write_pending()

    def write_pending(self) -> None:
        """Hand every entry still waiting to the store (also at shutdown, before it closes)."""
        pending, self._unwritten = self._unwritten, []
        if self.store is None or not pending:
            return
        if self.shared is not None:
            # The others read every row (the entries are not in id order here, and the shared
            # stream has its own bound): all are written, none trimmed by id.
            for item in pending:
                self.store.append_entry(_raw_row(item) if isinstance(item, Raw) else _to_row(item))
            return
        oldest = self._entries[0].id if self._entries else self._next_id
        for item in pending:
            if item.id >= oldest:  # evicted meanwhile: not worth writing
                self.store.append_entry(_raw_row(item) if isinstance(item, Raw) else _to_row(item))
        if self.evicted != self._evicted_written:
            # Once per batch, not once per call: the store forgets what the journal evicted.
            self.store.trim_entries(oldest)
            self._write_counts()

    def record(self, entry: Entry) -> Entry | None:
        """Store ``entry`` and wake whoever waits for it. The journal takes the entry over and numbers
        it: callers build a fresh one for each exchange, with id 0."""
        if self.capacity == 0:
            self.evicted += 1
            return None
        # Set in place rather than with dataclasses.replace(): copying 22 fields was a tenth of the
        # time a recorded call costs (bench/RESULTS.md, profile).
        if self.shared is None:
            object.__setattr__(entry, "id", self._next_id)
            self._next_id += 1
        else:
            object.__setattr__(entry, "id", self.shared.next_id())
        if self.secret is not None and any(self.secret in v for _, v in entry.request_headers):
            redacted = tuple((k, v.replace(self.secret, REDACTED)) for k, v in entry.request_headers)
            object.__setattr__(entry, "request_headers", redacted)
        if entry.request_body_size is not None:
            self.truncated += 1
        if self.store is not None:
            self._write(entry)
        self._store(entry, _entry_size(entry))
        self._wake(entry)
        return entry

    def record_raw(self, *parts: Any) -> None:
        """Store an inbound exchange as :class:`Raw` parts (all of Raw's fields after ``id``, in
        order); the journal numbers it."""
        if self.capacity == 0:
            self.evicted += 1
            return
        if self.shared is None:
            raw = Raw(self._next_id, *parts)
            self._next_id += 1
        else:
            raw = Raw(self.shared.next_id(), *parts)
        if self.secret is not None:
            raw = self._redact(raw)
        if raw.request_body_size is not None:
            self.truncated += 1
        size = raw.size()
        if self.store is not None:
            # Its row straight from the parts: the Entry is made only when the journal is read.
            self._write(raw)
        if self._waiters:
            # Someone waits: the entry is needed now to match it.
            entry = raw.entry()
            self._store(entry, size)
            self._wake(entry)
            return
        self._raw += 1
        self._store(raw, size)

    def _redact(self, raw: Raw) -> Raw:
        secret = self._secret_bytes
        if not any(secret in v for _, v in raw.raw_headers):
            return raw
        mask = REDACTED.encode()
        return raw._replace(raw_headers=tuple((k, v.replace(secret, mask)) for k, v in raw.raw_headers))

    def subscribe(self, listener: Callable[[Item], None]) -> Callable[[], None]:
        """Call ``listener`` with each item stored from now on (an Entry, or the Raw parts of an
        inbound exchange: ``Raw.entry()`` makes it) until the returned function is called. It runs
        inside the call being recorded, so it must be quick and must not raise: put the item in a
        bounded buffer and look at it later."""
        self._listeners.append(listener)
        if self.shared is not None:
            self.shared.watch()
        return lambda: self._listeners.remove(listener)

    @property
    def watched(self) -> bool:
        """Whether someone waits (:meth:`wait_for`) or listens (:meth:`subscribe`)."""
        return bool(self._waiters or self._listeners)

    def _store(self, item: Item, size: int) -> None:
        if self._listeners:
            for listener in self._listeners:
                listener(item)
        self._entries.append(item)
        self._sizes.append(size)
        self._bytes += size
        self._evict()

    def _evict(self) -> None:
        while len(self._entries) > self.capacity or (self._bytes > self.max_bytes and self._entries):
            if len(self._entries) <= self.capacity:
                self.evicted_for_bytes += 1
            if not isinstance(self._entries.popleft(), Entry):
                self._raw -= 1
            self._bytes -= self._sizes.popleft()
            self.evicted += 1

    def _write_counts(self) -> None:
        assert self.store is not None
        self._evicted_written = self.evicted
        self.store.put_meta(
            "journal.counts",
            {
                "evicted": self.evicted,
                "evictedForBytes": self.evicted_for_bytes,
                "truncated": self.truncated,
                "nextId": self._next_id,
            },
        )

    @property
    def bytes(self) -> int:
        """Bytes held by the stored entries, as :meth:`Raw.size` counts them."""
        return self._bytes

    @property
    def waiting(self) -> int:
        """Long-polls open now."""
        return len(self._waiters)

    def stats(self) -> dict[str, int]:
        return {
            "entries": len(self._entries),
            "capacity": self.capacity,
            "bytes": self._bytes,
            "maxBytes": self.max_bytes,
            "evicted": self.evicted,
            "evictedForBytes": self.evicted_for_bytes,
            "truncatedBodies": self.truncated,
            "maxBodyBytes": self.max_body_bytes,
            "waiters": len(self._waiters),
        }

    def _wake(self, entry: Entry) -> None:
        for waiter in list(self._waiters):
            if waiter.flt.matches(entry):
                waiter.found += 1
                if waiter.found >= waiter.want and not waiter.future.done():
                    waiter.future.set_result(None)

    def _made(self) -> deque[Item]:
        """The stored items, every Raw made into its Entry first (once)."""
        if self._raw:
            self._entries = deque(e if isinstance(e, Entry) else e.entry() for e in self._entries)
            self._raw = 0
        return self._entries

    def entries(self) -> list[Entry]:
        """Every stored entry, oldest first."""
        return [e for e in self._made() if isinstance(e, Entry)]

    def __len__(self) -> int:
        return len(self._entries)

    def stream(self, flt: Filter | None = None, *, with_view: bool = True) -> Iterator[Entry]:
        """The matching entries one at a time, each made when it is reached and not kept (an export
        holds one entry at a time, not all of them). Reads the stored items as they are now:
        entries recorded or evicted later change nothing."""
        flt = flt or Filter()
        items = list(self._entries)
        if flt.order == "desc":
            items.reverse()
        return _matching(items, flt, with_view or bool(flt.body))

    def select(self, flt: Filter | None = None) -> list[Entry]:
        flt = flt or Filter()
        matched = [e for e in self.entries() if flt.matches(e)]
        if flt.order == "desc":
            matched.reverse()
        if flt.limit is not None:
            matched = matched[: flt.limit]
        return matched

    def count(self, flt: Filter | None = None) -> int:
        flt = flt or Filter()
        return sum(1 for e in self.entries() if flt.matches(e))

    def closest(self, flt: Filter, n: int = 5) -> list[Entry]:
        """The ``n`` entries failing the fewest criteria, newest first among equals."""
        ranked = sorted(reversed(self.entries()), key=flt.mismatches)
        return ranked[:n]

    def clear(self, namespace: str | None = None) -> int:
        """Forget every entry (or those of one namespace); returns how many went. Open waits count
        again from what is left: entries cleared before they were enough do not count."""
        before = len(self._entries)
        if namespace is None:
            self._entries.clear()
            self._sizes.clear()
            self._bytes = 0
            self._raw = 0
            self._reset_counts()
        else:
            self._drop(lambda e: e.namespace == namespace)
        if self.store is not None:
            unwritten = self._unwritten
            self._unwritten = [e for e in unwritten if namespace is not None and e.namespace != namespace]
            self.store.clear_entries(namespace)
            if self.shared is None:
                self._write_counts()
            else:
                self.shared.cleared(namespace)
        self._recount_waiters()
        return before - len(self._entries)

    def _reset_counts(self) -> None:
        self.evicted = 0
        self.evicted_for_bytes = 0
        self.truncated = 0

    def _drop(self, gone: Callable[[Item], bool]) -> None:
        pairs = zip(self._entries, self._sizes, strict=True)
        kept = [(e, n) for e, n in pairs if not gone(e)]
        self._entries = deque(e for e, _ in kept)
        self._sizes = deque(n for _, n in kept)
        self._bytes = sum(self._sizes)
        self._raw = sum(not isinstance(e, Entry) for e in self._entries)

    def _recount_waiters(self) -> None:
        for waiter in self._waiters:
            waiter.found = self.count(waiter.flt)

    # --- entries of other processes sharing the store (core/shared_journal.py) ----------------------

    async def catch_up(self) -> None:
        """Bring in what the other processes sharing the store recorded before this call (nothing
        to do for a journal of its own; StoreUnavailable when the store does not answer)."""
        if self.shared is not None:
            await self.shared.catch_up()

    def add_foreign(self, rows: Sequence[JournalRow]) -> None:
        """Keep the entries another process recorded and wrote to the shared store, within the same
        bounds as this one's own, placed among them by the time they were received (they arrive
        late), never written again. Waiters and listeners are told of them as of any other."""
        if not rows or self.capacity == 0:
            return
        made = bool(self._waiters)
        batch: list[tuple[Item, int]] = []
        for row in rows:
            stored = Stored(row.id, row.namespace, row, self.views, _row_time(row))
            batch.append((stored.entry() if made else stored, _row_size(row)))
            if isinstance(row.doc, dict) and row.doc.get("request_body_size") is not None:
                self.truncated += 1
        batch.sort(key=_time_of)
        # The newer of this journal's entries step aside, and both runs are merged.
        first = batch[0][0].time
        tail: list[tuple[Item, int]] = []
        while self._entries and self._entries[-1].time > first:
            tail.append((self._entries.pop(), self._sizes.pop()))
        tail.reverse()
        for item, size in heapq.merge(tail, batch, key=_time_of):
            self._entries.append(item)
            self._sizes.append(size)
        for item, size in batch:
            self._bytes += size
            if isinstance(item, Entry):
                self._wake(item)
            else:
                self._raw += 1
            for listener in self._listeners:
                listener(item)
        self._evict()

    def forget(self, namespace: str | None, *, foreign: bool) -> int:
        """Let go, in memory only, of the entries of ``namespace`` (None: all) that other processes
        recorded (``foreign``) or that this one did (and its rows not yet written): the two halves
        of a clear made through another process. Returns how many went."""
        before = len(self._entries)

        def gone(item: Item | Raw) -> bool:
            return (namespace is None or item.namespace == namespace) and _is_foreign(item) == foreign

        self._drop(gone)
        if not foreign:
            self._unwritten = [e for e in self._unwritten if not gone(e)]
            if namespace is None:
                self._reset_counts()
        self._recount_waiters()
        return before - len(self._entries)

    def fail_waiters(self, exc: BaseException) -> None:
        """End every open wait with ``exc`` (the shared store stopped answering)."""
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_exception(exc)

    async def wait_for(self, flt: Filter, count: int = 1, timeout: float = 5.0) -> list[Entry]:
        """Wait until ``count`` entries match ``flt`` (those already recorded included); answers
        only with at least ``count`` of them, whatever was cleared or evicted meanwhile."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        everything = replace(flt, limit=None, order="asc")
        await self.catch_up()
        while True:
            matched = self.select(everything)
            if len(matched) >= count:
                return matched
            waiter = _Waiter(flt, count, loop.create_future(), found=len(matched))
            self._waiters.append(waiter)
            if self.shared is not None:
                self.shared.watch()
            try:
                await asyncio.wait_for(asyncio.shield(waiter.future), max(0.0, deadline - loop.time()))
            except TimeoutError:
                got = self.select(everything)
                raise WaitTimeout(flt, count, got, self.closest(flt), timeout) from None
            finally:
                self._waiters.remove(waiter)
