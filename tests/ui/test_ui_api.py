"""The dashboard's server side against a real in-process server: the page and its assets, the live
event stream, one exchange explained, and the admin token (the browser tests drive the page)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from emulator import ManualClock, RunningServer, serve
from emulator.admin import ui
from emulator.core.journal import Entry, Journal
from emulator.testing.settings import make_settings
from emulator.testing.signers import tea_sdk_headers

IMAGE = "/green/image/feedback"
BODY = json.dumps(
    {"taskId": "t-1", "suggestion": "block", "scenes": ["porn"], "url": "http://a/1.jpg"}
).encode()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def server(clock: ManualClock) -> AsyncIterator[RunningServer]:
    async with serve(make_settings(), clock=clock) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def signed_feedback(
    http: aiohttp.ClientSession, server: RunningServer, clock: ManualClock, secret: str | None = None
) -> int:
    extra = {} if secret is None else {"secret": secret}
    headers = {"Host": "green.cn-shanghai.aliyuncs.com", **tea_sdk_headers(BODY, clock.time(), **extra)}
    async with http.post(server.url + IMAGE, data=BODY, headers=headers) as response:
        await response.read()
        return response.status


async def get_json(http: aiohttp.ClientSession, url: str, **headers: str) -> tuple[int, Any]:
    async with http.get(url, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def next_event(stream: aiohttp.StreamReader) -> tuple[str, dict[str, Any]]:
    """The next event of a Server-Sent Events stream (keep-alive comments skipped)."""
    name, data = "message", ""
    while True:
        line = (await stream.readline()).decode().rstrip("\n")
        if line.startswith(":"):
            continue
        if not line:
            if data:
                return name, json.loads(data)
            continue
        field, _, value = line.partition(": ")
        if field == "event":
            name = value
        elif field == "data":
            data += value


async def test_the_page_and_its_assets_are_served_with_a_strict_policy(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(server.url + "/_emulator/ui") as response:
        assert response.status == 200 and response.content_type == "text/html"
        html = await response.text()
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    # Every script and style sheet the page names is its own, served here.
    for name, kind in (("ui.js", "text/javascript"), ("ui.css", "text/css")):
        assert f"/_emulator/ui/static/{name}" in html
        async with http.get(f"{server.url}/_emulator/ui/static/{name}") as response:
            assert response.status == 200 and response.content_type == kind
    assert "http://" not in html and "https://" not in html  # no CDN
    for name in ("ui.html", "../ui.py", "..%2Fui.py", "nope.js"):
        async with http.get(f"{server.url}/_emulator/ui/static/{name}") as response:
            assert response.status == 404
            assert response.content_type == "application/problem+json"


async def test_the_stream_sends_the_backlog_then_new_calls_in_batches(
    server: RunningServer, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    assert await signed_feedback(http, server, clock) == 200
    async with http.get(server.url + "/_emulator/ui/events?backlog=10") as response:
        assert response.content_type == "text/event-stream"
        name, data = await next_event(response.content)
        assert name == "snapshot"
        columns = data["columns"]
        assert [(r[0], r[6], r[9]) for r in data["rows"]] == [(1, "ImageScanFeedback", 200)]
        assert (columns[0], columns[6], columns[9]) == ("id", "action", "status")
        for _ in range(3):
            assert await signed_feedback(http, server, clock) == 200
        # Calls made together arrive in few events (a batch each BATCH_SECONDS), oldest first.
        rows: list[dict[str, Any]] = []
        while len(rows) < 3:
            name, data = await next_event(response.content)
            assert name == "rows" and data["dropped"] == 0
            rows += [dict(zip(columns, r, strict=True)) for r in data["rows"]]
        assert [r["id"] for r in rows] == [2, 3, 4]
        assert rows[0]["provider"] == "alibaba" and '"taskId"' in rows[0]["snippet"]
        assert data["journal"]["entries"] == 4


async def test_a_wrong_backlog_and_too_many_streams_are_refused(
    server: RunningServer, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, problem = await get_json(http, server.url + "/_emulator/ui/events?backlog=x")
    assert status == 400 and "backlog" in problem["detail"]
    monkeypatch.setattr(ui, "MAX_STREAMS", 1)
    async with http.get(server.url + "/_emulator/ui/events") as first:
        await next_event(first.content)
        status, problem = await get_json(http, server.url + "/_emulator/ui/events")
        assert status == 503 and problem["error"] == "too_many_streams"


def test_a_feed_holds_only_the_newest_rows_and_counts_what_it_dropped() -> None:
    journal = Journal()
    feed = ui.Feed(size=3)
    unsubscribe = journal.subscribe(feed)
    for i in range(5):
        journal.record(Entry(0, float(i), "out", "POST", "http://r/", "/", (), (), b""))
    items, dropped = feed.take()
    assert [e.id for e in items] == [3, 4, 5] and dropped == 2
    assert feed.take() == ([], 0)
    unsubscribe()
    journal.record(Entry(0, 9.0, "out", "POST", "http://r/", "/", (), (), b""))
    assert feed.take() == ([], 0) and len(journal) == 6


async def test_an_exchange_is_explained_signature_and_fault(
    server: RunningServer, http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    assert await signed_feedback(http, server, clock, secret="not-the-secret") == 400
    status, data = await get_json(http, server.url + "/_emulator/ui/exchanges/1")
    assert status == 200
    assert data["signature"]["verdict"] == "refused"
    assert data["signature"]["code"] == "SignatureDoesNotMatch"
    assert data["entry"]["request"]["path"] == IMAGE and data["rule"] is None

    action = {"type": "error", "code": "InternalError"}
    rule = {"name": "boom", "match": {"provider": "alibaba"}, "action": action}
    faults, headers = server.url + "/_emulator/faults", {"Content-Type": "application/json"}
    async with http.post(faults, data=json.dumps(rule), headers=headers) as response:
        assert response.status == 201
    assert await signed_feedback(http, server, clock) == 500
    status, data = await get_json(http, server.url + "/_emulator/ui/exchanges/2")
    assert data["entry"]["fault"] == data["rule"]["id"] + " (boom)"
    assert data["rule"]["stats"] == {"matched": 1, "fired": 1}
    assert data["signature"]["verdict"] == "unknown" and "boom" in data["signature"]["reason"]

    async with http.delete(faults) as response:
        assert response.status == 200
    assert await signed_feedback(http, server, clock) == 200
    status, data = await get_json(http, server.url + "/_emulator/ui/exchanges/3")
    assert data["signature"]["verdict"] == "verified" and data["entry"]["fault"] is None

    assert (await get_json(http, server.url + "/_emulator/ui/exchanges/99"))[0] == 404
    assert (await get_json(http, server.url + "/_emulator/ui/exchanges/x1"))[0] == 400


async def test_the_forms_get_the_shipped_scenarios_and_the_console_settings(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    status, data = await get_json(http, server.url + "/_emulator/ui/scenarios")
    assert status == 200
    shipped = {s["name"]: s["description"] for s in data["scenarios"]}
    assert "first-call-fails" in shipped and shipped["first-call-fails"]
    body = json.dumps({"url": "http://127.0.0.1:9/cb", "seed": "s33d"})
    headers = {"Content-Type": "application/json"}
    async with http.put(server.url + "/_emulator/alibaba/callback", data=body, headers=headers) as response:
        assert response.status == 200
    status, data = await get_json(http, server.url + "/_emulator/ui/console")
    (account,) = data["alibaba"]
    assert account["callback"] == {"url": "http://127.0.0.1:9/cb", "seed": "s33d"}
    assert account["namespace"] == "default" and data["tencent"][0]["appid"]
    assert (await get_json(http, server.url + "/_emulator/ui/console?namespace=*"))[0] == 400


async def test_with_a_token_the_page_is_open_and_its_data_is_not(http: aiohttp.ClientSession) -> None:
    async with serve(make_settings(**{"admin.token": "s3cret"})) as server:
        for path in ("/ui", "/ui/static/ui.js"):
            async with http.get(f"{server.url}/_emulator{path}") as response:
                assert response.status == 200
        for path in ("/ui/events", "/ui/exchanges/1", "/ui/scenarios", "/ui/console"):
            assert (await get_json(http, f"{server.url}/_emulator{path}"))[0] == 401
        # The stream reads the header like every admin call.
        bearer = {"Authorization": "Bearer s3cret"}
        async with http.get(server.url + "/_emulator/ui/events", headers=bearer) as response:
            assert response.status == 200
            assert (await next_event(response.content))[0] == "snapshot"


async def test_an_exchange_links_the_callbacks_it_caused(
    server: RunningServer, http: aiohttp.ClientSession, aiohttp_server: Any
) -> None:
    heard: list[bytes] = []

    async def receive(request: web.Request) -> web.Response:
        heard.append(await request.read())
        return web.Response(text="ok")

    receiver_app = web.Application()
    receiver_app.router.add_post("/cb", receive)
    receiver = await aiohttp_server(receiver_app, host="127.0.0.1")
    json_type = {"Content-Type": "application/json"}
    setting = json.dumps({"url": str(receiver.make_url("/cb"))})
    async with http.put(server.url + "/_emulator/alibaba/callback", data=setting, headers=json_type) as r:
        assert r.status == 200
    review = json.dumps({"taskId": "t-9", "suggestion": "block"})
    async with http.post(server.url + "/_emulator/alibaba/reviews", data=review, headers=json_type) as r:
        cid = (await r.json())["correlationId"]
    status, _ = await get_json(http, server.url + "/_emulator/callbacks/wait?state=delivered&timeout=5")
    assert status == 200 and len(heard) == 1
    _, data = await get_json(http, server.url + "/_emulator/ui/exchanges/1")
    assert data["entry"]["action"] == "ConsoleReview" and data["entry"]["correlationId"] == cid
    assert data["signature"]["verdict"] == "not applicable"  # the console's action, unsigned
    (delivery,) = data["deliveries"]
    assert delivery["state"] == "delivered" and [a["status"] for a in delivery["attempts"]] == [200]
    (attempt,) = data["related"]
    assert (attempt["direction"], attempt["status"], attempt["correlationId"]) == ("out", 200, cid)
    assert attempt["id"] == delivery["attempts"][0]["entryId"]
    # And the attempt's own detail points back at its cause.
    _, data = await get_json(http, f"{server.url}/_emulator/ui/exchanges/{attempt['id']}")
    assert [r["id"] for r in data["related"]] == [1]
    assert data["signature"]["verdict"] == "not applicable"


async def test_the_snapshot_names_the_server_run(server: RunningServer, http: aiohttp.ClientSession) -> None:
    async def instance(url: str) -> str:
        async with http.get(url + "/_emulator/ui/events?backlog=0") as response:
            name, data = await next_event(response.content)
            assert name == "snapshot"
            run: str = data["instance"]
            return run

    first = await instance(server.url)
    assert await instance(server.url) == first
    async with serve(make_settings()) as other:
        assert await instance(other.url) != first
