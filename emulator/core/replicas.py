"""What replicas sharing one Redis decide together: the throttle, fault schedules, callback leases,
the signature nonces seen; and how each keeps its state in memory in step with the others'
(:class:`Follower`, :class:`SharedClock`).

Each is one atomic step in Redis (a Lua script or ``SET NX``), so two replicas never both take the
last slot of a window, both fire a ``first: 1`` rule, or both attempt one delivery. They take the
client of the :class:`~emulator.core.storage.redis.RedisStore` (``store.client``), so one process
keeps one connection pool. Keys live under the store's prefix (``emulator:`` by default)::

    {p}tw:{namespace}:{key}   zset    the instants (µs) a throttle window admitted, expiring
    {p}fc:{rule}              hash    a fault rule's counts: m, f (all) and m:{ns}, f:{ns}, added
    {p}lease:{delivery}       string  the replica holding a delivery, expiring with the lease
    {p}ids:callbacks.replicas string  the last replica number given out (delivery ids: cb-{n}-{seq})
    {p}once:{key}             string  a key seen (a signature nonce), expiring with its time
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .call import ALL_NAMESPACES, DEFAULT_NAMESPACE
from .callbacks import KIND_DELIVERY, Delivery, Dispatcher, LeaseLost
from .clock import Clock, ManualClock
from .faults import Schedule, SharedCount
from .storage import Store, StoreUnavailable
from .storage.base import Record
from .storage.codec import decode
from .storage.redis import Address, Change, ChangesLost, Dropped, RedisStore, _field

log = logging.getLogger("emulator.replicas")

# --- the throttle ------------------------------------------------------------------------------

# Decides several calls in one go (those made in one turn of the event loop), in order. KEYS: each
# call's window. ARGV: the window (µs), then per call: its limit, now (µs; "" for Redis TIME), its
# member. Answers per call -1 when admitted, else the µs until a slot frees, then per call the
# instant decided at. Same rule as SlidingWindowLimiter: a call leaves the window ``window`` after
# it was admitted (a call exactly at the horizon is out); refused calls are not recorded.
_ACQUIRE = """
local window = tonumber(ARGV[1])
local clock
local waits, instants = {}, {}
for i, key in ipairs(KEYS) do
  local limit, now, member = tonumber(ARGV[3 * i - 1]), ARGV[3 * i], ARGV[3 * i + 1]
  if now == '' then
    if clock == nil then
      local t = redis.call('TIME')
      clock = tonumber(t[1]) * 1000000 + tonumber(t[2])
    end
    now = clock
  else
    now = tonumber(now)
  end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local n = redis.call('ZCARD', key)
  if n >= limit then
    local oldest = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
    waits[i] = tonumber(oldest[2]) + window - now
  else
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, math.floor(window / 1000) + 1)
    waits[i] = -1
  end
  instants[i] = now
end
for i = 1, #instants do waits[#waits + 1] = instants[i] end
return waits
"""


@contextmanager
def _answering(what: str) -> Iterator[None]:
    """Redis lost or timing out, as the store's own error (the gateway answers the provider's
    503-class error for it)."""
    try:
        yield
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"Redis did not answer for {what}: {exc}") from exc


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


#: Calls waiting for their turn: key, args, and the future their answer goes to.
_Queued = list[tuple[str, list[Any], "asyncio.Future[Any]"]]


class Batched:
    """Calls of one Lua script made in the same turn of the event loop, sent to Redis as one call
    of the script: under load, one command and one round trip for many calls instead of one each
    (redis-py's cost is per command). The script takes every call's key in KEYS and, after the
    ``common`` arguments, every call's arguments in turn; it answers ``width`` lists of one value
    per call (the first list all calls' first values, and so on)."""

    def __init__(self, client: aioredis.Redis, script: str, width: int) -> None:
        self._client = client
        self._script = client.register_script(script)
        self._width = width
        self._queue: _Queued = []
        self._scheduled = False
        self._sending: asyncio.Future[None] | None = None
        self._common: list[Any] = []

    async def __call__(self, key: str, args: list[Any], common: list[Any]) -> list[Any]:
        """The script's answer for one call (``common`` must be the same for every call)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((key, args, future))
        if not self._scheduled:
            self._scheduled = True
            self._common = common
            loop.call_soon(self._send_soon)
        answer: list[Any] = await future
        return answer

    def _send_soon(self) -> None:
        self._scheduled = False
        if self._sending is None:
            self._sending = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        """One call of the script at a time: calls made while one is under way go in the next
        (fewer, larger calls under load, and one connection)."""
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                await self._send(batch, self._common)
        finally:
            self._sending = None

    async def _send(self, batch: _Queued, common: list[Any]) -> None:
        keys = [key for key, _, _ in batch]
        args = [*common]
        for _, call_args, _ in batch:
            args.extend(call_args)
        try:
            flat = await self._script(keys=keys, args=args)
        except Exception as exc:  # Redis lost: every call of the batch is told
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        count = len(batch)
        for n, (_, _, future) in enumerate(batch):
            if not future.done():  # else the call went away
                future.set_result([flat[w * count + n] for w in range(self._width)])


#: Throttle keys whose Redis key names a limiter remembers (the throttle keeps 10,000 windows).
KEY_NAMES = 10_000


class Acquired(NamedTuple):
    """One throttle decision: ``retry_after`` None when admitted (else the seconds until a slot
    frees), and ``at``, the instant (µs, Redis TIME or the given clock) it was decided at."""

    retry_after: float | None
    at: int


class RedisLimiter:
    """:class:`~emulator.core.throttle.SlidingWindowLimiter` across replicas: at most ``limit``
    calls per key in any ``window`` seconds, whichever replica receives them. Time is Redis's
    ``TIME`` (one clock for all replicas), or ``clock.time()`` when a clock is given (the manual
    clock). Windows expire with their last call, so keys stay bounded by the calls of one window."""

    def __init__(
        self,
        client: aioredis.Redis,
        clock: Clock | None = None,
        window: float = 1.0,
        *,
        prefix: str = "emulator:",
    ) -> None:
        if window <= 0:
            raise ValueError("window must be positive")
        self._client = client
        self._clock = clock
        self._window_us = round(window * 1_000_000)
        self._prefix = prefix
        self._script = Batched(client, _ACQUIRE, 2)
        # Members of the windows' sets must be unique across replicas and calls.
        self._tag = uuid.uuid4().hex[:12]
        self._calls = itertools.count()
        self._names: dict[Hashable, str] = {}

    def key_name(self, key: Hashable) -> str:
        """The Redis key of a window; keys made by core/throttle.window_key (scope, namespace,
        owner, action) are filed under their namespace, for :meth:`reset`. Remembered for the
        most recent :data:`KEY_NAMES` keys (made on every throttled call)."""
        names = self._names
        name = names.get(key)
        if name is None:
            if len(names) >= KEY_NAMES:
                names.clear()
            name = names[key] = self._key_name(key)
        return name

    def _key_name(self, key: Hashable) -> str:
        parts = list(key) if isinstance(key, tuple) else [key]
        namespace = parts.pop(1) if len(parts) > 1 and isinstance(parts[1], str) else ""
        return f"{self._prefix}tw:{namespace}:{json.dumps(parts, default=str, separators=(',', ':'))}"

    async def acquire(self, key: Hashable, limit: int) -> Acquired:
        if limit <= 0:
            return Acquired(0.0, 0)
        now = "" if self._clock is None else str(round(self._clock.time() * 1_000_000))
        member = f"{self._tag}:{next(self._calls)}"
        try:
            wait, at = await self._script(self.key_name(key), [limit, now, member], [self._window_us])
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"Redis did not answer for the throttle: {exc}") from exc
        return Acquired(None if wait < 0 else max(0.0, wait / 1_000_000), int(at))

    async def try_acquire(self, key: Hashable, limit: int) -> float | None:
        """None when the call is admitted (and recorded), else the seconds until one could be."""
        return (await self.acquire(key, limit)).retry_after

    async def reset(self, namespace: str | None = None) -> int:
        """Forget every window (None), or a namespace's; answers how many there were."""
        pattern = f"{self._prefix}tw:" + ("*" if namespace is None else _glob_escape(namespace) + ":*")
        gone = 0
        batch: list[Any] = []
        async for name in self._client.scan_iter(match=pattern, count=1000):
            batch.append(name)
            if len(batch) >= 500:
                gone += int(await self._client.unlink(*batch))
                batch.clear()
        if batch:
            gone += int(await self._client.unlink(*batch))
        return gone


# --- fault schedules -----------------------------------------------------------------------------

# KEYS: the rule's counts. ARGV: namespace ("" : the rule belongs to one namespace and counts all its
# calls), nth, first, every, after, times, window from, window until, probability, seed (all "" when
# unset), age in seconds ("" : from the instant stored by register, or the first call). Counts the
# call, decides as Schedule.decide does (in the same order), counts the firing. Answers {matched,
# fired, fire, total matched, total fired}, the first two those the schedule decided on.
_DECIDE = """
local key = KEYS[1]
local ns = ARGV[1]
local nth, first, every, after, times = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]),
  tonumber(ARGV[5]), tonumber(ARGV[6])
local wfrom, wuntil, probability = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local seed, age = ARGV[10], tonumber(ARGV[11])
if age == nil then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  redis.call('HSETNX', key, 'added', string.format('%.6f', now))
  age = now - tonumber(redis.call('HGET', key, 'added'))
end
local total = redis.call('HINCRBY', key, 'm', 1)
local mkey, fkey = 'm', 'f'
local matched = total
if ns ~= '' then
  mkey, fkey = 'm:' .. ns, 'f:' .. ns
  matched = redis.call('HINCRBY', key, mkey, 1)
end
local fired = tonumber(redis.call('HGET', key, fkey) or '0')
local fire = 1
if times ~= nil and fired >= times then fire = 0
elseif wfrom ~= nil and age < wfrom then fire = 0
elseif wuntil ~= nil and age >= wuntil then fire = 0
elseif nth ~= nil and matched ~= nth then fire = 0
elseif first ~= nil and matched > first then fire = 0
elseif every ~= nil and matched % every ~= 0 then fire = 0
elseif after ~= nil and matched <= after then fire = 0
elseif probability ~= nil then
  local draw = tonumber(string.sub(redis.sha1hex(seed .. ':' .. matched), 1, 13), 16) / 4503599627370496
  if not (draw < probability) then fire = 0 end
end
local total_fired = tonumber(redis.call('HGET', key, 'f') or '0')
if fire == 1 then
  total_fired = redis.call('HINCRBY', key, 'f', 1)
  if ns ~= '' then fired = redis.call('HINCRBY', key, fkey, 1) else fired = total_fired end
end
return {matched, fired, fire, total, total_fired}
"""


def draw(seed: str, matched: int) -> float:
    """The probability draw of the ``matched``-th call, as the decide script makes it: the first 52
    bits of SHA-1("seed:matched") as a fraction of 1. The same on every replica, so they agree."""
    return int(hashlib.sha1(f"{seed}:{matched}".encode()).hexdigest()[:13], 16) / 2**52


#: One counted call: the counts the schedule decided on (the namespace's, for a rule of every
#: namespace), whether it fires, and the rule's counts over all namespaces.
Counted = SharedCount


def _arg(value: float | None) -> str:
    return "" if value is None else repr(value)


class ScheduleCounters:
    """Fault-rule counts kept in Redis, so that ``nth``, ``first``, ``every``, ``after`` and
    ``times`` count every replica's calls and exactly one replica fires the nth. Decides as
    :meth:`emulator.core.faults.Schedule.decide` does, except the probability draw: not Python's
    random sequence but :func:`draw` of (seed, matched), which every replica computes alike (a rule
    without a seed draws with its id as the seed)."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "emulator:") -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_DECIDE)

    def key_name(self, rule_id: str) -> str:
        return f"{self._prefix}fc:{rule_id}"

    async def register(self, rule_id: str) -> None:
        """Start the rule's clock for ``window`` schedules (Redis TIME) when it is added; counts of
        an earlier rule with this id are forgotten."""
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.delete(self.key_name(rule_id))
            pipe.eval(
                "local t = redis.call('TIME') "
                "return redis.call('HSET', KEYS[1], 'added', string.format('%.6f', t[1] + t[2] / 1000000))",
                1,
                self.key_name(rule_id),
            )
            await pipe.execute()

    async def decide(
        self,
        rule_id: str,
        schedule: Schedule,
        namespace: str | None = None,
        age: float | None = None,
    ) -> Counted:
        """Count one matching call and decide it. ``namespace``: the call's namespace when the rule
        is of every namespace (it counts per namespace), None for a rule of one namespace. ``age``:
        seconds since the rule was added (None: from :meth:`register`'s Redis TIME)."""
        seed = rule_id if schedule.seed is None else str(schedule.seed)
        args = [
            namespace or "",
            _arg(schedule.nth),
            _arg(schedule.first),
            _arg(schedule.every),
            _arg(schedule.after),
            _arg(schedule.times),
            _arg(schedule.window_from),
            _arg(schedule.window_until),
            _arg(schedule.probability),
            seed,
            _arg(age),
        ]
        with _answering("a fault schedule"):
            matched, fired, fire, total, total_fired = await self._script(
                keys=[self.key_name(rule_id)], args=args
            )
        return Counted(int(matched), int(fired), bool(fire), int(total), int(total_fired))

    async def counts(self, rule_id: str, namespace: str | None = None) -> tuple[int, int]:
        """(matched, fired) of a rule, over all namespaces or in one."""
        [counts] = await self.counts_of([(rule_id, namespace)])
        return counts

    async def counts_of(self, wanted: Sequence[tuple[str, str | None]]) -> list[tuple[int, int]]:
        """:meth:`counts` of several (rule, namespace) pairs, in one round trip."""
        if not wanted:
            return []
        with _answering("a fault schedule"):
            async with self._client.pipeline(transaction=False) as pipe:
                for rule_id, namespace in wanted:
                    fields = ("m", "f") if namespace is None else (f"m:{namespace}", f"f:{namespace}")
                    pipe.hmget(self.key_name(rule_id), fields)
                answers = await pipe.execute()
        return [(int(matched or 0), int(fired or 0)) for matched, fired in answers]

    async def forget(self, rule_id: str, namespace: str | None = None) -> None:
        """Drop a rule's counts (it was deleted), or only those of one namespace (a namespace reset)."""
        if namespace is None:
            await self._client.delete(self.key_name(rule_id))
        else:
            await self._client.hdel(self.key_name(rule_id), f"m:{namespace}", f"f:{namespace}")


# --- callback leases -----------------------------------------------------------------------------

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class Leases:
    """Who attempts a callback delivery: the replica holding its lease. A lease is taken with
    ``SET NX PX`` (one replica wins), renewed by its holder while it works on the delivery, and
    released when the delivery is done; a replica that dies stops renewing, the lease expires and
    :meth:`orphans` lists the delivery for another replica to :meth:`claim`. The delivery itself
    (next attempt time, attempt count) is a record in the store, so the taker continues from there.
    Delivery ids must be unique across namespaces (they are the records' keys)."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "emulator:") -> None:
        self._client = client
        self._prefix = prefix
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def key_name(self, delivery_id: str) -> str:
        return f"{self._prefix}lease:{delivery_id}"

    async def claim(self, delivery_id: str, replica_id: str, lease_seconds: float) -> bool:
        """Take the lease unless another replica holds it."""
        with _answering("a callback lease"):
            taken = await self._client.set(
                self.key_name(delivery_id), replica_id, nx=True, px=_ms(lease_seconds)
            )
        return bool(taken)

    async def renew(self, delivery_id: str, replica_id: str, lease_seconds: float) -> bool:
        """Extend a lease ``replica_id`` holds; False when it no longer does (it expired, and maybe
        another replica took the delivery over: stop working on it)."""
        with _answering("a callback lease"):
            renewed = await self._renew(
                keys=[self.key_name(delivery_id)], args=[replica_id, _ms(lease_seconds)]
            )
        return bool(renewed)

    async def release(self, delivery_id: str, replica_id: str) -> bool:
        """Give the lease up (the delivery is finished or rescheduled); only its holder can."""
        with _answering("a callback lease"):
            released = await self._release(keys=[self.key_name(delivery_id)], args=[replica_id])
        return bool(released)

    async def holder(self, delivery_id: str) -> str | None:
        with _answering("a callback lease"):
            raw = await self._client.get(self.key_name(delivery_id))
        return None if raw is None else raw.decode() if isinstance(raw, bytes) else str(raw)

    async def unleased(self, delivery_ids: Sequence[str]) -> list[str]:
        """Those of ``delivery_ids`` no replica holds a lease on (one round trip)."""
        if not delivery_ids:
            return []
        with _answering("a callback lease"):
            held = await self._client.mget([self.key_name(d) for d in delivery_ids])
        return [d for d, holder in zip(delivery_ids, held, strict=True) if holder is None]

    async def orphans(self, store: RedisStore, kind: str, namespace: str | None = None) -> list[Record]:
        """The stored deliveries (records of ``kind``, their attempt counts in them) no replica
        holds a lease on, oldest written first."""
        records = [r for r in await store.records(namespace, kind) if r.kind == kind]
        free = set(await self.unleased([r.key for r in records]))
        return [r for r in records if r.key in free]

    async def renew_all(
        self, delivery_ids: Sequence[str], replica_id: str, lease_seconds: float
    ) -> list[bool]:
        """:meth:`renew` of each, in one round trip."""
        return await self._each(self._renew, delivery_ids, replica_id, _ms(lease_seconds))

    async def release_all(self, delivery_ids: Sequence[str], replica_id: str) -> list[bool]:
        """:meth:`release` of each, in one round trip."""
        return await self._each(self._release, delivery_ids, replica_id)

    async def claim_or_renew(
        self, ops: Sequence[tuple[bool, str]], replica_id: str, lease_seconds: float
    ) -> list[bool]:
        """For each (claim?, delivery): :meth:`claim` when claim? is true, else :meth:`renew`; in one
        round trip (one connection, however many deliveries start or are attempted at once)."""
        if not ops:
            return []
        ms = _ms(lease_seconds)
        with _answering("a callback lease"):
            async with self._client.pipeline(transaction=False) as pipe:
                for claim, delivery_id in ops:
                    key = self.key_name(delivery_id)
                    if claim:
                        pipe.set(key, replica_id, nx=True, px=ms)
                    else:
                        await self._renew(keys=[key], args=[replica_id, ms], client=pipe)
                answers = await pipe.execute()
        return [bool(a) for a in answers]

    async def _each(self, script: Any, delivery_ids: Sequence[str], *args: Any) -> list[bool]:
        if not delivery_ids:
            return []
        with _answering("a callback lease"):
            async with self._client.pipeline(transaction=False) as pipe:
                for delivery_id in delivery_ids:
                    await script(keys=[self.key_name(delivery_id)], args=list(args), client=pipe)
                answers = await pipe.execute()
        return [bool(a) for a in answers]


class LeasedOutbox:
    """The callback outbox of replicas sharing one Redis (the dispatcher's
    :class:`~emulator.core.callbacks.SharedOutbox`): exactly one replica attempts each delivery.

    - The replica that queues a delivery claims its lease first, and makes no attempt without it;
      before each attempt it renews the lease (so it holds it for ``lease_seconds`` more), and a
      keeper renews every lease held every ``lease_seconds / 3`` while the delivery waits or is
      sent. Once the delivery is finished (delivered, exhausted, dropped, refused) its record is
      committed, then the lease released.
    - The same keeper reads the other replicas' changes (the follower) and takes over the orphans:
      pending deliveries no replica holds a lease on (a replica died, or stopped and handed them
      over). It claims one, reads its record afresh and continues it: next attempt at the stored
      time, numbered after the attempts made.
    - A renewal that fails (the lease expired and maybe another replica has the delivery) stops
      the work here at once, nothing written. Redis lost: every delivery is kept, and lease
      operations are tried again each round (an attempt waits for its renewal).
    - The deliveries every replica makes are listed on each: the outbox follows their records.

    Delivery ids are ``cb-{replica number}-{seq}``, the number given out once per replica by Redis:
    unique across replicas at no round trip per delivery, and free of Redis while serving.
    """

    def __init__(
        self,
        store: RedisStore,
        follower: Follower,
        dispatcher: Dispatcher,
        lease_seconds: float = 10.0,
        *,
        prepare: Callable[[str], object] | None = None,
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self.store = store
        self.follower = follower
        self.dispatcher = dispatcher
        self.lease_seconds = lease_seconds
        self.leases = Leases(store.client, prefix=store.prefix)
        #: Called with a namespace before a delivery of it is taken over (its state loaded here).
        self.prepare = prepare
        #: The records followed (core/replicas.Followed).
        self.prefix = KIND_DELIVERY
        #: Deliveries taken over from other replicas, and leases lost to them, since start.
        self.taken_over = 0
        self.lost = 0
        #: Leases held for the deliveries worked on here, and those to release once their last
        #: change is stored (renewed until then).
        self._held: set[str] = set()
        self._releasing: set[str] = set()
        self._releases = asyncio.Lock()
        #: When a sweep first found each delivery no replica held (monotonic): one is taken over
        #: only once it stayed so for a lease, so the replica that just queued it (about to claim
        #: it) keeps it. Holds only the deliveries found so in the last sweep.
        self._unheld_since: dict[str, float] = {}
        #: Claims and renewals asked for and not yet sent (sent together: see _ask).
        self._asked: list[tuple[bool, str, asyncio.Future[bool]]] = []
        self._asking: asyncio.Task[None] | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._flush: asyncio.Task[None] | None = None
        #: A delivery's record was queued since the last commit this outbox made.
        self._dirty = False
        #: The deliveries listed must be read again from the store (a reload Redis did not answer).
        self._reload = False
        self._away = False
        dispatcher.shared = self

    @property
    def replica(self) -> str:
        return self.store.replica

    @property
    def period(self) -> float:
        """Seconds between the keeper's rounds (renewals and the sweep for orphans)."""
        return self.lease_seconds / 3

    async def start(self) -> None:
        """Before the first call: this replica's number for delivery ids, and the keeper (whose first
        round takes over the deliveries left by replicas that are gone)."""
        number = await self.store.allocate("callbacks.replicas")
        self.dispatcher.id_prefix = f"cb-{number}-"
        self._keeper = asyncio.get_running_loop().create_task(self._keep(), name="callback leases")

    async def close(self) -> None:
        """After the dispatcher's close: the leases of deliveries left pending are released (their
        records stored first), so another replica takes them over at once."""
        for task in (self._keeper, self._flush, self._asking):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._releasing |= self._held
        self._held.clear()
        try:
            await self._release()
        except StoreUnavailable as exc:
            log.warning("callback leases not released (they expire within %gs): %s", self.lease_seconds, exc)

    # --- SharedOutbox -----------------------------------------------------------------------------

    async def run(self, delivery: Delivery, work: Callable[[], Awaitable[None]], *, claimed: bool) -> None:
        key = delivery.id
        if not claimed:
            while True:
                try:
                    if not await self._ask(True, key):
                        return  # another replica took it (a sweep that came first): it attempts it
                    break
                except StoreUnavailable as exc:
                    self._report(exc)
                    await asyncio.sleep(self.period)
        self._held.add(key)
        try:
            await work()
        except LeaseLost:
            log.warning("callback delivery %s: its lease was lost, another replica may attempt it", key)
        finally:
            if key in self._held:  # still ours: released once its last change is stored
                self._held.discard(key)
                self._releasing.add(key)
        try:
            await self._release()
        except StoreUnavailable as exc:
            self._report(exc)  # the keeper tries again

    async def confirm(self, delivery_id: str) -> None:
        while True:
            try:
                renewed = await self._ask(False, delivery_id)
            except StoreUnavailable as exc:
                self._report(exc)
                await asyncio.sleep(self.period)
                continue
            if renewed:
                return
            self._held.discard(delivery_id)
            self.lost += 1
            raise LeaseLost(delivery_id)

    async def _ask(self, claim: bool, delivery_id: str) -> bool:
        """Claim (or renew) a lease along with every other claim and renewal asked for meanwhile:
        one round trip for them all (a burst of deliveries needs no connection each)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._asked.append((claim, delivery_id, future))
        if self._asking is None or self._asking.done():
            self._asking = asyncio.get_running_loop().create_task(self._send_asked())
        return await future

    async def _send_asked(self) -> None:
        while self._asked:
            batch, self._asked = self._asked, []
            try:
                answers = await self.leases.claim_or_renew(
                    [(claim, key) for claim, key, _ in batch], self.replica, self.lease_seconds
                )
            except StoreUnavailable as exc:
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, _, future), answer in zip(batch, answers, strict=True):
                if not future.done():  # its caller may have been cancelled meanwhile
                    future.set_result(answer)

    def changed(self) -> None:
        self._dirty = True
        if self._flush is None or self._flush.done():
            self._flush = asyncio.get_running_loop().create_task(self._commit())

    async def catch_up(self) -> None:
        await self.follower.catch_up()

    async def _commit(self) -> None:
        try:
            while self._dirty:
                self._dirty = False
                await self.store.commit()
        except StoreUnavailable as exc:
            self._dirty = True  # kept queued; the keeper's next round commits it
            self._report(exc)

    # --- Followed ---------------------------------------------------------------------------------

    def follow(self, change: Change) -> None:
        what = change[1]
        try:
            if isinstance(what, Record):
                if what.kind == KIND_DELIVERY:
                    self.dispatcher.adopt(decode(what.value, Delivery))
            elif isinstance(what, Address):
                if what.kind == KIND_DELIVERY:
                    self.dispatcher.let_go(what.key, forget=True, deleted=True)
            elif KIND_DELIVERY.startswith(what.kind_prefix):
                if what.namespace is None:  # everything dropped, or to read again: as stored now
                    self._reload = True
                    self._reload_now()
                else:
                    for d in self.dispatcher.deliveries():
                        if (d.info.namespace or DEFAULT_NAMESPACE) == what.namespace:
                            self.dispatcher.let_go(d.id, forget=True, deleted=True)
        except (ValueError, TypeError, KeyError, ExceptionGroup) as exc:
            log.warning("a callback delivery record another replica wrote does not load: %r", exc)

    def _reload_now(self) -> None:
        """The deliveries listed as the store holds them; when Redis does not answer, the keeper's
        next round tries again (the follower calling this must not fail)."""
        try:
            stored = self.store.load(None, KIND_DELIVERY)
        except StoreUnavailable as exc:
            self._report(exc)
            return
        self._reload = False
        self.dispatcher.replace_all(decode(r.value, Delivery) for r in stored)

    # --- the keeper -------------------------------------------------------------------------------

    async def _keep(self) -> None:
        while True:
            try:
                await self.keep()
            except StoreUnavailable as exc:
                self._report(exc)
            except Exception:  # a bug: said loudly, and the next round goes on
                log.exception("callback leases: a round failed")
            else:
                if self._away:
                    log.warning("callback leases: Redis answers again")
                    self._away = False
            await asyncio.sleep(self.period)

    async def keep(self) -> None:
        """One round: read the others' changes, renew the leases held, release those finished,
        take over the orphans."""
        await self.follower.catch_up()
        if self._reload:
            self._reload_now()
        await self._commit()
        held = sorted(self._held | self._releasing)
        renewals = await self.leases.renew_all(held, self.replica, self.lease_seconds)
        for key, renewed in zip(held, renewals, strict=True):
            if renewed:
                continue
            self._releasing.discard(key)
            if key in self._held:
                self._held.discard(key)
                self.lost += 1
                log.warning("callback delivery %s: its lease was lost, another replica may attempt it", key)
                self.dispatcher.let_go(key, forget=False)
        await self._release()
        await self._sweep()

    async def _release(self) -> None:
        async with self._releases:
            keys = sorted(self._releasing)
            if not keys:
                return
            # Their last change first: whoever claims one next reads its final state.
            await self.store.commit()
            await self.leases.release_all(keys, self.replica)
            self._releasing.difference_update(keys)

    async def _sweep(self) -> None:
        waiting = [d for d in self.dispatcher.unattended() if d.id not in self._releasing]
        unleased = await self.leases.unleased([d.id for d in waiting])
        now = asyncio.get_running_loop().time()
        since = {key: self._unheld_since.get(key, now) for key in unleased}
        self._unheld_since = since
        for key in unleased:
            if now - since[key] < self.lease_seconds:
                continue  # just queued, maybe: its replica claims it first
            d = self.dispatcher.get(key)
            if self.dispatcher.closed or d is None or d.done or self.dispatcher.working_on(key):
                continue
            if not await self.leases.claim(key, self.replica, self.lease_seconds):
                continue
            self._held.add(key)
            try:
                await self.store.commit()  # what this replica wrote of it, before reading it back
                stored = await self._read(d.info.namespace or DEFAULT_NAMESPACE, key)
                if stored is not None and not stored.done and self.prepare is not None:
                    # The state its attempts depend on (a receiver host the console allows).
                    self.prepare(stored.info.namespace or DEFAULT_NAMESPACE)
            except BaseException:
                self._held.discard(key)
                self._releasing.add(key)
                raise
            if stored is None or stored.done or self.dispatcher.closed:  # deleted, or finished since
                self._held.discard(key)
                self._releasing.add(key)
                if stored is None:
                    self.dispatcher.let_go(key, forget=True)
                else:
                    self.dispatcher.adopt(stored)
                continue
            self.taken_over += 1
            log.info("callback delivery %s taken over after %d attempt(s)", key, len(stored.attempts))
            self.dispatcher.take_over(stored)

    async def _read(self, namespace: str, key: str) -> Delivery | None:
        with _answering("a callback delivery"):
            raw = await self.store.client.hget(
                f"{self.store.prefix}r:{namespace}", _field(KIND_DELIVERY, "", key)
            )
        return None if raw is None else decode(json.loads(raw), Delivery)

    def _report(self, exc: StoreUnavailable) -> None:
        if not self._away:
            log.warning(
                "callback leases: Redis did not answer; deliveries are kept, retried every %gs: %s",
                self.period,
                exc,
            )
        self._away = True


# --- following the other replicas' changes -------------------------------------------------------


class Followed(Protocol):
    """A part of the state kept in memory that follows the other replicas' committed changes."""

    #: Every kind of record the part keeps starts with it.
    prefix: str

    def follow(self, change: Change) -> None:
        """Bring the working set up to date with one change another replica committed (or forget
        what it no longer knows to be current, to read it back from the store when next used)."""


def concerns(change: Change, prefix: str) -> bool:
    """Whether ``change`` touches records of kinds starting with ``prefix``."""
    what = change[1]
    if isinstance(what, Dropped):
        return what.kind_prefix.startswith(prefix) or prefix.startswith(what.kind_prefix)
    return what.kind.startswith(prefix)


class Follower:
    """Keeps this replica's working set in step with the others': before a call is handled,
    :meth:`catch_up` reads the changes committed since the last look (one round trip, shared by
    every call that arrives while it runs) and hands each to the parts whose kinds it touches.

    A call sees every change acknowledged before it arrived: a call waits for a read that *started*
    after it arrived, never joins one already under way."""

    def __init__(self, store: RedisStore, parts: Sequence[Followed] = ()) -> None:
        self.store = store
        self.parts = list(parts)
        self._cursor = "0-0"
        self._waiting: asyncio.Future[None] | None = None
        self._running: asyncio.Task[None] | None = None
        #: Changes applied, and times the feed had moved past the cursor (everything forgotten).
        self.applied = 0
        self.reloads = 0

    async def start(self) -> None:
        """From now on: what the parts hold was read after this point (they read on first use)."""
        self._cursor = await self.store.changes_cursor()
        self._forget_all()

    async def catch_up(self) -> None:
        """Return once every change committed before this call is applied (StoreUnavailable when
        Redis does not answer)."""
        waiting = self._waiting
        if waiting is None:
            waiting = self._waiting = asyncio.get_running_loop().create_future()
            # A failure nobody awaits any more (the calls went away) is not reported as unretrieved.
            waiting.add_done_callback(lambda f: f.cancelled() or f.exception())
            if self._running is None:
                self._running = asyncio.ensure_future(self._run())
        await asyncio.shield(waiting)

    async def _run(self) -> None:
        try:
            while (done := self._waiting) is not None:
                self._waiting = None  # calls arriving from now on wait for the next read
                try:
                    try:
                        self._cursor, changes = await self.store.changes_since(self._cursor)
                    except ChangesLost as exc:
                        self._cursor = exc.cursor
                        self._forget_all()
                    else:
                        self.apply(changes)
                except Exception as exc:  # Redis lost (StoreUnavailable), or a fault of ours
                    done.set_exception(exc)
                else:
                    done.set_result(None)
        finally:
            self._running = None

    def apply(self, changes: Sequence[Change]) -> None:
        for change in changes:
            for part in self.parts:
                if concerns(change, part.prefix):
                    part.follow(change)
        self.applied += len(changes)

    def _forget_all(self) -> None:
        self.reloads += 1
        everything: Change = ("drop", Dropped(None, ""))
        for part in self.parts:
            part.follow(everything)


class SharedClock:
    """A manual clock moved together: a move through any replica's admin API is a record every
    other replica's clock follows (a clock only goes forward, so each takes the latest time)."""

    prefix = "clock."
    KIND = "clock.now"

    def __init__(self, clock: ManualClock, store: Store) -> None:
        self.clock = clock
        self.store = store
        self._catch_up(r.value for r in store.load(ALL_NAMESPACES, self.prefix))

    def moved(self, now: float) -> None:
        self.store.put(self.KIND, ALL_NAMESPACES, "", "", {"now": now})

    def follow(self, change: Change) -> None:
        what = change[1]
        if isinstance(what, Record):
            self._catch_up([what.value])
        elif isinstance(what, Dropped):  # the feed moved past us: read the time back
            self._catch_up(r.value for r in self.store.load(ALL_NAMESPACES, self.prefix))

    def _catch_up(self, values: Iterable[Any]) -> None:
        for value in values:
            if isinstance(value, dict) and isinstance(value.get("now"), int | float):
                if value["now"] > self.clock.time():
                    self.clock.advance_to(value["now"])


# --- things seen once across replicas -------------------------------------------------------------

# Marks each key seen, unless it is already. KEYS: the keys. ARGV: per key, how long (ms) it stays
# marked. Answers per key 1 when it was not marked (first seen), else 0.
_ONCE = """
local firsts = {}
for i, key in ipairs(KEYS) do
  firsts[i] = redis.call('SET', key, '1', 'NX', 'PX', ARGV[i]) and 1 or 0
end
return firsts
"""


class SeenOnce:
    """Keys every replica sees at most once within their time (a request's signature nonce while a
    replay could pass the clock check): one ``SET NX PX`` each, those of one turn of the event
    loop in one script call. Keys expire with their time, so what is kept is bounded by it."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "emulator:") -> None:
        self._prefix = prefix
        self._script = Batched(client, _ONCE, 1)

    async def first(self, key: str, seconds: float) -> bool:
        """Whether ``key`` is seen for the first time (then it stays seen for ``seconds``)."""
        if seconds <= 0:
            return True  # past its time already: nothing to remember
        try:
            [first] = await self._script(f"{self._prefix}once:{key}", [_ms(seconds)], [])
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"Redis did not answer for a replay check: {exc}") from exc
        return bool(first)
