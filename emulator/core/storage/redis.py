"""The storage seam on Redis, shared by every replica (and every ``--workers`` process) of one
emulator: ``storage.url = redis://HOST:PORT/DB``. Needs the ``redis`` extra (redis-py).

Layout, under a key prefix (``emulator:`` by default), on one standalone Redis (not Cluster: the
scripts touch keys they compute)::

    {p}r:{namespace}  hash    record address -> JSON value ("[kind, account, key]" -> value)
    {p}o:{namespace}  zset    record address -> the global sequence number of its last write
    {p}ns             set     the namespaces that hold records
    {p}seq            string  the global write sequence (INCR)
    {p}meta           hash    the store's own small values (JSON)
    {p}journal        stream  every replica's journal rows (bounded: XADD MAXLEN ~ capacity), and a
                              mark where a replica cleared it (core/shared_journal.py reads both)
    {p}changes        stream  every committed record change, with its writer (bounded)

One hash per namespace, not one key per record: read back, both take about the same (10,000
records in 27-56 ms either way on the development machine, bench/redis_store.py), but the hash is
read in one MULTI where keys need their index first, a namespace is dropped with one DEL, and the
keyspace holds two keys per namespace instead of one per record.

Durability is Redis's acknowledgement: :meth:`RedisStore.commit` sends everything queued in one
MULTI/EXEC (a script applying the record changes, then the journal rows) and returns once Redis
answered. How much survives a crash *of Redis* is Redis's persistence setting (``appendonly``,
``save``), not the emulator's.

The change feed keeps the replicas' working sets in step: each committed record change is also
appended to ``{p}changes`` with the id of the replica that wrote it, and
:meth:`RedisStore.changes_since` answers the others' changes since a cursor in one round trip.

The seam's reads (:meth:`~RedisStore.load`, :meth:`~RedisStore.namespaces`,
:meth:`~RedisStore.get_meta`, :meth:`~RedisStore.load_entries`) are synchronous in the base class
(they run at start-up and on a namespace's first use), so they go through a second, blocking
client; :meth:`RedisStore.entries` is the journal read for serving.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from ...errors import EmulatorError
from .base import JOURNAL_FLUSH_SECONDS, JournalRow, Record, StorageError, Store, StoreUnavailable

log = logging.getLogger("emulator.storage")

#: Seconds to wait for a TCP connection to Redis, and for one answer, before the call counts as
#: failed (Redis answers in well under a millisecond on a LAN).
CONNECT_TIMEOUT = 2.0
ANSWER_TIMEOUT = 5.0
#: Record changes kept in the change feed; a replica that falls further behind reloads.
CHANGES_CAPACITY = 100_000
#: Journal rows kept in the shared stream (approximately: XADD MAXLEN ~).
JOURNAL_CAPACITY = 10_000
#: Changes read per round trip by :meth:`RedisStore.changes_since`.
CHANGES_BATCH = 1000
#: Journal rows read per round trip by :meth:`RedisStore.journal_feed`.
JOURNAL_BATCH = 1000


class ChangesLost(EmulatorError):
    """The change feed was trimmed (or Redis emptied) past a replica's cursor: its working set can
    no longer be brought up to date change by change and must be read back with
    :meth:`Store.load`. ``cursor`` is where to read the feed from after that."""

    def __init__(self, cursor: str) -> None:
        super().__init__(f"the change feed no longer holds the changes after the cursor; read from {cursor}")
        self.cursor = cursor


@dataclass(frozen=True, slots=True)
class Address:
    """Where a deleted record was."""

    kind: str
    namespace: str
    account: str
    key: str


@dataclass(frozen=True, slots=True)
class Dropped:
    """Every record of ``namespace`` (None: of every namespace) whose kind starts with ``kind_prefix``."""

    namespace: str | None
    kind_prefix: str


#: One change of another replica: ("put", Record), ("delete", Address) or ("drop", Dropped).
Change = tuple[Literal["put", "delete", "drop"], Record | Address | Dropped]


@dataclass(frozen=True, slots=True)
class Cleared:
    """Where another replica cleared the journal stream of ``namespace`` (None: all of it): the rows
    before this mark are gone from the stream, the rows after it were written after the clear."""

    namespace: str | None


#: json.dumps with these options makes an encoder each call; one made once encodes the same.
_dumps: Callable[[Any], str] = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@functools.lru_cache(maxsize=4096)
def _field(kind: str, account: str, key: str) -> str:
    """A record's field in its namespace's hash. JSON escapes character by character, so the field
    of every kind starting with P starts with :func:`_field_prefix` (P) (the drop script relies on it)."""
    return _dumps([kind, account, key])


def _field_prefix(kind_prefix: str) -> str:
    return _dumps([kind_prefix])[:-2]  # '["prefix' without the closing '"]'


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def redacted(url: str) -> str:
    """``url`` without its password, for messages and the health answer."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def connect(url: str) -> aioredis.Redis:
    """An asyncio client of ``url`` (redis://, rediss:// or unix://), not yet connected; a URL
    redis-py cannot read raises StorageError."""
    client: aioredis.Redis = _client(url, aioredis.Redis)
    return client


#: Connections the asyncio client opens to Redis at most (redis-py's default is 100, and a command
#: past it fails). The hot paths send one command at a time each (the change feed, the throttle, the
#: commit), so this is head-room for bursts of schedule decisions and leases, not a working size.
MAX_CONNECTIONS = 1000

_hiredis_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    import hiredis
except ImportError:  # the redis extra brings it; without it, redis-py's own packer
    _hiredis_pack = None
else:
    _hiredis_pack = hiredis.pack_command


class _Connection(aioredis.Connection):
    """redis-py's asyncio connection, with commands packed by hiredis (C) rather than in Python:
    a call on the shared store sends a few commands of a few dozen arguments, and packing them was
    a tenth of a call's time (as redis-py's synchronous client does when hiredis is there)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if _hiredis_pack is None:
            return super().pack_command(*args)
        if isinstance(args[0], str):
            args = (*args[0].encode().split(), *args[1:])
        elif b" " in args[0]:
            args = (*args[0].split(), *args[1:])
        try:
            return [_hiredis_pack(args)]
        except TypeError:  # a value hiredis does not take: redis-py says which (DataError)
            return super().pack_command(*args)


def _client(url: str, cls: Any) -> Any:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise StorageError(
            redacted(url),
            "storage.url",
            "not a Redis URL: use redis://HOST:PORT/DB, rediss://... or unix://PATH",
        )
    if parts.scheme != "unix" and not (parts.path in ("", "/") or parts.path[1:].isdigit()):
        # redis-py would take database 0 for a path it cannot read.
        problem = f"cannot be used: the database {parts.path[1:]!r} is no number"
        raise StorageError(redacted(url), "storage.url", problem)
    timeouts = {"socket_connect_timeout": CONNECT_TIMEOUT, "socket_timeout": ANSWER_TIMEOUT}
    try:
        if cls is not aioredis.Redis:
            return cls.from_url(url, **timeouts)
        extra = {"connection_class": _Connection} if parts.scheme == "redis" else {}
        pool = aioredis.ConnectionPool.from_url(url, max_connections=MAX_CONNECTIONS, **timeouts, **extra)
        return aioredis.Redis.from_pool(pool)
    except (ValueError, RedisError) as exc:
        raise StorageError(redacted(url), "storage.url", f"cannot be used: {exc}") from None


def unreachable(url: str, exc: BaseException) -> StorageError:
    """The start-up refusal when Redis does not answer."""
    reason = str(exc) or type(exc).__name__
    return StorageError(
        redacted(url), "storage.url", f"cannot reach Redis ({reason}): start it, or correct the URL"
    )


def _unavailable(url: str, what: str, exc: BaseException) -> StoreUnavailable:
    return StoreUnavailable(f"Redis at {redacted(url)}: {what}: {exc}")


# Applies one commit's record changes and appends each to the change feed, atomically (scripts run
# alone). KEYS: the prefix. ARGV: replica id, feed capacity, then the ops: P ns field value | D ns
# field | X all(0/1) ns field-prefix | M key value.
_APPLY = """
local p = KEYS[1]
local replica, cap = ARGV[1], ARGV[2]
local feed = p .. 'changes'
local function drop_in(ns, pre)
  local h, o = p .. 'r:' .. ns, p .. 'o:' .. ns
  if pre == '["' then
    redis.call('DEL', h, o)
  else
    for _, f in ipairs(redis.call('HKEYS', h)) do
      if string.sub(f, 1, #pre) == pre then
        redis.call('HDEL', h, f)
        redis.call('ZREM', o, f)
      end
    end
  end
  if redis.call('EXISTS', h) == 0 then redis.call('SREM', p .. 'ns', ns) end
end
local i, n = 3, #ARGV
while i <= n do
  local op = ARGV[i]
  if op == 'P' then
    local ns, f, v = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    local seq = redis.call('INCR', p .. 'seq')
    redis.call('HSET', p .. 'r:' .. ns, f, v)
    redis.call('ZADD', p .. 'o:' .. ns, seq, f)
    redis.call('SADD', p .. 'ns', ns)
    redis.call('XADD', feed, 'MAXLEN', '~', cap, '*', 'r', replica, 'o', 'P', 'n', ns, 'f', f, 'v', v)
    i = i + 4
  elseif op == 'D' then
    local ns, f = ARGV[i + 1], ARGV[i + 2]
    redis.call('HDEL', p .. 'r:' .. ns, f)
    redis.call('ZREM', p .. 'o:' .. ns, f)
    if redis.call('EXISTS', p .. 'r:' .. ns) == 0 then redis.call('SREM', p .. 'ns', ns) end
    redis.call('XADD', feed, 'MAXLEN', '~', cap, '*', 'r', replica, 'o', 'D', 'n', ns, 'f', f)
    i = i + 3
  elseif op == 'X' then
    local all, ns, pre = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    if all == '1' then
      for _, space in ipairs(redis.call('SMEMBERS', p .. 'ns')) do drop_in(space, pre) end
    else
      drop_in(ns, pre)
    end
    redis.call('XADD', feed, 'MAXLEN', '~', cap, '*', 'r', replica, 'o', 'X', 'a', all, 'n', ns, 'f', pre)
    i = i + 4
  elseif op == 'M' then
    redis.call('HSET', p .. 'meta', ARGV[i + 1], ARGV[i + 2])
    i = i + 3
  elseif op == 'J' then
    local jcap, has_ns = ARGV[i + 1], ARGV[i + 2]
    local fields = {'i', ARGV[i + 4], 'd', ARGV[i + 5], 'q', ARGV[i + 6], 's', ARGV[i + 7],
      'h', ARGV[i + 8], 'z', ARGV[i + 9], 'r', replica}
    if has_ns == '1' then
      fields[#fields + 1] = 'n'
      fields[#fields + 1] = ARGV[i + 3]
    end
    redis.call('XADD', p .. 'journal', 'MAXLEN', '~', jcap, '*', unpack(fields))
    i = i + 10
  else
    return redis.error_reply('unknown op ' .. tostring(op))
  end
end
return 1
"""

# The changes after a cursor, and whether some may have been trimmed away unread. KEYS: the feed. ARGV: the
# cursor ("0-0": from the start), the most to read, the reading replica (its own changes are read
# but not answered). Answers {lost (0/1), last id, the other replicas' entries, the id read up to}.
_CHANGES = """
local key, cursor, count, replica = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local function older(a, b)  -- stream id a < b
  local ams, aseq = string.match(a, '(%d+)-(%d+)')
  local bms, bseq = string.match(b, '(%d+)-(%d+)')
  ams, aseq, bms, bseq = tonumber(ams), tonumber(aseq), tonumber(bms), tonumber(bseq)
  return ams < bms or (ams == bms and aseq < bseq)
end
if redis.call('EXISTS', key) == 0 then
  if cursor ~= '0-0' then return {1, '0-0', {}, cursor, 0} end
  return {0, cursor, {}, cursor, 0}
end
local info = redis.call('XINFO', 'STREAM', key)
local last, first, added, length = '0-0', '0-0', 0, 0
for j = 1, #info, 2 do
  local name, value = info[j], info[j + 1]
  if name == 'last-generated-id' then last = value
  elseif name == 'recorded-first-entry-id' then first = value
  elseif name == 'entries-added' then added = value
  elseif name == 'length' then length = value end
end
if older(last, cursor) then return {1, last, {}, cursor, 0} end
-- Trimmed entries are all older than the first kept one: the cursor before it may have missed
-- some (or, at worst, have read the last one trimmed: a reload too many, never a change missed).
local lost = 0
if added > length and older(cursor, first) then lost = 1 end
local entries = redis.call('XRANGE', key, '(' .. cursor, '+', 'COUNT', count)
local others, upto = {}, cursor
for _, entry in ipairs(entries) do
  upto = entry[1]
  local fields = entry[2]
  local mine = false
  for j = 1, #fields, 2 do
    if fields[j] == 'r' then mine = fields[j + 1] == replica break end
  end
  if not mine then others[#others + 1] = entry end
end
return {lost, last, others, upto, #entries}
"""

# Deletes the journal rows of one namespace and, when there were some, marks the place for the
# replicas that hold copies (a namespace reset before each test marks nothing when nothing ran).
# KEYS: the journal stream. ARGV: the namespace, the replica, the stream's capacity.
_CLEAR_NAMESPACE = """
local key, ns = KEYS[1], ARGV[1]
local cursor, gone = '-', 0
while true do
  local batch = redis.call('XRANGE', key, cursor, '+', 'COUNT', 500)
  if #batch == 0 then
    if gone > 0 then
      redis.call('XADD', key, 'MAXLEN', '~', ARGV[3], '*', 'c', ns, 'a', '0', 'r', ARGV[2])
    end
    return gone
  end
  for _, entry in ipairs(batch) do
    local fields = entry[2]
    for j = 1, #fields, 2 do
      if fields[j] == 'n' and fields[j + 1] == ns then
        redis.call('XDEL', key, entry[1])
        gone = gone + 1
      end
    end
    cursor = '(' .. entry[1]
  end
end
"""

# Deletes the oldest journal rows while their id is below a bound (rows come in roughly in id
# order; the MAXLEN bound takes any left behind). KEYS: the stream. ARGV: the bound.
_TRIM = """
local key, below = KEYS[1], tonumber(ARGV[1])
local gone = 0
while true do
  local batch = redis.call('XRANGE', key, '-', '+', 'COUNT', 500)
  if #batch == 0 then return gone end
  for _, entry in ipairs(batch) do
    local fields, id = entry[2], nil
    for j = 1, #fields, 2 do
      if fields[j] == 'i' then id = tonumber(fields[j + 1]) end
    end
    -- A clear's mark (no id) goes with the rows around it.
    if id ~= nil and id >= below then return gone end
    redis.call('XDEL', key, entry[1])
    gone = gone + 1
  end
end
"""

#: A queued record op: ("P", ns, field, value) | ("D", ns, field) | ("X", all, ns, prefix) |
#: ("M", key, value).
_Op = tuple[str, ...]
#: A queued journal op: ("add", row) | ("clear", namespace or None) | ("trim", below).
_JournalOp = tuple[str, Any]


class RedisStore(Store):
    """Records, meta, journal and change feed in one Redis (see the module docstring)."""

    durable = True

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "emulator:",
        replica: str | None = None,
        journal_capacity: int = JOURNAL_CAPACITY,
        changes_capacity: int = CHANGES_CAPACITY,
    ) -> None:
        self.url = url
        self.prefix = prefix
        #: This process's name in the change feed and the journal (host, pid and a random part).
        self.replica = replica or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._replica_bytes = self.replica.encode()
        self.journal_capacity = max(1, journal_capacity)
        self.changes_capacity = max(1, changes_capacity)
        self.client: aioredis.Redis = connect(url)
        self._sync: redis.Redis | None = None
        self._apply = self.client.register_script(_APPLY)
        self._changes = self.client.register_script(_CHANGES)
        self._clear_ns = self.client.register_script(_CLEAR_NAMESPACE)
        self._trim = self.client.register_script(_TRIM)
        self._ops: list[_Op] = []
        self._journal: list[_JournalOp] = []
        #: The batch being sent (still read by load and get_meta until Redis acknowledged it).
        self._inflight: tuple[list[_Op], list[_JournalOp]] = ([], [])
        #: Ops queued so far, and of those the ones Redis acknowledged (commit's barrier).
        self._queued = 0
        self._acknowledged = 0
        #: The send under way, which every commit waiting for it awaits (one at a time).
        self._sending: asyncio.Future[None] | None = None
        self._flush_timer: asyncio.TimerHandle | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._closed = False
        #: The stream id of the newest journal row :meth:`load_entries` read (None: it did not
        #: run): where a reader of the rows written since goes on from.
        self.journal_loaded: str | None = None

    # --- keys ------------------------------------------------------------------------------------

    def _key(self, name: str) -> str:
        return self.prefix + name

    @property
    def journal_key(self) -> str:
        return self._key("journal")

    @property
    def changes_key(self) -> str:
        return self._key("changes")

    # --- keyed records (queued) --------------------------------------------------------------------

    def _queue(self, op: _Op) -> None:
        self._ops.append(op)
        self._queued += 1

    def put(self, kind: str, namespace: str, account: str, key: str, value: Any) -> None:
        self._queue(("P", namespace, _field(kind, account, key), _dumps(value)))

    def delete(self, kind: str, namespace: str, account: str, key: str) -> None:
        self._queue(("D", namespace, _field(kind, account, key)))

    def drop(self, namespace: str | None = None, kind_prefix: str = "") -> None:
        self._queue(("X", "1" if namespace is None else "0", namespace or "", _field_prefix(kind_prefix)))

    def put_meta(self, key: str, value: Any) -> None:
        self._queue(("M", key, _dumps(value)))

    # --- the journal (queued, flushed in batches) -----------------------------------------------

    def append_entry(self, row: JournalRow) -> None:
        self._queue_journal(("add", row))

    def clear_entries(self, namespace: str | None = None) -> None:
        self._queue_journal(("clear", namespace))

    def trim_entries(self, below_id: int) -> None:
        self._queue_journal(("trim", below_id))

    def discard_rows(self, namespace: str | None = None) -> int:
        """Forget the rows of ``namespace`` (None: all) queued and not yet being sent (another
        replica cleared the journal: they must not reach the stream after its clear)."""
        kept = [op for op in self._journal if not _row_of(op, namespace)]
        gone = len(self._journal) - len(kept)
        self._journal = kept
        return gone

    def _queue_journal(self, op: _JournalOp) -> None:
        journal = self._journal
        journal.append(op)
        self._queued += 1
        if len(journal) > 2 * self.journal_capacity:
            # Redis has been away for a while: keep the newest rows (the stream keeps no more anyway).
            del journal[: len(journal) - 2 * self.journal_capacity]
        if self._flush_timer is None and not self._closed:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop yet: the first commit (or close) writes it
            self._flush_timer = loop.call_later(JOURNAL_FLUSH_SECONDS, self._flush_soon)

    def _flush_soon(self) -> None:
        self._flush_timer = None
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.get_running_loop().create_task(self._background_flush())

    async def _background_flush(self) -> None:
        try:
            await self.commit()
        except StoreUnavailable as exc:
            log.warning("journal rows not written yet, retrying: %s", exc)
            if not self._closed:
                self._flush_timer = asyncio.get_running_loop().call_later(1.0, self._flush_soon)

    # --- durability ------------------------------------------------------------------------------

    @property
    def pending(self) -> bool:
        return self._acknowledged < self._queued

    async def commit(self) -> None:
        target = self._queued
        while self._acknowledged < target:
            # One send at a time, with everything queued when it starts: the commits that wait for
            # it all wake when it is done (a lock would wake them one by one), and those whose
            # changes came after it started go in the next one.
            sending = self._sending
            if sending is None:
                sending = self._sending = asyncio.ensure_future(self._send_once())
                # A failure every waiter left behind is not reported as never retrieved.
                sending.add_done_callback(lambda f: f.cancelled() or f.exception())
            await asyncio.shield(sending)

    async def _send_once(self) -> None:
        try:
            await self._send()
        finally:
            self._sending = None

    async def _send(self) -> None:
        ops, journal = self._ops, self._journal
        upto = self._queued
        self._ops, self._journal = [], []
        self._inflight = (ops, journal)
        try:
            # Records and journal rows go as ops of one call of the apply script (atomic, no
            # transaction needed, a row an op rather than a command); a clear or a trim of the
            # journal, seldom, is a command of its own between such calls, in one transaction.
            calls: list[tuple[str, Any]] = []
            args: list[Any] = self._apply_args(ops)
            for what, arg in journal:
                if what == "add":
                    args.extend(self._row_op(arg))
                    continue
                calls.append(("apply", args))
                calls.append((what, arg))
                args = self._apply_args([])
            calls.append(("apply", args))
            calls = [(what, arg) for what, arg in calls if what != "apply" or len(arg) > 2]
            if len(calls) == 1 and calls[0][0] == "apply":  # the common case
                await self._apply(keys=[self.prefix], args=calls[0][1])
            elif calls:
                async with self.client.pipeline(transaction=True) as pipe:
                    for what, arg in calls:
                        await self._command(pipe, what, arg)
                    await pipe.execute()
        except BaseException as exc:
            # Put the batch back in front of whatever was queued meanwhile (the waiting call may
            # also have been cancelled): nothing is lost, and a retry applies it again (puts and
            # deletes are idempotent).
            self._ops[:0] = ops
            self._journal[:0] = journal
            if isinstance(exc, RedisError | OSError):
                raise _unavailable(self.url, "the write was not acknowledged", exc) from exc
            raise
        finally:
            self._inflight = ([], [])
        self._acknowledged = upto

    def _apply_args(self, ops: list[_Op]) -> list[Any]:
        args: list[Any] = [self.replica, str(self.changes_capacity)]
        for op in ops:
            args.extend(op)
        return args

    async def _command(self, pipe: Any, what: str, arg: Any) -> None:
        """One command of a commit's transaction: a call of the apply script, or a journal clear
        (of a namespace, or of all) or trim."""
        if what == "apply":
            await self._apply(keys=[self.prefix], args=arg, client=pipe)
        elif what == "clear" and arg is None:
            # Emptied, not deleted: the stream keeps its last id, so the ids that follow stay
            # above every reader's cursor. The mark tells the readers.
            pipe.xtrim(self.journal_key, maxlen=0, approximate=False)
            mark: dict[FieldT, EncodableT] = {"c": "", "a": 1, "r": self.replica}
            pipe.xadd(self.journal_key, mark, maxlen=self.journal_capacity, approximate=True)
        elif what == "clear":
            args = [arg, self.replica, str(self.journal_capacity)]
            await self._clear_ns(keys=[self.journal_key], args=args, client=pipe)
        else:
            await self._trim(keys=[self.journal_key], args=[arg], client=pipe)

    def _row_op(self, row: JournalRow) -> list[Any]:
        """A journal row as an op of the apply script: its fields i, d, q, s, h, z, r and, with a
        namespace, n (what :func:`_row` reads back)."""
        ns = row.namespace
        return [
            "J",
            self.journal_capacity,
            "0" if ns is None else "1",
            "" if ns is None else ns,
            row.id,
            _dumps(row.doc),
            row.request_body,
            row.response_body,
            row.request_head,
            row.size,
        ]

    # --- life cycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            await self.client.aclose()
            raise unreachable(self.url, exc) from None

    async def close(self) -> None:
        self._closed = True
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._flush_task is not None:
            await asyncio.gather(self._flush_task, return_exceptions=True)
        try:
            await self.commit()
        except StoreUnavailable as exc:
            log.error("changes not written at close: %s", exc)
        finally:
            await self.client.aclose()
            if self._sync is not None:
                self._sync.close()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "url": redacted(self.url), "replica": self.replica, "pid": os.getpid()}

    # --- reads (synchronous, see the module docstring) -------------------------------------------

    def _blocking(self) -> redis.Redis:
        if self._sync is None:
            self._sync = _client(self.url, redis.Redis)
        return self._sync

    def _read(self, what: str, fn: Any) -> Any:
        try:
            return fn(self._blocking())
        except (RedisError, OSError) as exc:
            raise _unavailable(self.url, f"cannot read {what}", exc) from exc

    def _local_ops(self) -> list[_Op]:
        """Everything queued and not yet acknowledged, oldest first."""
        return [*self._inflight[0], *self._ops]

    def load(self, namespace: str | None, kind_prefix: str = "") -> Iterator[Record]:
        def read(client: redis.Redis) -> list[Any]:
            spaces = self._spaces(namespace, client.smembers(self._key("ns")) if namespace is None else ())
            with client.pipeline(transaction=True) as pipe:
                self._read_spaces(pipe, spaces)
                return [spaces, pipe.execute()]

        spaces, answers = self._read("records", read)
        return iter(self._assemble(namespace, kind_prefix, spaces, answers))

    async def records(self, namespace: str | None, kind_prefix: str = "") -> list[Record]:
        """:meth:`load` for serving (not blocking the loop): two round trips for every namespace,
        one for one."""
        try:
            members = await self.client.smembers(self._key("ns")) if namespace is None else set()
            spaces = self._spaces(namespace, members)
            async with self.client.pipeline(transaction=True) as pipe:
                self._read_spaces(pipe, spaces)
                answers = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise _unavailable(self.url, "cannot read records", exc) from exc
        return self._assemble(namespace, kind_prefix, spaces, answers)

    @staticmethod
    def _spaces(namespace: str | None, members: Any) -> list[str]:
        return [namespace] if namespace is not None else sorted(_text(s) for s in members)

    def _read_spaces(self, pipe: Any, spaces: list[str]) -> None:
        for ns in spaces:
            pipe.hgetall(self._key(f"r:{ns}"))
            pipe.zrange(self._key(f"o:{ns}"), 0, -1, withscores=True)

    def _assemble(
        self, namespace: str | None, kind_prefix: str, spaces: list[str], answers: list[Any]
    ) -> list[Record]:
        """The records read by :meth:`_read_spaces` in write order, with the changes queued here on
        top (the puts as the newest)."""
        pre = _field_prefix(kind_prefix)
        found: list[tuple[float, str, str, str]] = []
        for i, ns in enumerate(spaces):
            values, order = answers[2 * i], answers[2 * i + 1]
            for raw_field, seq in order:
                field, value = _text(raw_field), values.get(raw_field)
                if value is not None and field.startswith(pre):
                    found.append((seq, ns, field, _text(value)))
        found.sort(key=lambda r: r[0])
        ordered: dict[tuple[str, str], str] = {(ns, f): v for _, ns, f, v in found}
        for op in self._local_ops():
            if op[0] == "P" and (namespace is None or op[1] == namespace) and op[2].startswith(pre):
                ordered.pop((op[1], op[2]), None)
                ordered[(op[1], op[2])] = op[3]
            elif op[0] == "D":
                ordered.pop((op[1], op[2]), None)
            elif op[0] == "X":
                everywhere, ns, prefix = op[1] == "1", op[2], op[3]
                for address in [a for a in ordered if (everywhere or a[0] == ns) and a[1].startswith(prefix)]:
                    del ordered[address]
        # One JSON document for all the addresses and one for all the values: the C parser runs
        # twice instead of twice per record (5 times faster for 10,000 records).
        addresses = json.loads("[" + ",".join(field for _, field in ordered) + "]")
        values = json.loads("[" + ",".join(ordered.values()) + "]")
        return [
            Record(kind, ns, account, key, value)
            for (ns, _), (kind, account, key), value in zip(ordered, addresses, values, strict=True)
        ]

    def namespaces(self, kind_prefix: str = "") -> list[str]:
        pre = _field_prefix(kind_prefix)

        def read(client: redis.Redis) -> list[str]:
            spaces = sorted(_text(s) for s in client.smembers(self._key("ns")))
            with client.pipeline(transaction=False) as pipe:
                for ns in spaces:
                    pipe.hkeys(self._key(f"r:{ns}"))
                answers = pipe.execute()
            return [
                ns
                for ns, fields in zip(spaces, answers, strict=True)
                if any(_text(f).startswith(pre) for f in fields)
            ]

        spaces = set(self._read("namespaces", read))
        spaces.update(op[1] for op in self._local_ops() if op[0] == "P" and op[2].startswith(pre))
        return sorted(spaces)

    def get_meta(self, key: str, default: Any = None) -> Any:
        for op in reversed(self._local_ops()):
            if op[0] == "M" and op[1] == key:
                return json.loads(op[2])
        raw = self._read("meta", lambda client: client.hget(self._key("meta"), key))
        return default if raw is None else json.loads(raw)

    def load_entries(self, limit: int) -> list[JournalRow]:
        if limit <= 0:
            return []
        raw = self._read("journal", lambda client: client.xrevrange(self.journal_key, count=limit))
        self.journal_loaded = _text(raw[0][0]) if raw else "0-0"
        return _rows(raw)

    # --- reads while serving (async) --------------------------------------------------------------

    async def entries(self, limit: int) -> list[JournalRow]:
        """The newest ``limit`` journal rows of every replica, oldest first (written ones: a row is
        in the stream at most :data:`JOURNAL_FLUSH_SECONDS` after it was appended, or at the next
        commit)."""
        if limit <= 0:
            return []
        try:
            raw = await self.client.xrevrange(self.journal_key, count=limit)
        except (RedisError, OSError) as exc:
            raise _unavailable(self.url, "cannot read the journal", exc) from exc
        return _rows(raw)

    async def journal_since(
        self, cursor: str, block: float = 0.0, limit: int = 1000
    ) -> tuple[str, list[JournalRow]]:
        """The journal rows every replica wrote after ``cursor`` ("$": none yet, from now; "0-0":
        from the oldest kept), oldest first, and the cursor to pass next. With ``block`` seconds,
        waits that long at most for a first row (XREAD BLOCK, in steps shorter than the answer
        timeout): the shared form of a journal long poll."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + block
        if cursor == "$":
            cursor = await self._newest_id(self.journal_key)
        while True:
            step = min(max(0.0, deadline - loop.time()), ANSWER_TIMEOUT / 2)
            entries = await self._xread(cursor, step, limit)
            if entries or loop.time() >= deadline:
                if entries:
                    cursor = _text(entries[-1][0])
                return cursor, [_row(fields) for _, fields in entries if b"i" in fields]

    async def journal_feed(self, cursor: str, block: float = 0.0) -> tuple[str, list[JournalRow | Cleared]]:
        """What the *other* replicas wrote to the journal stream after ``cursor`` ("$": from now on),
        oldest first: their rows, and a :class:`Cleared` where one cleared it; and the cursor to pass
        next (past this replica's own rows too). With ``block`` seconds (less than the answer
        timeout), waits that long at most for anything after ``cursor`` (XREAD BLOCK); then, or
        without, reads everything there is, :data:`JOURNAL_BATCH` rows a round trip."""
        if cursor == "$":
            cursor = await self._newest_id(self.journal_key)
        found: list[JournalRow | Cleared] = []
        entries = await self._xread(cursor, block, JOURNAL_BATCH)
        while True:
            for entry_id, fields in entries:
                cursor = _text(entry_id)
                if fields.get(b"r") == self._replica_bytes:
                    continue
                if b"i" in fields:
                    found.append(_row(fields))
                else:
                    found.append(Cleared(None if fields.get(b"a") == b"1" else _text(fields.get(b"c", b""))))
            if len(entries) < JOURNAL_BATCH:
                return cursor, found
            entries = await self._xread(cursor, 0.0, JOURNAL_BATCH)

    async def _xread(self, cursor: str, block: float, limit: int) -> list[Any]:
        """The journal stream's entries after ``cursor``; with ``block`` seconds, waiting that long
        at most for a first one."""
        try:
            answer: Any = await self.client.xread(
                {self.journal_key: cursor}, count=limit, block=round(block * 1000) or None
            )
        except (RedisError, OSError) as exc:
            raise _unavailable(self.url, "cannot read the journal", exc) from exc
        return answer[0][1] if answer else []

    async def _newest_id(self, key: str) -> str:
        try:
            newest = await self.client.xrevrange(key, count=1)
        except (RedisError, OSError) as exc:
            raise _unavailable(self.url, f"cannot read {key}", exc) from exc
        return _text(newest[0][0]) if newest and newest[0][0] is not None else "0-0"

    async def allocate(self, name: str, count: int = 1) -> int:
        """The first of ``count`` numbers under ``name`` no other replica gets (journal entry ids,
        rule ids): a counter in Redis."""
        try:
            last = int(await self.client.incrby(self._key(f"ids:{name}"), count))
        except (RedisError, OSError) as exc:
            raise _unavailable(self.url, "cannot allocate ids", exc) from exc
        return last - count + 1

    async def changes_cursor(self) -> str:
        """Where the change feed ends now: read the state with :meth:`load` after taking it, then
        follow :meth:`changes_since` from it (a change in between is read twice, never missed)."""
        return await self._newest_id(self.changes_key)

    async def changes_since(self, cursor: str) -> tuple[str, list[Change]]:
        """The other replicas' record changes after ``cursor``, oldest first, and the new cursor. One
        round trip when nothing changed (and per :data:`CHANGES_BATCH` changes otherwise). Raises
        :class:`ChangesLost` when the feed no longer reaches back to ``cursor``."""
        changes: list[Change] = []
        while True:
            try:
                lost, last, entries, upto, read = await self._changes(
                    keys=[self.changes_key], args=[cursor, CHANGES_BATCH, self.replica]
                )
            except (RedisError, OSError) as exc:
                raise _unavailable(self.url, "cannot read the change feed", exc) from exc
            if lost:
                raise ChangesLost(_text(last))
            cursor = _text(upto)
            for _, flat in entries:
                fields = {_text(flat[j]): _text(flat[j + 1]) for j in range(0, len(flat), 2)}
                changes.append(_change(fields))
            if int(read) < CHANGES_BATCH:
                return cursor, changes


def _record(namespace: str, field: str, value: str) -> Record:
    kind, account, key = json.loads(field)
    return Record(kind, namespace, account, key, json.loads(value))


def _change(fields: dict[str, str]) -> Change:
    op, ns = fields["o"], fields["n"]
    if op == "P":
        return ("put", _record(ns, fields["f"], fields["v"]))
    if op == "D":
        kind, account, key = json.loads(fields["f"])
        return ("delete", Address(kind, ns, account, key))
    prefix = json.loads(fields["f"] + '"]')[0]
    return ("drop", Dropped(None if fields["a"] == "1" else ns, prefix))


def _rows(raw: Any) -> list[JournalRow]:
    """Rows as XREVRANGE answers them (newest first), oldest first (a clear's mark is no row)."""
    return [_row(fields) for _, fields in reversed(raw or []) if b"i" in fields]


def _row(fields: dict[bytes, bytes]) -> JournalRow:
    namespace = fields.get(b"n")
    size = fields.get(b"z")
    return JournalRow(
        id=int(fields[b"i"]),
        namespace=None if namespace is None else namespace.decode(),
        doc=json.loads(fields[b"d"]),
        request_body=fields[b"q"],
        response_body=fields[b"s"],
        size=0 if size is None else int(size),
        request_head=fields.get(b"h", b""),
    )


def _row_of(op: _JournalOp, namespace: str | None) -> bool:
    """Whether a queued journal op writes a row of ``namespace`` (None: of any)."""
    return op[0] == "add" and (namespace is None or op[1].namespace == namespace)
