"""One real redis-server for the module's tests; clients made as separate replicas would make them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis.asyncio as aioredis

from emulator.core.storage.redis import connect
from emulator.testing.redis_server import server_for_tests


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with server_for_tests() as url:
        yield url


@pytest.fixture
def prefix() -> str:
    """Keys of this test's own on the shared server."""
    return f"t{uuid.uuid4().hex[:8]}:"


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[Callable[[], aioredis.Redis]]:
    """Clients with a connection pool each, as separate replicas have; closed at teardown."""
    made: list[aioredis.Redis] = []

    def make() -> aioredis.Redis:
        client = connect(redis_url)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()
