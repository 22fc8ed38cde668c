"""Hostile XML against a real server: each gets its documented error, nothing is read or fetched,
and the server keeps serving."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from lxml import etree

from emulator import ManualClock, RunningServer, serve
from emulator.providers.tencent import errors, protocol
from emulator.providers.tencent.routes import TENCENT_BACKEND
from emulator.testing.payloads import TEXT_BADCASE
from emulator.testing.receivers import Bait
from emulator.testing.settings import make_settings
from emulator.testing.signers import APPID, COS_HOST, SECRET_ID, SECRET_KEY, cos_sdk_headers, sign_cos

from .conftest import PATH

NOW = 1_795_600_000.0
LIMIT = 4096
DTD_REFUSED = "A DTD (<!DOCTYPE>) is not allowed."


@pytest.fixture
def bait() -> Iterator[Bait]:
    server = Bait()
    yield server
    server.close()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text("TOPSECRET-42")
    return path


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    settings = make_settings(**{"tencent.max_body_bytes": LIMIT})
    async with serve(settings, clock=ManualClock(start=NOW)) as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def send(
    session: aiohttp.ClientSession, server: RunningServer, body: bytes
) -> tuple[int, dict[str, str], bytes]:
    headers = cos_sdk_headers(body, NOW)
    async with session.post(server.url + PATH, data=body, headers=headers) as response:
        raw = await response.read()
    root = etree.fromstring(raw)
    protocol.schema("report-badcase-response").validate(root)
    return response.status, {child.tag: child.text or "" for child in root}, raw


async def expect_error(
    session: aiohttp.ClientSession, server: RunningServer, body: bytes, code: str, message: str
) -> bytes:
    status, fields, raw = await send(session, server, body)
    assert (status, fields["Code"]) == (400, code)
    assert message in fields["Message"]
    # ... and the server still serves, and stored nothing from the hostile body.
    status, fields, _ = await send(session, server, TEXT_BADCASE)
    assert status == 200, fields
    assert len(server.app[TENCENT_BACKEND].states[APPID].badcases) == 1
    return raw


def with_doctype(doctype: str, label: str = "Porn") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n{doctype}\n<Request><ContentType>1</ContentType>'
        f"<Label>{label}</Label><SuggestedLabel>Normal</SuggestedLabel><Text>eA==</Text></Request>"
    ).encode()


async def test_external_entity_file_is_not_read(
    session: aiohttp.ClientSession, server: RunningServer, secret_file: Path
) -> None:
    body = with_doctype(f'<!DOCTYPE Request [<!ENTITY x SYSTEM "file://{secret_file}">]>', "&x;")
    raw = await expect_error(session, server, body, "MalformedXML", DTD_REFUSED)
    assert b"TOPSECRET" not in raw


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE Request SYSTEM "{url}/evil.dtd">',
        '<!DOCTYPE Request PUBLIC "-//E//DTD E//EN" "{url}/public.dtd">',
        '<!DOCTYPE Request [<!ENTITY % p SYSTEM "{url}/param.dtd"> %p;]>',
        '<!doctype Request SYSTEM "{url}/lower.dtd">',
    ],
)
async def test_external_dtd_is_not_fetched(
    session: aiohttp.ClientSession, server: RunningServer, bait: Bait, doctype: str
) -> None:
    body = with_doctype(doctype.format(url=bait.url), "&leak;")
    raw = await expect_error(session, server, body, "MalformedXML", DTD_REFUSED)
    assert bait.hits == []
    assert b"FETCHED" not in raw


BILLION_LAUGHS = with_doctype(
    "<!DOCTYPE Request [\n"
    + '<!ENTITY lol0 "lol">\n'
    + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">\n' for i in range(1, 10))
    + "]>",
    "&lol9;",
)


async def test_billion_laughs(session: aiohttp.ClientSession, server: RunningServer) -> None:
    assert len(BILLION_LAUGHS) < LIMIT
    await expect_error(session, server, BILLION_LAUGHS, "MalformedXML", DTD_REFUSED)


async def test_body_over_the_size_limit(session: aiohttp.ClientSession, server: RunningServer) -> None:
    body = TEXT_BADCASE.replace(b"</Request>", b"<JobId>" + b"x" * LIMIT + b"</JobId></Request>")
    await expect_error(session, server, body, "XMLSizeLimit", errors.XMLSizeLimit.message)


async def test_chunked_body_over_the_size_limit(
    session: aiohttp.ClientSession, server: RunningServer
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(LIMIT // 512 + 2):
            yield b" " * 512

    # No Content-Length is sent, so the signature covers only content-type and host.
    headers = {"Host": COS_HOST, "Content-Type": "application/xml"}
    headers["Authorization"] = sign_cos(
        "POST", PATH, headers, SECRET_ID, SECRET_KEY, start=int(NOW) - 60, end=int(NOW) + 60
    )
    async with session.post(server.url + PATH, data=chunks(), headers=headers) as response:
        text = await response.text()
    assert response.status == 400
    assert "<Code>XMLSizeLimit</Code>" in text


@pytest.mark.parametrize("depth", [17, 300, 1200])
async def test_deeply_nested_elements(
    session: aiohttp.ClientSession, server: RunningServer, depth: int
) -> None:
    body = b"<Request>" + b"<a>" * (depth - 1) + b"</a>" * (depth - 1) + b"</Request>"
    body = body[:LIMIT]
    await expect_error(
        session, server, body, "MalformedXML", f"Elements are nested deeper than {protocol.MAX_DEPTH} levels."
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (TEXT_BADCASE.replace(b"Porn", b"P\xf6rn"), "The body is not UTF-8 (byte 45)."),
        ("<Request><Label>x</Label></Request>".encode("utf-16"), "The body is not UTF-8 (byte 0)."),
        (
            b'<?xml version="1.0" encoding="ISO-8859-1"?>' + TEXT_BADCASE.replace(b"Porn", b"P\xf6rn"),
            "The body is not UTF-8",
        ),
    ],
)
async def test_non_utf8_bytes(
    session: aiohttp.ClientSession, server: RunningServer, body: bytes, message: str
) -> None:
    await expect_error(session, server, body, "MalformedXML", message)


@pytest.mark.parametrize("body", [b"", b" \r\n\t"])
async def test_empty_body(session: aiohttp.ClientSession, server: RunningServer, body: bytes) -> None:
    await expect_error(
        session, server, body, "MissingRequestBodyError", errors.MissingRequestBodyError.message
    )


# Defence in depth: even with the DOCTYPE check gone, the parser itself resolves and fetches nothing.


def test_the_parser_alone_expands_no_entity(secret_file: Path, bait: Bait) -> None:
    doc = (
        f'<!DOCTYPE r [<!ENTITY f SYSTEM "file://{secret_file}"><!ENTITY u SYSTEM "{bait.url}/u">'
        f'<!ENTITY % p SYSTEM "{bait.url}/p"> %p;]><r>&f;&u;</r>'
    ).encode()
    parser = protocol._parser()
    parser.feed(doc)
    root = parser.close()
    assert b"TOPSECRET" not in etree.tostring(root)
    assert "TOPSECRET" not in "".join(root.itertext())
    assert bait.hits == []


def test_the_parser_alone_does_not_fetch_an_external_dtd(bait: Bait) -> None:
    parser = protocol._parser()
    parser.feed(f'<!DOCTYPE r SYSTEM "{bait.url}/x.dtd"><r>&leak;</r>'.encode())
    root = parser.close()
    # &leak; stays an unresolved reference: the DTD that defines it was never loaded.
    assert "FETCHED" not in "".join(root.itertext())
    assert bait.hits == []
