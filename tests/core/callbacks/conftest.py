"""A real receiver on loopback that records what reaches it and answers as told."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiohttp import web

from emulator import RunningServer
from emulator.testing import EmulatorClient


@dataclass
class Received:
    content_type: str
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        fields = parse_qs(self.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
        return {k: v[0] for k, v in fields.items()}

    @property
    def content(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.form["content"])
        return value

    def checksum_ok(self, uid: str, seed: str) -> bool:
        # Computed here from the documented recipe, not with the emulator's own code.
        form = self.form
        want = hashlib.sha256((uid + seed + form["content"]).encode("utf-8")).hexdigest()
        return form["checksum"] == want


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    #: Answer 500 to this many requests, then 200.
    fail_first: int = 0
    #: Answer every request with this status.
    status: int | None = None
    #: While set, requests wait for it to be released (a slow receiver).
    hold: asyncio.Event | None = None
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def wait_received(self, count: int, timeout: float = 5.0) -> list[Received]:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.received) >= count), timeout)
        return list(self.received)


async def _start(path: str = "/notify") -> tuple[web.AppRunner, Receiver]:
    receiver: Receiver | None = None

    async def handle(request: web.Request) -> web.Response:
        assert receiver is not None
        body = await request.read()
        receiver.received.append(Received(request.headers.get("Content-Type", ""), body))
        async with receiver.arrived:
            receiver.arrived.notify_all()
        if receiver.hold is not None:
            await receiver.hold.wait()
        if receiver.status is not None:
            return web.Response(status=receiver.status, text="told to")
        if len(receiver.received) <= receiver.fail_first:
            return web.Response(status=500, text="not yet")
        return web.Response(text="success")

    app = web.Application()
    app.router.add_post(path, handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver = Receiver(url=f"http://127.0.0.1:{port}{path}")
    return runner, receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    runner, rec = await _start()
    try:
        yield rec
    finally:
        if rec.hold is not None:
            rec.hold.set()
        await runner.cleanup()


@pytest.fixture
async def other_receiver() -> AsyncIterator[Receiver]:
    runner, rec = await _start("/other")
    try:
        yield rec
    finally:
        if rec.hold is not None:
            rec.hold.set()
        await runner.cleanup()


@pytest.fixture
async def emu(server: RunningServer, receiver: Receiver) -> AsyncIterator[EmulatorClient]:
    """An admin client whose callback URL is the receiver; ``server`` is each test module's own."""
    async with EmulatorClient(server.url) as client:
        await client.set_callback(receiver.url)
        yield client
