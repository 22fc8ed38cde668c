"""The SQLite store: state that outlives the process, in ``DIR/emulator.sqlite3``.

Design
    One writer thread owns the write connection. ``put``/``delete``/``drop``/``put_meta`` and the
    journal operations only encode their values to JSON on the caller's thread (so a value changed
    afterwards cannot change what is written) and append one ready statement to a queue under a
    lock: nothing on the event loop's hot path touches SQLite. The writer wakes when a
    :meth:`~SQLiteStore.commit` (or a read) asks for it, and on its own at least every
    ``JOURNAL_FLUSH_SECONDS / 2``; each time it takes *everything* queued, runs it in one
    transaction and commits (group commit), then resolves the futures of every ``commit()`` that
    was waiting for operations up to that point, with one ``call_soon_threadsafe`` per event loop.
    The queue is bounded: past ``MAX_QUEUED`` operations a caller waits until the writer caught up.

    With ``synchronous`` OFF or NORMAL (no flush to disk at a commit) the commits calls wait for
    are written on the event loop's own thread instead (``inline``): the first ``commit()`` of a
    turn of the loop schedules one write with ``call_soon``, which takes everything queued by then
    (the commits of every call that reached its barrier in that turn) in one transaction. Handing
    each group to the writer thread and back cost a quarter of the throughput on a loaded 2-core
    machine (thread wake-ups and GIL hand-offs); a WAL commit without fsync takes far less. The
    writer thread then writes the journal rows nobody waits for. Batches are written one at a time
    under a lock, in the order queued, whichever thread writes them. Journal rows and the journal's
    counts are not waited for by ``commit()``; every other change is.

    Reads (``load``, ``namespaces``, ``get_meta``, ``load_entries``) run on the caller's thread on
    a second connection (WAL lets it read while the writer writes), after waiting until the writer
    has committed everything queued before them. They happen at start-up and when a namespace is
    first used, not per call.

    Records are ``records(kind, namespace, account, key) -> value`` (JSON text) with a ``seq`` from
    a counter restored at open from ``max(seq)``, so that a record written again counts as written
    last; :meth:`~SQLiteStore.load` answers in ``seq`` order. ``meta`` holds the store's own small
    JSON values; ``journal`` the journal rows (fields as JSON, the request head and the bodies as
    BLOBs). Never pickle.

Durability
    ``PRAGMA journal_mode=WAL`` with ``synchronous`` as configured. ``NORMAL`` (the default): a
    committed transaction survives the process being killed (``kill -9``, an OOM kill, a crash of
    Python): it is in the WAL file, which the next open replays. An operating-system crash or a
    power loss may lose the last commits (the WAL is synced at checkpoints, not at every commit);
    the database stays consistent. ``FULL``: the WAL is synced at every commit, so a commit also
    survives power loss, at the price of one fsync per group commit.

    What ``kill -9`` can lose: nothing that a ``commit()`` returned for, so no acknowledged change
    of state (the gateway and the admin API await ``commit()`` before answering); journal rows
    appended in the last ``JOURNAL_FLUSH_SECONDS`` (plus the time of the writer's transaction)
    when no commit was awaited after them, and changes queued whose commit had not returned.

Failures
    A file that is not an SQLite database (random bytes, text, truncated or damaged), an SQLite
    database of another program (tables not ours, another ``application_id``) or of another schema
    version (``PRAGMA user_version``) is refused at open with :class:`StorageError`, whose message
    names the file, says what is wrong and what to do; the file is not changed. Damaged pages are
    found by ``PRAGMA quick_check`` at open, which reads the whole file: it runs for files up to
    ``QUICK_CHECK_MAX_BYTES`` (64 MiB; about 50 ms for 36 MB on a slow machine). An error in the
    writer thread (disk full, an I/O error, the file changed under it) is logged; from then on every
    ``commit()``, read and ``close()`` raises :class:`StorageError`, so a call gets an error answer
    instead of a false acknowledgement; later writes are discarded.

The lock
    ``DIR/emulator.lock`` holds the pid of the emulator using the directory, under
    ``fcntl.flock(LOCK_EX | LOCK_NB)``. A second store on the same directory, in another process or
    in this one, is refused with a message naming that pid. The kernel releases the lock when the
    holder exits however it exits (``kill -9`` included), so a restart after a crash just works.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import itertools
import json
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterator
from operator import itemgetter
from pathlib import Path
from typing import Any

from .base import JOURNAL_FLUSH_SECONDS, JournalRow, Record, StorageError, StorageFailure, Store

__all__ = ["APPLICATION_ID", "DB_NAME", "LOCK_NAME", "SCHEMA_VERSION", "SQLiteStore"]

log = logging.getLogger(__name__)

DB_NAME = "emulator.sqlite3"
LOCK_NAME = "emulator.lock"
#: ``PRAGMA user_version`` of the schema below.
SCHEMA_VERSION = 1
#: ``PRAGMA application_id`` of an emulator's database ("EmuL").
APPLICATION_ID = 0x456D754C
#: Above this many queued operations, a writer waits for the writer thread to catch up.
MAX_QUEUED = 50_000
#: ``PRAGMA quick_check`` runs at open for files up to this size (it reads every page).
QUICK_CHECK_MAX_BYTES = 64 << 20

SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
#: How often the writer thread copies the WAL into the database file (SQLite's own automatic
#: checkpoints are off: they would run inside a commit).
CHECKPOINT_SECONDS = 1.0
_TABLES = frozenset({"records", "meta", "journal"})
_SCHEMA = """
CREATE TABLE records (
    kind TEXT NOT NULL, namespace TEXT NOT NULL, account TEXT NOT NULL, key TEXT NOT NULL,
    value TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (namespace, kind, account, key)
) WITHOUT ROWID;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE journal (
    id INTEGER PRIMARY KEY, namespace TEXT, doc TEXT NOT NULL, request_head BLOB NOT NULL,
    request_body BLOB NOT NULL, response_body BLOB NOT NULL
);
"""
_PUT = (
    "INSERT INTO records (kind, namespace, account, key, value, seq) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (namespace, kind, account, key) DO UPDATE SET value = excluded.value, seq = excluded.seq"
)
_DELETE = "DELETE FROM records WHERE kind = ? AND namespace = ? AND account = ? AND key = ?"
_PUT_META = (
    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
_APPEND = (
    "INSERT OR REPLACE INTO journal (id, namespace, doc, request_head, request_body, response_body)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_TRIM = "DELETE FROM journal WHERE id < ?"
#: Above every string that starts with a given prefix (kinds are compared as UTF-8 bytes).
_TOP = chr(0x10FFFF)
_SQLITE_MAGIC = b"SQLite format 3\x00"
_ACTION = "move it away (or delete it) or point --data at another directory"

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_Op = tuple[str, tuple[Any, ...]]
_Waiter = tuple[int, asyncio.AbstractEventLoop, "asyncio.Future[None]"]


def _where(namespace: str | None, kind_prefix: str) -> tuple[str, tuple[str, ...]]:
    """A WHERE clause (or "") for a namespace (None: all) and a kind prefix ("" : all), matched
    as a range so that kinds' dots and underscores mean themselves."""
    clauses: list[str] = []
    params: list[str] = []
    if namespace is not None:
        clauses.append("namespace = ?")
        params.append(namespace)
    if kind_prefix:
        clauses.append("kind >= ? AND kind < ?")
        params += [kind_prefix, kind_prefix + _TOP]
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)


def _refuse(path: Path, problem: str) -> StorageError:
    return StorageError(str(path), "storage.path", problem)


class _DirectoryLock:
    """``DIR/emulator.lock`` under an exclusive ``flock``, holding the holder's pid."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_NAME
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _refuse(self.path, f"cannot be opened ({exc.strerror}); {_ACTION}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise _refuse(self.path, f"cannot be locked ({exc.strerror})") from None
            this = " (this process)" if holder == str(os.getpid()) else ""
            raise _refuse(
                directory,
                f"is in use by another emulator (pid {holder}{this}); stop that one first, "
                "or point --data at another directory",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _check_header(path: Path) -> None:
    """Refuse a file that cannot be an SQLite database before SQLite touches it."""
    try:
        with path.open("rb") as f:
            head = f.read(100)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _refuse(path, f"cannot be read ({exc.strerror}); {_ACTION}") from None
    if head and (len(head) < 100 or not head.startswith(_SQLITE_MAGIC)):
        raise _refuse(
            path,
            f"is not an SQLite database (no SQLite header: another kind of file, or truncated); {_ACTION}",
        )


def _open_schema(conn: sqlite3.Connection, path: Path, synchronous: str, busy_timeout_ms: int) -> None:
    """Check that ``conn``'s file is an empty database or one of ours, then set it up (nothing is
    written to a file that is refused)."""
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = {
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
        )
    }
    fresh = app_id == 0 and version == 0 and not tables
    if not fresh:
        if app_id != APPLICATION_ID:
            what = f"tables {', '.join(sorted(tables))}" if tables else "no tables"
            raise _refuse(
                path,
                f"is an SQLite database of another program (application_id {app_id}, {what}), "
                f"not an emulator's; {_ACTION}",
            )
        if version != SCHEMA_VERSION:
            newer = "a newer" if version > SCHEMA_VERSION else "an older"
            raise _refuse(
                path,
                f"has schema version {version} (written by {newer} emulator); this emulator reads "
                f"version {SCHEMA_VERSION} only. Use the emulator that wrote it, or {_ACTION}",
            )
        if not _TABLES <= tables:
            raise _refuse(
                path, f"lacks the tables {', '.join(sorted(_TABLES - tables))}: it is damaged; {_ACTION}"
            )
        if path.stat().st_size <= QUICK_CHECK_MAX_BYTES:
            found = [row[0] for row in conn.execute("PRAGMA quick_check(3)")]
            if found != ["ok"]:
                lines = (line.strip() for text in found for line in str(text).splitlines())
                problems = "; ".join(line for line in lines if line and not line.startswith("***"))
                raise _refuse(path, f"is damaged (SQLite's quick_check: {problems}); {_ACTION}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise _refuse(path, f"cannot use write-ahead logging (journal_mode is {mode}); {_ACTION}")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA journal_size_limit = 67108864")
    # Checkpoints (which flush to disk) run in the writer thread, not in a commit on the event loop.
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    if fresh:  # one transaction: a crash while creating leaves an empty database
        conn.executescript(
            f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA application_id = {APPLICATION_ID};"
            f" PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        )


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for fut in futures:
        if not fut.done():
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(error)


class SQLiteStore(Store):
    """The durable store in ``directory`` (see the module docstring)."""

    durable = True

    def __init__(
        self, directory: str | Path, *, synchronous: str = "NORMAL", busy_timeout_ms: int = 5000
    ) -> None:
        self.directory = Path(directory)
        self.path = self.directory / DB_NAME
        self.synchronous = synchronous.upper()
        if self.synchronous not in SYNCHRONOUS:
            raise StorageError(
                "storage",
                "storage.synchronous",
                f"must be one of {', '.join(SYNCHRONOUS)}, not {synchronous!r}",
            )
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _refuse(self.directory, f"cannot be made a directory ({exc.strerror})") from None
        self._lock_file = _DirectoryLock(self.directory)
        conns: list[sqlite3.Connection] = []
        try:
            _check_header(self.path)
            conns.append(sqlite3.connect(self.path, isolation_level=None, check_same_thread=False))
            _open_schema(conns[0], self.path, self.synchronous, busy_timeout_ms)
            conns.append(sqlite3.connect(self.path, isolation_level=None, check_same_thread=False))
            conns[1].execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            conns[1].execute("PRAGMA query_only = 1")
            seq = conns[0].execute("SELECT coalesce(max(seq), 0) FROM records").fetchone()[0]
        except BaseException as exc:
            for conn in conns:
                conn.close()
            self._lock_file.release()
            if isinstance(exc, sqlite3.DatabaseError):
                raise _refuse(
                    self.path, f"is not a usable SQLite database (SQLite says: {exc}); {_ACTION}"
                ) from None
            if isinstance(exc, OSError):
                raise _refuse(self.path, f"cannot be opened ({exc.strerror or exc}); {_ACTION}") from None
            raise
        self._writer_conn, self._reader = conns
        self._read_lock = threading.Lock()
        # Everything below is guarded by self._cond's lock.
        self._mutex = threading.Lock()  # taken directly on the hot path (cheaper than the Condition)
        self._cond = threading.Condition(self._mutex)
        self._ops: list[_Op] = []
        self._seq: int = seq
        self._enqueued = 0
        #: The number of the last queued statement commit() waits for.
        self._awaited = 0
        self._committed = 0
        #: The journal's queue, and statements queued on it and written.
        self._jops: list[_Op] = []
        self._jqueued = 0
        self._jwritten = 0
        self._waiters: deque[_Waiter] = deque()
        self._failure: StorageError | None = None
        self._stopping = False
        self._closed = False
        self._wake = threading.Event()
        self._write_lock = threading.Lock()
        #: Commits are written on the event loop's thread (cheap with synchronous NORMAL: no flush to
        #: disk); the writer thread then only writes journal rows nobody waits for.
        self.inline = self.synchronous in ("OFF", "NORMAL")
        self._flush_scheduled = False
        self._thread = threading.Thread(
            target=self._run, name=f"emulator-store {self.directory}", daemon=True
        )
        self._thread.start()

    # --- the queue (caller's thread) ---------------------------------------------------------------

    def _enqueue(self, sql: str, params: tuple[Any, ...], awaited: bool = True) -> None:
        """Queue one statement; ``awaited`` False: one that commit() does not wait for (journal
        rows and their bookkeeping, written within JOURNAL_FLUSH_SECONDS)."""
        with self._mutex:
            if self._stopping:
                raise self._closed_error()
            self._ops.append((sql, params))
            self._enqueued += 1
            if awaited:
                self._awaited = self._enqueued
            if len(self._ops) >= MAX_QUEUED:
                self._make_room()

    def _make_room(self) -> None:
        """Wait (holding ``self._cond``) until the writer thread took the queues."""
        self._wake.set()
        while (len(self._ops) >= MAX_QUEUED or len(self._jops) >= MAX_QUEUED) and self._thread.is_alive():
            self._cond.wait(1.0)

    def _enqueue_journal(self, sql: str, params: tuple[Any, ...]) -> None:
        """Queue one statement on the journal's own queue: written by the writer thread in large
        batches within JOURNAL_FLUSH_SECONDS, never on the event loop's thread, never waited for."""
        with self._mutex:
            if self._stopping:
                raise self._closed_error()
            self._jops.append((sql, params))
            self._jqueued += 1
            if len(self._jops) >= MAX_QUEUED:
                self._make_room()

    def put(self, kind: str, namespace: str, account: str, key: str, value: Any) -> None:
        doc = _encode(value)
        with self._mutex:
            if self._stopping:
                raise self._closed_error()
            self._seq += 1
            self._ops.append((_PUT, (kind, namespace, account, key, doc, self._seq)))
            self._enqueued += 1
            self._awaited = self._enqueued
            if len(self._ops) >= MAX_QUEUED:
                self._make_room()

    def delete(self, kind: str, namespace: str, account: str, key: str) -> None:
        self._enqueue(_DELETE, (kind, namespace, account, key))

    def drop(self, namespace: str | None = None, kind_prefix: str = "") -> None:
        where, params = _where(namespace, kind_prefix)
        self._enqueue("DELETE FROM records" + where, params)

    def put_meta(self, key: str, value: Any) -> None:
        if key.startswith("journal."):
            # The journal's own counts go with its rows.
            self._enqueue_journal(_PUT_META, (key, _encode(value)))
        else:
            self._enqueue(_PUT_META, (key, _encode(value)))

    def append_entry(self, row: JournalRow) -> None:
        doc = _encode(row.doc)
        params = (row.id, row.namespace, doc, row.request_head, row.request_body, row.response_body)
        self._enqueue_journal(_APPEND, params)

    def clear_entries(self, namespace: str | None = None) -> None:
        # On the journal's queue, after the rows it clears (a clear is written with them, within
        # JOURNAL_FLUSH_SECONDS).
        if namespace is None:
            self._enqueue_journal("DELETE FROM journal", ())
        else:
            self._enqueue_journal("DELETE FROM journal WHERE namespace = ?", (namespace,))

    def trim_entries(self, below_id: int) -> None:
        self._enqueue_journal(_TRIM, (below_id,))

    @property
    def pending(self) -> bool:
        return self._awaited > self._committed or self._failure is not None

    async def commit(self) -> None:
        with self._cond:
            if self._failure is not None:
                raise self._failure
            target = self._awaited
            if self._committed >= target:
                return
            loop = asyncio.get_running_loop()
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append((target, loop, fut))
        if self.inline:
            # Once this turn of the loop is over, every commit asked for in it is written at once,
            # on the loop's thread: no hand-off to the writer thread and back.
            if not self._flush_scheduled:
                self._flush_scheduled = True
                loop.call_soon(self._flush_soon)
        else:
            self._wake.set()
        await fut

    # --- reads (caller's thread) -------------------------------------------------------------------

    def _caught_up(self) -> None:
        """Wait until everything queued so far is committed."""
        with self._cond:
            target, journal = self._enqueued, self._jqueued
            while (
                (self._committed < target or self._jwritten < journal)
                and self._failure is None
                and self._thread.is_alive()
            ):
                self._wake.set()
                self._cond.wait(1.0)
            if self._failure is not None:
                raise self._failure
            if self._closed:
                raise self._closed_error()

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        self._caught_up()
        with self._read_lock:
            return self._reader.execute(sql, params).fetchall()

    def load(self, namespace: str | None, kind_prefix: str = "") -> Iterator[Record]:
        where, params = _where(namespace, kind_prefix)
        rows = self._read(
            "SELECT kind, namespace, account, key, value FROM records" + where + " ORDER BY seq", params
        )
        return (Record(kind, ns, account, key, json.loads(value)) for kind, ns, account, key, value in rows)

    def namespaces(self, kind_prefix: str = "") -> list[str]:
        where, params = _where(None, kind_prefix)
        return [
            ns
            for (ns,) in self._read("SELECT DISTINCT namespace FROM records" + where + " ORDER BY 1", params)
        ]

    def get_meta(self, key: str, default: Any = None) -> Any:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def load_entries(self, limit: int) -> list[JournalRow]:
        rows = self._read(
            "SELECT id, namespace, doc, request_head, request_body, response_body FROM journal"
            " ORDER BY id DESC LIMIT ?",
            (max(0, limit),),
        )
        return [
            # The document stays text: the journal decodes it when the entry is first read. Its
            # size (what the journal's byte budget counts) is taken from the stored bytes.
            JournalRow(
                i, ns, doc, bytes(req), bytes(resp), len(doc) + len(head) + len(req) + len(resp), bytes(head)
            )
            for i, ns, doc, head, req, resp in reversed(rows)
        ]

    # --- the writer thread -------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # a bug here must not leave callers waiting for ever
            log.exception("storage: the writer thread of %s stopped", self.path)
            with self._cond:
                self._failure = self._failure or StorageFailure(
                    str(self.path), "storage.path", f"the writer stopped ({type(exc).__name__}: {exc})"
                )
                waiting = [fut for _, _, fut in self._waiters]
                loops = {loop for _, loop, _ in self._waiters}
                self._waiters.clear()
                self._cond.notify_all()
            for loop in loops:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(
                        _settle, [f for f in waiting if f.get_loop() is loop], self._failure
                    )

    def _loop(self) -> None:
        period = JOURNAL_FLUSH_SECONDS / 2
        # Its own connection: a passive checkpoint copies the WAL into the database beside the
        # writes (WAL lets it), so no commit waits for its flushes to disk.
        checkpointer = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        last_checkpoint = time.monotonic()
        try:
            while True:
                self._wake.wait(period)
                self._wake.clear()
                with self._cond:
                    stopping = self._stopping
                self._flush()
                self._flush_journal()
                if stopping or time.monotonic() - last_checkpoint >= CHECKPOINT_SECONDS:
                    checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    last_checkpoint = time.monotonic()
                if stopping:
                    with self._cond:
                        if not self._ops and not self._jops:
                            return
        finally:
            checkpointer.close()

    def _flush(self, here: asyncio.AbstractEventLoop | None = None) -> None:
        """Write what is queued, one batch at a time (so batches commit in the order queued)."""
        with self._write_lock:
            with self._cond:
                batch, self._ops = self._ops, []
            if batch:
                self._write(batch, here)

    def _flush_journal(self) -> None:
        """Write the journal's queue in one transaction (the writer thread's work)."""
        with self._write_lock:
            with self._cond:
                batch, self._jops = self._jops, []
            if not batch:
                return
            error = self._transaction(batch)
            with self._cond:
                if error is not None:
                    self._failure = self._failure or error
                self._jwritten += len(batch)
                self._cond.notify_all()

    def _flush_soon(self) -> None:
        self._flush_scheduled = False
        self._flush(asyncio.get_running_loop())

    def _transaction(self, batch: list[_Op]) -> StorageError | None:
        """Run ``batch`` in one transaction; the failure (this one's or an earlier one's), if any."""
        if self._failure is not None:
            return self._failure
        conn = self._writer_conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            for sql, ops in itertools.groupby(batch, key=itemgetter(0)):
                conn.executemany(sql, [params for _, params in ops])
            conn.execute("COMMIT")
        except Exception as exc:  # any failure must reach the waiting calls
            log.exception("storage: writing %d operations to %s failed", len(batch), self.path)
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            return StorageFailure(
                str(self.path),
                "storage.path",
                f"writing failed ({type(exc).__name__}: {exc}); changes since then are not "
                "stored. Check the disk and the file, then restart the emulator",
            )
        return None

    def _write(self, batch: list[_Op], here: asyncio.AbstractEventLoop | None = None) -> None:
        """Write ``batch`` in one transaction and settle the commits it completes (directly for
        those of the loop ``here``, the one running this, else through their loop)."""
        error = self._transaction(batch)
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        with self._cond:
            if error is not None:
                self._failure = error
            self._committed += len(batch)
            while self._waiters and self._waiters[0][0] <= self._committed:
                _, loop, fut = self._waiters.popleft()
                by_loop.setdefault(loop, []).append(fut)
            self._cond.notify_all()
        for loop, futures in by_loop.items():
            if loop is here:
                _settle(futures, error)
                continue
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_settle, futures, error)

    # --- life cycle --------------------------------------------------------------------------------

    def _closed_error(self) -> StorageError:
        return StorageFailure(str(self.path), "storage.path", "the store is closed")

    async def close(self) -> None:
        """Write everything queued, stop the writer, close the connections, release the lock."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
        self._wake.set()
        await asyncio.to_thread(self._thread.join)
        self._shut()
        if self._failure is not None:
            raise self._failure

    def _shut(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        with self._read_lock:
            self._reader.close()
        self._writer_conn.close()
        self._lock_file.release()

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "path": str(self.path),
            "synchronous": self.synchronous,
            "failed": None if self._failure is None else str(self._failure),
        }
