"""EmulatorClient (async) against a real in-process server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from emulator import RunningServer, serve
from emulator.errors import Timeout
from emulator.testing import EmulatorClient
from emulator.testing.client import AdminError
from emulator.testing.settings import make_settings


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    async with serve(make_settings(**{"alibaba.verify_signatures": False})) as running:
        yield running


async def send(server: RunningServer, body: object, ns: str | None = None) -> None:
    headers = {"X-Emulator-Namespace": ns} if ns else {}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{server.url}/green/image/feedback", data=json.dumps(body), headers=headers
        ) as r:
            await r.read()


async def test_wait_for_last_and_assert_called(server: RunningServer) -> None:
    async with EmulatorClient(server.url) as emu:
        waiting = asyncio.create_task(emu.wait_for(action="ImageScanFeedback", count=2, timeout=10))
        await send(server, {"url": "http://a/1.jpg"})
        await send(server, {"url": "http://a/2.jpg"})
        got = await waiting
        assert [e.parsed["url"] for e in got] == ["http://a/1.jpg", "http://a/2.jpg"]
        assert (await emu.last(action="ImageScanFeedback")).parsed["url"] == "http://a/2.jpg"
        await emu.assert_called(body={"url": "http://a/1.jpg"}, count=1)
        await emu.assert_not_called(action="TextFeedback")
        with pytest.raises(AssertionError, match=r"found 2\n"):
            await emu.assert_called(action="ImageScanFeedback", count=3)
        with pytest.raises(AssertionError, match="no request matching provider='tencent'"):
            await emu.last(provider="tencent")


async def test_wait_for_timeout_is_an_assertion_with_the_closest(server: RunningServer) -> None:
    await send(server, {})
    async with EmulatorClient(server.url) as emu:
        with pytest.raises(Timeout) as info:
            await emu.wait_for(action="TextFeedback", timeout=0.05)
    assert isinstance(info.value, AssertionError)
    assert "closest recorded entries:" in str(info.value)
    assert "action=ImageScanFeedback" in str(info.value)


async def test_bad_filter_raises_admin_error(server: RunningServer) -> None:
    async with EmulatorClient(server.url) as emu:
        with pytest.raises(AdminError, match="HTTP 400: status must be an integer") as info:
            await emu.requests(status="teapot")
    # The problem document's kind and extension members come back on the error.
    assert (info.value.status, info.value.kind, info.value.extra) == (400, "bad_request", {})


async def test_admin_error_carries_the_problems_extra_members(server: RunningServer) -> None:
    async with EmulatorClient(server.url) as emu:
        with pytest.raises(AdminError) as info:
            await emu.add_library_items("no-such-library", ["term"])
    assert (info.value.status, info.value.extra) == (404, {"code": "KeywordLibNotFound"})


async def test_namespaced_client_sees_and_resets_only_its_namespace(server: RunningServer) -> None:
    await send(server, {"taskId": "a"}, ns="a")
    await send(server, {"taskId": "b"}, ns="b")
    everyone = EmulatorClient(server.url, namespace="*")
    async with EmulatorClient(server.url, namespace="a") as a, everyone:
        assert [e.parsed["taskId"] for e in await a.requests()] == ["a"]
        await a.reset()
        assert await a.count() == 0
        assert await everyone.count() == 1
