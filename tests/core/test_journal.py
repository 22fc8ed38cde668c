"""The journal on its own: filters, eviction, waiting."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from emulator.core.journal import Entry, Filter, FilterError, Journal, WaitTimeout


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
