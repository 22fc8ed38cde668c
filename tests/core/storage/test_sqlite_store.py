"""The SQLite store against real files, real SQLite connections and real processes."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from emulator.core.storage import JOURNAL_FLUSH_SECONDS, JournalRow, Record, SQLiteStore, StorageError
from emulator.core.storage.sqlite import APPLICATION_ID, DB_NAME, SCHEMA_VERSION

#: A process that acknowledges records (and journal rows) one by one, each after its commit.
ACKER = """
import asyncio, sys
from emulator.core.storage import JournalRow, SQLiteStore

async def main() -> None:
    store = SQLiteStore(sys.argv[1])
    print("open", flush=True)
    for i in range(1_000_000):
        store.put("acked.record", "default", "acct", f"k{i}", {"i": i})
        store.append_entry(JournalRow(i + 1, "default", {"i": i}, b"q%d" % i, b"a"))
        await store.commit()
        print(f"k{i}", flush=True)

asyncio.run(main())
"""


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "data")
    yield s
    await s.close()


def row(i: int, namespace: str | None = "default") -> JournalRow:
    return JournalRow(
        i, namespace, {"action": "ImageScan", "n": i, "text": "色情"}, b"\x00req%d" % i, b"resp"
    )


def read(rows: list[JournalRow]) -> list[JournalRow]:
    """Rows as written: read back, a row's document is its JSON text, and its size is counted."""
    for r in rows:
        assert isinstance(r.doc, str) and r.size == len(r.doc) + len(r.request_body) + len(r.response_body)
    return [dataclasses.replace(r, doc=json.loads(r.doc), size=0) for r in rows]  # type: ignore[arg-type]


def plain(directory: Path) -> sqlite3.Connection:
    """A connection of nobody's: what another process sees in the file."""
    return sqlite3.connect(directory / DB_NAME)


def keys(records: list[Record]) -> list[str]:
    return [r.key for r in records]


async def test_records_meta_and_journal_survive_close_and_reopen(tmp_path: Path) -> None:
    library = Record("alibaba.image_library", "default", "acct1", "lib-1", {"name": "色情", "n": 1.5})
    rule = Record("faults.rule", "ns2", "", "r1", [1, None, True, {"a": []}])
    s = SQLiteStore(tmp_path)
    for r in (library, rule):
        s.put(r.kind, r.namespace, r.account, r.key, r.value)
    s.put_meta("journal.next_id", 42)
    for i in range(1, 6):
        s.append_entry(row(i, "default" if i % 2 else None))
    await s.close()

    s = SQLiteStore(tmp_path)
    try:
        assert list(s.load("default")) == [library]
        assert list(s.load(None)) == [library, rule]
        assert s.get_meta("journal.next_id") == 42
        assert s.get_meta("absent", "dflt") == "dflt"
        assert read(s.load_entries(3)) == [row(3), row(4, None), row(5)]
        assert read(s.load_entries(100)) == [row(1), row(2, None), row(3), row(4, None), row(5)]
        assert s.namespaces() == ["default", "ns2"]
        assert s.namespaces("faults.") == ["ns2"]
        assert s.durable and not s.pending
    finally:
        await s.close()


async def test_load_answers_in_last_written_order_across_reopen(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path)
    for k in "abc":
        s.put("kind", "default", "acct", k, k)
    s.put("kind", "default", "acct", "a", "a2")
    assert keys(list(s.load("default"))) == ["b", "c", "a"]
    await s.close()

    s = SQLiteStore(tmp_path)
    s.put("kind", "default", "acct", "b", "b2")
    s.delete("kind", "default", "acct", "c")
    s.delete("kind", "default", "acct", "never")
    assert [(r.key, r.value) for r in s.load("default")] == [("a", "a2"), ("b", "b2")]
    await s.close()


async def test_drop_by_namespace_and_by_kind_prefix(store: SQLiteStore) -> None:
    for ns in ("default", "ns1"):
        for kind in ("alibaba.lib", "alibaba.lib_x", "alibabaX", "tencent.badcase", "a%b_c"):
            store.put(kind, ns, "acct", "k", kind)
    store.drop("ns1", "alibaba.")
    assert {r.kind for r in store.load("ns1")} == {"alibabaX", "tencent.badcase", "a%b_c"}
    assert len(list(store.load("default"))) == 5
    # The prefix means itself: "a%b_" is no pattern, "alibaba.lib" is not "alibaba.lib_x" only.
    assert [r.kind for r in store.load("default", "a%b_")] == ["a%b_c"]
    assert [r.kind for r in store.load("default", "alibaba.lib")] == ["alibaba.lib", "alibaba.lib_x"]
    store.drop(None, "tencent.")
    assert store.namespaces("tencent.") == []
    store.drop("default")
    assert store.namespaces() == ["ns1"]
    store.drop()
    assert list(store.load(None)) == []


async def test_journal_clear_and_trim(store: SQLiteStore) -> None:
    for i in range(1, 11):
        store.append_entry(row(i, "a" if i % 2 else "b"))
    store.trim_entries(4)
    assert [r.id for r in store.load_entries(100)] == [4, 5, 6, 7, 8, 9, 10]
    store.clear_entries("a")
    assert [r.id for r in store.load_entries(100)] == [4, 6, 8, 10]
    store.clear_entries()
    assert store.load_entries(100) == []


async def test_reads_see_everything_queued_before_them(store: SQLiteStore) -> None:
    for i in range(3000):
        store.put("kind", "default", "acct", f"k{i}", i)
    store.put_meta("m", {"x": 1})
    store.append_entry(row(1))
    # No commit: each read waits for the writer to have written what was queued before it.
    assert len(list(store.load("default"))) == 3000
    assert store.get_meta("m") == {"x": 1}
    assert read(store.load_entries(1)) == [row(1)]


async def test_after_commit_another_connection_sees_the_changes(store: SQLiteStore) -> None:
    await store.commit()  # nothing pending: returns at once
    store.put("kind", "default", "acct", "k", {"v": 1})
    store.put_meta("m", 7)
    store.append_entry(row(1))
    assert store.pending
    await store.commit()
    assert not store.pending
    with plain(store.directory) as conn:
        assert conn.execute("SELECT value FROM records WHERE key = 'k'").fetchall() == [('{"v":1}',)]
        assert conn.execute("SELECT value FROM meta").fetchall() == [("7",)]
        # Journal rows are not waited for: the writer thread writes them within the flush interval.
        deadline = time.monotonic() + 5
        while not (rows := conn.execute("SELECT id, request_body FROM journal").fetchall()):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert rows == [(1, b"\x00req1")]


async def test_many_concurrent_commits_all_return_with_their_changes_stored(store: SQLiteStore) -> None:
    async def one(i: int) -> None:
        store.put("kind", "default", "acct", f"k{i}", i)
        await store.commit()

    await asyncio.gather(*(one(i) for i in range(500)))
    with plain(store.directory) as conn:
        assert conn.execute("SELECT count(*) FROM records").fetchone() == (500,)


async def test_journal_rows_are_written_without_a_commit(store: SQLiteStore) -> None:
    store.append_entry(row(1))
    deadline = time.monotonic() + 10
    with plain(store.directory) as conn:
        while conn.execute("SELECT count(*) FROM journal").fetchone() != (1,):
            assert time.monotonic() < deadline, "the journal row was never written"
            await asyncio.sleep(0.01)
    assert not store.pending


async def test_a_failing_writer_makes_commit_reads_and_close_raise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = SQLiteStore(tmp_path)
    s.put("kind", "default", "acct", "k1", 1)
    await s.commit()
    with plain(tmp_path) as conn:
        conn.execute("DROP TABLE records")  # the file changed under the store
    s.put("kind", "default", "acct", "k2", 2)
    with caplog.at_level(logging.ERROR, logger="emulator.core.storage.sqlite"):
        with pytest.raises(StorageError, match="writing failed .*no such table: records"):
            await s.commit()
    assert "writing 1 operations" in caplog.text
    assert s.pending
    with pytest.raises(StorageError, match="writing failed"):
        await s.commit()
    with pytest.raises(StorageError, match="writing failed"):
        s.get_meta("m")
    assert s.describe()["failed"]
    with pytest.raises(StorageError, match="writing failed"):
        await s.close()
    with pytest.raises(StorageError, match="closed"):
        s.put("kind", "default", "acct", "k3", 3)


def make_file(path: Path, content: bytes) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / DB_NAME).write_bytes(content)
    return path / DB_NAME


def foreign_database(directory: Path, *statements: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(directory / DB_NAME)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()
    return directory / DB_NAME


async def damaged_copy(tmp_path: Path, name: str, how: str) -> Path:
    """An emulator's database with enough pages to damage, damaged."""
    s = SQLiteStore(tmp_path / name)
    for i in range(500):
        s.put("kind", "default", "acct", f"k{i}", "x" * 200)
    await s.close()
    db = tmp_path / name / DB_NAME
    size = db.stat().st_size
    with db.open("r+b") as f:
        if how == "truncated":
            f.truncate(size // 2)
        elif how == "page":
            f.seek(4096 * 2)
            f.write(b"\xff" * 4096)
        else:
            f.seek(20)
            f.write(b"\x99\x99\x99")
    return db


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("random bytes", "is not an SQLite database"),
        ("text", "is not an SQLite database"),
        ("tiny", "is not an SQLite database"),
        ("truncated", "is not a usable SQLite database .*malformed"),
        ("damaged page", "is damaged .*quick_check|malformed"),
        ("damaged header", "is not a usable SQLite database .*file is not a database"),
        ("foreign tables", "another program .*tables users"),
        ("foreign application_id", "another program .*application_id 1234"),
        ("foreign user_version", "another program"),
        ("newer schema", "schema version 2 .*newer emulator.*version 1 only"),
        ("missing tables", "lacks the tables journal"),
    ],
)
async def test_files_that_are_not_an_emulators_database_are_refused(
    tmp_path: Path, case: str, message: str
) -> None:
    directory = tmp_path / "data"
    if case == "random bytes":
        db = make_file(directory, random.Random(0).randbytes(8192))
    elif case == "text":
        db = make_file(directory, b"this is my shopping list\n" * 100)
    elif case == "tiny":
        db = make_file(directory, b"SQLite format 3\x00")
    elif case == "truncated":
        db = await damaged_copy(tmp_path, "data", "truncated")
    elif case == "damaged page":
        db = await damaged_copy(tmp_path, "data", "page")
    elif case == "damaged header":
        db = await damaged_copy(tmp_path, "data", "header")
    elif case == "foreign tables":
        db = foreign_database(directory, "CREATE TABLE users (id INTEGER)")
    elif case == "foreign application_id":
        db = foreign_database(directory, "PRAGMA application_id = 1234")
    elif case == "foreign user_version":
        db = foreign_database(directory, "PRAGMA user_version = 1")
    elif case == "newer schema":
        await SQLiteStore(directory).close()
        db = foreign_database(directory, "PRAGMA user_version = 2")
    else:
        await SQLiteStore(directory).close()
        db = foreign_database(directory, "DROP TABLE journal")
    before = db.read_bytes()
    with pytest.raises(StorageError) as caught:
        SQLiteStore(directory)
    text = str(caught.value)
    assert text.startswith(f"{db}: ")
    assert re.search(message, text), text
    assert "point --data at another directory" in text
    assert "\n" not in text
    assert db.read_bytes() == before  # a refused file is left as it was
    assert not (directory / f"{DB_NAME}-wal").exists()


async def test_our_file_carries_our_application_id_and_schema_version_in_wal_mode(tmp_path: Path) -> None:
    await SQLiteStore(tmp_path).close()
    with plain(tmp_path) as conn:
        assert conn.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_a_second_store_in_this_process_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    first = SQLiteStore(tmp_path, synchronous="full")
    with pytest.raises(
        StorageError, match=rf"is in use by another emulator \(pid {os.getpid()} \(this process\)\)"
    ):
        SQLiteStore(tmp_path)
    await first.close()
    await SQLiteStore(tmp_path).close()


def test_a_bad_synchronous_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="synchronous: must be one of OFF, NORMAL, FULL, EXTRA"):
        SQLiteStore(tmp_path, synchronous="sometimes")
    assert not tmp_path.joinpath(DB_NAME).exists()


async def test_kill_9_loses_nothing_acknowledged_and_releases_the_directory(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    child = subprocess.Popen(
        [sys.executable, "-c", ACKER, str(directory)], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    assert child.stdout is not None
    try:
        assert child.stdout.readline() == "open\n"
        # Another process on the same directory is refused, naming the holder.
        with pytest.raises(StorageError, match=rf"in use by another emulator \(pid {child.pid}\)"):
            SQLiteStore(directory)
        acked = [child.stdout.readline().strip() for _ in range(300)]
        # Three journal flush intervals more of acknowledgements: the first 300 journal rows are
        # then older than the interval a kill -9 may lose.
        until = time.monotonic() + 3 * JOURNAL_FLUSH_SECONDS
        while time.monotonic() < until:
            acked.append(child.stdout.readline().strip())
    finally:
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate(timeout=10)
    acked += rest.split()
    assert child.returncode == -signal.SIGKILL
    assert acked[:3] == ["k0", "k1", "k2"]

    store = SQLiteStore(directory)  # the kernel released the lock of the killed process
    try:
        stored = {r.key for r in store.load("default", "acked.")}
        assert set(acked) <= stored
        # Journal rows are written in batches, not waited for: those of the last flush interval
        # may be lost, and the rest are there, in order (every row up to the newest kept).
        entries = sorted(e.id for e in store.load_entries(1_000_000))
        assert entries == list(range(1, len(entries) + 1)) and len(entries) <= len(acked) + 1
        assert len(entries) >= 300
    finally:
        await store.close()
