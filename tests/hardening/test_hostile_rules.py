"""Hostile fault rules and admin bodies against a real server: refused with 400 problem+json, or
matched in linear time, and the server keeps answering."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from emulator import RunningServer, serve

from .conftest import hardening_settings

JSON = {"Content-Type": "application/json"}
TIMEOUT = aiohttp.ClientTimeout(total=20)


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    async with serve(hardening_settings()) as running:
        yield running


async def test_catastrophic_patterns_are_matched_promptly(server: RunningServer) -> None:
    rules = {
        "rules": [
            {"match": {"path": {"matches": "(a+)+$"}}, "action": {"type": "empty"}},
            {
                "match": {"header": {"name": "X-Probe", "matches": r"^(\w+\s?)*$"}},
                "action": {"type": "empty"},
            },
        ]
    }
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        async with http.post(f"{server.url}/_emulator/faults", json=rules) as response:
            assert response.status == 201
        async with http.get(f"{server.url}/{'a' * 40}!") as response:
            assert response.status < 500
        async with http.get(f"{server.url}/x!", headers={"X-Probe": "a" * 60 + "!"}) as response:
            assert response.status < 500
        async with http.get(f"{server.url}/_emulator/health") as response:
            assert response.status == 200


@pytest.mark.parametrize(
    ("rule", "where"),
    [
        ({"match": {"path": {"matches": "(a)\\1"}}, "action": {"type": "reset"}}, "RE2"),
        ({"action": {"type": "latency", "lognormal": {"median": 1, "sigma": 1000}}}, "sigma"),
        (
            {"match": {"provider": "alibaba"}, "action": {"type": "error", "code": 500, "retryAfter": 1e306}},
            "retryAfter",
        ),
        ({"match": {"provider": "tencent"}, "action": {"type": "modify", "set": {"": "x"}}}, "set"),
    ],
)
async def test_hostile_rules_are_refused_at_admission(
    server: RunningServer, rule: object, where: str
) -> None:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        async with http.post(f"{server.url}/_emulator/faults", json=rule) as response:
            assert response.status == 400
            assert response.content_type == "application/problem+json"
            assert where in (await response.json(content_type=None))["detail"]


async def test_deep_json_and_cross_site_posts_are_refused(server: RunningServer) -> None:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        async with http.post(f"{server.url}/_emulator/faults", data="[" * 100_000, headers=JSON) as response:
            assert response.status == 400
        for path in ("/faults", "/reset"):
            plain = {"Content-Type": "text/plain"}
            async with http.post(f"{server.url}/_emulator{path}", data="{}", headers=plain) as response:
                assert response.status == 415
        evil = {**JSON, "Origin": "http://evil.example"}
        async with http.post(f"{server.url}/_emulator/reset", data="{}", headers=evil) as response:
            assert response.status == 403
        async with http.post(f"{server.url}/_emulator/reset", data="{}", headers=JSON) as response:
            assert response.status == 200
