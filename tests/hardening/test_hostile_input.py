"""Hostile input against a real server, for both providers: each gets the provider's own error
shape (or aiohttp's 4xx where its HTTP parser refuses the request before any route runs), and the
server keeps serving: every case is followed by a valid call on a new connection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from emulator import RunningServer, serve
from emulator.keys import JOURNAL
from emulator.providers.alibaba.routes import ALIBABA_BACKEND as ALIBABA
from emulator.providers.tencent.routes import TENCENT_BACKEND as TENCENT
from emulator.testing.payloads import TEXT_BADCASE as BADCASE_BODY
from emulator.testing.receivers import Bait
from emulator.testing.signers import (
    APPID,
    COS_HOST,
    SECRET_ID,
    SECRET_KEY,
    cos_sdk_headers,
    sign_cos,
    tea_sdk_headers,
)

from .conftest import BADCASE, IMAGE, alibaba_shape, hardening_settings, tencent_shape

UID = "1234567890123456"
MAX_BODY = 64 * 1024
VALID_IMAGE = b'{"url": "http://example.com/1.jpg", "suggestion": "block", "scenes": ["ad"]}'


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    settings = hardening_settings(**{"server.max_body_bytes": MAX_BODY, "tencent.max_body_bytes": 8192})
    async with serve(settings) as running:
        yield running


@pytest.fixture
def bait_server() -> Iterator[Bait]:
    bait = Bait()
    yield bait
    bait.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def alibaba(
    session: aiohttp.ClientSession, server: RunningServer, body: bytes, **extra: str
) -> dict[str, object]:
    headers = tea_sdk_headers(body, time.time(), extra=extra or None)
    async with session.post(server.url + IMAGE, data=body, headers=headers) as response:
        return alibaba_shape(response.status, await response.read())


async def tencent(
    session: aiohttp.ClientSession, server: RunningServer, body: bytes, **extra: str
) -> tuple[int, dict[str, str]]:
    headers = cos_sdk_headers(body, time.time(), extra=extra or None)
    async with session.post(server.url + BADCASE, data=body, headers=headers) as response:
        return response.status, tencent_shape(response.status, await response.read())


async def still_serving(server: RunningServer) -> None:
    """A valid call of each provider on a fresh connection succeeds."""
    async with aiohttp.ClientSession() as fresh:
        assert (await alibaba(fresh, server, VALID_IMAGE))["code"] == 200
        status, fields = await tencent(fresh, server, BADCASE_BODY)
        assert status == 200, fields


async def raw_exchange(server: RunningServer, data: bytes, *, timeout: float = 5.0) -> tuple[int, bytes]:
    """Write ``data`` on a new connection; return the first answer's status and body."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(data)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        body = await asyncio.wait_for(reader.readexactly(length), timeout)
        return int(head[9:12]), body
    finally:
        writer.close()


def cos_headers_without_length(extra: dict[str, str] | None = None) -> dict[str, str]:
    """COS headers signing Host and Content-Type only, for requests framed without Content-Length."""
    headers = {"Host": COS_HOST, "Content-Type": "application/xml", **(extra or {})}
    now = int(time.time())
    headers["Authorization"] = sign_cos(
        "POST",
        BADCASE,
        headers,
        SECRET_ID,
        SECRET_KEY,
        start=now - 60,
        end=now + 3600,
        header_names=["host", "content-type"],
    )
    return headers


def request_bytes(path: str, headers: dict[str, str], body: bytes = b"", *, length: bool = True) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("content-length", "host")]
    if "host" in {k.lower() for k in headers}:
        lines[1] = f"Host: {next(v for k, v in headers.items() if k.lower() == 'host')}"
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# --- JSON -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "request body is nested too deeply"),
        (b'[{"a":' * 9_000, "request body is nested too deeply"),
        (b'{"note": ' + b"9" * 60_000 + b"}", "request body is not valid JSON"),
        (b'{"note": -' + b"9" * 5000 + b"}", "request body is not valid JSON"),
        (b'{"note": 1e999999}', "note must be a string"),
        (b'{"note": -1e999999, "taskId": 1' + b"0" * 4000 + b"}", "taskId must be a string"),
        (b'{"note": "\xed\xa0\x80"}', "request body is not valid UTF-8"),  # a lone surrogate
        (b'{"note": "\xc0\xaf"}', "request body is not valid UTF-8"),  # an overlong "/"
        (b'\xef\xbb\xbf{"note": "x"}', "request body is not valid JSON"),  # a byte order mark
        (b'{"note": Infinity}', "request body is not valid JSON"),
        (b'{"note": "x"}\x00', "request body is not valid JSON"),
    ],
)
async def test_hostile_json(
    session: aiohttp.ClientSession, server: RunningServer, body: bytes, message: str
) -> None:
    doc = await alibaba(session, server, body)
    assert doc["code"] == 400
    assert str(doc["msg"]).startswith(message), doc
    assert list(server.app[ALIBABA].states[UID].image_feedback) == []
    await still_serving(server)


async def test_duplicate_keys_keep_the_last(session: aiohttp.ClientSession, server: RunningServer) -> None:
    # Python's json (like the provider's fastjson) keeps the last value of a repeated key.
    body = b'{"suggestion": "pass", "scenes": ["ad"], "suggestion": "block", "label": "ad", "label": "ad"}'
    assert (await alibaba(session, server, body))["code"] == 200
    assert server.app[ALIBABA].states[UID].image_feedback[0].suggestion == "block"


async def test_the_journal_still_exports_what_hostile_bodies_left(
    session: aiohttp.ClientSession, server: RunningServer
) -> None:
    await alibaba(session, server, b'{"note": 1e999999}')
    await alibaba(session, server, b'{"note": "\xff"}')
    await tencent(session, server, b"<Request>\xff</Request>")
    for route in ("requests", "requests.har", "requests.ndjson"):
        async with session.get(f"{server.url}/_emulator/{route}") as response:
            assert response.status == 200, route
            await response.read()
    assert len(server.app[JOURNAL]) == 3


# --- XML (tests/providers/tencent/test_hostile_xml.py has XXE, external DTDs, billion laughs, depth) ----


@pytest.mark.parametrize(
    ("body", "code"),
    [
        # XInclude is never processed: the element is just not part of a Request.
        (
            b'<Request xmlns:xi="http://www.w3.org/2001/XInclude"><ContentType>1</ContentType>'
            b"<Label>Porn</Label><SuggestedLabel>Normal</SuggestedLabel>"
            b'<xi:include href="{url}/xinclude" parse="text"/></Request>',
            "MalformedXML",
        ),
        # A stylesheet processing instruction is dropped, never fetched.
        (
            b'<?xml-stylesheet type="text/xsl" href="{url}/style.xsl"?>'
            b"<Request><ContentType>2</ContentType><Label>Ads</Label>"
            b"<SuggestedLabel>Normal</SuggestedLabel><Url>{url}/img.jpg</Url></Request>",
            "",
        ),
        # An external entity smuggled in UTF-16 (the prolog claims it): not UTF-8, refused.
        (
            '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY x SYSTEM "{url}/u16">]>'
            "<Request><Label>&x;</Label></Request>".encode("utf-16"),
            "MalformedXML",
        ),
        # A schema location the validator could be tempted to fetch.
        (
            b'<Request xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            b'xsi:noNamespaceSchemaLocation="{url}/schema.xsd"><ContentType>1</ContentType>'
            b"<Label>Porn</Label><SuggestedLabel>Normal</SuggestedLabel><Text>eA==</Text></Request>",
            "",
        ),
        # Many attributes and a long attribute value (no entities): bounded by the size limit.
        (b"<Request " + b" ".join(b'a%d="x"' % i for i in range(2000)) + b"/>", "XMLSizeLimit"),
        (b'<Request a="' + b"&amp;" * 1000 + b'"/>', "MalformedXML"),
        (b"<Request>" + b"<![CDATA[" * 3 + b"</Request>", "MalformedXML"),
    ],
)
async def test_hostile_xml_beyond_the_tencent_suite(
    session: aiohttp.ClientSession,
    server: RunningServer,
    bait_server: Bait,
    body: bytes,
    code: str,
) -> None:
    body = body.replace(b"{url}", bait_server.url.encode()).replace(
        "{url}".encode("utf-16")[2:], bait_server.url.encode("utf-16")[2:]
    )
    status, fields = await tencent(session, server, body)
    assert fields.get("Code", "") == code, fields
    assert bait_server.hits == []
    await still_serving(server)


# --- HTTP framing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "", "∞/∞"])
async def test_wrong_content_type(
    session: aiohttp.ClientSession, server: RunningServer, content_type: str
) -> None:
    # Both gateways read the body whatever its declared type; the type is only signed.
    doc = await alibaba(
        session, server, VALID_IMAGE, **{"content-type": content_type.encode().decode("latin-1")}
    )
    assert doc["code"] == 200
    status, fields = await tencent(session, server, BADCASE_BODY, **{"Content-Type": "application/json"})
    assert status == 200, fields
    await still_serving(server)


async def test_missing_content_length_means_no_body(server: RunningServer) -> None:
    # HTTP/1.1 without Content-Length or chunking has no body; the Tea SDK's empty body is a valid call.
    status, body = await raw_exchange(
        server, request_bytes(IMAGE, tea_sdk_headers(b"", time.time()), length=False)
    )
    assert alibaba_shape(status, body)["code"] == 200
    status, body = await raw_exchange(
        server, request_bytes(BADCASE, cos_headers_without_length(), length=False)
    )
    assert tencent_shape(status, body)["Code"] == "MissingRequestBodyError"
    await still_serving(server)


async def test_chunked_bodies_are_read(server: RunningServer) -> None:
    def chunked(body: bytes, size: int = 7) -> bytes:
        parts = [body[i : i + size] for i in range(0, len(body), size)]
        return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"

    headers = {**tea_sdk_headers(VALID_IMAGE, time.time()), "Transfer-Encoding": "chunked"}
    status, body = await raw_exchange(
        server, request_bytes(IMAGE, headers, length=False) + chunked(VALID_IMAGE)
    )
    assert alibaba_shape(status, body)["code"] == 200
    headers = cos_headers_without_length({"Transfer-Encoding": "chunked"})
    status, body = await raw_exchange(
        server, request_bytes(BADCASE, headers, length=False) + chunked(BADCASE_BODY)
    )
    assert status == 200, tencent_shape(status, body)
    assert len(server.app[TENCENT].states[APPID].badcases) == 1
    await still_serving(server)


@pytest.mark.parametrize("path", [IMAGE, BADCASE])
async def test_oversized_body_is_answered_before_it_is_sent(server: RunningServer, path: str) -> None:
    # 100 MB declared, 1 KB sent: the answer must come without waiting for (or reading) the rest.
    declared = 100 * 1024 * 1024
    headers = tea_sdk_headers(b"", time.time()) if path == IMAGE else cos_headers_without_length()
    head = request_bytes(path, headers, length=False).replace(
        b"\r\n\r\n", f"\r\nContent-Length: {declared}\r\n\r\n".encode(), 1
    )
    status, body = await raw_exchange(server, head + b" " * 1024, timeout=3)
    if path == IMAGE:
        doc = alibaba_shape(status, body)
        assert doc["code"] == 589 and str(doc["msg"]).startswith("TOO_LARGE"), doc
    else:
        assert tencent_shape(status, body)["Code"] == "XMLSizeLimit"
    await still_serving(server)


@pytest.mark.parametrize(
    "head",
    [
        "".join(f"X-Flood-{i}: {i}\r\n" for i in range(1000)),  # more headers than aiohttp takes
        "X-Huge: " + "a" * 100_000 + "\r\n",  # one header far over the field limit
        "X-Folded: a\r\n" + " b\r\n" * 500,  # obsolete line folding
        "X-Null: a\x00b\r\n",
    ],
)
@pytest.mark.parametrize("path", [IMAGE, BADCASE])
async def test_header_floods_are_refused_by_the_parser(server: RunningServer, head: str, path: str) -> None:
    data = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}Content-Length: 0\r\n\r\n".encode()
    status, _ = await raw_exchange(server, data)
    assert status in (400, 431)
    await still_serving(server)


@pytest.mark.parametrize("host", ["::", "a:b", "x:99999999", "[::1"])
@pytest.mark.parametrize("path", [IMAGE, BADCASE])
async def test_unparseable_host_is_answered_not_crashed(server: RunningServer, path: str, host: str) -> None:
    # Found by test_fuzz: yarl could not build the journal's URL from such a Host, and the answer
    # became a 500.
    if path == IMAGE:
        status, body = await raw_exchange(
            server, request_bytes(IMAGE, {**tea_sdk_headers(b"", time.time()), "Host": host})
        )
        assert alibaba_shape(status, body)["code"] == 200
    else:
        headers = {**cos_headers_without_length(), "Host": host}
        status, body = await raw_exchange(server, request_bytes(BADCASE, headers))
        assert tencent_shape(status, body)["Code"] == "SignatureDoesNotMatch"
    entry = server.app[JOURNAL].select()[-1]
    assert entry.status == status
    await still_serving(server)
