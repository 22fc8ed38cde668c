"""contract.strict_requests: a request that breaks the shipped contract is reported in the
x-emulator-violations header and its journal entry ("warn"), or refused with the provider's own
invalid-parameter error ("error"), or let be ("off")."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from lxml import etree

from emulator import RunningServer, serve
from emulator.keys import JOURNAL
from emulator.testing.settings import make_settings

HEADER = "x-emulator-violations"
SCAN = {
    "scenes": ["porn"],
    "tasks": [{"url": "http://cdn.example.com/a.jpg", "dataId": 5, "colour": "red"}],
    "priority": 1,
}
EXPECTED = [
    {"location": "query.Foo", "message": "undocumented parameter"},
    {"location": "body.tasks[0].dataId", "message": "must be string, not integer"},
    {"location": "body.tasks[0].colour", "message": "unknown field"},
    {"location": "body.priority", "message": "unknown field"},
]
COS_HOST = "examplebucket-1250000000.ci.ap-beijing.myqcloud.com"
TEXT_AUDIT = b"<Request><Input><Content>aGk=</Content><Colour>red</Colour></Input></Request>"


@asynccontextmanager
async def emulator(mode: str, **overrides: Any) -> AsyncIterator[tuple[RunningServer, aiohttp.ClientSession]]:
    # Signatures relaxed: what is checked here is the body and the query, not who signed them.
    settings = make_settings(
        **{
            "contract.strict_requests": mode,
            "alibaba.verify_signatures": False,
            "tencent.verify_signatures": False,
            **overrides,
        }
    )
    async with serve(settings) as server, aiohttp.ClientSession() as session:
        yield server, session


async def scan(server: RunningServer, session: aiohttp.ClientSession) -> tuple[int, Any, str | None]:
    async with session.post(
        f"{server.url}/green/image/scan?ClientInfo=%7B%7D&Foo=1",
        data=json.dumps(SCAN),
        headers={"Authorization": "acs testAccessKeyId:unchecked", "Content-Type": "application/json"},
    ) as resp:
        return resp.status, await resp.json(), resp.headers.get(HEADER)


def journaled(server: RunningServer) -> Any:
    (entry,) = server.app[JOURNAL].select()
    return entry.violations


async def test_warn_answers_as_usual_and_lists_every_violation() -> None:
    async with emulator("warn") as (server, session):
        status, body, header = await scan(server, session)
        assert status == 200 and body["code"] == 200
        # The handler's own answer to the wrong dataId is unchanged: a task error.
        assert body["data"][0]["code"] == 400
        assert header is not None and json.loads(header) == EXPECTED
        assert journaled(server) == EXPECTED


async def test_error_answers_alibabas_invalid_parameter_error() -> None:
    async with emulator("error") as (server, session):
        status, body, header = await scan(server, session)
        assert status == 200
        assert (body["code"], body["msg"]) == (400, "query.Foo: undocumented parameter (and 3 more)")
        assert "data" not in body
        assert header is not None and json.loads(header) == EXPECTED
        assert journaled(server) == EXPECTED


async def test_off_checks_nothing() -> None:
    async with emulator("off") as (server, session):
        status, body, header = await scan(server, session)
        assert (status, body["code"], header) == (200, 200, None)
        assert journaled(server) is None


async def text_audit(server: RunningServer, session: aiohttp.ClientSession) -> tuple[int, Any, str | None]:
    async with session.post(
        f"{server.url}/text/auditing",
        data=TEXT_AUDIT,
        headers={"Host": COS_HOST, "Content-Type": "application/xml"},
    ) as resp:
        return resp.status, etree.fromstring(await resp.read()), resp.headers.get(HEADER)


async def test_tencent_warn_lists_an_unknown_element_of_a_lenient_audit() -> None:
    async with emulator("warn", **{"tencent.strict_elements": False}) as (server, session):
        status, root, header = await text_audit(server, session)
        # Ignored by the lenient decoder, so the audit succeeds; the header still names it.
        assert status == 200 and root.tag == "Response"
        assert header is not None
        (violation,) = json.loads(header)
        assert violation["location"] == "body.Request.Input.Colour"
        assert journaled(server) == [violation]


async def test_tencent_error_answers_invalid_argument() -> None:
    async with emulator("error", **{"tencent.strict_elements": False}) as (server, session):
        status, root, header = await text_audit(server, session)
        assert status == 400 and root.tag == "Error"
        assert root.findtext("Code") == "InvalidArgument"
        assert root.findtext("Message").startswith("Invalid argument body.Request.Input.Colour: ")
        assert header is not None and len(json.loads(header)) == 1


async def test_the_header_stays_small_whatever_the_body_names() -> None:
    long_names = {"x" * 10_000 + str(i): 1 for i in range(60)}
    body = {"scenes": ["porn"], "tasks": [{"url": "http://a/1.jpg"}], **long_names}
    async with emulator("warn") as (server, session):
        async with session.post(
            f"{server.url}/green/image/scan",
            data=json.dumps(body),
            headers={"Authorization": "acs testAccessKeyId:unchecked"},
        ) as resp:
            assert resp.status == 200 and (await resp.json())["code"] == 200
            header = resp.headers[HEADER]
        shown = json.loads(header)
        assert len(header) <= 4096 and 1 <= len(shown) < 20
        assert all(len(v["location"]) <= 200 for v in shown)
        # The journal keeps them all, up to the per-request bound.
        assert len(journaled(server)) == 50
