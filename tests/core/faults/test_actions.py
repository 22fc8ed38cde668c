"""Each fault action observed from a real client over real sockets."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from emulator import RunningServer, serve
from emulator.testing import EmulatorClient
from emulator.testing.settings import make_settings

IMAGE = "/green/image/feedback"
TENCENT_HOST = "examplebucket-1250000000.ci.ap-beijing.myqcloud.com"
BADCASE = (
    "<Request><ContentType>1</ContentType><Label>Porn</Label><SuggestedLabel>Normal</SuggestedLabel>"
    f"<Text>{base64.b64encode(b'hello').decode()}</Text></Request>"
)


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    settings = make_settings(**{"alibaba.verify_signatures": False, "tencent.verify_signatures": False})
    async with serve(settings) as running:
        yield running


@pytest.fixture
async def emu(server: RunningServer) -> AsyncIterator[EmulatorClient]:
    async with EmulatorClient(server.url) as client:
        yield client


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # A fresh connection per request: several faults close the connection on purpose.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        yield session


async def alibaba(http: aiohttp.ClientSession, server: RunningServer, body: Any = None) -> tuple[int, Any]:
    async with http.post(server.url + IMAGE, data=json.dumps(body or {})) as response:
        raw = await response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw


async def tencent(http: aiohttp.ClientSession, server: RunningServer) -> tuple[int, str, Any]:
    headers = {"Host": TENCENT_HOST, "Content-Type": "application/xml"}
    async with http.post(server.url + "/report/badcase", data=BADCASE, headers=headers) as response:
        return response.status, await response.text(), response.headers


def rule(action: dict[str, Any], provider: str = "alibaba", **extra: Any) -> dict[str, Any]:
    return {"name": "t", "match": {"provider": provider}, "action": action, **extra}


async def test_alibaba_gateway_error(
    server: RunningServer, emu: EmulatorClient, http: aiohttp.ClientSession
) -> None:
    async with emu.fault(rule({"type": "error", "code": "ServiceUnavailable", "retryAfter": 2})):
        status, body = await alibaba(http, server)
    assert status == 503
    assert set(body) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    assert body["Code"] == "ServiceUnavailable"
    last = await emu.last(provider="alibaba")
    assert last.raw["fault"] == "f1 (t)" and last.status == 503
    assert (await alibaba(http, server))[0] == 200  # the rule left with the block


async def test_alibaba_business_error_and_status_override(
    server: RunningServer, emu: EmulatorClient, http: aiohttp.ClientSession
) -> None:
    async with emu.fault(rule({"type": "error", "code": 586, "message": "ALGO_FAILED: boom"})):
        status, body = await alibaba(http, server)
    assert status == 200 and body["code"] == 586 and body["msg"] == "ALGO_FAILED: boom"
    async with emu.fault(rule({"type": "error", "code": "Throttling.User", "status": 400})):
        status, body = await alibaba(http, server)
    assert (status, body["Code"]) == (400, "Throttling.User")


async def test_tencent_error_with_retry_after(
    server: RunningServer, emu: EmulatorClient, http: aiohttp.ClientSession
) -> None:
    async with emu.fault(rule({"type": "error", "code": "InternalError", "retryAfter": 3}, "tencent")):
        status, text, headers = await tencent(http, server)
    assert status == 500
    assert "<Code>InternalError</Code>" in text and "<Resource>" in text and "<TraceId>" in text
    assert headers["Retry-After"] == "3" and headers["x-ci-trace-id"]


async def test_throttle_uses_each_providers_answer(
    server: RunningServer, emu: EmulatorClient, http: aiohttp.ClientSession
) -> None:
    async with emu.fault({"action": {"type": "throttle"}}):
        status, body = await alibaba(http, server)
        t_status, text, _ = await tencent(http, server)
    assert (status, body["Code"]) == (429, "Throttling.User")
    assert t_status == 503 and "<Code>SlowDown</Code>" in text


async def test_latency_delays_then_answers(
    server: RunningServer, emu: EmulatorClient, http: aiohttp.ClientSession
) -> None:
    async with emu.fault(rule({"type": "latency", "fixed": 0.2})):
        started = time.monotonic()
        status, _ = await alibaba(http, server)
        elapsed = time.monotonic() - started
    assert status == 200 and elapsed >= 0.2


async def test_hang_is_released_at_its_bound(
    server: RunningServer, emu: EmulatorClient, http: aiohttp.ClientSession
) -> None:
    async with emu.fault(rule({"type": "hang", "max": 0.3})):
        started = time.monotonic()
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await alibaba(http, server)
        elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 5
    entry = await emu.last(provider="alibaba")
    assert entry.status is None and "hang" in entry.raw["error"]


async def test_hang_ends_when_the_client_gives_up(server: RunningServer, emu: EmulatorClient) -> None:
    async with emu.fault(rule({"type": "hang", "max": 600})):
        timeout = aiohttp.ClientTimeout(total=0.2)
        async with aiohttp.ClientSession(timeout=timeout) as impatient:
            with pytest.raises(TimeoutError):
                await alibaba(impatient, server)
        # The server noticed the client leave and recorded the exchange well before the bound.
        (entry,) = await emu.wait_for(provider="alibaba", timeout=5)
    assert entry.status is None


async def test_reset_is_a_tcp_rst(
    server: RunningServer, emu: EmulatorClient, http: aiohttp.ClientSession
) -> None:
    async with emu.fault(rule({"type": "reset"})):
        with pytest.raises(aiohttp.ClientOSError) as info:
            await alibaba(http, server)
    assert info.value.errno == 104  # ECONNRESET
    assert "reset" in (await emu.last()).raw["error"]


async def test_empty_response(
    server: RunningServer, emu: EmulatorClient, http: aiohttp.ClientSession
) -> None:
    async with emu.fault(rule({"type": "empty"}, "tencent")):
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await tencent(http, server)


async def test_truncated_body_after_a_valid_status_line(
    server: RunningServer, emu: EmulatorClient, http: aiohttp.ClientSession
) -> None:
    async with emu.fault(rule({"type": "truncate", "bytes": 10})):
        async with http.post(server.url + IMAGE, data=b"{}") as response:
            assert response.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()
    entry = await emu.last()
    assert entry.response_body == '{"code":200'[:10]


async def test_corrupted_body(
    server: RunningServer, emu: EmulatorClient, http: aiohttp.ClientSession
) -> None:
    async with emu.fault(rule({"type": "corrupt"})):
        status, body = await alibaba(http, server)
    assert status == 200 and isinstance(body, bytes)  # not JSON any more


async def test_drip_sends_the_whole_body_slowly(
    server: RunningServer, emu: EmulatorClient, http: aiohttp.ClientSession
) -> None:
    async with emu.fault(rule({"type": "drip", "duration": 0.3, "chunks": 3})):
        started = time.monotonic()
        status, body = await alibaba(http, server)
        elapsed = time.monotonic() - started
    assert status == 200 and body["code"] == 200 and elapsed >= 0.3


async def test_modify_success_bodies(
    server: RunningServer, emu: EmulatorClient, http: aiohttp.ClientSession
) -> None:
    async with emu.fault(rule({"type": "modify", "remove": ["requestId"], "set": {"msg": "ok"}})):
        status, body = await alibaba(http, server)
    assert status == 200 and body == {"code": 200, "msg": "ok"}
    async with emu.fault(rule({"type": "modify", "remove": ["RequestId"], "set": {"Extra": "1"}}, "tencent")):
        _, text, _ = await tencent(http, server)
    assert "<RequestId>" not in text and "<Extra>1</Extra>" in text


async def test_body_matcher_and_schedule_over_http(
    server: RunningServer, emu: EmulatorClient, http: aiohttp.ClientSession
) -> None:
    spec = {
        "match": {"provider": "alibaba", "body": {"path": "url", "matches": "bad"}},
        "action": {"type": "error", "code": 480},
        "schedule": {"every": 2},
    }
    async with emu.fault(spec):
        codes = [
            (await alibaba(http, server, {"url": f"http://{u}/1.jpg"}))[1]["code"]
            for u in ("bad", "bad", "good", "bad", "bad")
        ]
        (listed,) = await emu.faults()
    assert codes == [200, 480, 200, 200, 480]
    assert listed["stats"] == {"matched": 4, "fired": 2}
    # The body was read once, by the fault middleware, and the handler still saw it.
    assert (await emu.last()).parsed == {"url": "http://bad/1.jpg"}


async def test_bad_rule_over_the_admin_api(emu: EmulatorClient) -> None:
    from emulator.testing.client import AdminError

    with pytest.raises(AdminError, match="HTTP 400: rules\\[0\\].action.code: 'Boom' is not in the Alibaba"):
        await emu.add_faults(rule({"type": "error", "code": "Boom"}))
    assert await emu.faults() == []


async def test_namespaced_rules_only_touch_their_namespace(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    async with EmulatorClient(server.url, namespace="a") as a:
        await a.add_faults(rule({"type": "error", "code": "InternalError"}))
        async with http.post(server.url + IMAGE, data=b"{}", headers={"X-Emulator-Namespace": "a"}) as r:
            assert r.status == 500
        async with http.post(server.url + IMAGE, data=b"{}", headers={"X-Emulator-Namespace": "b"}) as r:
            assert r.status == 200
        async with EmulatorClient(server.url, namespace="b") as b:
            assert await b.faults() == [] and await b.clear_faults() == 0
        assert len(await a.faults()) == 1


async def test_scenario_by_name_at_run_time(
    server: RunningServer, emu: EmulatorClient, http: aiohttp.ClientSession
) -> None:
    async with emu.fault(scenario="first-call-fails"):
        assert (await alibaba(http, server))[0] == 503
        assert (await alibaba(http, server))[0] == 200
        assert (await tencent(http, server))[0] == 503
        assert (await tencent(http, server))[0] == 200


async def test_concurrent_requests_during_a_hang_are_served(
    server: RunningServer, emu: EmulatorClient, http: aiohttp.ClientSession
) -> None:
    async with emu.fault(rule({"type": "hang", "max": 0.5}, "tencent")):
        hung = asyncio.create_task(tencent(http, server))
        for _ in range(5):
            assert (await alibaba(http, server))[0] == 200
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await hung
