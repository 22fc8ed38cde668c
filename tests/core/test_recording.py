"""What the journal records of a call over a real server: the URL as sent (origin-form and a proxy's
absolute-form target), and the body of a refused call, bounded, for both providers."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from emulator import ManualClock, RunningServer, serve
from emulator.core.call import Call
from emulator.core.journal import Entry
from emulator.keys import CLOCK, JOURNAL
from emulator.testing.payloads import TEXT_BADCASE
from emulator.testing.settings import make_settings
from emulator.testing.signers import COS_HOST, cos_sdk_headers, tea_sdk_headers

BADCASE_URL = f"http://{COS_HOST}/report/badcase"
IMAGE = "/green/image/feedback"
#: journal.max_body_bytes in these tests.
KEPT = 1000


def last(server: RunningServer) -> Entry:
    return server.app[JOURNAL].select()[-1]


def now(server: RunningServer) -> float:
    return server.app[CLOCK].time()


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    settings = make_settings(**{"journal.max_body_bytes": KEPT, "tencent.max_body_bytes": 100_000})
    async with serve(settings, clock=ManualClock()) as running:
        yield running


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(server.url) as session:
        yield session


# -- URLs ------------------------------------------------------------------------------------------


async def status_of_raw(server: RunningServer, target: str, headers: dict[str, str], body: bytes) -> int:
    """One request written as given, target included (aiohttp's client always sends origin-form)."""
    lines = [f"POST {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items()), "Connection: close"]
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()
        status_line = await reader.readline()
        await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    return int(status_line.split()[1])


@pytest.mark.parametrize("target", ["/report/badcase", BADCASE_URL], ids=["origin-form", "absolute-form"])
async def test_origin_and_absolute_form_targets_give_the_same_url(server: RunningServer, target: str) -> None:
    headers = cos_sdk_headers(TEXT_BADCASE, now(server))
    assert await status_of_raw(server, target, headers, TEXT_BADCASE) == 200
    entry = last(server)
    assert entry.url == BADCASE_URL and entry.path == "/report/badcase"
    # The query is the target's, in either form (the signature lists no parameter, so these two are
    # not signed: COS lets unsigned ones through).
    await status_of_raw(server, target + "?a=1&b=%20", headers, TEXT_BADCASE)
    entry = last(server)
    assert entry.url == BADCASE_URL + "?a=1&b=%20" and entry.query == (("a", "1"), ("b", " "))


# -- bodies of refused calls -----------------------------------------------------------------------


async def post(http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> int:
    async with http.post(url, data=body, headers=headers) as response:
        await response.read()
        return response.status


async def test_a_refused_tencent_call_keeps_its_body(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    headers = cos_sdk_headers(TEXT_BADCASE, now(server), secret_key="not-the-key")
    assert await post(http, server.url + "/report/badcase", TEXT_BADCASE, headers) == 403
    entry = last(server)
    assert entry.response_body.find(b"SignatureDoesNotMatch") > 0
    assert entry.request_body == TEXT_BADCASE and entry.request_body_size is None


async def test_a_refused_tencent_body_is_kept_up_to_the_bound(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    body = b"<Request>" + b"x" * 50_000 + b"</Request>"
    headers = cos_sdk_headers(body, now(server), secret_key="not-the-key")
    assert await post(http, server.url + "/report/badcase", body, headers) == 403
    entry = last(server)
    assert entry.request_body == body[:KEPT] and entry.request_body_size == len(body)
    har = (await (await http.get(server.url + "/_emulator/requests.har")).json())["log"]["entries"][-1]
    assert har["request"]["bodySize"] == len(body)
    assert har["request"]["postData"]["text"] == body[:KEPT].decode()
    assert har["request"]["postData"]["comment"] == f"truncated: the first {KEPT} bytes of {len(body)} bytes"
    assert har["_emulator"]["requestBodyTruncated"] is True


async def test_a_chunked_refused_body_is_kept_up_to_the_bound_of_unknown_length(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"y" * 5_000

    headers = cos_sdk_headers(b"", now(server), secret_key="not-the-key")
    del headers["Content-Length"]
    assert await post(http, server.url + "/report/badcase", chunks(), headers) == 403  # type: ignore[arg-type]
    entry = last(server)
    assert entry.request_body == b"y" * KEPT and entry.request_size == -1
    assert entry.to_dict()["request"]["bodySize"] == -1


async def test_a_body_refused_for_its_declared_size_keeps_its_first_bytes(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    body = b"<Request>" + b"z" * 200_000 + b"</Request>"  # over tencent.max_body_bytes (100,000)
    headers = cos_sdk_headers(body, now(server))
    assert await post(http, server.url + "/report/badcase", body, headers) == 400
    entry = last(server)
    assert b"XMLSizeLimit" in entry.response_body
    assert entry.request_body == body[:KEPT] and entry.request_body_size == len(body)


async def test_alibaba_refused_bodies_are_cut_accepted_ones_kept_whole(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    big = json.dumps({"url": "http://a/1.jpg", "suggestion": "block", "note": "n" * 5_000}).encode()
    assert await post(http, server.url + IMAGE, big, {"Content-Type": "application/json"}) == 400  # unsigned
    refused = last(server)
    assert refused.request_body == big[:KEPT] and refused.request_body_size == len(big)
    assert await post(http, server.url + IMAGE, big, tea_sdk_headers(big, now(server))) == 200
    accepted = last(server)
    assert accepted.request_body == big and accepted.request_body_size is None
    assert accepted.parsed["note"] == "n" * 5_000
    assert server.app[JOURNAL].stats()["truncatedBodies"] == 1


async def test_keep_body_reads_no_more_than_its_bound() -> None:
    """Call.keep_body on its own, in a bare aiohttp app: the first bytes kept, the declared length
    recorded, and of a 4 MiB body only what aiohttp's flow control buffers ever arrived."""
    seen: dict[str, int | None] = {}

    async def handler(request: web.Request) -> web.Response:
        call = Call()
        await call.keep_body(request, 4096)
        seen.update(kept=len(call.body), size=call.body_size, arrived=request.content.total_bytes)
        await call.keep_body(request, 4096)  # a second call reads nothing more
        seen["again"] = len(call.body)
        while await request.content.readany():  # the rest, discarded, so that the client finishes
            pass
        return web.Response(text="refused", status=403)

    app = web.Application()
    app.router.add_post("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:
            body = bytes(range(256)) * (16 * 1024)  # 4 MiB
            async with http.post(f"http://127.0.0.1:{port}/", data=io.BytesIO(body)) as response:
                assert response.status == 403
    finally:
        await runner.cleanup()
    assert seen["kept"] == 4096 and seen["again"] == 4096 and seen["size"] == 4 * 1024 * 1024
    arrived = seen["arrived"]
    assert arrived is not None and arrived < 1024 * 1024
