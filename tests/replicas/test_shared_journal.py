"""Replicas sharing one Redis keep one journal: any replica lists, counts, waits for and exports the
calls every replica served, with ids unique across them; a clear through one clears it on all; with
Redis lost, journal queries are answered 503 and the rows are written once it is back."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, ExitStack
from typing import Any

import aiohttp
import pytest

from emulator import serve
from emulator.core.journal import Item
from emulator.core.shared_journal import ID_BLOCK, OWN_IDS
from emulator.keys import JOURNAL
from emulator.server import RunningServer
from emulator.testing import EmulatorClient
from emulator.testing.redis_server import redis_server
from emulator.testing.settings import make_settings

SCAN = "/green/image/scan"
ACTION = "ImageSyncScan"


@pytest.fixture
def namespace() -> str:
    return f"journal-{uuid.uuid4().hex[:8]}"


def settings_for(url: str) -> Any:
    return make_settings(**{"storage.url": url, "alibaba.verify_signatures": False})


@pytest.fixture
async def replicas(redis_url: str) -> AsyncIterator[list[RunningServer]]:
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(serve(settings_for(redis_url))) for _ in range(3)]


async def scan(server: RunningServer, namespace: str, n: int = 0) -> int:
    body = {"scenes": ["porn"], "tasks": [{"url": f"http://example.com/{n}.jpg"}]}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            server.url + SCAN, data=json.dumps(body), headers={"X-Emulator-Namespace": namespace}
        ) as response:
            await response.read()
            return response.status


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


async def journal_of(server: RunningServer, namespace: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/_emulator/requests?namespace={namespace}") as response:
            return response.status, await response.json(content_type=None)


async def test_any_replica_lists_counts_and_exports_every_replicas_calls(
    replicas: list[RunningServer], namespace: str, redis_url: str
) -> None:
    statuses = await asyncio.gather(*(scan(s, namespace, i) for i in range(2) for s in replicas))
    assert statuses == [200] * 6
    served = sorted(port_of(s.url) for s in replicas for _ in range(2))
    listings = []
    for server in replicas:
        async with EmulatorClient(server.url, namespace=namespace) as emu:
            # Each row is written about 0.1 s after its call: the long poll covers the lag.
            await emu.wait_for(count=6, action=ACTION, timeout=5)
            listed = await emu.requests(action=ACTION)
            assert await emu.count(action=ACTION) == 6
            # Every call once, each replica's with the Host it was called at, headers and all.
            assert sorted(port_of(e.raw["request"]["url"]) for e in listed) == served
            assert all(e.header("X-Emulator-Namespace") == namespace for e in listed)
            har = await emu.har(action=ACTION)
            assert sorted(port_of(h["request"]["url"]) for h in har["log"]["entries"]) == served
        listings.append(sorted(e.id for e in listed))
    # Numbered apart: six ids, the same on every replica.
    assert len(set(listings[0])) == 6 and listings == [listings[0]] * 3
    # The newest call, wherever it was served, is the last one for any replica.
    assert await scan(replicas[2], namespace, 7) == 200
    async with EmulatorClient(replicas[0].url, namespace=namespace) as emu:
        await emu.wait_for(count=7, action=ACTION, timeout=5)
        last = await emu.last(action=ACTION)
    assert port_of(last.raw["request"]["url"]) == port_of(replicas[2].url)
    assert last.id not in listings[0]
    # A replica started now reads them back from the stream, each once, and numbers apart too.
    async with serve(settings_for(redis_url)) as late, EmulatorClient(late.url, namespace=namespace) as emu:
        assert sorted(e.id for e in await emu.requests(action=ACTION)) == sorted([*listings[0], last.id])
        assert await scan(late, namespace, 8) == 200
        [newest] = await emu.requests(action=ACTION, order="desc", limit=1)
        assert newest.id not in (*listings[0], last.id)
        assert await emu.count(action=ACTION) == 8


async def waiting_on(server: RunningServer, namespace: str) -> None:
    """Return once a long poll is open on ``server``."""
    while (await journal_of(server, namespace))[1]["journal"]["waiters"] == 0:
        await asyncio.sleep(0.01)


async def test_a_wait_on_one_replica_is_woken_by_a_call_through_another(
    replicas: list[RunningServer], namespace: str
) -> None:
    a, b, c = replicas
    # What the dashboard's stream listens to on c.
    heard: asyncio.Queue[Item] = asyncio.Queue()
    unsubscribe = c.app[JOURNAL].subscribe(heard.put_nowait)
    try:
        async with EmulatorClient(a.url, namespace=namespace) as emu:
            waiting = asyncio.create_task(emu.wait_for(action=ACTION, timeout=5))
            await waiting_on(a, namespace)
            assert await scan(b, namespace) == 200
            [entry] = await waiting
        assert port_of(entry.raw["request"]["url"]) == port_of(b.url)
        item = await asyncio.wait_for(heard.get(), 5)
        assert (item.id, item.namespace) == (entry.id, namespace)
    finally:
        unsubscribe()


async def test_a_clear_through_one_replica_clears_every_replica(
    replicas: list[RunningServer], namespace: str
) -> None:
    a, b, c = replicas
    async with (
        EmulatorClient(a.url, namespace=namespace) as emu_a,
        EmulatorClient(b.url, namespace=namespace) as emu_b,
        EmulatorClient(c.url, namespace=namespace) as emu_c,
    ):
        clients = (emu_a, emu_b, emu_c)
        assert await asyncio.gather(*(scan(s, namespace) for s in replicas)) == [200] * 3
        for emu in clients:
            await emu.wait_for(count=3, action=ACTION, timeout=5)
        assert await emu_b.clear() == 3
        assert [await emu.requests() for emu in clients] == [[], [], []]
        # Calls after the clear are kept, wherever they were served.
        assert await scan(c, namespace) == 200
        [after] = await emu_a.wait_for(action=ACTION, timeout=5)
        assert [e.id for e in await emu_b.requests()] == [after.id]
        # A namespace reset through another replica clears it as well.
        await emu_c.reset()
        assert [await emu.count() for emu in clients] == [0, 0, 0]


async def test_journal_queries_answer_503_while_redis_is_lost_and_rows_are_written_after(
    namespace: str,
) -> None:
    async with AsyncExitStack() as stack:
        lost = ExitStack()
        url = lost.enter_context(redis_server())
        a = await stack.enter_async_context(serve(settings_for(url)))
        b = await stack.enter_async_context(serve(settings_for(url)))
        assert await scan(a, namespace, 1) == 200
        async with EmulatorClient(b.url, namespace=namespace) as emu:
            await emu.wait_for(action=ACTION, timeout=5)
            # A long poll open when Redis goes away is answered too.
            waiting = asyncio.create_task(journal_wait(b, namespace, count=2))
            await waiting_on(b, namespace)
            lost.close()
            assert (await waiting)["error"] == "unavailable"
        # The server keeps serving: the calls are answered (the provider's 503-class error) and
        # journaled, numbered from a's own range once its block of ids is used up.
        assert [await scan(a, namespace, 2) for _ in range(ID_BLOCK + 2)] == [503] * (ID_BLOCK + 2)
        for server in (a, b):
            status, problem = await journal_of(server, namespace)
            assert status == 503 and problem["error"] == "unavailable", problem
        with redis_server(port=port_of(url)):  # back, empty
            await answered(b, namespace)
            async with EmulatorClient(b.url, namespace=namespace) as emu:
                entries = await emu.wait_for(count=ID_BLOCK + 3, action=ACTION, timeout=5)
            assert sorted(e.status for e in entries) == [200] + [503] * (ID_BLOCK + 2)
            ids = [e.id for e in entries]
            assert len(set(ids)) == len(ids) and max(ids) >= OWN_IDS
            assert len((await answered(a, namespace))["entries"]) == ID_BLOCK + 3


async def journal_wait(server: RunningServer, namespace: str, count: int) -> dict[str, Any]:
    query = f"namespace={namespace}&count={count}&timeout=5"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/_emulator/requests/wait?{query}") as response:
            answer: dict[str, Any] = await response.json(content_type=None)
            assert response.status == 503, answer
            return answer


async def answered(server: RunningServer, namespace: str) -> dict[str, Any]:
    """The journal's listing once the replica reads Redis again (a connection it pooled before the
    outage fails once)."""
    for _ in range(20):
        status, listing = await journal_of(server, namespace)
        if status == 200:
            return listing
        await asyncio.sleep(0.05)
    raise AssertionError(listing)


async def first_page(server: RunningServer) -> list[list[Any]]:
    """The rows of the dashboard's first event (its snapshot) on ``server``."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/_emulator/ui/events") as response:
            assert response.status == 200
            data = b""
            while not data.endswith(b"\n\n"):
                data += await response.content.readline()
    event, payload = data.decode().strip().split("\n", 1)
    assert event == "event: snapshot"
    rows: list[list[Any]] = json.loads(payload.removeprefix("data: "))["rows"]
    return rows


async def test_the_dashboards_first_page_on_one_replica_shows_the_others_calls(
    replicas: list[RunningServer], namespace: str
) -> None:
    a, b, c = replicas
    assert await scan(a, namespace) == 200
    for _ in range(50):  # in the stream once a third replica lists it (within about 0.1 s)
        status, listed = await journal_of(c, namespace)
        if status == 200 and listed["entries"]:
            break
        await asyncio.sleep(0.05)
    # b has read nothing of the journal yet: its first page brings the others' calls in first.
    shown = [r for r in await first_page(b) if r[8] == namespace]
    assert [(r[6], r[9]) for r in shown] == [(ACTION, 200)]
