"""Callback deliveries leased in Redis (Leases): one replica attempts each, and a replica that dies
has its deliveries taken over when the lease expires, attempt count kept (the record in the store)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from emulator.core.replicas import Leases
from emulator.core.storage.redis import RedisStore

Clients = Callable[[], aioredis.Redis]
KIND = "callbacks.delivery"


@pytest.fixture
async def stores(redis_url: str, prefix: str) -> AsyncIterator[list[RedisStore]]:
    """Three replicas' stores."""
    made = [RedisStore(redis_url, prefix=prefix, replica=f"r{i}") for i in range(3)]
    yield made
    for store in made:
        await store.close()


async def test_one_of_three_replicas_claims_a_delivery(stores: list[RedisStore], prefix: str) -> None:
    leases = [Leases(s.client, prefix=prefix) for s in stores]
    claims = await asyncio.gather(
        *(lease.claim("d1", s.replica, 5.0) for lease, s in zip(leases, stores, strict=True))
    )
    assert sum(claims) == 1
    holder = stores[claims.index(True)].replica
    other = next(s.replica for s in stores if s.replica != holder)
    assert await leases[0].holder("d1") == holder
    assert not await leases[1].renew("d1", other, 5.0)
    assert not await leases[1].release("d1", other)
    assert await leases[2].renew("d1", holder, 5.0)
    assert await leases[0].unleased(["d1", "d2"]) == ["d2"]
    assert await leases[1].release("d1", holder)
    assert await leases[0].holder("d1") is None
    assert await leases[2].claim("d1", other, 5.0)


# A replica in a process of its own: claims the delivery, says so, then renews its lease every
# 0.05 s until it is killed.
HOLDER = """
import asyncio, sys
from emulator.core.replicas import Leases
from emulator.core.storage.redis import connect

async def main() -> None:
    url, prefix = sys.argv[1], sys.argv[2]
    leases = Leases(connect(url), prefix=prefix)
    assert await leases.claim("d7", "doomed", 0.3)
    print("claimed", flush=True)
    while await leases.renew("d7", "doomed", 0.3):
        await asyncio.sleep(0.05)

asyncio.run(main())
"""


async def test_a_killed_replicas_delivery_is_taken_over_with_its_attempt_count(
    stores: list[RedisStore], redis_url: str, prefix: str
) -> None:
    writer, b, c = stores
    writer.put(KIND, "ns", "acc", "d7", {"url": "http://127.0.0.1:9/cb", "attempts": 3, "next_at": 0})
    await writer.commit()
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, redis_url, prefix, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        assert await asyncio.wait_for(child.stdout.readline(), 10) == b"claimed\n"
        survivors = [(b, Leases(b.client, prefix=prefix)), (c, Leases(c.client, prefix=prefix))]
        # While it renews, nobody else can have the delivery (its lease outlives 0.3 s by renewal).
        for _ in range(8):
            for store, leases in survivors:
                assert await leases.orphans(store, KIND) == []
                assert not await leases.claim("d7", store.replica, 1.0)
            await asyncio.sleep(0.05)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        await child.wait()

    async def take_over(store: RedisStore, leases: Leases) -> bool:
        """A survivor's sweep: claim each orphan and continue its schedule (one more attempt counted;
        the lease kept while it works on the delivery)."""
        for _ in range(200):  # every 0.01 s, 2 s at most
            for record in await leases.orphans(store, KIND):
                if await leases.claim(record.key, store.replica, 1.0):
                    store.put(KIND, record.namespace, record.account, record.key,
                              {**record.value, "attempts": record.value["attempts"] + 1})  # fmt: skip
                    await store.commit()
                    return True
            if await leases.holder("d7") in (b.replica, c.replica):
                return False  # the other survivor has it
            await asyncio.sleep(0.01)
        return False

    took = await asyncio.gather(*(take_over(store, leases) for store, leases in survivors))
    assert sorted(took) == [False, True]
    [record] = list(writer.load("ns", KIND))
    assert record.value["attempts"] == 4
    assert record.value["url"] == "http://127.0.0.1:9/cb"
