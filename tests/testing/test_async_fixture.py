"""aemulator: an async test awaits a callback while its own receiver, on the same loop, takes it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import TestServer

from emulator.testing import EmulatorClient
from emulator.testing.plugin import AsyncEmulator, Emulator

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


async def test_a_receiver_on_the_test_loop_gets_the_callback_while_the_test_awaits_it(
    aemulator: AsyncEmulator, aiohttp_server: ServerFactory
) -> None:
    received: list[dict[str, str]] = []

    async def notified(request: web.Request) -> web.Response:
        form = await request.post()
        received.append({k: str(v) for k, v in form.items()})
        return web.Response(text="ok")

    receiver = web.Application()
    receiver.router.add_post("/green-callback", notified)
    server = await aiohttp_server(receiver)

    await aemulator.set_callback(str(server.make_url("/green-callback")))
    review = await aemulator.review(task_id="t1", suggestion="block", labels=["porn"], url="http://a/1.jpg")
    (delivery,) = await aemulator.wait_for_delivery(correlation_id=review["correlationId"], timeout=5)

    assert delivery["state"] == "delivered" and len(delivery["attempts"]) == 1
    (form,) = received
    accounts = aemulator.accounts
    digest = hashlib.sha256((accounts.uid + accounts.seed + form["content"]).encode()).hexdigest()
    assert form["checksum"] == digest
    assert json.loads(form["content"])["auditResult"]["suggestion"] == "block"


async def test_aemulator_is_an_emulator_client_reset_for_each_test(aemulator: AsyncEmulator) -> None:
    assert isinstance(aemulator, EmulatorClient)
    assert await aemulator.count() == 0  # the review of the test before is gone
    assert await aemulator.deliveries() == []
    assert (await aemulator.health())["status"] == "ok"
    assert aemulator.url.startswith("http://127.0.0.1:") and aemulator.app is not None


async def test_both_fixtures_share_the_server_and_namespace(
    aemulator: AsyncEmulator, emulator: Emulator
) -> None:
    assert (aemulator.url, aemulator.namespace) == (emulator.url, emulator.namespace)
    assert aemulator.accounts == emulator.accounts
