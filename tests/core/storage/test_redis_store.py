"""RedisStore against a real redis-server: records, meta, the journal stream, the change feed, and
what happens when Redis is missing or goes away."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from emulator.core.storage import JournalRow, Record, StorageError, StoreUnavailable
from emulator.core.storage.redis import Address, ChangesLost, Dropped, RedisStore
from emulator.testing.redis_server import redis_server, server_for_tests

Stores = Callable[..., RedisStore]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with server_for_tests() as url:
        yield url


@pytest.fixture
async def stores(redis_url: str) -> AsyncIterator[Stores]:
    """Stores on one Redis under a prefix of this test's own, as replicas of one emulator would be."""
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    made: list[RedisStore] = []

    def make(replica: str | None = None, url: str = redis_url, **kwargs: Any) -> RedisStore:
        store = RedisStore(url, prefix=prefix, replica=replica, **kwargs)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()


def keys(records: Any) -> list[tuple[str, str, str, str]]:
    return [(r.kind, r.namespace, r.account, r.key) for r in records]


async def test_records_are_read_back_by_another_replica_in_last_written_order(stores: Stores) -> None:
    a, b = stores("a"), stores("b")
    await a.start()
    a.put("alibaba.library", "ns1", "acc", "lib1", {"terms": ["x"]})
    a.put("alibaba.library", "ns1", "acc", "lib2", {"terms": []})
    a.put("faults.rule", "ns2", "", "f1", {"id": "f1"})
    assert not list(b.load(None))  # queued, not committed
    assert a.pending
    await a.commit()
    assert not a.pending
    b.put("alibaba.library", "ns1", "acc", "lib1", {"terms": ["y"]})  # rewritten: now the newest
    await b.commit()
    loaded = list(a.load(None))
    assert keys(loaded) == [
        ("alibaba.library", "ns1", "acc", "lib2"),
        ("faults.rule", "ns2", "", "f1"),
        ("alibaba.library", "ns1", "acc", "lib1"),
    ]
    assert loaded[-1].value == {"terms": ["y"]}
    assert keys(b.load("ns1", "alibaba.")) == [("alibaba.library", "ns1", "acc", k) for k in ("lib2", "lib1")]
    assert list(b.load("ns2", "alibaba.")) == []
    assert a.namespaces() == ["ns1", "ns2"]
    assert a.namespaces("faults.") == ["ns2"]
    assert await b.records("ns2") == [Record("faults.rule", "ns2", "", "f1", {"id": "f1"})]


async def test_load_includes_what_is_queued_and_not_yet_committed(stores: Stores) -> None:
    a = stores("a")
    a.put("k", "ns", "", "1", 1)
    a.put("k", "ns", "", "2", 2)
    await a.commit()
    a.put("k", "ns", "", "1", "one")
    a.delete("k", "ns", "", "2")
    a.put("k", "other", "", "3", 3)
    assert [(r.key, r.value) for r in a.load("ns")] == [("1", "one")]
    assert a.namespaces() == ["ns", "other"]
    a.drop("ns")
    assert keys(a.load(None)) == [("k", "other", "", "3")]
    await a.commit()
    assert keys(stores("b").load(None)) == [("k", "other", "", "3")]


async def test_delete_and_drop_by_namespace_and_kind_prefix(stores: Stores) -> None:
    a, b = stores("a"), stores("b")
    for ns in ("n1", "n2"):
        a.put("alibaba.lib", ns, "acc", "x", 1)
        a.put("alibaba.verdict", ns, "acc", "y", 2)
        a.put("tencent.badcase", ns, "acc", "z", 3)
        # A kind whose JSON escaping differs from its text: the prefix match still holds.
        a.put('alibaba."quoted"', ns, "", "q", 4)
    await a.commit()
    a.delete("alibaba.lib", "n1", "acc", "x")
    a.delete("alibaba.lib", "n1", "acc", "never-there")
    a.drop("n2", "alibaba.")
    await a.commit()
    assert keys(b.load("n1")) == [
        ("alibaba.verdict", "n1", "acc", "y"),
        ("tencent.badcase", "n1", "acc", "z"),
        ('alibaba."quoted"', "n1", "", "q"),
    ]
    assert keys(b.load("n2")) == [("tencent.badcase", "n2", "acc", "z")]
    a.drop(None, 'alibaba."')
    await a.commit()
    assert keys(b.load(None, "alibaba.")) == [("alibaba.verdict", "n1", "acc", "y")]
    a.drop(None, "tencent.")
    a.drop("n1")
    await a.commit()
    assert list(b.load(None)) == []
    assert b.namespaces() == []


async def test_meta_is_shared(stores: Stores) -> None:
    a, b = stores("a"), stores("b")
    assert a.get_meta("journal.next_id", 1) == 1
    a.put_meta("journal.next_id", 42)
    assert a.get_meta("journal.next_id") == 42  # queued
    assert b.get_meta("journal.next_id") is None
    await a.commit()
    assert b.get_meta("journal.next_id") == 42
    assert await b.allocate("journal", 10) == 1
    assert await a.allocate("journal") == 11


def row(i: int, namespace: str | None = "ns") -> JournalRow:
    return JournalRow(i, namespace, {"action": "TextScan", "n": i}, b"\x00req%d" % i, b"resp\xff")


async def test_journal_rows_of_every_replica_in_one_stream(stores: Stores) -> None:
    a, b = stores("a"), stores("b")
    for store, entry in ((a, row(1)), (b, row(2, None)), (a, row(3, "other"))):
        store.append_entry(entry)
        await store.commit()
    rows = b.load_entries(10)
    assert [r.id for r in rows] == [1, 2, 3]
    assert next(r for r in rows if r.id == 2) == row(2, None)
    assert next(r for r in rows if r.id == 3) == row(3, "other")
    assert [r.id for r in b.load_entries(1)] == [3]  # the newest
    assert await a.entries(10) == rows
    a.clear_entries("ns")
    await a.commit()
    assert sorted(r.id for r in b.load_entries(10)) == [2, 3]
    b.trim_entries(3)
    await b.commit()
    assert [r.id for r in a.load_entries(10)] == [3]
    a.clear_entries()
    await a.commit()
    assert b.load_entries(10) == []


async def test_journal_rows_are_written_without_a_commit(stores: Stores) -> None:
    a, b = stores("a"), stores("b")
    a.append_entry(row(7))
    assert a.pending
    for _ in range(200):  # written within JOURNAL_FLUSH_SECONDS; waits at most 2 s
        if b.load_entries(5):
            break
        await asyncio.sleep(0.01)
    assert [r.id for r in b.load_entries(5)] == [7]


async def test_the_journal_stream_is_bounded(stores: Stores) -> None:
    a = stores("a", journal_capacity=50)
    for i in range(1, 1001):
        a.append_entry(row(i))
    await a.commit()
    length = await a.client.xlen(a.journal_key)
    # XADD MAXLEN ~ trims whole nodes of the stream (100 entries each by default).
    assert 50 <= length <= 150
    assert [r.id for r in a.load_entries(3)] == [998, 999, 1000]


async def test_change_feed_answers_the_other_replicas_changes(stores: Stores) -> None:
    a, b = stores("a"), stores("b")
    cursor_b = await b.changes_cursor()
    cursor_a = await a.changes_cursor()
    assert cursor_a == cursor_b == "0-0"
    a.put("k.x", "ns", "acc", "1", {"v": 1})
    a.delete("k.x", "ns", "acc", "2")
    a.drop("ns", "k.y")
    a.drop(None)
    a.put_meta("m", 1)  # meta is no record: not in the feed
    await a.commit()
    b.put("k.z", "ns", "", "3", 3)
    await b.commit()
    cursor_b, changes = await b.changes_since(cursor_b)
    assert changes == [
        ("put", Record("k.x", "ns", "acc", "1", {"v": 1})),
        ("delete", Address("k.x", "ns", "acc", "2")),
        ("drop", Dropped("ns", "k.y")),
        ("drop", Dropped(None, "")),
    ]
    assert await b.changes_since(cursor_b) == (cursor_b, [])  # nothing new
    cursor_a, changes = await a.changes_since(cursor_a)
    assert changes == [("put", Record("k.z", "ns", "", "3", 3))]
    assert cursor_a == cursor_b


async def test_a_replica_behind_a_trimmed_feed_is_told_to_reload(stores: Stores) -> None:
    a, b = stores("a", changes_capacity=10), stores("b")
    cursor = await b.changes_cursor()
    for i in range(500):
        a.put("k", "ns", "", str(i), i)
    await a.commit()
    with pytest.raises(ChangesLost) as lost:
        await b.changes_since(cursor)
    # After reloading, the feed is followed from the cursor the error gives.
    assert len(list(b.load("ns"))) == 500
    a.put("k", "ns", "", "new", 0)
    await a.commit()
    assert await b.changes_since(lost.value.cursor) == (
        await b.changes_cursor(),
        [("put", Record("k", "ns", "", "new", 0))],
    )


async def test_an_emptied_redis_is_noticed_by_the_change_feed(stores: Stores) -> None:
    a, b = stores("a"), stores("b")
    a.put("k", "ns", "", "1", 1)
    await a.commit()
    cursor = await b.changes_cursor()
    await a.client.delete(a.changes_key)  # as after FLUSHALL or a Redis restarted without data
    with pytest.raises(ChangesLost):
        await b.changes_since(cursor)


async def test_unreachable_or_wrong_urls_refuse_to_start(stores: Stores) -> None:
    with pytest.raises(StorageError, match=r"storage\.url: not a Redis URL"):
        stores(url="http://127.0.0.1:6379/0")
    with pytest.raises(StorageError, match="cannot be used: the database 'notadb' is no number"):
        stores(url="redis://127.0.0.1:6379/notadb")
    with pytest.raises(StorageError, match="cannot be used: Port could not be cast"):
        stores(url="redis://127.0.0.1:port/0")
    with redis_server() as url:
        port = url.rsplit(":", 1)[1].split("/")[0]
    store = stores(url=f"redis://user:secret@127.0.0.1:{port}/0")
    with pytest.raises(StorageError) as refused:
        await store.start()
    message = str(refused.value)
    assert f"redis://user:***@127.0.0.1:{port}/0: storage.url: cannot reach Redis" in message
    assert "secret" not in message


async def test_writes_survive_redis_going_away_and_coming_back(stores: Stores) -> None:
    with redis_server() as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        a = stores("a", url=url)
        await a.start()
        a.put("k", "ns", "", "1", 1)
        await a.commit()
    a.put("k", "ns", "", "2", 2)
    a.append_entry(row(5))
    with pytest.raises(StoreUnavailable, match="not acknowledged"):
        await a.commit()
    assert a.pending
    with pytest.raises(StoreUnavailable):
        a.get_meta("x")
    with redis_server(port=port) as again:  # a Redis that lost its data (no persistence here)
        await a.commit()
        assert not a.pending
        b = stores("b", url=again)
        assert [(r.key, r.value) for r in b.load("ns")] == [("2", 2)]
        assert [r.id for r in b.load_entries(5)] == [5]


async def test_describe_names_the_store_without_the_password(stores: Stores, redis_url: str) -> None:
    store = stores("replica-1", url=redis_url.replace("redis://", "redis://:pw@"))
    described = store.describe()
    assert described["kind"] == "RedisStore" and described["durable"] is True
    assert described["replica"] == "replica-1"
    assert "pw" not in described["url"]
    assert isinstance(store.client, aioredis.Redis)


async def test_journal_since_follows_every_replicas_rows_and_waits_for_the_next(stores: Stores) -> None:
    a, b = stores("a"), stores("b")
    a.append_entry(row(1))
    await a.commit()
    cursor, rows = await b.journal_since("0-0")
    assert [r.id for r in rows] == [1]
    assert await b.journal_since(cursor) == (cursor, [])
    now, nothing = await b.journal_since("$")
    assert (now, nothing) == (cursor, [])

    async def later() -> None:
        await asyncio.sleep(0.1)
        a.append_entry(row(2))
        await a.commit()

    writer = asyncio.create_task(later())
    cursor, rows = await b.journal_since(cursor, block=5.0)  # returns with the row, not after 5 s
    await writer
    assert [r.id for r in rows] == [2]
    assert (await b.journal_since(cursor, block=0.05))[1] == []
