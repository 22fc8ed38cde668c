"""GET /_emulator/health: the providers report their own facts; the answer keeps its shape."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient

from emulator import __version__, create_app
from emulator.testing.settings import make_settings

AppClient = Callable[..., Awaitable[TestClient[Any, Any]]]


async def test_health_reports_each_providers_accounts(aiohttp_client: AppClient) -> None:
    settings = make_settings()
    client = await aiohttp_client(create_app(settings))
    response = await client.get("/_emulator/health")
    assert response.status == 200
    assert await response.json() == {
        "status": "ok",
        "version": __version__,
        "pid": os.getpid(),
        "providers": {
            "alibaba": {"accounts": len(settings.alibaba.accounts)},
            "tencent": {"accounts": len(settings.tencent.accounts)},
        },
        "storage": {"kind": "MemoryStore", "durable": False},
    }
