"""The journal on its own: filters, eviction, waiting."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from emulator.core.journal import Entry, Filter, FilterError, Journal, Raw, WaitTimeout


def entry(**kw: Any) -> Entry:
    base: dict[str, Any] = {
        "id": 0,
        "time": 1000.0,
        "direction": "in",
        "method": "POST",
        "url": "http://x/p",
        "path": "/green/image/feedback",
        "query": (),
        "request_headers": (),
        "request_body": b"",
        "provider": "alibaba",
        "action": "ImageScanFeedback",
        "account": "1",
        "status": 200,
    }
    base.update(kw)
    return Entry(**base)


def test_eviction_keeps_the_newest_and_counts_the_rest() -> None:
    journal = Journal(capacity=3)
    for i in range(5):
        journal.record(entry(time=float(i)))
    assert [e.id for e in journal.select()] == [3, 4, 5]
    assert journal.evicted == 2
    journal.clear()
    assert len(journal) == 0 and journal.evicted == 0


def test_capacity_zero_records_nothing_but_counts() -> None:
    journal = Journal(capacity=0)
    assert journal.record(entry()) is None
    assert len(journal) == 0 and journal.evicted == 1


def test_filters() -> None:
    journal = Journal()
    journal.record(entry(parsed={"url": "http://a/1.jpg", "scenes": ["ad"]}, namespace="n1"))
    journal.record(entry(action="TextFeedback", status=429, time=2000.0))
    journal.record(
        entry(
            provider="tencent",
            action="ReportBadcase",
            path="/report/badcase",
            parsed={"Request": {"Label": "Porn", "ContentType": 1}},
            method="post",
        )
    )
    journal.record(entry(direction="out", method="POST", path="/cb", action=None))

    def ids(**params: str) -> list[int]:
        return [e.id for e in journal.select(Filter.from_params(params))]

    assert ids(provider="alibaba") == [1, 2, 4]
    assert ids(action="TextFeedback") == [2]
    assert ids(status="429") == [2]
    assert ids(direction="out") == [4]
    assert ids(method="post") == [1, 2, 3, 4]
    assert ids(path="/report/badcase") == [3]
    assert ids(namespace="n1") == [1]
    assert ids(**{"body.url": "http://a/1.jpg"}) == [1]
    assert ids(**{"body.scenes.0": "ad"}) == [1]
    assert ids(**{"body.Request.Label": "Porn", "body.Request.ContentType": "1"}) == [3]
    assert ids(**{"body.url": "http://other"}) == []
    assert ids(since="1500") == [2]
    assert ids(since="1970-01-01T00:25:00Z") == [2]
    assert ids(order="desc", limit="2") == [4, 3]
    assert journal.count(Filter(provider="alibaba", direction="in")) == 2


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"colour": "red"}, "unknown filter 'colour' (known: provider, action"),
        ({"status": "ok"}, "status must be an integer, not 'ok'"),
        ({"status": "99"}, "status must be 100..599, not 99"),
        ({"limit": "-1"}, "limit must be >= 0, not -1"),
        ({"direction": "sideways"}, "direction must be 'in' or 'out'"),
        ({"order": "random"}, "order must be 'asc' or 'desc'"),
        ({"since": "last week"}, "since must be epoch seconds or ISO 8601"),
        ({"body.": "x"}, "the field path is empty"),
    ],
)
def test_bad_filters_say_what_is_wrong(params: dict[str, str], message: str) -> None:
    with pytest.raises(FilterError) as info:
        Filter.from_params(params)
    assert message in str(info.value)


async def test_wait_returns_as_soon_as_enough_entries_arrive() -> None:
    journal = Journal()
    journal.record(entry())
    waiting = asyncio.create_task(journal.wait_for(Filter(provider="alibaba"), count=3, timeout=5))
    await asyncio.sleep(0)
    assert not waiting.done()
    journal.record(entry(provider="tencent"))
    journal.record(entry())
    await asyncio.sleep(0)
    assert not waiting.done()
    journal.record(entry())
    got = await asyncio.wait_for(waiting, 1)
    assert [e.id for e in got] == [1, 3, 4]


async def test_wait_timeout_shows_the_closest_entries() -> None:
    journal = Journal()
    journal.record(entry(action="TextFeedback"))
    journal.record(entry(provider="tencent", action="ReportBadcase"))
    with pytest.raises(WaitTimeout) as info:
        await journal.wait_for(Filter(provider="alibaba", action="ImageScanFeedback"), timeout=0.01)
    message = str(info.value)
    assert "waited 0.01s for 1 entry matching provider='alibaba', action='ImageScanFeedback'" in message
    assert "0 arrived" in message
    assert [e.id for e in info.value.closest] == [1, 2]  # one mismatch, then two
    assert "#1 in POST /green/image/feedback provider=alibaba action=TextFeedback" in message


def raw_parts(**kw: Any) -> list[Any]:
    """Raw's fields after ``id``, in order, for Journal.record_raw."""
    base: dict[str, Any] = {
        "time": 1000.0,
        "method": "POST",
        "url": "http://x/p",
        "path": "/report/badcase",
        "query": (),
        "raw_headers": ((b"Host", b"x"), (b"X-Name", "Zoë".encode()), (b"X-Bad", b"\xff")),
        "request_body": b"<Request><A>1</A></Request>",
        "provider": "tencent",
        "action": "ReportBadcase",
        "account": "1",
        "namespace": None,
        "parsed": None,
        "view": None,
        "status": 200,
        "response_headers": {"Content-Type": "application/xml"},
        "response_body": b"<Response/>",
        "duration": 0.001,
        "fault": None,
        "correlation_id": None,
        "error": None,
        "request_body_size": None,
        "violations": None,
    }
    base.update(kw)
    return list(base.values())


def test_raw_parts_become_the_entry_they_describe_when_read() -> None:
    made: list[bytes] = []

    def view(body: bytes) -> Any:
        made.append(body)
        return {"Request": {"A": "1"}}

    journal = Journal(capacity=10)
    journal.record_raw(*raw_parts(view=view))
    journal.record(entry(time=2000.0))
    assert made == []  # nothing is made until the journal is read
    first, second = journal.select()
    assert [first.id, second.id] == [1, 2]
    # Decoded as aiohttp decodes request headers (UTF-8, undecodable bytes kept as surrogates).
    assert first.request_headers == (("Host", "x"), ("X-Name", "Zoë"), ("X-Bad", "\udcff"))
    assert first.header("x-name") == "Zoë"
    assert first.parsed == {"Request": {"A": "1"}}
    assert first.response_headers == (("Content-Type", "application/xml"),)
    assert (first.direction, first.provider, first.status) == ("in", "tencent", 200)
    journal.select()
    assert made == [b"<Request><A>1</A></Request>"]  # made once


async def test_raw_parts_are_made_at_once_for_a_waiter_and_evicted_like_entries() -> None:
    journal = Journal(capacity=2)
    waiting = asyncio.ensure_future(journal.wait_for(Filter(action="ReportBadcase"), count=1, timeout=1))
    # Queued behind the waiter's first step, so it arrives while the waiter waits.
    asyncio.get_running_loop().call_soon(journal.record_raw, *raw_parts(parsed={"Request": {}}))
    (got,) = await waiting
    assert got.parsed == {"Request": {}}
    for _ in range(3):
        journal.record_raw(*raw_parts())
    assert len(journal) == 2 and journal.evicted == 2
    assert [e.id for e in journal.select()] == [3, 4]
    assert journal.clear(namespace="other") == 0 and len(journal) == 2


def raw_size(**kw: Any) -> int:
    """What the byte budget counts for raw_parts(**kw): bodies, request head and URL."""
    fields = dict(zip(Raw._fields[1:], raw_parts(**kw), strict=True))
    head = sum(len(k) + len(v) for k, v in fields["raw_headers"])
    return len(fields["url"]) + head + len(fields["request_body"]) + len(fields["response_body"])


def test_the_byte_budget_evicts_the_oldest_and_counts_them() -> None:
    one = raw_size(request_body=b"x" * 1000)
    journal = Journal(capacity=100, max_bytes=3 * one)
    for _ in range(5):
        journal.record_raw(*raw_parts(request_body=b"x" * 1000))
    assert len(journal) == 3 and journal.bytes == 3 * one
    assert journal.evicted == 2 and journal.evicted_for_bytes == 2
    # The entry cap still counts too, and either kind of eviction adds to ``evicted``.
    journal.capacity = 2
    journal.record_raw(*raw_parts(request_body=b"x" * 1000))
    assert len(journal) == 2 and journal.evicted == 4 and journal.evicted_for_bytes == 2
    assert journal.stats() | {"capacity": 0} == {
        "entries": 2,
        "capacity": 0,
        "bytes": 2 * one,
        "maxBytes": 3 * one,
        "evicted": 4,
        "evictedForBytes": 2,
        "truncatedBodies": 0,
        "maxBodyBytes": 64 * 1024,
        "waiters": 0,
    }
    # An entry larger than the whole budget is not kept either, and says so: the third entry goes
    # for the entry cap, then the two left (the new one included) for the bytes.
    journal.record_raw(*raw_parts(request_body=b"x" * (4 * one)))
    assert len(journal) == 0 and journal.bytes == 0
    assert journal.evicted == 7 and journal.evicted_for_bytes == 4


def test_entries_count_in_the_budget_like_raw_parts() -> None:
    journal = Journal(max_bytes=10_000)
    journal.record(entry(request_body=b"y" * 4000, request_headers=(("Host", "x"),)))
    assert journal.bytes == 4000 + 5 + len("http://x/p")
    journal.record(entry(request_body=b"y" * 7000))
    assert len(journal) == 1 and journal.evicted_for_bytes == 1
    journal.clear(namespace="none-such")
    assert journal.bytes == 7000 + len("http://x/p")
    journal.clear()
    assert journal.bytes == 0 and journal.evicted_for_bytes == 0


def test_a_truncated_body_keeps_its_real_length() -> None:
    journal = Journal()
    journal.record_raw(*raw_parts(request_body=b"a" * 10, request_body_size=5000))
    journal.record_raw(*raw_parts(request_body=b"a" * 10, request_body_size=-1))
    journal.record_raw(*raw_parts())
    cut, unknown, whole = journal.select()
    assert (cut.request_size, unknown.request_size, whole.request_size) == (5000, -1, 27)
    assert cut.to_dict()["request"]["bodySize"] == 5000 and cut.to_dict()["request"]["bodyTruncated"]
    assert whole.to_dict()["request"]["bodyTruncated"] is False
    assert journal.stats()["truncatedBodies"] == 2


def test_the_secret_is_redacted_from_raw_parts_and_entries() -> None:
    journal = Journal(secret="t0ken")
    headers = ((b"Authorization", b"Bearer t0ken"), (b"X-Other", b"t0ken-and-more"), (b"X-Safe", b"t0ke"))
    journal.record_raw(*raw_parts(raw_headers=headers))
    journal.record(entry(request_headers=(("Authorization", "Bearer t0ken"),)))
    raw, made = journal.select()
    assert raw.request_headers == (
        ("Authorization", "Bearer [redacted]"),
        ("X-Other", "[redacted]-and-more"),
        ("X-Safe", "t0ke"),
    )
    assert made.request_headers == (("Authorization", "Bearer [redacted]"),)
    # Without a secret nothing is touched.
    plain = Journal()
    plain.record_raw(*raw_parts(raw_headers=headers))
    assert plain.select()[0].header("authorization") == "Bearer t0ken"


def test_stream_makes_one_entry_at_a_time_and_reads_a_snapshot() -> None:
    made: list[bytes] = []

    def view(body: bytes) -> Any:
        made.append(body)
        return {"Request": {"A": "1"}}

    journal = Journal()
    for i in range(4):
        journal.record_raw(*raw_parts(view=view, namespace=f"n{i % 2}"))
    streamed = journal.stream(Filter(namespace="n1", order="desc", limit=1))
    assert made == []  # nothing is made before it is reached
    journal.record_raw(*raw_parts(view=view, namespace="n1"))  # after the snapshot: not streamed
    assert [e.id for e in streamed] == [4]
    assert [e.id for e in journal.stream(Filter(namespace="n1"), with_view=False)] == [2, 4, 5]
    # Made for the stream only, not kept: the stored items are still raw parts.
    assert journal._raw == 5
    assert [e.parsed for e in journal.stream(Filter(body=(("Request.A", "1"),)))] == [
        {"Request": {"A": "1"}}
    ] * 5


async def test_a_wait_across_a_clear_counts_only_what_came_after() -> None:
    journal = Journal()
    journal.record(entry())
    waiting = asyncio.ensure_future(journal.wait_for(Filter(action="ImageScanFeedback"), count=2, timeout=5))
    await asyncio.sleep(0)  # the waiter is registered, having found 1
    assert journal.waiting == 1
    journal.clear()
    journal.record(entry())
    await asyncio.sleep(0)
    assert not waiting.done()  # 1 since the clear, not 2
    journal.record(entry())
    got = await waiting
    assert [e.id for e in got] == [2, 3]
    assert journal.waiting == 0


async def test_a_wait_answers_only_with_enough_entries_when_some_were_evicted() -> None:
    journal = Journal(capacity=1)
    waiting = asyncio.ensure_future(journal.wait_for(Filter(action="TextFeedback"), count=2, timeout=5))
    await asyncio.sleep(0)
    journal.record(entry(action="TextFeedback"))
    journal.record(entry(action="TextFeedback"))  # evicts the first: the waiter has seen 2
    await asyncio.sleep(0)
    assert not waiting.done()  # but only 1 is there to answer with
    with pytest.raises(WaitTimeout, match="1 arrived"):
        await journal.wait_for(Filter(action="TextFeedback"), count=2, timeout=0)
    journal.capacity = 2
    journal.record(entry(action="TextFeedback"))
    assert [e.id for e in await waiting] == [2, 3]
