"""Every per-key structure of the provider state is bounded, whatever the traffic: Tencent badcases
(a cap per account and namespace, the oldest forgotten, confirmed ones indexed by content), Alibaba
feedback-based libraries (a cap per account and namespace, and at most 100 TextFeedback items a
call), namespaces themselves, throttle windows and the per-namespace counts of fault rules. Counts,
not timings: bench/state_bounds.py measures what the index saves."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from lxml import etree

from emulator import ManualClock, RunningServer, create_app, serve
from emulator.admin.alibaba import MAX_VERDICTS
from emulator.core.faults import CallView
from emulator.core.namespaces import MAX_NAMESPACES
from emulator.core.throttle import SlidingWindowLimiter
from emulator.keys import FAULTS
from emulator.providers.alibaba.routes import ALIBABA_BACKEND
from emulator.providers.tencent.routes import TENCENT_BACKEND
from emulator.testing.payloads import b64, request_xml, text_auditing_xml
from emulator.testing.signers import APPID, cos_sdk_headers, tea_sdk_headers

from .conftest import alibaba_shape, hardening_settings

UID = "1234567890123456"
CAP = 5


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def server(clock: ManualClock) -> AsyncIterator[RunningServer]:
    settings = hardening_settings(
        **{
            "tencent.max_badcases": CAP,
            "tencent.confirm_after_seconds": None,
            "alibaba.max_library_entries": CAP,
            "server.max_namespaces": 3,
        }
    )
    async with serve(settings, clock=clock) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def alibaba(
    http: aiohttp.ClientSession, server: RunningServer, clock: ManualClock, path: str, action: str, body: Any
) -> dict[str, Any]:
    raw = json.dumps(body).encode()
    headers = tea_sdk_headers(raw, clock.time(), path=path, action=action, nonce=uuid.uuid4().hex)
    async with http.post(server.url + path, data=raw, headers=headers) as response:
        return alibaba_shape(response.status, await response.read())


async def teach(http: aiohttp.ClientSession, server: RunningServer, clock: ManualClock, url: str) -> None:
    body = {"url": url, "suggestion": "block", "scenes": ["porn"], "label": "porn"}
    assert (await alibaba(http, server, clock, "/green/image/feedback", "ImageScanFeedback", body))[
        "code"
    ] == 200


async def tencent(
    http: aiohttp.ClientSession, server: RunningServer, clock: ManualClock, path: str, body: bytes
) -> etree._Element:
    headers = cos_sdk_headers(body, clock.time(), path=path)
    async with http.post(server.url + path, data=body, headers=headers) as response:
        assert response.status == 200, await response.read()
        return etree.fromstring(await response.read())


async def report(http: aiohttp.ClientSession, server: RunningServer, clock: ManualClock, text: str) -> str:
    body = request_xml(ContentType=1, Text=b64(text), Label="Normal", SuggestedLabel="Porn")
    request_id = (await tencent(http, server, clock, "/report/badcase", body)).findtext("RequestId")
    assert request_id
    return request_id


async def test_badcases_are_capped_oldest_first_and_indexed(
    server: RunningServer, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    async def label(text: str) -> str | None:
        return (await tencent(http, server, clock, "/text/auditing", text_auditing_xml(text))).findtext(
            "JobsDetail/Label"
        )

    first = await report(http, server, clock, "kept twice")
    second = await report(http, server, clock, "kept twice")
    for request_id in (first, second):
        confirm = f"{server.url}/_emulator/tencent/badcases/{request_id}/confirm"
        async with http.post(confirm, json={}) as response:
            assert response.status == 200
    assert await label("kept twice") == "Porn"
    ids = [await report(http, server, clock, f"text {i}") for i in range(CAP + 3)]
    state = server.app[TENCENT_BACKEND].states[APPID]
    # The newest CAP are kept: both confirmed ones went, and with them their verdict.
    assert [b.request_id for b in state.badcases] == ids[-CAP:]
    assert await label("kept twice") == "Normal"
    async with http.get(f"{server.url}/_emulator/tencent/badcases") as response:
        assert (await response.json())["count"] == CAP
    async with http.post(f"{server.url}/_emulator/tencent/badcases/{first}/confirm", json={}) as response:
        assert response.status == 404


async def test_an_evicted_decider_gives_way_to_the_next_confirmed(
    server: RunningServer, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    state = server.app[TENCENT_BACKEND].states[APPID]
    older = await report(http, server, clock, "same text")
    newer = await report(http, server, clock, "same text")
    state.confirm(newer, at=clock.time())
    clock.advance(1)
    state.confirm(older, at=clock.time())  # confirmed last: it decides
    assert state.correction_for(1, "same text") is state.get(older)
    await report(http, server, clock, "other")
    for i in range(CAP - 2):
        await report(http, server, clock, f"filler {i}")
    # "older" was reported first, so it goes first; "newer" decides now.
    assert state.correction_for(1, "same text") is state.get(newer)


async def test_the_review_queue_stays_bounded_without_reads(
    server: RunningServer, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    state = server.app[TENCENT_BACKEND].states[APPID]
    for i in range(4 * CAP):
        await report(http, server, clock, f"t{i}")
    assert len(state.badcases) == CAP
    assert len(state._pending) <= 2 * CAP


async def test_feedback_libraries_are_capped_least_recently_taught_first(
    server: RunningServer, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    for i in range(CAP + 2):
        await teach(http, server, clock, f"http://example.com/{i}.jpg")
    await teach(http, server, clock, "http://example.com/2.jpg")  # taught again: now the newest
    await teach(http, server, clock, "http://example.com/new.jpg")
    library = server.app[ALIBABA_BACKEND].states[UID].image_library
    assert list(library) == [f"http://example.com/{i}.jpg" for i in (4, 5, 6, 2)] + [
        "http://example.com/new.jpg"
    ]

    async def label(url: str) -> str:
        body = {"scenes": ["porn"], "tasks": [{"url": url}]}
        doc = await alibaba(http, server, clock, "/green/image/scan", "ImageSyncScan", body)
        return str(doc["data"][0]["results"][0]["label"])

    assert await label("http://example.com/0.jpg") == "normal"
    assert await label("http://example.com/2.jpg") == "porn"


async def test_text_feedback_takes_at_most_100_items_a_call(
    server: RunningServer, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    def items(n: int) -> list[dict[str, str]]:
        return [{"taskId": "t", "content": f"c{i}", "label": "spam"} for i in range(n)]

    refused = await alibaba(http, server, clock, "/green/text/feedback", "TextFeedback", items(101))
    assert refused["code"] == 400 and "101 items, over 100" in refused["msg"]
    library = server.app[ALIBABA_BACKEND].states[UID].text_library
    assert len(library) == 0
    accepted = await alibaba(http, server, clock, "/green/text/feedback", "TextFeedback", items(100))
    assert accepted["code"] == 200
    assert len(library) == CAP


async def test_namespaces_are_capped_least_recently_used_first_but_never_the_default(
    server: RunningServer, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    await teach(http, server, clock, "http://example.com/d.jpg")
    backend = server.app[ALIBABA_BACKEND]
    for ns in ("n1", "n2", "n3", "n4"):
        backend.state(backend.accounts[0], ns)
    assert len(backend.spaces._spaces) == 3
    assert backend.spaces._spaces.peek("n1") is None and backend.spaces._spaces.peek("n2") is None
    assert "http://example.com/d.jpg" in backend.states[UID].image_library


def test_throttle_windows_are_bounded() -> None:
    clock = ManualClock()
    limiter = SlidingWindowLimiter(clock, max_keys=10)
    for i in range(100):
        assert limiter.try_acquire(("p", f"ns{i}", "a", "x"), 1)
        assert len(limiter) <= 10
    clock.advance(0.5)
    # Windows still holding a call of the last second are kept while the cap allows.
    assert not limiter.try_acquire(("p", "ns99", "a", "x"), 1)
    clock.advance(1.0)
    assert limiter.try_acquire(("p", "ns99", "a", "x"), 1)


def test_a_rule_of_every_namespace_keeps_counts_for_a_bounded_number_of_them() -> None:
    engine = create_app(hardening_settings())[FAULTS]
    engine.add(
        {
            "match": {"provider": "alibaba"},
            "action": {"type": "latency", "fixed": 0},
            "schedule": {"first": 1},
        }
    )
    (rule,) = engine.rules()
    for i in range(MAX_NAMESPACES + 100):
        view = CallView("in", "alibaba", "X", "POST", "/", "a", f"ns{i}", {})
        assert engine.pick(view) is rule  # the first call of each namespace
    assert rule.spaces is not None and len(rule.spaces) == MAX_NAMESPACES
    assert rule.to_dict()["stats"] == {"matched": MAX_NAMESPACES + 100, "fired": MAX_NAMESPACES + 100}


async def test_run_time_verdicts_are_capped(server: RunningServer, http: aiohttp.ClientSession) -> None:
    verdicts = [
        {"scene": "porn", "label": "porn", "suggestion": "block", "url": f"http://example.com/{i}.jpg"}
        for i in range(MAX_VERDICTS)
    ]
    url = f"{server.url}/_emulator/alibaba/verdicts"
    async with http.post(url, json={"verdicts": verdicts}) as response:
        assert response.status == 201
    async with http.post(url, json=verdicts[0]) as response:
        assert response.status == 400
        assert f"at most {MAX_VERDICTS} verdicts" in (await response.json())["message"]
