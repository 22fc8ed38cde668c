"""Redis lost while serving: each building block raises StoreUnavailable (the gateway's cue for the
provider's 503-class error), and works again once Redis is back."""

from __future__ import annotations

import pytest

from emulator.core.faults import parse_schedule
from emulator.core.replicas import Leases, RedisLimiter, ScheduleCounters
from emulator.core.storage import StoreUnavailable
from emulator.core.storage.redis import connect
from emulator.testing.redis_server import redis_server


async def test_lost_redis_is_reported_and_recovered_from() -> None:
    with redis_server() as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        client = connect(url)
        limiter, counters, leases = RedisLimiter(client), ScheduleCounters(client), Leases(client)
        assert await limiter.try_acquire("k", 1) is None
    try:
        with pytest.raises(StoreUnavailable, match="Redis did not answer for the throttle"):
            await limiter.try_acquire("k", 1)
        with pytest.raises(StoreUnavailable, match="a fault schedule"):
            await counters.decide("f1", parse_schedule({"first": 1}))
        with pytest.raises(StoreUnavailable, match="a callback lease"):
            await leases.claim("d1", "r1", 1.0)
        with redis_server(port=port):  # back, empty (no persistence in tests)
            assert await limiter.try_acquire("k", 1) is None
            assert (await counters.decide("f1", parse_schedule({"first": 1}))).fire
            assert await leases.claim("d1", "r1", 1.0)
    finally:
        await client.aclose()
