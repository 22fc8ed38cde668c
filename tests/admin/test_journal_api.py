"""The admin API over the journal, against a real in-process server."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest

from emulator import ManualClock, RunningServer, serve
from emulator.keys import JOURNAL
from emulator.testing.settings import make_settings

HAR_SCHEMA = json.loads((Path(__file__).with_name("har-1.2.schema.json")).read_text())
IMAGE = "/green/image/feedback"


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    settings = make_settings(**{"alibaba.verify_signatures": False, "tencent.verify_signatures": False})
    async with serve(settings, clock=ManualClock()) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def feedback(
    http: aiohttp.ClientSession, server: RunningServer, body: Any, ns: str | None = None, path: str = IMAGE
) -> int:
    headers = {"X-Emulator-Namespace": ns} if ns else {}
    async with http.post(server.url + path, data=json.dumps(body), headers=headers) as response:
        await response.read()
        return response.status


async def admin(
    http: aiohttp.ClientSession, server: RunningServer, method: str, path: str, **params: str
) -> tuple[int, Any]:
    # A change must say it is JSON (the admin API's cross-site protection), even with no body.
    headers = {"Content-Type": "application/json"} if method in ("POST", "PUT", "PATCH") else {}
    url = f"{server.url}/_emulator{path}"
    async with http.request(method, url, params=params, headers=headers) as response:
        # Admin errors are problem details (RFC 9457); successes plain JSON.
        want = "application/problem+json" if response.status >= 400 else "application/json"
        if response.content_type == want:
            return response.status, await response.json(content_type=want)
        return response.status, await response.text()


async def test_requests_are_recorded_with_request_and_response(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    await feedback(http, server, {"url": "http://a/1.jpg", "suggestion": "block", "scenes": ["ad"]})
    status, data = await admin(http, server, "GET", "/requests")
    assert status == 200 and data["count"] == 1 and data["evicted"] == 0
    (e,) = data["entries"]
    assert (e["direction"], e["provider"], e["action"], e["account"]) == (
        "in",
        "alibaba",
        "ImageScanFeedback",
        "1234567890123456",
    )
    assert e["request"]["method"] == "POST" and e["request"]["path"] == IMAGE
    assert e["request"]["parsed"] == {"url": "http://a/1.jpg", "suggestion": "block", "scenes": ["ad"]}
    assert json.loads(e["request"]["body"])["url"] == "http://a/1.jpg"
    assert e["response"]["status"] == 200
    assert json.loads(e["response"]["body"])["code"] == 200
    assert e["durationMs"] >= 0
    # Admin calls themselves are not recorded.
    assert (await admin(http, server, "GET", "/requests/count"))[1] == {"count": 1, "evicted": 0}


async def test_filters_over_http(server: RunningServer, http: aiohttp.ClientSession) -> None:
    await feedback(http, server, {"url": "http://a/1.jpg"})
    await feedback(http, server, {"taskId": "t1", "content": "x"}, path="/green/text/feedback")
    await feedback(http, server, {"suggestion": "pass"})  # business 400, still HTTP 200
    _, data = await admin(http, server, "GET", "/requests", action="TextFeedback")
    assert [e["request"]["parsed"]["taskId"] for e in data["entries"]] == ["t1"]
    _, data = await admin(http, server, "GET", "/requests", **{"body.url": "http://a/1.jpg"})
    assert data["count"] == 1
    _, data = await admin(http, server, "GET", "/requests", order="desc", limit="1")
    assert data["entries"][0]["request"]["parsed"] == {"suggestion": "pass"}
    status, data = await admin(http, server, "GET", "/requests", colour="red")
    assert status == 400 and data["error"] == "bad_request" and "unknown filter 'colour'" in data["message"]


async def test_unrouted_and_rejected_requests_are_recorded_too(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(server.url + IMAGE) as response:
        assert response.status == 404
    async with http.post(server.url + "/nowhere", data=b"x") as response:
        assert response.status == 404
    _, data = await admin(http, server, "GET", "/requests")
    assert [(e["request"]["method"], e["response"]["status"]) for e in data["entries"]] == [
        ("GET", 404),
        ("POST", 404),
    ]


async def test_eviction_is_counted(http: aiohttp.ClientSession) -> None:
    settings = make_settings(**{"alibaba.verify_signatures": False, "journal.capacity": 2})
    async with serve(settings) as server:
        for i in range(5):
            await feedback(http, server, {"taskId": str(i)})
        _, data = await admin(http, server, "GET", "/requests")
    assert [e["request"]["parsed"]["taskId"] for e in data["entries"]] == ["3", "4"]
    assert data["evicted"] == 3


async def test_har_export_is_valid_har_1_2(server: RunningServer, http: aiohttp.ClientSession) -> None:
    await feedback(http, server, {"url": "http://a/1.jpg"})
    async with http.post(server.url + IMAGE + "?ClientInfo=%7B%7D", data=b"\xff\xfe") as response:
        await response.read()
    status, har = await admin(http, server, "GET", "/requests.har")
    assert status == 200
    jsonschema.validate(har, HAR_SCHEMA, format_checker=jsonschema.FormatChecker())
    first, second = har["log"]["entries"]
    assert first["request"]["postData"]["text"] == '{"url": "http://a/1.jpg"}'
    assert first["response"]["status"] == 200 and first["response"]["statusText"] == "OK"
    assert second["request"]["queryString"] == [{"name": "ClientInfo", "value": "{}"}]
    assert second["request"]["postData"]["text"] == "//4="  # not UTF-8: base64


async def test_ndjson_export(server: RunningServer, http: aiohttp.ClientSession) -> None:
    for i in range(3):
        await feedback(http, server, {"taskId": str(i)})
    status, text = await admin(http, server, "GET", "/requests.ndjson")
    assert status == 200
    lines = text.splitlines()
    assert [json.loads(line)["request"]["parsed"]["taskId"] for line in lines] == ["0", "1", "2"]


async def test_wait_returns_early_when_traffic_arrives(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    waiting = asyncio.create_task(
        admin(http, server, "GET", "/requests/wait", action="TextFeedback", count="2", timeout="30")
    )
    await feedback(http, server, {"taskId": "a"}, path="/green/text/feedback")
    await feedback(http, server, {"taskId": "b"})
    assert not waiting.done()
    await feedback(http, server, {"taskId": "c"}, path="/green/text/feedback")
    status, data = await asyncio.wait_for(waiting, 10)  # far less than the 30 s asked for
    assert status == 200
    assert [e["request"]["parsed"]["taskId"] for e in data["entries"]] == ["a", "c"]


async def test_wait_times_out_showing_the_closest(server: RunningServer, http: aiohttp.ClientSession) -> None:
    await feedback(http, server, {"taskId": "a"}, path="/green/text/feedback")
    status, data = await admin(
        http, server, "GET", "/requests/wait", action="ImageScanFeedback", provider="alibaba", timeout="0.05"
    )
    assert status == 408 and data["error"] == "timeout"
    assert "matching provider='alibaba', action='ImageScanFeedback', namespace='default'; 0 arrived" in (
        data["message"]
    )
    assert [e["action"] for e in data["closest"]] == ["TextFeedback"]
    status, data = await admin(http, server, "GET", "/requests/wait", timeout="600")
    assert status == 400 and "timeout" in data["message"]


async def test_namespaces_isolate_concurrent_clients(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    async def client(ns: str, n: int) -> None:
        for i in range(n):
            await feedback(http, server, {"taskId": f"{ns}-{i}"}, ns=ns)

    await asyncio.gather(client("alpha", 5), client("beta", 3))
    _, alpha = await admin(http, server, "GET", "/requests", namespace="alpha")
    _, beta = await admin(http, server, "GET", "/requests/count", namespace="beta")
    assert sorted(e["request"]["parsed"]["taskId"] for e in alpha["entries"]) == [
        f"alpha-{i}" for i in range(5)
    ]
    assert beta["count"] == 3
    # Resetting one namespace leaves the other's traffic alone.
    assert (await admin(http, server, "POST", "/reset", namespace="alpha"))[1]["namespace"] == "alpha"
    assert (await admin(http, server, "GET", "/requests/count", namespace="alpha"))[1]["count"] == 0
    assert (await admin(http, server, "GET", "/requests/count", namespace="beta"))[1]["count"] == 3
    # Without a namespace an admin call acts on the default one; '*' is every namespace.
    assert (await admin(http, server, "DELETE", "/requests"))[1] == {"deleted": 0}
    assert (await admin(http, server, "DELETE", "/requests", namespace="*"))[1] == {"deleted": 3}


async def test_reset_restores_throttle_windows_and_state(http: aiohttp.ClientSession) -> None:
    from emulator.providers.alibaba.routes import ALIBABA_BACKEND

    account = {
        "access_key_id": "k",
        "access_key_secret": "s",
        "uid": "9",
        "rate_limits": {"ImageScanFeedback": 2},
    }
    settings = make_settings(**{"alibaba.verify_signatures": False, "alibaba.accounts": [account]})
    async with serve(settings, clock=ManualClock()) as server:
        statuses = [
            await feedback(http, server, {"url": "http://a/1.jpg", "label": "porn"}) for _ in range(3)
        ]
        assert statuses == [200, 200, 429]
        assert server.app[ALIBABA_BACKEND].states["9"].image_library
        assert (await admin(http, server, "POST", "/reset"))[0] == 200
        assert len(server.app[ALIBABA_BACKEND].states["9"].image_library) == 0
        assert (await admin(http, server, "GET", "/requests/count"))[1]["count"] == 0
        assert await feedback(http, server, {}) == 200


async def test_admin_token(http: aiohttp.ClientSession) -> None:
    async with serve(make_settings(**{"admin.token": "s3cret"})) as server:
        assert (await admin(http, server, "GET", "/health"))[0] == 200  # probes need no token
        status, data = await admin(http, server, "GET", "/requests")
        assert status == 401 and "Bearer" in data["message"]
        headers = {"Authorization": "Bearer s3cret"}
        async with http.get(f"{server.url}/_emulator/requests", headers=headers) as response:
            assert response.status == 200


async def test_openapi_document_lists_every_admin_route(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    status, spec = await admin(http, server, "GET", "/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.")
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    routed = {
        (r.method, r.resource.canonical)
        for r in server.app.router.routes()
        if r.resource is not None and r.resource.canonical.startswith("/_emulator") and r.method != "HEAD"
    }
    assert routed == documented


async def test_tencent_exchanges_are_recorded_with_the_parsed_xml(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    import base64

    text = base64.b64encode("违规".encode()).decode()
    body = (
        f"<Request><ContentType>1</ContentType><Label>Porn</Label>"
        f"<SuggestedLabel>Normal</SuggestedLabel><Text>{text}</Text></Request>"
    )
    headers = {
        "Host": "examplebucket-1250000000.ci.ap-beijing.myqcloud.com",
        "Content-Type": "application/xml",
    }
    async with http.post(server.url + "/report/badcase", data=body, headers=headers) as response:
        assert response.status == 200
    _, data = await admin(
        http, server, "GET", "/requests", provider="tencent", **{"body.Request.Label": "Porn"}
    )
    (e,) = data["entries"]
    assert (e["action"], e["account"]) == ("ReportBadcase", "1250000000")
    assert e["request"]["parsed"]["Request"]["Text"] == text
    assert "<RequestId>" in e["response"]["body"]


async def until_waiting(server: RunningServer, n: int) -> None:
    """Until ``n`` long-polls wait on the journal (each step lets the server run; bounded)."""
    journal = server.app[JOURNAL]
    for _ in range(10_000):
        if journal.waiting == n:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{journal.waiting} long-polls wait, not {n}")


async def test_a_wait_across_a_clear_counts_only_what_came_after(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    await feedback(http, server, {"taskId": "before"})
    waiting = asyncio.create_task(admin(http, server, "GET", "/requests/wait", count="2", timeout="30"))
    await until_waiting(server, 1)
    assert (await admin(http, server, "DELETE", "/requests"))[1] == {"deleted": 1}
    await feedback(http, server, {"taskId": "after-1"})
    await until_waiting(server, 1)  # one since the clear: still waiting (it answered 200 with 1)
    assert not waiting.done()
    await feedback(http, server, {"taskId": "after-2"})
    status, data = await asyncio.wait_for(waiting, 10)
    assert status == 200 and data["count"] == 2
    assert [e["request"]["parsed"]["taskId"] for e in data["entries"]] == ["after-1", "after-2"]


async def test_long_polls_are_bounded(http: aiohttp.ClientSession) -> None:
    settings = make_settings(**{"alibaba.verify_signatures": False, "journal.max_waiters": 2})
    async with serve(settings) as server:
        polls = [
            asyncio.create_task(admin(http, server, "GET", "/requests/wait", timeout="30")) for _ in range(2)
        ]
        await until_waiting(server, 2)
        status, data = await admin(http, server, "GET", "/requests/wait", timeout="30")
        assert status == 503 and data["error"] == "too_many_waiters"
        assert "journal.max_waiters" in data["message"]
        _, listing = await admin(http, server, "GET", "/requests")
        assert listing["journal"]["waiters"] == 2
        await feedback(http, server, {"taskId": "a"})
        assert [(await p)[0] for p in polls] == [200, 200]
        # Answered: room again.
        assert (await admin(http, server, "GET", "/requests/wait", timeout="0"))[0] == 200


async def test_the_admin_token_never_reaches_the_journal_or_an_export(http: aiohttp.ClientSession) -> None:
    token = "s3cret-Token"
    settings = make_settings(**{"alibaba.verify_signatures": False, "admin.token": token})
    bearer = {"Authorization": f"Bearer {token}"}
    async with serve(settings) as server:
        # A console review is journaled with the admin call's own headers.
        review = {"taskId": "t1", "suggestion": "block"}
        async with http.post(f"{server.url}/_emulator/alibaba/reviews", json=review, headers=bearer) as r:
            assert r.status == 200
        # A provider call that carries the token anyway (a client that sends it everywhere).
        async with http.post(server.url + IMAGE, json={"taskId": "x"}, headers={**bearer, "X-Copy": token}):
            pass
        texts = []
        for route in ("/requests", "/requests.har", "/requests.ndjson", "/requests/wait?count=2"):
            async with http.get(f"{server.url}/_emulator{route}", headers=bearer) as response:
                assert response.status == 200
                texts.append(await response.text())
        async with http.get(f"{server.url}/_emulator/requests", headers=bearer) as response:
            entries = (await response.json())["entries"]
    assert all(token not in text for text in texts)
    assert [dict(e["request"]["headers"])["Authorization"] for e in entries] == ["Bearer [redacted]"] * 2
    assert dict(entries[1]["request"]["headers"])["X-Copy"] == "[redacted]"


async def test_exports_are_streamed_and_show_cut_bodies_with_their_real_length(
    http: aiohttp.ClientSession,
) -> None:
    settings = make_settings(**{"journal.max_body_bytes": 100})
    async with serve(settings) as server:
        body = json.dumps({"url": "http://a/1.jpg", "note": "é" * 500}, ensure_ascii=False).encode()
        async with http.post(server.url + IMAGE, data=body) as response:  # unsigned: refused
            assert response.status == 400
        async with http.get(f"{server.url}/_emulator/requests.har") as response:
            # Written as it is made: no Content-Length, chunked.
            assert response.headers.get("Transfer-Encoding") == "chunked"
            assert "Content-Length" not in response.headers
            har = await response.json()
        async with http.get(f"{server.url}/_emulator/requests.ndjson") as response:
            assert response.headers.get("Transfer-Encoding") == "chunked"
            (line,) = (await response.text()).splitlines()
    jsonschema.validate(har, HAR_SCHEMA, format_checker=jsonschema.FormatChecker())
    (entry,) = har["log"]["entries"]
    assert entry["request"]["bodySize"] == len(body)
    # 100 bytes cut inside a two-byte character: not UTF-8, so base64.
    assert base64.b64decode(entry["request"]["postData"]["text"]) == body[:100]
    assert entry["request"]["postData"]["comment"] == (
        f"text is base64: the body is not UTF-8; truncated: the first 100 bytes of {len(body)} bytes"
    )
    request = json.loads(line)["request"]
    assert request["bodySize"] == len(body) and request["bodyTruncated"] is True


async def test_a_lone_surrogate_in_a_parsed_body_does_not_break_the_ndjson_export(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    await feedback(http, server, {"taskId": "ok"})
    async with http.post(server.url + IMAGE, data=b'{"taskId": "\\udc80"}') as response:
        await response.read()
    status, text = await admin(http, server, "GET", "/requests.ndjson")
    assert status == 200
    first, second = (json.loads(line)["request"] for line in text.splitlines())
    assert first["parsed"]["taskId"] == "ok"
    # Refused at the door (a lone surrogate is not Unicode text): kept as sent, the export still whole.
    assert second["parsed"] is None and "\\udc80" in second["body"]
