"""Replicas sharing one Redis (``storage.url``): the throttle's windows are theirs together, so an
account's 20 calls a second are 20 whichever replicas receive them."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from contextlib import ExitStack

import aiohttp
import pytest

from emulator import serve
from emulator.core.storage import StorageError
from emulator.server import RunningServer
from emulator.testing.redis_server import redis_server
from emulator.testing.settings import make_settings
from emulator.testing.signers import tea_sdk_headers

BODY = json.dumps({"url": "http://example.com/1.jpg", "suggestion": "block", "scenes": ["porn"]}).encode()


async def feedback(http: aiohttp.ClientSession, server: RunningServer, namespace: str) -> int:
    headers = {**tea_sdk_headers(BODY, time.time()), "X-Emulator-Namespace": namespace}
    async with http.post(server.url + "/green/image/feedback", data=BODY, headers=headers) as response:
        await response.read()
        return response.status


async def test_two_replicas_admit_twenty_a_second_between_them(redis_url: str) -> None:
    settings = make_settings(**{"storage.url": redis_url})
    namespace = f"shared-{uuid.uuid4().hex[:8]}"
    async with serve(settings) as a, serve(settings) as b, aiohttp.ClientSession() as http:
        started = time.monotonic()
        admitted: dict[str, int] = {"a": 0, "b": 0}
        statuses = []
        for i in range(60):
            name, server = ("a", a) if i % 2 == 0 else ("b", b)
            status = await feedback(http, server, namespace)
            statuses.append(status)
            if status == 200:
                admitted[name] += 1
        took = time.monotonic() - started
        assert set(statuses) <= {200, 429}
        if took < 1.0:  # all 60 within one window: 20 admitted in all, not 20 by each replica
            assert admitted["a"] + admitted["b"] == 20, admitted
            assert admitted["a"] and admitted["b"]
        else:  # a slow machine: never more than 20 a second between them
            assert admitted["a"] + admitted["b"] <= 20 * (int(took) + 1), (admitted, took)

        # A reset through one replica empties the windows both use.
        async with http.post(
            a.url + "/_emulator/reset", params={"namespace": namespace}, json={}
        ) as response:
            assert response.status == 200
        assert await feedback(http, b, namespace) == 200


async def test_namespaces_keep_their_own_shared_windows(redis_url: str) -> None:
    settings = make_settings(**{"storage.url": redis_url})
    busy, quiet = f"busy-{uuid.uuid4().hex[:8]}", f"quiet-{uuid.uuid4().hex[:8]}"
    async with serve(settings) as a, serve(settings) as b, aiohttp.ClientSession() as http:
        statuses = await asyncio.gather(*(feedback(http, (a, b)[i % 2], busy) for i in range(30)))
        assert statuses.count(200) <= 20 and 429 in statuses
        assert await feedback(http, b, quiet) == 200


async def test_an_unreachable_redis_stops_the_start_with_one_clear_error() -> None:
    settings = make_settings(**{"storage.url": "redis://127.0.0.1:1/0"})
    with pytest.raises(StorageError, match=r"redis://127.0.0.1:1/0: storage.url: cannot reach Redis"):
        async with serve(settings):
            pass


async def test_redis_lost_while_serving_is_the_providers_503_and_recovered_from(redis_url: str) -> None:
    del redis_url  # only for its skip when redis-server is missing: this test runs its own
    with ExitStack() as redis:
        url = redis.enter_context(redis_server())
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        namespace = f"lost-{uuid.uuid4().hex[:8]}"
        async with serve(make_settings(**{"storage.url": url})) as replica, aiohttp.ClientSession() as http:
            assert await feedback(http, replica, namespace) == 200
            redis.close()  # Redis gone while the replica serves
            headers = {**tea_sdk_headers(BODY, time.time()), "X-Emulator-Namespace": namespace}
            async with http.post(replica.url + "/green/image/feedback", data=BODY, headers=headers) as r:
                assert r.status == 503
                assert (await r.json())["Code"] == "ServiceUnavailable"
            with redis_server(port=port):  # back: calls are admitted again
                assert await feedback(http, replica, namespace) == 200
