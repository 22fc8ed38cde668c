"""Load with nothing lost, and slow clients that cannot starve the others, over a real server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from emulator import RunningServer, serve
from emulator.keys import JOURNAL
from emulator.testing.payloads import TEXT_BADCASE as BADCASE_BODY
from emulator.testing.signers import cos_sdk_headers, tea_sdk_headers

from .conftest import BADCASE, IMAGE, hardening_settings

CONNECTIONS = 200
DURATION = 2.0
CAPACITY = 500
IMAGE_BODY = b'{"url": "http://example.com/1.jpg", "suggestion": "block", "scenes": ["ad"]}'


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    # Like any load generator, the workers send one signed request over and over: replays.
    settings = hardening_settings(**{"journal.capacity": CAPACITY, "alibaba.reject_nonce_reuse": False})
    async with serve(settings) as running:
        yield running


async def test_200_connections_lose_nothing(server: RunningServer) -> None:
    now = time.time()
    calls = [
        (server.url + IMAGE, IMAGE_BODY, tea_sdk_headers(IMAGE_BODY, now), b'"code":200'),
        (server.url + BADCASE, BADCASE_BODY, cos_sdk_headers(BADCASE_BODY, now), b"<Response>"),
    ]
    sent = 0
    failures: list[str] = []
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = asyncio.get_running_loop().time() + DURATION

        async def worker(n: int) -> None:
            nonlocal sent
            while asyncio.get_running_loop().time() < deadline:
                url, body, headers, ok = calls[n % 2]
                n += 1
                sent += 1
                async with session.post(url, data=body, headers=headers) as response:
                    answer = await response.read()
                if response.status != 200 or ok not in answer:
                    failures.append(f"{response.status} {answer[:200]!r}")

        await asyncio.gather(*(worker(i) for i in range(CONNECTIONS)))
    journal = server.app[JOURNAL]
    assert failures == []
    assert sent > CAPACITY  # the eviction counter is part of the sum
    assert len(journal) + journal.evicted == sent


async def trickle(server: RunningServer, head: bytes, drip: bytes, stop: asyncio.Event) -> None:
    """Send ``head``, then ``drip`` one byte every 50 ms until told to stop (slowloris)."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(head)
        i = 0
        while not stop.is_set():
            writer.write(drip[i % len(drip) : i % len(drip) + 1])
            await writer.drain()
            i += 1
            try:
                await asyncio.wait_for(stop.wait(), 0.05)
            except TimeoutError:
                pass
    finally:
        writer.close()


async def test_slow_clients_do_not_starve_the_others(server: RunningServer) -> None:
    stop = asyncio.Event()
    slow_headers = b"POST /green/image/feedback HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    slow_body = b"POST /report/badcase HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n"
    slow = [trickle(server, slow_headers, b"abcdef", stop) for _ in range(50)]
    slow += [trickle(server, slow_body, b"<", stop) for _ in range(50)]
    tasks = [asyncio.create_task(s) for s in slow]
    try:
        await asyncio.sleep(0.2)  # every slow client connected and dripping
        now = time.time()
        async with aiohttp.ClientSession() as session:
            for _ in range(20):
                t0 = time.perf_counter()
                async with session.post(
                    server.url + IMAGE, data=IMAGE_BODY, headers=tea_sdk_headers(IMAGE_BODY, now)
                ) as response:
                    assert response.status == 200
                async with session.post(
                    server.url + BADCASE, data=BADCASE_BODY, headers=cos_sdk_headers(BADCASE_BODY, now)
                ) as response:
                    assert response.status == 200
                assert time.perf_counter() - t0 < 1.0
    finally:
        stop.set()
        await asyncio.gather(*tasks)
