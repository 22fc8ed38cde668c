"""Fixtures for the Tencent CI tests: an app on a pinned clock behind aiohttp's test client, and a
signed POST (request bodies and signers are in emulator.testing)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from emulator import ManualClock, create_app
from emulator.testing.settings import make_settings
from emulator.testing.signers import cos_sdk_headers

Client = TestClient[Any, Any]
AppClient = Callable[..., Awaitable[Client]]
#: The pinned time the HTTP-level tests sign at and the app's clock starts from.
NOW = 1_795_600_000.0

PATH = "/report/badcase"
TEXT_AUDITING_PATH = "/text/auditing"


@pytest.fixture
def clock() -> ManualClock:
    """Pinned at NOW (these tests sign with it; none of them drives a real SDK)."""
    return ManualClock(start=NOW)


async def make_client(aiohttp_client: AppClient, clock: ManualClock, **overrides: Any) -> Client:
    return await aiohttp_client(create_app(make_settings(**overrides), clock=clock))


@pytest.fixture
async def client(aiohttp_client: AppClient, clock: ManualClock) -> Client:
    return await make_client(aiohttp_client, clock)


async def post(client: Client, path: str, body: bytes, clock: ManualClock) -> ClientResponse:
    """A signed POST at the clock's time."""
    return await client.post(path, data=body, headers=cos_sdk_headers(body, clock.time(), path=path))
