"""Outbound deliveries: the notifications a provider sends to the user's own server.

A provider hands the :class:`Dispatcher` what it knows about a notification (:class:`OutboundInfo`)
and a function that builds the request (:data:`PayloadBuilder`). The dispatcher sends it from a task
of its own, so request handling never waits and a slow receiver holds up nobody else; it retries on
the injected clock and records every attempt in the journal as an ``Entry(direction="out")`` carrying
the correlation id of what caused it::

    pending --HTTP 200----------------------------> delivered
       |----1 + max_retries failed attempts-------> exhausted
       |----fault "drop" (never sent)-------------> dropped
       +----host not allowed, or too many pending-> refused (never sent)

Only HTTP 200 is success; any other status (redirects are not followed), a connection error or an
attempt running past ``attempt_timeout`` is a failure. Retry n waits ``retry_delays[n-1]`` seconds, the
last value repeating.

Outbound requests go only to hosts the :class:`AllowedHosts` list names (loopback by default, plus
the receivers the operator configured), decided from the URL alone before any lookup or connection,
at submission and again before every attempt. At most ``max_concurrent_per_receiver`` attempts run at
once per receiver (scheme, host, port); finished deliveries are kept up to ``max_deliveries``, the
oldest forgotten first; waiting for deliveries costs each change one check per waiter, not a scan.

With a store shared by several replicas, a :class:`SharedOutbox` (core/replicas.py) decides which
replica works on which delivery: the dispatcher runs a delivery only inside :meth:`SharedOutbox.run`
and confirms before every attempt that it may still make it; the others' deliveries are listed
from their records (:meth:`Dispatcher.adopt`).

Failure modes are data (:class:`OutboundFault`), asked of :attr:`Dispatcher.fault_source` once per
delivery. The dispatcher carries out the transport kinds (delay, drop, duplicate, out_of_order); the
content kinds (wrong_checksum, misspelled_audit_key) go to the provider's payload builder, which alone
knows the wire format. Nothing here names a provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import itertools
import logging
import time
import typing
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import parse_qsl, urlsplit

import aiohttp

from ..errors import InvalidInput, Timeout
from . import log as request_log
from .call import DEFAULT_NAMESPACE
from .clock import Clock
from .journal import Entry, FilterError, Journal
from .storage import Store, StoreUnavailable
from .storage.codec import decode, encode

log = logging.getLogger("emulator.callbacks")

FaultKind = Literal["delay", "drop", "duplicate", "wrong_checksum", "out_of_order", "misspelled_audit_key"]
FAULT_KINDS: tuple[str, ...] = typing.get_args(FaultKind)
#: Kinds that change what is sent rather than how: the provider's payload builder applies them.
CONTENT_FAULTS = frozenset({"wrong_checksum", "misspelled_audit_key"})
#: How long an out_of_order delivery waits for a later one to overtake it when the fault names no
#: bound, so a lone delivery is still sent.
DEFAULT_HOLD_SECONDS = 60.0
#: How often a wait for deliveries reads the other replicas' changes, when they share the store.
SHARED_POLL_SECONDS = 0.05

#: How the outbox is stored (core/storage): one record per delivery, rewritten as it progresses.
KIND_DELIVERY = "callbacks.delivery"

DeliveryState = Literal["pending", "delivered", "exhausted", "dropped", "refused"]
DELIVERY_STATES: tuple[str, ...] = typing.get_args(DeliveryState)


@dataclass(frozen=True)
class OutboundInfo:
    """What a fault rule can match an outbound delivery on."""

    provider: str
    action: str
    account: str | None
    namespace: str | None
    url: str
    correlation_id: str | None


@dataclass(frozen=True)
class OutboundFault:
    """One failure mode applied to one delivery.

    ``seconds``: for ``delay``, how long the first attempt is held back; for ``out_of_order``, the
    longest it waits for a later delivery to the same URL to go first (0: 60 seconds).
    """

    kind: FaultKind
    seconds: float = 0.0
    #: The rule that produced it (id or name), for the journal.
    rule: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown callback fault {self.kind!r} (known: {', '.join(FAULT_KINDS)})")
        if self.seconds < 0:
            raise ValueError(f"seconds must not be negative, not {self.seconds}")

    @property
    def label(self) -> str:
        """What the journal's ``fault`` field says."""
        return self.kind if self.rule is None else f"{self.kind} [{self.rule}]"

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], rule: str | None = None) -> OutboundFault:
        """From a rule's JSON action, e.g. ``{"type": "delay", "seconds": 30}`` or
        ``{"type": "drop"}``. Raises ValueError naming the bad field."""
        kind = spec.get("type")
        if kind not in FAULT_KINDS:
            raise ValueError(f"type must be one of {', '.join(FAULT_KINDS)}, not {kind!r}")
        unknown = sorted(set(spec) - {"type", "seconds"})
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r} for a callback fault (known: type, seconds)")
        seconds = spec.get("seconds", 0)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ValueError(f"seconds must be a non-negative number, not {seconds!r}")
        return cls(kind=typing.cast(FaultKind, kind), seconds=float(seconds), rule=rule)


@dataclass(frozen=True)
class Payload:
    """One delivery's request, the same for every attempt."""

    body: bytes
    content_type: str
    #: What the body says, for the journal's ``parsed`` (e.g. form fields with the JSON decoded).
    parsed: Any = None


#: Builds the request; receives the delivery's fault (content kinds are its to apply, others it ignores).
PayloadBuilder = Callable[[OutboundFault | None], Payload]
FaultSource = Callable[[OutboundInfo], OutboundFault | None]
#: The same, decided where every process sharing the store counts (core/replicas.ScheduleCounters).
SharedFaultSource = Callable[[OutboundInfo], Awaitable[OutboundFault | None]]


class CallbackURLError(InvalidInput):
    """A receiver URL the emulator will not call."""


def check_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL with a host; CallbackURLError otherwise."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 -- ValueError for a port out of range or not a number
    except ValueError:
        host = None
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise CallbackURLError(f"a callback URL must be an absolute http:// or https:// URL, not {url!r}")
    return url


#: Loopback by name and address: what ``callbacks.allowed_hosts`` allows unless configured.
DEFAULT_ALLOWED_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.0/8", "::1")


def host_of(url: str) -> str | None:
    """The URL's host as the connection would use it (lowercase, IPv6 without brackets), or None."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.rstrip(".") if host else None


class AllowedHosts:
    """Which hosts outbound requests may go to, decided from the name alone (no DNS).

    Entries are host names (compared exactly, case-insensitively), IP addresses or networks
    (``127.0.0.0/8``), or ``*`` for any host. Besides the fixed entries, each console setting
    (:meth:`set_console`) allows the host of its URL while it is set.
    """

    def __init__(self, entries: Iterable[str] = DEFAULT_ALLOWED_HOSTS) -> None:
        self.any = False
        self._names: set[str] = set()
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        #: Console key -> (namespace, host).
        self._console: dict[str, tuple[str | None, str]] = {}
        for entry in entries:
            self.add(entry)

    def add(self, entry: str) -> None:
        """Allow a host name, an address, a network, or (``*``) everything."""
        entry = entry.strip().lower().rstrip(".")
        if entry == "*":
            self.any = True
            return
        try:
            self._networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            if not entry:
                raise ValueError("an allowed host must not be empty") from None
            self._names.add(entry)

    def add_url(self, url: str) -> None:
        """Allow the host of ``url`` (a receiver the operator configured)."""
        host = host_of(url)
        if host:
            self.add(host)

    def set_console(self, key: str, url: str | None, namespace: str | None = None) -> None:
        """The console setting ``key`` now names ``url`` (None: none): its host is allowed instead
        of the one it named before."""
        host = host_of(url) if url else None
        if host:
            self._console[key] = (namespace, host)
        else:
            self._console.pop(key, None)

    def reset(self, namespace: str | None = None) -> None:
        """Forget console settings (those of one namespace)."""
        for key, (ns, _) in list(self._console.items()):
            if namespace is None or ns == namespace:
                del self._console[key]

    def allows(self, host: str) -> bool:
        if self.any:
            return True
        host = host.lower().rstrip(".")
        if host in self._names or any(h == host for _, h in self._console.values()):
            return True
        try:
            address = ipaddress.ip_address(host.partition("%")[0])
        except ValueError:
            return False
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        return any(a in net for net in self._networks for a in (address, mapped) if a is not None)

    def refusal(self, url: str) -> str | None:
        """Why ``url`` may not be called (naming its host), or None when it may."""
        host = host_of(url)
        if host is None:
            return f"{url!r} names no host"
        if self.allows(host):
            return None
        return f"host {host!r} is not in callbacks.allowed_hosts"


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Attempt:
    number: int
    started: float
    duration: float
    status: int | None
    error: str | None
    entry_id: int | None
    fault: str | None = None
    #: The extra copy a ``duplicate`` fault sends after the delivery succeeded.
    duplicate: bool = False

    @property
    def ok(self) -> bool:
        return self.status == 200

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "time": _iso(self.started),
            "durationMs": round(self.duration * 1000, 3),
            "status": self.status,
            "error": self.error,
            "entryId": self.entry_id,
            "fault": self.fault,
            "duplicate": self.duplicate,
        }


@dataclass
class Delivery:
    id: str
    info: OutboundInfo
    payload: Payload
    fault: OutboundFault | None
    created: float
    state: DeliveryState = "pending"
    attempts: list[Attempt] = field(default_factory=list)
    finished: float | None = None
    #: While waiting (retry, delay or hold): when the next attempt is due, on clock.time().
    next_attempt_at: float | None = None
    in_flight: bool = False
    #: Held back by an out_of_order fault until a later delivery to the same URL has been sent.
    held: bool = False
    seq: int = 0
    #: Why it was never sent (state ``refused``).
    refusal: str | None = None
    #: Its failure mode is still to be asked (a shared store: see Dispatcher.shared_fault_source).
    fault_pending: bool = False

    @property
    def done(self) -> bool:
        return self.state != "pending"

    def summary(self) -> str:
        last = self.attempts[-1] if self.attempts else None
        outcome = "" if last is None else f", last status={last.status} error={last.error}"
        return (
            f"{self.id} {self.state} {self.info.provider}/{self.info.action} account={self.info.account} "
            f"namespace={self.info.namespace} correlationId={self.info.correlation_id} "
            f"url={self.info.url} attempts={len(self.attempts)}{outcome}"
        )

    def to_dict(self) -> dict[str, Any]:
        try:
            body = self.payload.body.decode("utf-8")
        except UnicodeDecodeError:
            body = self.payload.body.decode("latin-1")
        return {
            "id": self.id,
            "state": self.state,
            "provider": self.info.provider,
            "action": self.info.action,
            "account": self.info.account,
            "namespace": self.info.namespace,
            "url": self.info.url,
            "correlationId": self.info.correlation_id,
            "fault": None if self.fault is None else self.fault.label,
            "created": _iso(self.created),
            "finished": _iso(self.finished),
            "nextAttemptAt": _iso(self.next_attempt_at),
            "inFlight": self.in_flight,
            "held": self.held,
            "refusal": self.refusal,
            "attempts": [a.to_dict() for a in self.attempts],
            "request": {
                "contentType": self.payload.content_type,
                "body": body,
                "parsed": self.payload.parsed,
            },
        }


@dataclass(frozen=True)
class DeliveryFilter:
    """Which deliveries to select; ``None`` matches everything."""

    state: str | None = None
    provider: str | None = None
    action: str | None = None
    account: str | None = None
    namespace: str | None = None
    correlation_id: str | None = None
    url: str | None = None

    PARAMS = ("state", "provider", "action", "account", "namespace", "correlationId", "url")

    @classmethod
    def from_params(cls, params: Mapping[str, str], ignore: tuple[str, ...] = ()) -> DeliveryFilter:
        values: dict[str, str] = {}
        for key, raw in params.items():
            if key in ignore:
                continue
            if key not in cls.PARAMS:
                raise FilterError(f"unknown filter {key!r} (known: {', '.join(cls.PARAMS)})")
            if key == "state" and raw not in DELIVERY_STATES:
                raise FilterError(f"state must be one of {', '.join(DELIVERY_STATES)}, not {raw!r}")
            values["correlation_id" if key == "correlationId" else key] = raw
        return cls(**values)

    def matches(self, d: Delivery) -> bool:
        info = d.info
        return (
            (self.state is None or d.state == self.state)
            and (self.provider is None or info.provider == self.provider)
            and (self.action is None or info.action == self.action)
            and (self.account is None or info.account == self.account)
            and (self.namespace is None or info.namespace == self.namespace)
            and (self.correlation_id is None or info.correlation_id == self.correlation_id)
            and (self.url is None or info.url == self.url)
        )

    def describe(self) -> str:
        parts = [f"{k}={v!r}" for k, v in vars(self).items() if v is not None]
        return ", ".join(parts) or "any delivery"


class DeliveryTimeout(Timeout):
    """Fewer deliveries than awaited reached the wanted state in time; the message lists them all."""

    def __init__(
        self, what: str, want: int, got: list[Delivery], known: list[Delivery], timeout: float
    ) -> None:
        self.got = got
        self.known = known
        lines = [
            f"waited {timeout:g}s for {want} deliver{'y' if want == 1 else 'ies'} matching {what}; "
            f"{len(got)} matched"
        ]
        if known:
            lines.append("deliveries known:")
            lines += [f"  {d.summary()}" for d in known[-10:]]
        else:
            lines.append("no deliveries were made at all")
        super().__init__("\n".join(lines))


class LeaseLost(Exception):
    """Another replica works on the delivery now: this one stops, without writing it again."""


class SharedOutbox(Protocol):
    """The outbox of replicas sharing one store: who attempts which delivery (core/replicas.py)."""

    async def run(self, delivery: Delivery, work: Callable[[], Awaitable[None]], *, claimed: bool) -> None:
        """Run ``work`` (the delivery's schedule) while this replica holds the delivery (claiming
        it first unless ``claimed``); it ends without running it when another replica holds it."""

    async def confirm(self, delivery_id: str) -> None:
        """Return when this replica may attempt the delivery now; LeaseLost when it may not again."""

    def changed(self) -> None:
        """A delivery's record was queued in the store: the other replicas should see it soon."""

    async def catch_up(self) -> None:
        """Bring the deliveries listed up to date with the other replicas' changes."""


T = TypeVar("T")
_Response = tuple[int, tuple[tuple[str, str], ...], bytes, tuple[tuple[str, str], ...]]


@dataclass(eq=False)
class _Waiter:
    """Someone waiting for ``count`` deliveries to satisfy ``check``: it keeps the ids that do, so a
    change costs one check of the delivery that changed, not a scan of them all."""

    check: Callable[[Delivery], bool]
    count: int
    future: asyncio.Future[None]
    matched: set[str] = field(default_factory=set)

    def update(self, d: Delivery) -> None:
        if self.check(d):
            self.matched.add(d.id)
        else:
            self.matched.discard(d.id)
        if len(self.matched) >= self.count and not self.future.done():
            self.future.set_result(None)


@dataclass(eq=False)
class _Slot:
    """The attempts allowed at once to one receiver, and how many are using or waiting for them."""

    semaphore: asyncio.Semaphore
    users: int = 0


class Dispatcher:
    """Sends deliveries, each from its own task, through one aiohttp session it owns."""

    def __init__(
        self,
        journal: Journal,
        clock: Clock,
        *,
        max_retries: int = 16,
        retry_delays: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600),
        attempt_timeout: float = 10.0,
        max_response_bytes: int = 4096,
        allowed_hosts: AllowedHosts | None = None,
        max_deliveries: int = 1000,
        max_pending: int = 10_000,
        max_concurrent_per_receiver: int = 4,
        store: Store | None = None,
    ) -> None:
        if not retry_delays and max_retries:
            raise ValueError("retry_delays must name at least one delay when retries are allowed")
        self.journal = journal
        self.clock = clock
        self.max_retries = max_retries
        self.retry_delays = retry_delays
        self.attempt_timeout = attempt_timeout
        self.max_response_bytes = max_response_bytes
        #: Where deliveries may go (loopback unless told otherwise).
        self.allowed = allowed_hosts if allowed_hosts is not None else AllowedHosts()
        #: Finished deliveries kept; the oldest are forgotten past it (0: none kept).
        self.max_deliveries = max_deliveries
        #: Deliveries in progress at most; more are refused (0: no limit).
        self.max_pending = max_pending
        #: Attempts at once per receiver (0: no limit).
        self.max_concurrent_per_receiver = max_concurrent_per_receiver
        #: Asked once per delivery which failure mode, if any, to apply (the fault engine plugs in here).
        self.fault_source: FaultSource | None = None
        #: With a shared store: asked instead, by the delivery's own task before its first attempt,
        #: so that rules count every process's deliveries (the payload is made again with its fault).
        self.shared_fault_source: SharedFaultSource | None = None
        #: What the last shutdown had to abandon.
        self.abandoned: list[Delivery] = []
        self._deliveries: dict[str, Delivery] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        #: Finished deliveries' ids, oldest first (an ordered set).
        self._finished: dict[str, None] = {}
        self._waiters: list[_Waiter] = []
        self._slots: dict[str, _Slot] = {}
        self._ids = itertools.count(1)
        #: Delivery ids are this and a number (with a shared store: cb-{replica}-, see LeasedOutbox).
        self.id_prefix = "cb-"
        #: Who works on which delivery, when replicas share the store (None: this dispatcher alone).
        self.shared: SharedOutbox | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        #: The outbox: each delivery's record is written whenever it changes (when durable).
        self._store = store if store is not None and store.durable else None

    def delay_before_retry(self, retry: int) -> float:
        """Seconds before retry ``retry`` (1 = the second attempt)."""
        return self.retry_delays[min(retry, len(self.retry_delays)) - 1]

    # --- submitting and inspecting ----------------------------------------------------------------

    def submit(self, info: OutboundInfo, build: PayloadBuilder) -> Delivery:
        """Queue a delivery and return at once; it is sent from its own task on the running loop.
        During and after shutdown it is refused (journaled, never sent)."""
        check_url(info.url)
        later = self.shared_fault_source is not None
        fault = self.fault_source(info) if self.fault_source is not None and not later else None
        seq = next(self._ids)
        delivery = Delivery(
            id=f"{self.id_prefix}{seq}",
            info=info,
            payload=build(fault),
            fault=fault,
            created=self.clock.time(),
            seq=seq,
            fault_pending=later,
        )
        self._deliveries[delivery.id] = delivery
        refusal = "the emulator is shutting down" if self._closed else self.allowed.refusal(info.url)
        pending = len(self._deliveries) - len(self._finished) - 1
        if refusal is None and self.max_pending and pending >= self.max_pending:
            refusal = f"{pending} deliveries pending already (callbacks.max_pending)"
        if refusal is not None:
            self._refuse(delivery, 0, refusal)
            return delivery
        self._start(delivery, claimed=False, build=build)
        self._changed(delivery)
        return delivery

    def _start(self, d: Delivery, *, claimed: bool, build: PayloadBuilder | None = None) -> None:
        shared = self.shared
        if shared is None:
            work = self._run(d, build)
        else:
            work = shared.run(d, lambda: self._run(d, build), claimed=claimed)
        task = asyncio.get_running_loop().create_task(work, name=f"callback {d.id}")
        self._tasks[d.id] = task
        task.add_done_callback(functools.partial(self._task_done, d))

    def resume(self) -> int:
        """At start: the outbox as stored. Finished deliveries are listed again; each pending one
        goes on from where it stopped: its next attempt at its scheduled time (at once when that
        has passed), numbered after the attempts made. An attempt cut by the crash is made again,
        so its receiver may hear it twice (callbacks are at least once). Returns how many resumed.
        With a shared outbox, nothing here: the outbox takes over the deliveries no replica holds."""
        if self._store is None or self.shared is not None:
            return 0
        resumed = 0
        loaded = sorted(
            (decode(r.value, Delivery) for r in self._store.load(None, KIND_DELIVERY)), key=lambda d: d.seq
        )
        for d in loaded:
            d.in_flight = d.held = False
            self._deliveries[d.id] = d
            if d.done:
                self._finished[d.id] = None
                continue
            self._start(d, claimed=True)
            resumed += 1
        if loaded:
            self._ids = itertools.count(loaded[-1].seq + 1)
        return resumed

    def deliveries(self, flt: DeliveryFilter | None = None) -> list[Delivery]:
        flt = flt or DeliveryFilter()
        return [d for d in self._deliveries.values() if flt.matches(d)]

    def get(self, delivery_id: str) -> Delivery | None:
        return self._deliveries.get(delivery_id)

    async def wait_for(
        self,
        predicate: Callable[[Delivery], bool] | DeliveryFilter,
        count: int = 1,
        timeout: float = 5.0,
    ) -> list[Delivery]:
        """Wait until ``count`` deliveries satisfy ``predicate``; DeliveryTimeout (an AssertionError
        listing the deliveries) when they do not in ``timeout`` real seconds."""
        check = predicate.matches if isinstance(predicate, DeliveryFilter) else predicate

        def matching() -> list[Delivery]:
            return [d for d in self._deliveries.values() if check(d)]

        found = matching()
        if len(found) < count:
            future = asyncio.get_running_loop().create_future()
            waiter = _Waiter(check, count, future, {d.id for d in found})
            self._waiters.append(waiter)
            try:
                await self._until(future, timeout)
            except TimeoutError:
                what = predicate.describe() if isinstance(predicate, DeliveryFilter) else "the predicate"
                raise DeliveryTimeout(
                    what, count, matching(), list(self._deliveries.values()), timeout
                ) from None
            finally:
                self._waiters.remove(waiter)
        return matching()

    async def _until(self, future: asyncio.Future[None], timeout: float) -> None:
        """Wait for ``future`` (TimeoutError after ``timeout``); with a shared outbox, the other
        replicas' changes are read every :data:`SHARED_POLL_SECONDS` meanwhile."""
        if self.shared is None:
            await asyncio.wait_for(asyncio.shield(future), timeout)
            return
        deadline = asyncio.get_running_loop().time() + timeout
        while not future.done():
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError
            try:
                await asyncio.wait_for(asyncio.shield(future), min(left, SHARED_POLL_SECONDS))
            except TimeoutError:
                try:
                    await self.shared.catch_up()
                except StoreUnavailable:
                    pass  # the store is away: the wait goes on until it answers or time is up

    # --- the working set, as replicas sharing the store change it (SharedOutbox) -----------------

    @property
    def closed(self) -> bool:
        """Whether shutdown has begun (no delivery is taken any more)."""
        return self._closed

    def working_on(self, delivery_id: str) -> bool:
        """Whether this dispatcher runs the delivery's schedule now."""
        return delivery_id in self._tasks

    def unattended(self) -> list[Delivery]:
        """Pending deliveries listed here that this dispatcher does not work on."""
        return [d for d in self._deliveries.values() if not d.done and d.id not in self._tasks]

    def adopt(self, d: Delivery) -> None:
        """Another replica's version of a delivery (it wrote the record), listed and awaited as
        this dispatcher's own are; ignored while this dispatcher works on it."""
        if d.id in self._tasks:
            return
        d.seq = 0  # another replica's numbering: not comparable with this one's (out_of_order)
        self._deliveries[d.id] = d
        if d.done:
            self._finished[d.id] = None
            while len(self._finished) > self.max_deliveries:
                self._drop(next(iter(self._finished)))  # the replica that finished it deletes it
        for waiter in list(self._waiters):
            waiter.update(d)

    def take_over(self, d: Delivery) -> None:
        """Continue a delivery whose lease this replica has just claimed, from its stored record."""
        d.in_flight = d.held = False
        self._deliveries[d.id] = d
        self._start(d, claimed=True)

    def let_go(self, delivery_id: str, *, forget: bool, deleted: bool = False) -> None:
        """Stop working on a delivery (another replica does, or it was deleted); with ``forget``,
        no longer list it. Nothing is written, unless ``deleted`` (another replica deleted its
        record) and this dispatcher was working on it: then its record is deleted again, in case
        this one wrote it after the other's delete."""
        task = self._tasks.get(delivery_id)
        if task is not None:
            task.cancel()
            if deleted and delivery_id in self._deliveries:
                self._forget(delivery_id)
        if forget and delivery_id in self._deliveries:
            self._drop(delivery_id)

    def replace_all(self, stored: Iterable[Delivery]) -> None:
        """The deliveries as the store holds them now (those worked on here kept as they are)."""
        fresh = {d.id: d for d in stored}
        for delivery_id in list(self._deliveries):
            if delivery_id not in fresh:
                self.let_go(delivery_id, forget=True, deleted=True)
        for d in fresh.values():
            if d.id not in self._tasks:
                self.adopt(d)

    def _drop(self, delivery_id: str) -> None:
        """Forget a delivery here only (its record stays)."""
        self._deliveries.pop(delivery_id, None)
        self._finished.pop(delivery_id, None)
        for waiter in self._waiters:
            waiter.matched.discard(delivery_id)

    def reset(self, namespace: str | None = None) -> None:
        """Forget deliveries (those of one namespace), cancelling those still in progress."""
        for d in list(self._deliveries.values()):
            if namespace is None or d.info.namespace == namespace:
                self._forget(d.id)
                task = self._tasks.get(d.id)
                if task is not None:
                    task.cancel()
        self.allowed.reset(namespace)

    async def close(self, grace: float) -> list[Delivery]:
        """Stop taking deliveries, wait up to ``grace`` real seconds for those in progress, then
        cancel the rest; log and return what was still pending."""
        self._closed = True
        tasks = list(self._tasks.values())
        if tasks and grace > 0:
            await asyncio.wait(tasks, timeout=grace)
        left = [d for d in self._deliveries.values() if not d.done]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if left:
            log.warning(
                "shutdown: %d callback deliver%s still pending, %s:\n%s",
                len(left),
                "y" if len(left) == 1 else "ies",
                "abandoned" if self.shared is None else "left to the other replicas",
                "\n".join(f"  {d.summary()}" for d in left),
            )
        self.abandoned = left
        if self._session is not None:
            await self._session.close()
            self._session = None
        return left

    # --- the delivery task ------------------------------------------------------------------------

    def _changed(self, d: Delivery) -> None:
        if self._deliveries.get(d.id) is not d:
            return  # forgotten (a reset): no one may count it any more
        if self._store is not None:
            self._store.put(KIND_DELIVERY, d.info.namespace or DEFAULT_NAMESPACE, "", d.id, encode(d))
            if self.shared is not None:
                self.shared.changed()
        for waiter in list(self._waiters):
            waiter.update(d)

    def _forget(self, delivery_id: str) -> None:
        d = self._deliveries[delivery_id]
        if self._store is not None:
            self._store.delete(KIND_DELIVERY, d.info.namespace or DEFAULT_NAMESPACE, "", d.id)
        self._drop(delivery_id)

    def _task_done(self, delivery: Delivery, task: asyncio.Task[None]) -> None:
        if self._tasks.get(delivery.id) is task:  # not a later task for it (taken over again)
            del self._tasks[delivery.id]
        if not task.cancelled() and (exc := task.exception()) is not None:
            # A bug in the dispatcher, not a receiver failure: say so loudly.
            log.error("callback delivery %s crashed", delivery.id, exc_info=exc)

    def _finish(self, delivery: Delivery, state: DeliveryState) -> None:
        delivery.state = state
        delivery.finished = self.clock.time()
        if self._deliveries.get(delivery.id) is not delivery:
            return  # forgotten by a reset while it ran
        self._changed(delivery)
        self._finished[delivery.id] = None
        while len(self._finished) > self.max_deliveries:
            self._forget(next(iter(self._finished)))

    def _refuse(self, d: Delivery, number: int, reason: str) -> None:
        """Never sent: journaled with the reason, and finished as ``refused``."""
        d.refusal = reason
        log.warning("callback delivery %s to %s refused: %s", d.id, d.info.url, reason)
        self._record(d, number, None, f"not sent: {reason}", 0.0, None)
        self._finish(d, "refused")

    async def _decide_fault(self, d: Delivery, build: PayloadBuilder | None) -> None:
        """The failure mode of a delivery queued with a shared store, asked once: by the task of the
        process that queued it (one taken over before it was asked gets none: only that process
        could make its payload again)."""
        d.fault_pending = False
        source = self.shared_fault_source
        if source is None or build is None:
            return
        try:
            fault = await source(d.info)
        except StoreUnavailable as exc:  # the shared store did not answer: sent without a fault
            log.warning("callback %s: no fault rule asked (%s)", d.id, exc)
            return
        if fault is not None:
            d.fault, d.payload = fault, build(fault)
        self._changed(d)

    async def _run(self, d: Delivery, build: PayloadBuilder | None = None) -> None:
        if d.fault_pending:
            await self._decide_fault(d, build)
        fault = d.fault
        kind = fault.kind if fault is not None else None
        # A delivery resumed after a restart goes on after the attempts it made.
        first = sum(1 for a in d.attempts if not a.duplicate) + 1
        if d.next_attempt_at is not None:
            # Resumed while it waited: the wait ends when it was due to.
            await self._wait(d, max(0.0, d.next_attempt_at - self.clock.time()))
        elif first == 1:
            if kind == "drop":
                assert fault is not None
                self._record(d, 0, None, "not sent: dropped by a callback fault", 0.0, fault.label)
                self._finish(d, "dropped")
                return
            if fault is not None and kind == "delay" and fault.seconds > 0:
                await self._wait(d, fault.seconds)
            if fault is not None and kind == "out_of_order":
                await self._hold(d, fault.seconds or DEFAULT_HOLD_SECONDS)
        for number in range(first, self.max_retries + 2):
            # Again before every attempt: the console may have moved its URL since.
            if (refusal := self.allowed.refusal(d.info.url)) is not None:
                self._refuse(d, number, refusal)
                return
            if await self._attempt(d, number):
                if kind == "duplicate":
                    await self._attempt(d, number + 1, duplicate=True)
                self._finish(d, "delivered")
                return
            if number <= self.max_retries:
                await self._wait(d, self.delay_before_retry(number))
        self._finish(d, "exhausted")

    async def _wait(self, d: Delivery, seconds: float) -> None:
        d.next_attempt_at = self.clock.time() + seconds
        self._changed(d)
        # Nothing may be awaited between _changed() and the sleep: the clock registers the sleep
        # before suspending, so whoever saw this state can advance a ManualClock right away.
        await self.clock.sleep(seconds)
        d.next_attempt_at = None

    async def _hold(self, d: Delivery, bound: float) -> None:
        """Wait until a later delivery to the same URL has made its first attempt (or ``bound``)."""

        def overtakes(o: Delivery) -> bool:
            return o.seq > d.seq and o.info.url == d.info.url and bool(o.attempts)

        if any(overtakes(o) for o in self._deliveries.values()):
            return
        d.held = True
        future = asyncio.get_running_loop().create_future()
        waiter = _Waiter(overtakes, 1, future)
        self._waiters.append(waiter)
        try:
            await self._first_of(future, self._wait(d, bound))
        finally:
            self._waiters.remove(waiter)
            d.held = False
            d.next_attempt_at = None

    async def _first_of(self, main: Awaitable[T], timer: Coroutine[Any, Any, None]) -> T | None:
        """``main``'s result, or None when ``timer`` ends first; the loser is cancelled and awaited."""
        work = asyncio.ensure_future(main)
        clock = asyncio.ensure_future(timer)
        try:
            await asyncio.wait({work, clock}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (work, clock):
                t.cancel()
            await asyncio.gather(work, clock, return_exceptions=True)
        if work.done() and not work.cancelled():
            return work.result()
        return None

    @contextlib.asynccontextmanager
    async def _slot(self, url: str) -> AsyncIterator[None]:
        """One of the receiver's ``max_concurrent_per_receiver`` attempt slots, for the block."""
        if not self.max_concurrent_per_receiver:
            yield
            return
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc.rpartition('@')[2].lower()}"
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(asyncio.Semaphore(self.max_concurrent_per_receiver))
        slot.users += 1
        try:
            async with slot.semaphore:
                yield
        finally:
            slot.users -= 1
            if not slot.users:
                del self._slots[key]

    async def _attempt(self, d: Delivery, number: int, *, duplicate: bool = False) -> bool:
        # The attempt's clock starts once a slot is free: a busy receiver delays, it does not fail.
        async with self._slot(d.info.url):
            if self.shared is not None:
                await self.shared.confirm(d.id)  # LeaseLost: another replica makes it
            return await self._attempt_now(d, number, duplicate)

    async def _attempt_now(self, d: Delivery, number: int, duplicate: bool) -> bool:
        started = self.clock.time()
        t0 = time.perf_counter()
        d.in_flight = True
        self._changed(d)
        sent: _Response | None = None
        error: str | None = None
        try:
            sent = await self._first_of(self._post(d), self._timeout())
            if sent is None:
                error = f"timed out after {self.attempt_timeout:g}s"
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {exc}"
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
        finally:
            d.in_flight = False
        duration = time.perf_counter() - t0
        label = self._fault_label(d, number, duplicate)
        entry = self._record(d, number, sent, error, duration, label, started=started)
        attempt = Attempt(
            number=number,
            started=started,
            duration=duration,
            status=None if sent is None else sent[0],
            error=error,
            entry_id=None if entry is None else entry.id,
            fault=label,
            duplicate=duplicate,
        )
        d.attempts.append(attempt)
        self._changed(d)
        return attempt.ok

    async def _timeout(self) -> None:
        await self.clock.sleep(self.attempt_timeout)

    async def _post(self, d: Delivery) -> _Response:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                # The attempt timeout runs on the injected clock instead (see _attempt).
                timeout=aiohttp.ClientTimeout(total=None),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )
        headers = {"Content-Type": d.payload.content_type}
        async with self._session.post(
            d.info.url, data=d.payload.body, headers=headers, allow_redirects=False
        ) as response:
            # Only the first max_response_bytes are kept (read() answers a chunk at a time).
            body = b""
            while len(body) < self.max_response_bytes:
                chunk = await response.content.read(self.max_response_bytes - len(body))
                if not chunk:
                    break
                body += chunk
            return (
                response.status,
                tuple(response.headers.items()),
                body,
                tuple(response.request_info.headers.items()),
            )

    def _fault_label(self, d: Delivery, number: int, duplicate: bool) -> str | None:
        fault = d.fault
        if fault is None:
            return None
        if fault.kind in CONTENT_FAULTS or fault.kind == "drop":
            return fault.label
        if fault.kind == "duplicate":
            return fault.label if duplicate else None
        return fault.label if number == 1 else None  # delay, out_of_order: the held-back attempt

    def _record(
        self,
        d: Delivery,
        number: int,
        sent: _Response | None,
        error: str | None,
        duration: float,
        fault: str | None,
        *,
        started: float | None = None,
    ) -> Entry | None:
        parts = urlsplit(d.info.url)
        status, response_headers, response_body, request_headers = (
            sent if sent is not None else (None, (), b"", (("Content-Type", d.payload.content_type),))
        )
        if request_log.enabled():
            outcome = "dropped" if number == 0 else "delivered" if status == 200 else "failed"
            request_log.exchange(
                time=self.clock.time() if started is None else started, direction="out",
                provider=d.info.provider, action=d.info.action, account=d.info.account,
                namespace=d.info.namespace, method="POST", target=d.info.url, status=status,
                duration=duration, fault=fault, error=error, correlation_id=d.info.correlation_id,
                attempt=number, max_attempts=self.max_retries + 1, outcome=outcome,
            )
        return self.journal.record(
            Entry(
                id=0,
                time=self.clock.time() if started is None else started,
                direction="out",
                method="POST",
                url=d.info.url,
                path=parts.path or "/",
                query=tuple(parse_qsl(parts.query, keep_blank_values=True)),
                request_headers=request_headers,
                request_body=d.payload.body,
                provider=d.info.provider,
                action=d.info.action,
                account=d.info.account,
                namespace=d.info.namespace,
                parsed=d.payload.parsed,
                status=status,
                response_headers=response_headers,
                response_body=response_body,
                duration=duration,
                fault=fault,
                correlation_id=d.info.correlation_id,
                error=error,
            )
        )
