"""One journal for replicas sharing one Redis (``storage.url``): any replica answers for the calls
of all of them.

Each replica records its own calls in its :class:`~emulator.core.journal.Journal` as it always did
and writes each row to the stream ``{p}journal`` (core/storage/redis.py) about 0.1 s after the call
(:data:`~emulator.core.journal.UNWRITTEN_SECONDS`, then at most
:data:`~emulator.core.storage.base.JOURNAL_FLUSH_SECONDS` in the store's queue).
:class:`SharedJournal` makes the replicas' journals one:

- **ids**: numbers no other replica gets, taken in blocks of :data:`ID_BLOCK` from one Redis
  counter, the next block fetched while half of the current one is left (a call is numbered when it
  is recorded, without waiting for Redis). While Redis does not answer, ids come from a range of
  this replica's own above :data:`OWN_IDS` (still exact as JavaScript numbers, below 2**53).
- **reading**: before a journal query, the rows the other replicas wrote since the last read are
  brought into the local journal (foreign entries, within its bounds, placed by time), so every
  query, count, wait and export works unchanged on all of them; while someone waits or watches
  (long polls, the dashboard), a background reader brings them in as they come (XREAD BLOCK). This
  replica's own rows are skipped: it holds them already.
- **clearing**: a clear through one replica empties the stream (of that namespace, or all) and
  leaves a mark there; the others drop the foreign entries they hold when they read the mark, and
  their own entries (and rows not yet written) when their follower (core/replicas.py) hands them
  the clear as a record change: a drop of :data:`JOURNAL_KIND`, which no record is of. Each half is
  ordered with what it concerns: the mark after every row it cleared, the change before the next
  call the replica serves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from .journal import Journal
from .replicas import Follower
from .storage import JournalRow, StoreUnavailable
from .storage.redis import Change, Cleared, Dropped, RedisStore

log = logging.getLogger("emulator.journal")

#: Ids fetched from Redis at once.
ID_BLOCK = 128
#: Ids taken while Redis does not answer: each replica (numbered at start) has :data:`OWN_SPAN` of
#: its own above this.
OWN_IDS = 2**52
OWN_SPAN = 2**26
#: The longest one blocking read of the background reader waits (then it checks whether anybody
#: still waits or watches).
WATCH_SECONDS = 1.0
#: Before reading again after Redis did not answer.
RETRY_SECONDS = 0.5
#: The kind prefix a journal clear travels the change feed with (no record is of this kind).
JOURNAL_KIND = "journal."


class IdBlocks:
    """Entry ids unique across replicas, handed out without waiting: blocks of ``block`` numbers
    from ``allocate(count)`` (the first of them), the next one fetched in the background once half
    of the current one is used."""

    def __init__(self, allocate: Callable[[str, int], Awaitable[int]], block: int = ID_BLOCK) -> None:
        self._allocate = allocate
        self._block = block
        self._next = self._end = 0
        self._spare: tuple[int, int] | None = None
        self._fetching: asyncio.Task[None] | None = None
        self._retry_at = 0.0
        self._own = OWN_IDS
        self._own_next = 0
        #: Ids taken from this replica's own range (Redis did not answer in time).
        self.own_taken = 0

    async def start(self) -> None:
        """Number this replica (for its own range) and fetch the first block."""
        slot = await self._allocate("journal.replicas", 1)
        self._own = OWN_IDS + (slot % OWN_SPAN) * OWN_SPAN
        first = await self._allocate("journal", self._block)
        self._next, self._end = first, first + self._block

    def take(self) -> int:
        if self._next >= self._end:
            if self._spare is None:
                self._fetch_soon()
                self.own_taken += 1
                self._own_next += 1
                return self._own + (self._own_next - 1) % OWN_SPAN
            self._next, self._end = self._spare
            self._spare = None
        taken = self._next
        self._next += 1
        if self._spare is None and self._end - self._next <= self._block // 2:
            self._fetch_soon()
        return taken

    def _fetch_soon(self) -> None:
        if self._fetching is not None and not self._fetching.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # recorded by hand, outside the server: the own range serves
            return
        if loop.time() >= self._retry_at:
            self._fetching = loop.create_task(self._fetch())

    async def _fetch(self) -> None:
        try:
            first = await self._allocate("journal", self._block)
        except StoreUnavailable as exc:
            log.warning("journal ids not fetched, this replica's own range serves: %s", exc)
            self._retry_at = asyncio.get_running_loop().time() + RETRY_SECONDS
            return
        if self._next >= self._end:
            self._next, self._end = first, first + self._block
        else:
            self._spare = (first, first + self._block)

    async def close(self) -> None:
        if self._fetching is not None:
            self._fetching.cancel()
            await asyncio.gather(self._fetching, return_exceptions=True)


class SharedJournal:
    """Makes ``journal`` the journal of every replica on ``store`` (see the module docstring); a
    part of the ``follower`` (its :meth:`follow`), which it also asks to catch up on a clear."""

    prefix = JOURNAL_KIND

    def __init__(self, journal: Journal, store: RedisStore, follower: Follower | None = None) -> None:
        self.journal = journal
        self.store = store
        self.follower = follower
        self.ids = IdBlocks(store.allocate)
        self._cursor = "$"
        self._lock = asyncio.Lock()
        #: Catch-up reads begun, and the number of the last one that completed.
        self._begun = 0
        self._completed = 0
        self._reader: asyncio.Task[None] | None = None
        self._closed = False
        #: Rows of the other replicas brought in, and their clears applied.
        self.pulled = 0
        self.clears = 0
        journal.shared = self

    async def start(self) -> None:
        """Read on from where the journal's restore read the stream (else from now), and fetch ids."""
        self._cursor = self.store.journal_loaded or "$"
        await self.ids.start()

    def next_id(self) -> int:
        return self.ids.take()

    async def catch_up(self) -> None:
        """Return once every row the others wrote before this call is in the journal: a read begun
        after the call arrived, one round trip (shared by the calls that wait for the same read)."""
        ticket = self._begun
        async with self._lock:
            if self._completed > ticket:
                return  # a read begun after this call arrived has completed meanwhile
            self._begun += 1
            number = self._begun
            cursor, found = await self.store.journal_feed(self._cursor)
            await self._apply(cursor, found)
            self._completed = number

    async def _apply(self, cursor: str, found: list[JournalRow | Cleared]) -> None:
        rows: list[JournalRow] = []
        clears = False
        for item in found:
            if isinstance(item, Cleared):
                self.journal.add_foreign(rows)
                rows = []
                self.journal.forget(item.namespace, foreign=True)
                clears = True
                self.clears += 1
            else:
                rows.append(item)
        self.journal.add_foreign(rows)
        self.pulled += sum(not isinstance(item, Cleared) for item in found)
        self._cursor = cursor
        if clears and self.follower is not None:
            # The clear's record change: this replica's own entries go too.
            await self.follower.catch_up()

    def watch(self) -> None:
        if self._closed or (self._reader is not None and not self._reader.done()):
            return
        try:
            self._reader = asyncio.get_running_loop().create_task(self._read_while_watched())
        except RuntimeError:  # no loop: nobody can wait without one
            return

    async def _read_while_watched(self) -> None:
        while self.journal.watched and not self._closed:
            cursor = self._cursor
            try:
                after, found = await self.store.journal_feed(cursor, block=WATCH_SECONDS)
                if not found and after == cursor:
                    continue
                async with self._lock:
                    if self._cursor == cursor:  # else a catch-up read on meanwhile: from there
                        await self._apply(after, found)
            except StoreUnavailable as exc:
                self.journal.fail_waiters(exc)
                await asyncio.sleep(RETRY_SECONDS)

    def cleared(self, namespace: str | None) -> None:
        # Committed with the stream's clear (one MULTI): the others' followers hand it to follow().
        self.store.drop(namespace, JOURNAL_KIND)

    def follow(self, change: Change) -> None:
        """Another replica cleared the journal: this replica's own entries of it go, and the rows
        still queued for the stream (the foreign ones go at the stream's mark)."""
        op, what = change
        if op == "drop" and isinstance(what, Dropped) and what.kind_prefix == JOURNAL_KIND:
            self.store.discard_rows(what.namespace)
            self.journal.forget(what.namespace, foreign=False)

    async def close(self) -> None:
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self.ids.close()
