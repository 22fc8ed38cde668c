"""Replicas sharing one Redis (``storage.url``) share their state: what a call or an admin call
changes through one replica, the next call through another sees; fault schedules count every
replica's calls, so a ``first: 1`` rule fires once in all."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from emulator import serve
from emulator.server import RunningServer
from emulator.testing import EmulatorClient
from emulator.testing.settings import make_settings


@pytest.fixture
def namespace() -> str:
    return f"state-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def replicas(redis_url: str) -> AsyncIterator[list[RunningServer]]:
    settings = make_settings(**{"storage.url": redis_url, "alibaba.verify_signatures": False})
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(serve(settings)) for _ in range(3)]


async def post(server: RunningServer, path: str, body: Any, namespace: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            server.url + path, data=json.dumps(body), headers={"X-Emulator-Namespace": namespace}
        ) as response:
            return response.status, await response.json(content_type=None)


async def scan(server: RunningServer, url: str, namespace: str) -> dict[str, Any]:
    status, answer = await post(
        server, "/green/image/scan", {"scenes": ["porn"], "tasks": [{"url": url}]}, namespace
    )
    assert status == 200, answer
    result: dict[str, Any] = answer["data"][0]["results"][0]
    return result


async def test_feedback_through_one_replica_is_honoured_by_the_others(
    replicas: list[RunningServer], namespace: str
) -> None:
    a, b, c = replicas
    url = "http://example.com/shared.jpg"
    assert (await scan(b, url, namespace))["suggestion"] == "pass"  # b holds the namespace now
    status, _ = await post(
        a, "/green/image/feedback", {"url": url, "suggestion": "block", "scenes": ["porn"]}, namespace
    )
    assert status == 200
    assert (await scan(b, url, namespace))["suggestion"] == "block"
    assert (await scan(c, url, namespace))["suggestion"] == "block"
    # A reset through c forgets it on every replica.
    async with EmulatorClient(c.url, namespace=namespace) as emu:
        await emu.reset(namespace)
    assert (await scan(b, url, namespace))["suggestion"] == "pass"
    assert (await scan(a, url, namespace))["suggestion"] == "pass"


async def test_console_settings_and_libraries_set_on_one_replica_apply_on_all(
    replicas: list[RunningServer], namespace: str
) -> None:
    a, b, _ = replicas
    async with (
        EmulatorClient(a.url, namespace=namespace) as emu_a,
        EmulatorClient(b.url, namespace=namespace) as emu_b,
    ):
        await emu_b.add_verdicts(
            {"url_pattern": r"/nsfw/", "scene": "porn", "label": "porn", "suggestion": "block"}
        )
        assert (await scan(a, "http://example.com/nsfw/1.jpg", namespace))["suggestion"] == "block"
        lib = await emu_a.create_library("words", "term", "blacklist", ["forbidden42"])
        assert lib["code"]
        status, answer = await post(
            b,
            "/green/text/scan",
            {"scenes": ["antispam"], "tasks": [{"content": "a forbidden42 word"}]},
            namespace,
        )
        assert status == 200 and answer["data"][0]["results"][0]["suggestion"] == "block", answer
        # Each replica's snapshot shows the same state.
        state_a, state_b = await emu_a.state(), await emu_b.state()
        mine = lambda doc: sorted(  # noqa: E731
            json.dumps(r, sort_keys=True) for r in doc["records"] if r["namespace"] == namespace
        )
        assert mine(state_a) == mine(state_b) and mine(state_a)


async def test_a_first_rule_fires_once_across_replicas(replicas: list[RunningServer], namespace: str) -> None:
    a, b, c = replicas
    async with EmulatorClient(a.url, namespace=namespace) as emu:
        [rule_id] = await emu.add_faults(
            {
                "match": {"provider": "alibaba", "action": "ImageSyncScan"},
                "action": {"type": "error", "code": "ServiceUnavailable"},
                "schedule": {"first": 1},
            }
        )
        body = {"scenes": ["porn"], "tasks": [{"url": "http://example.com/1.jpg"}]}
        statuses = await asyncio.gather(
            *(post(server, "/green/image/scan", body, namespace) for _ in range(4) for server in (a, b, c))
        )
        assert sorted(s for s, _ in statuses).count(503) == 1, statuses
        # Any replica lists the rule with every replica's counts.
        async with EmulatorClient(c.url, namespace=namespace) as other:
            [listed] = await other.faults()
        assert listed["id"] == rule_id and listed["stats"] == {"matched": 12, "fired": 1}
        # Rules added through different replicas get different ids; removed through one, gone on all.
        async with EmulatorClient(b.url, namespace=namespace) as emu_b:
            [second] = await emu_b.add_faults({"match": {"action": "Nothing"}, "action": {"type": "empty"}})
            assert second != rule_id
            await emu_b.remove_fault(rule_id)
        assert [r["id"] for r in await emu.faults()] == [second]


async def test_a_manual_clock_moved_through_one_replica_moves_on_all(redis_url: str) -> None:
    settings = make_settings(**{"storage.url": redis_url, "server.clock": "manual"})
    async with serve(settings) as a, serve(settings) as b:
        async with EmulatorClient(a.url) as emu_a, EmulatorClient(b.url) as emu_b:
            before = (await emu_a.clock())["now"]
            moved = await emu_a.advance(3600)
            assert moved["now"] == before + 3600
            assert (await emu_b.clock())["now"] == moved["now"]
            # A replica started afterwards starts from the shared time.
            async with serve(settings) as c, EmulatorClient(c.url) as emu_c:
                assert (await emu_c.clock())["now"] >= moved["now"]


async def test_a_badcase_reported_through_one_replica_confirmed_through_another_decides_on_a_third(
    redis_url: str, namespace: str
) -> None:
    import base64

    import requests
    from qcloud_cos import CosConfig, CosS3Client

    from emulator.testing.signers import APPID, SECRET_ID, SECRET_KEY

    bucket, text = f"examplebucket-{APPID}", "一段有问题的文字"
    settings = make_settings(**{"storage.url": redis_url, "tencent.confirm_after_seconds": None})

    sessions: list[requests.Session] = []

    def cos(server: RunningServer) -> CosS3Client:
        session = requests.Session()
        sessions.append(session)
        session.trust_env = False
        session.headers["X-Emulator-Namespace"] = namespace
        conf = CosConfig(
            Proxies={"http": server.url},
            SecretId=SECRET_ID,
            SecretKey=SECRET_KEY,
            Region="ap-beijing",
            Scheme="http",
        )
        return CosS3Client(conf, retry=0, session=session)

    async with serve(settings) as a, serve(settings) as b, serve(settings) as c:
        label = lambda: str(  # noqa: E731
            cos(c).ci_auditing_text_submit(Bucket=bucket, Content=text.encode())["JobsDetail"]["Label"]
        )
        assert await asyncio.to_thread(label) == "Normal"
        reported = await asyncio.to_thread(
            cos(a).ci_auditing_report_badcase,
            Bucket=bucket,
            ContentType=1,
            Label="Normal",
            SuggestedLabel="Porn",
            Text=base64.b64encode(text.encode()).decode(),
        )
        async with EmulatorClient(b.url, namespace=namespace) as emu_b:
            [listed] = await emu_b.tencent_badcases()
            assert listed["requestId"] == reported["RequestId"] and listed["state"] == "reported"
            await emu_b.confirm_badcase(reported["RequestId"])
        assert await asyncio.to_thread(label) == "Porn"
    for session in sessions:
        session.close()


async def test_redis_lost_the_calls_get_the_providers_503_and_acknowledged_state_survives(
    tmp_path: Path, namespace: str
) -> None:
    from emulator.testing.redis_server import redis_server

    persistent = ("--dir", str(tmp_path), "--appendonly", "yes", "--appendfsync", "always")
    with ExitStack() as first:
        url = first.enter_context(redis_server(*persistent))
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        settings = make_settings(**{"storage.url": url, "alibaba.verify_signatures": False})
        async with serve(settings) as a, serve(settings) as b:
            kept, refused = "http://example.com/kept.jpg", "http://example.com/refused.jpg"
            feedback = {"suggestion": "block", "scenes": ["porn"]}
            status, _ = await post(a, "/green/image/feedback", {"url": kept, **feedback}, namespace)
            assert status == 200
            first.close()  # Redis stops
            status, answer = await post(a, "/green/image/feedback", {"url": refused, **feedback}, namespace)
            assert (status, answer.get("Code")) == (503, "ServiceUnavailable"), answer
            body = {"scenes": ["porn"], "tasks": [{"url": kept}]}
            status, answer = await post(b, "/green/image/scan", body, namespace)
            assert (status, answer.get("Code")) == (503, "ServiceUnavailable"), answer
            with redis_server(*persistent, port=port):  # back, with its data
                for _ in range(50):  # a connection pooled before the loss fails once
                    status, answer = await post(b, "/green/image/scan", body, namespace)
                    if status == 200:
                        break
                    await asyncio.sleep(0.1)
                assert answer["data"][0]["results"][0]["suggestion"] == "block"


async def test_a_signed_request_replayed_to_another_replica_is_refused_as_a_replay(
    redis_url: str, namespace: str
) -> None:
    import time

    from emulator.testing.signers import tea_sdk_headers

    body = json.dumps(
        {"url": "http://example.com/once.jpg", "suggestion": "block", "scenes": ["porn"]}
    ).encode()
    headers = {
        **tea_sdk_headers(body, time.time(), nonce=f"nonce-{namespace}"),
        "X-Emulator-Namespace": namespace,
    }
    settings = make_settings(**{"storage.url": redis_url})
    async with serve(settings) as a, serve(settings) as b, aiohttp.ClientSession() as http:
        answers = []
        for server in (a, b, a):
            async with http.post(
                server.url + "/green/image/feedback", data=body, headers=headers
            ) as response:
                answers.append((response.status, (await response.json()).get("Code")))
        assert answers == [(200, None), (400, "SignatureNonceUsed"), (400, "SignatureNonceUsed")], answers
