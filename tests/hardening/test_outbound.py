"""Outbound requests only to allowed hosts (issue table: an async scan's ``callback`` to any host
was accepted; one call made 17 POSTs and the receiver's 64 KB answer was readable in the journal).

A callback to a host that ``callbacks.allowed_hosts`` does not name is refused per task, with the
provider's parameter error (code 400 naming the host) in the normal envelope, before any lookup or
connection; loopback receivers are served as before, and what the journal keeps of their answer is
truncated."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from emulator import ManualClock, RunningServer, serve
from emulator.keys import DISPATCHER, JOURNAL
from emulator.testing import EmulatorClient
from emulator.testing.signers import tea_sdk_headers

from .conftest import alibaba_shape, hardening_settings

ASYNC_SCAN = "/green/image/asyncscan"
RESULTS = "/green/image/results"
BIG_ANSWER = b"x" * 10_000


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A loopback receiver answering 200 with 10,000 bytes; yields (base URL, bodies received)."""
    received: list[bytes] = []

    async def notify(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response(body=BIG_ANSWER)

    app = web.Application()
    app.router.add_post("/cb", notify)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"127.0.0.1:{runner.addresses[0][1]}", received
    finally:
        await runner.cleanup()


@pytest.fixture
async def server(receiver: tuple[str, list[bytes]]) -> AsyncIterator[RunningServer]:
    del receiver  # started first, so that it outlives the emulator
    settings = hardening_settings(**{"callbacks.shutdown_grace": 0, "callbacks.max_retries": 0})
    async with serve(settings, clock=ManualClock()) as running:
        yield running


async def call(server: RunningServer, path: str, action: str, body: Any) -> dict[str, Any]:
    raw = json.dumps(body).encode()
    headers = tea_sdk_headers(raw, time.time(), path=path, action=action)
    async with aiohttp.ClientSession() as session:
        async with session.post(server.url + path, data=raw, headers=headers) as response:
            return alibaba_shape(response.status, await response.read())


def scan(callback: str) -> dict[str, Any]:
    return {
        "scenes": ["porn"],
        "callback": callback,
        "seed": "s3cret",
        "tasks": [{"dataId": "a", "url": "http://img.example/1.jpg"}, {"dataId": "b", "url": "nope"}],
    }


@pytest.mark.parametrize(
    ("callback", "host"),
    [
        ("http://example.invalid/cb", "example.invalid"),
        ("http://192.0.2.1:8080/cb", "192.0.2.1"),
        ("https://[2001:db8::1]/cb", "2001:db8::1"),
        ("http://127.0.0.1.example.invalid/cb", "127.0.0.1.example.invalid"),
    ],
)
async def test_a_callback_to_another_host_is_a_parameter_error_per_task(
    server: RunningServer, network_calls: list[str], callback: str, host: str
) -> None:
    answer = await call(server, ASYNC_SCAN, "ImageAsyncScan", scan(callback))
    assert (answer["code"], answer["msg"]) == (200, "OK")
    refused, invalid = answer["data"]
    assert refused == {
        "code": 400,
        "msg": f"callback: host {host!r} is not in callbacks.allowed_hosts",
        "dataId": "a",
    }
    # The task's own error still comes first.
    assert (invalid["code"], invalid["msg"]) == (400, "tasks[1].url is required: an http(s) URL")
    # Nothing was queued, looked up or connected to, and no task is waiting for a result.
    assert server.app[DISPATCHER].deliveries() == []
    assert [e for e in server.app[JOURNAL].entries() if e.direction == "out"] == []
    assert not [c for c in network_calls if host in c]


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
async def test_a_loopback_callback_is_delivered_and_its_answer_truncated(
    server: RunningServer, receiver: tuple[str, list[bytes]], name: str
) -> None:
    address, received = receiver
    url = f"http://{address.replace('127.0.0.1', name)}/cb"
    answer = await call(server, ASYNC_SCAN, "ImageAsyncScan", scan(url))
    accepted = answer["data"][0]
    assert accepted["code"] == 200 and accepted["taskId"]
    (delivery,) = await server.app[DISPATCHER].wait_for(lambda d: d.state != "pending", timeout=10)
    assert delivery.state == "delivered" and len(received) == 1
    (entry,) = [e for e in server.app[JOURNAL].entries() if e.direction == "out"]
    assert entry.status == 200
    assert len(entry.response_body) == 4096, len(entry.response_body)  # callbacks.max_response_bytes


async def test_a_console_url_allows_its_host_until_it_changes(
    server: RunningServer, receiver: tuple[str, list[bytes]]
) -> None:
    address, received = receiver
    # Only 127.0.0.0/8 and localhost by default: an operator-set URL adds its host.
    console = "http://hooks.example.invalid/cb"
    async with EmulatorClient(server.url) as emu:
        await emu.set_callback(console)
        assert server.app[DISPATCHER].allowed.refusal(console) is None
        answer = await call(server, ASYNC_SCAN, "ImageAsyncScan", scan(console))
        assert answer["data"][0]["code"] == 200  # accepted; its delivery is not awaited here
        await emu.set_callback(f"http://{address}/cb")
        assert server.app[DISPATCHER].allowed.refusal(console) == (
            "host 'hooks.example.invalid' is not in callbacks.allowed_hosts"
        )
        answer = await call(server, ASYNC_SCAN, "ImageAsyncScan", scan(console))
        assert answer["data"][0]["code"] == 400
        await emu.review(task_id="t-1", suggestion="block", labels=["porn"], url="http://img.example/1.jpg")
        (done,) = await emu.wait_for_delivery(action="ImageScanNotification", state="delivered")
    assert done["url"] == f"http://{address}/cb" and len(received) == 1
