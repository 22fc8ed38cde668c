"""The emulator clock through the admin API: a manual clock moved from outside the process, and what
follows it (retry schedules, throttle windows, signature time checks, badcase confirmation)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from emulator import RunningServer, serve
from emulator.testing import EmulatorClient
from emulator.testing.client import AdminError
from emulator.testing.settings import make_settings
from emulator.testing.signers import cos_sdk_headers, tea_sdk_headers

from ..test_cli import CLEAN_ENV

pytest_plugins = ["pytester"]

DELAYS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600)


@pytest.fixture
async def manual() -> AsyncIterator[RunningServer]:
    async with serve(make_settings(**{"server.clock": "manual", "callbacks.shutdown_grace": 0})) as running:
        yield running


@pytest.fixture
async def emu(manual: RunningServer) -> AsyncIterator[EmulatorClient]:
    async with EmulatorClient(manual.url) as client:
        yield client


class Failing:
    """A loopback receiver that answers every callback with 500 and counts them."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.read())
        return web.Response(status=500, text="still broken")


@pytest.fixture
async def failing() -> AsyncIterator[Failing]:
    receiver = Failing()
    app = web.Application()
    app.router.add_post("/notify", receiver.handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/notify"
    try:
        yield receiver
    finally:
        await runner.cleanup()


async def alibaba(server: RunningServer, path: str, action: str, body: dict[str, Any], now: float) -> Any:
    """A call signed as the Tea SDK signs it at ``now`` (ACS3-HMAC-SHA256)."""
    raw = json.dumps(body).encode()
    headers = tea_sdk_headers(raw, now, path=path, action=action, nonce=uuid.uuid4().hex)
    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + path, data=raw, headers=headers) as response:
            return response.status, await response.json()


async def move(server: RunningServer, body: bytes) -> tuple[int, str, Any]:
    async with aiohttp.ClientSession() as http:
        headers = {"Content-Type": "application/json"}
        async with http.post(f"{server.url}/_emulator/clock", data=body, headers=headers) as response:
            return response.status, response.content_type, await response.json()


async def test_a_real_clock_is_read_but_never_moved() -> None:
    async with serve(make_settings()) as server, EmulatorClient(server.url) as client:
        before = time.time()
        state = await client.clock()
        assert state["mode"] == "real" and "timers" not in state
        assert before - 1 <= state["now"] <= time.time() + 1
        with pytest.raises(AdminError) as info:
            await client.advance(5)
        assert (info.value.status, info.value.kind) == (409, "clock_not_manual")
        assert "--clock manual" in info.value.message


async def test_a_manual_clock_starts_at_real_time_and_moves_only_when_told(emu: EmulatorClient) -> None:
    first = await emu.clock()
    assert first["mode"] == "manual" and first["timers"] == []
    assert abs(first["now"] - time.time()) < 60
    assert (await emu.clock())["now"] == first["now"]
    moved = await emu.advance(2.5)
    assert moved["now"] == first["now"] + 2.5 and moved["advanced"] == 2.5
    # set: epoch seconds, ISO 8601 with a zone, without one (UTC), or a datetime.
    target = float(int(first["now"]) + 100)
    assert (await emu.set_clock(target))["now"] == target
    iso = datetime.fromtimestamp(target + 50, UTC)
    assert (await emu.set_clock(iso.isoformat().replace("+00:00", "Z")))["now"] == target + 50
    assert (await emu.set_clock(iso.replace(tzinfo=None).isoformat()))["now"] == target + 50
    state = await emu.set_clock(datetime.fromtimestamp(target + 60, UTC))
    assert state["now"] == target + 60 and state["advanced"] == 10
    assert state["iso"] == datetime.fromtimestamp(target + 60, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"set": 1}', "the clock never goes back"),
        (b'{"advance": -1}', "advance must not be negative"),
        (b'{"advance": 1, "set": 2}', 'must be {"advance": <seconds>} or {"set"'),
        (b"{}", 'must be {"advance"'),
        (b'{"advance": 1, "speed": 2}', 'must be {"advance"'),
        (b'{"advance": "1"}', "advance must be a number of seconds"),
        (b'{"advance": true}', "advance must be a number of seconds"),
        (b'{"advance": NaN}', "advance must be a number of seconds"),
        (b'{"advance": Infinity}', "advance must be a number of seconds"),
        (b'{"advance": 1e300}', "the clock cannot go past 9999-12-31"),
        (b'{"set": -1e300}', "the clock never goes back"),
        (b'{"set": "yesterday"}', "set must be epoch seconds or ISO 8601, not 'yesterday'"),
        (b'{"set": null}', "set must be a number of seconds"),
        (b"[1]", "the body must be a JSON object"),
        (b"{", "the body is not valid JSON"),
    ],
)
async def test_bad_moves_are_refused_as_problems(manual: RunningServer, body: bytes, says: str) -> None:
    status, content_type, problem = await move(manual, body)
    assert (status, content_type, problem["error"]) == (400, "application/problem+json", "bad_request")
    assert says in problem["detail"]
    # Nothing moved, and the server keeps serving.
    async with EmulatorClient(manual.url) as client:
        assert abs((await client.clock())["now"] - time.time()) < 60


async def test_a_whole_retry_schedule_runs_by_advancing_the_clock(
    manual: RunningServer, emu: EmulatorClient, failing: Failing
) -> None:
    """1 + 16 attempts to a receiver that keeps failing: each retry's delay is walked with one
    advance, none waited for in real time."""
    start = (await emu.clock())["now"]
    body = {
        "scenes": ["porn"],
        "tasks": [{"url": "http://example.com/1.jpg", "dataId": "d-1"}],
        "callback": failing.url,
        "seed": "s",
    }
    status, answer = await alibaba(manual, "/green/image/asyncscan", "ImageAsyncScan", body, start)
    assert status == 200 and answer["code"] == 200
    delays = [DELAYS[min(n, len(DELAYS)) - 1] for n in range(1, 17)]
    for n, delay in enumerate(delays, start=1):
        # Attempt n is journaled before its delivery starts waiting for retry n.
        await emu.wait_for(direction="out", count=n, timeout=5)
        state = await emu.clock()
        assert state["timers"] == [delay], f"before retry {n}"
        (delivery,) = await emu.deliveries()
        assert delivery["state"] == "pending" and len(delivery["attempts"]) == n
        await emu.advance(delay)
    (delivery,) = await emu.wait_for_delivery(state="exhausted", timeout=5)
    attempts = delivery["attempts"]
    assert [a["number"] for a in attempts] == list(range(1, 18))
    assert [a["status"] for a in attempts] == [500] * 17
    assert len(failing.bodies) == 17
    # Each attempt started at the scheduled time on the emulator clock.
    due = [start]
    for delay in delays:
        due.append(due[-1] + delay)
    started = [datetime.fromisoformat(a["time"]).timestamp() for a in attempts]
    assert started == pytest.approx(due, abs=0.002)
    assert sum(delays) == 1 + 2 + 4 + 8 + 16 + 32 + 64 + 128 + 256 + 512 + 600 * 6
    assert (await emu.clock())["timers"] == []
    assert await emu.count(direction="out") == 17


async def test_throttle_windows_follow_the_clock(manual: RunningServer, emu: EmulatorClient) -> None:
    now = (await emu.clock())["now"]
    body = {"url": "http://example.com/1.jpg", "suggestion": "block", "scenes": ["ad"]}
    for _ in range(20):  # the default account's ImageScanFeedback limit, per second
        status, _ = await alibaba(manual, "/green/image/feedback", "ImageScanFeedback", body, now)
        assert status == 200
    status, answer = await alibaba(manual, "/green/image/feedback", "ImageScanFeedback", body, now)
    assert (status, answer["Code"]) == (429, "Throttling.User")
    await emu.advance(1)
    status, _ = await alibaba(manual, "/green/image/feedback", "ImageScanFeedback", body, now + 1)
    assert status == 200


async def test_signature_times_are_checked_against_the_clock(
    manual: RunningServer, emu: EmulatorClient
) -> None:
    body = {"url": "http://example.com/1.jpg", "suggestion": "block", "scenes": ["ad"]}
    real_now = time.time()
    status, _ = await alibaba(manual, "/green/image/feedback", "ImageScanFeedback", body, real_now)
    assert status == 200  # a manual clock starts at the real time: signed calls work
    state = await emu.advance(901)
    status, answer = await alibaba(manual, "/green/image/feedback", "ImageScanFeedback", body, real_now)
    assert (status, answer["Code"]) == (400, "InvalidTimeStamp.Expired")
    status, _ = await alibaba(manual, "/green/image/feedback", "ImageScanFeedback", body, state["now"])
    assert status == 200


async def test_tencent_badcases_are_confirmed_on_the_clock(
    manual: RunningServer, emu: EmulatorClient
) -> None:
    now = (await emu.clock())["now"]
    xml = (
        b"<Request><ContentType>1</ContentType><Label>Porn</Label><SuggestedLabel>Normal</SuggestedLabel>"
        b"<Text>5L2g5aW9</Text></Request>"
    )
    async with aiohttp.ClientSession() as http:
        headers = cos_sdk_headers(xml, now)
        async with http.post(manual.url + "/report/badcase", data=xml, headers=headers) as response:
            assert response.status == 200
    (badcase,) = await emu.tencent_badcases()
    assert badcase["state"] == "reported"
    await emu.advance(3599)
    assert (await emu.tencent_badcases())[0]["state"] == "reported"
    await emu.advance(1)  # tencent.confirm_after_seconds: 3600
    assert (await emu.tencent_badcases())[0]["state"] == "confirmed"


def test_the_clock_routes_in_the_sync_client(manual_served: str) -> None:
    from emulator.testing import SyncEmulatorClient

    with SyncEmulatorClient(manual_served) as client:
        start = client.clock()
        assert start["mode"] == "manual"
        assert client.advance(3)["now"] == start["now"] + 3
        assert client.set_clock(start["now"] + 10)["advanced"] == 7
        with pytest.raises(AdminError) as info:
            client.set_clock(start["now"])
        assert info.value.status == 400


@pytest.fixture
def manual_served() -> Iterator[str]:
    """``emulator serve --clock manual`` as a real subprocess."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", "serve", "--port", "0", "--clock", "manual"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=CLEAN_ENV,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("emulator serving on http://127.0.0.1:"), line
        yield line.split()[-1]
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


PLUGIN_TEST = """
import pytest
from emulator.testing.client import AdminError


@pytest.mark.emulator(clock="manual")
def test_marker_asks_for_a_manual_clock(emulator):
    start = emulator.clock()
    assert start["mode"] == "manual"
    assert emulator.advance(30)["now"] == start["now"] + 30


def test_the_shared_emulator_runs_on_the_real_clock(emulator):
    assert emulator.clock()["mode"] == "real"
    with pytest.raises(AdminError) as info:
        emulator.advance(1)
    assert info.value.status == 409
"""


def test_the_fixture_advances_a_manual_clock_the_marker_asks_for(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_clock=PLUGIN_TEST)
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=2)
