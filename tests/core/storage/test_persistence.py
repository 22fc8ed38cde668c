"""State that survives a restart: everything acknowledged is kept across a stop and a ``kill -9``,
pending callbacks resume, snapshots round-trip, and bad data directories are refused clearly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest
from aiohttp import web

from emulator import serve
from emulator.config import default_config_path
from emulator.core.state import schema
from emulator.testing.processes import start_serving, stop
from emulator.testing.settings import make_settings
from emulator.testing.signers import cos_sdk_headers, tea_sdk_headers

from ...test_cli import CLEAN_ENV

JSON = {"Content-Type": "application/json"}
BADCASE = (
    b"<Request><ContentType>1</ContentType><Label>Porn</Label><SuggestedLabel>Normal</SuggestedLabel>"
    b"<Text>5L2g5aW9</Text></Request>"
)


async def feedback(http: aiohttp.ClientSession, url: str, image: str) -> tuple[int, Any]:
    raw = json.dumps({"url": image, "suggestion": "block", "scenes": ["porn"]}).encode()
    headers = tea_sdk_headers(raw, time.time(), nonce=uuid.uuid4().hex)
    async with http.post(url + "/green/image/feedback", data=raw, headers=headers) as response:
        return response.status, await response.json()


async def admin(http: aiohttp.ClientSession, url: str, method: str, path: str, body: Any = None) -> Any:
    async with http.request(method, url + "/_emulator" + path, json=body, headers=JSON) as response:
        assert response.status < 300, await response.text()
        return await response.json()


async def make_every_kind_of_change(http: aiohttp.ClientSession, url: str) -> None:
    """One change of each kind of state: feedback, a custom library, a verdict, the console, a
    fault rule that has counted a call, a confirmed badcase, journal entries."""
    assert (await feedback(http, url, "http://example.com/kept.jpg"))[1]["code"] == 200
    await admin(http, url, "POST", "/alibaba/libraries", {"name": "kept", "kind": "term",
                                                          "listType": "blacklist", "items": ["赌博"]})
    await admin(http, url, "POST", "/alibaba/verdicts",
                {"scene": "porn", "label": "porn", "suggestion": "block", "url": "http://example.com/v.jpg"})
    await admin(http, url, "PUT", "/alibaba/callback",
                {"url": "http://127.0.0.1:9/notify", "seed": "kept-seed"})
    rule = {"name": "second", "match": {"action": "ImageScanFeedback"}, "schedule": {"nth": 2},
            "action": {"type": "error", "provider": "alibaba", "code": "ServiceUnavailable"}}
    await admin(http, url, "POST", "/faults", rule)
    assert (await feedback(http, url, "http://example.com/counted.jpg"))[1]["code"] == 200
    headers = cos_sdk_headers(BADCASE, time.time())
    async with http.post(url + "/report/badcase", data=BADCASE, headers=headers) as response:
        assert response.status == 200
    (badcase,) = (await admin(http, url, "GET", "/tencent/badcases"))["badcases"]
    await admin(http, url, "POST", f"/tencent/badcases/{badcase['requestId']}/confirm", {})


def kinds(doc: dict[str, Any]) -> set[str]:
    return {r["kind"] for r in doc["records"]}


async def test_everything_acknowledged_survives_a_restart(tmp_path: Path) -> None:
    settings = make_settings(**{"storage.path": str(tmp_path)})
    async with serve(settings) as first, aiohttp.ClientSession() as http:
        await make_every_kind_of_change(http, first.url)
        before = await admin(http, first.url, "GET", "/state")
        journal = await admin(http, first.url, "GET", "/requests/count")
        (reported,) = (await admin(http, first.url, "GET", "/requests?action=ReportBadcase"))["entries"]
    assert {
        "alibaba.image_library", "alibaba.textlib", "alibaba.console",
        "alibaba_verdicts.verdict", "faults.rule", "tencent.badcase",
    } <= kinds(before)
    async with serve(settings) as second, aiohttp.ClientSession() as http:
        after = await admin(http, second.url, "GET", "/state")
        assert sorted(map(json.dumps, after["records"])) == sorted(map(json.dumps, before["records"]))
        assert await admin(http, second.url, "GET", "/requests/count") == journal
        # An entry read back shows what it showed before, its parsed body included.
        (again,) = (await admin(http, second.url, "GET", "/requests?action=ReportBadcase"))["entries"]
        assert again == reported and again["request"]["parsed"]
        # The rule counted one call before the restart: the next one is its second, and fires.
        status, answer = await feedback(http, second.url, "http://example.com/third.jpg")
        assert (status, answer["Code"]) == (503, "ServiceUnavailable")
        (badcase,) = (await admin(http, second.url, "GET", "/tencent/badcases"))["badcases"]
        assert badcase["state"] == "confirmed"
        (lib,) = [x for x in (await admin(http, second.url, "GET", "/alibaba/libraries"))["libraries"]
                  if x["code"].startswith("lib")]
        assert (lib["name"], lib["count"]) == ("kept", 1)


async def test_snapshot_round_trip_matches_its_schema_and_seeds_a_reset(tmp_path: Path) -> None:
    async with serve(make_settings()) as source, aiohttp.ClientSession() as http:
        await make_every_kind_of_change(http, source.url)
        doc = await admin(http, source.url, "GET", "/state")
    jsonschema.validate(doc, schema())
    async with serve(make_settings()) as target, aiohttp.ClientSession() as http:
        assert (await admin(http, target.url, "PUT", "/state", doc))["records"] == len(doc["records"])
        copy = await admin(http, target.url, "GET", "/state")
        assert sorted(map(json.dumps, copy["records"])) == sorted(map(json.dumps, doc["records"]))
        for bad, says in (({"version": 2, "records": []}, "version must be 1"),
                          ({"version": 1, "records": [{"kind": "nope"}]}, "records[0]"),
                          ({"version": 1, "records": [{"kind": "other.x", "namespace": "default",
                                                       "account": "", "key": "k", "value": 1}]}, "no kind")):
            async with http.put(target.url + "/_emulator/state", json=bad, headers=JSON) as response:
                assert response.status == 400
                assert says in (await response.json())["detail"]
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(doc))
    seeded_settings = make_settings(**{"storage.state": str(seed)})
    async with serve(seeded_settings) as seeded, aiohttp.ClientSession() as http:
        assert kinds(await admin(http, seeded.url, "GET", "/state")) >= {"alibaba.textlib", "faults.rule"}
        await admin(http, seeded.url, "DELETE", "/alibaba/libraries/lib1")
        await admin(http, seeded.url, "POST", "/reset?namespace=*", {})
        after_reset = await admin(http, seeded.url, "GET", "/state")
        assert sorted(map(json.dumps, after_reset["records"])) == sorted(map(json.dumps, doc["records"]))


# --- a real process, killed ------------------------------------------------------------------------


def start(data: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    return start_serving("--data", str(data), *extra, env=env)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        stop(proc)


async def test_kill_9_under_load_loses_nothing_acknowledged(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    # The account's 20 calls a second would make this slow: the load test lifts it.
    config = json.loads(default_config_path().read_text())
    config["alibaba"]["accounts"][0]["rate_limits"] = {"ImageScanFeedback": 100_000}
    (tmp_path / "config.json").write_text(json.dumps(config))
    data = tmp_path / "data"
    proc, url = start(data, "--config", str(tmp_path / "config.json"))
    processes.append(proc)
    acked: dict[str, float] = {}  # image URL -> when its answer arrived
    sent = 0
    killed_at = 0.0

    async def client(http: aiohttp.ClientSession, worker: int) -> None:
        nonlocal sent
        for i in range(10_000):
            image = f"http://example.com/{worker}/{i}.jpg"
            sent += 1
            try:
                status, answer = await feedback(http, url, image)
            except aiohttp.ClientError:
                return
            if status == 200 and answer["code"] == 200:
                acked[image] = time.monotonic()

    async with aiohttp.ClientSession() as http:
        workers = [asyncio.create_task(client(http, w)) for w in range(8)]
        deadline = time.monotonic() + 10
        while len(acked) < 300 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)  # mid-load: calls are in flight
        killed_at = time.monotonic()
        await asyncio.gather(*workers)
    assert len(acked) >= 300
    proc.wait()

    proc, url = start(data)
    processes.append(proc)
    async with aiohttp.ClientSession() as http:
        doc = await admin(http, url, "GET", "/state")
        learned = {r["key"] for r in doc["records"] if r["kind"] == "alibaba.image_library"}
        # Every acknowledged change is there: it was committed before its answer was sent.
        assert set(acked) <= learned
        # Journal entries are written in batches: what a kill -9 can lose is at most the rows of
        # the last journal flush interval (0.1 s) before it.
        count = await admin(http, url, "GET", "/requests/count?action=ImageScanFeedback")
        entries = await admin(http, url, "GET", "/requests?action=ImageScanFeedback&limit=100000")
        journaled = {e["request"]["parsed"]["url"] for e in entries["entries"]}
        flushed = {image for image, at in acked.items() if at < killed_at - 0.3}
        assert flushed <= journaled
        assert len(acked) <= count["count"] + count["evicted"] + len(set(acked) - journaled) <= sent


class Receiver:
    """A loopback receiver: 500 until told to accept, then 200; counts every attempt."""

    def __init__(self) -> None:
        self.accept = False
        self.bodies: list[bytes] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.read())
        return web.Response(status=200 if self.accept else 500)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    got = Receiver()
    app = web.Application()
    app.router.add_post("/notify", got.handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield got, f"http://127.0.0.1:{runner.addresses[0][1]}/notify"
    finally:
        await runner.cleanup()


async def test_a_pending_delivery_resumes_after_kill_9_with_its_attempt_count(
    tmp_path: Path, processes: list[subprocess.Popen[str]], receiver: tuple[Receiver, str]
) -> None:
    got, target = receiver
    env = {"EMULATOR_CALLBACKS__RETRY_DELAYS": "[1.5]", "EMULATOR_CALLBACKS__MAX_RETRIES": "3"}
    proc, url = start(tmp_path, env=env)
    processes.append(proc)
    async with aiohttp.ClientSession() as http:
        await admin(http, url, "PUT", "/alibaba/callback", {"url": target})
        review = await admin(http, url, "POST", "/alibaba/reviews",
                             {"taskId": "t1", "url": "http://example.com/r.jpg", "suggestion": "block"})
        delivery_id = review["delivery"]["id"]
        for _ in range(500):  # the first attempt fails; the second is 1.5 s away
            if got.bodies:
                break
            await asyncio.sleep(0.01)
        (waited,) = (await admin(http, url, "GET", "/callbacks"))["deliveries"]
        assert (waited["id"], [a["status"] for a in waited["attempts"]]) == (delivery_id, [500])
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    got.accept = True
    proc, url = start(tmp_path, env=env)
    processes.append(proc)
    async with aiohttp.ClientSession() as http:
        async with http.get(
            url + "/_emulator/callbacks/wait", params={"state": "delivered", "timeout": "10"}
        ) as response:
            assert response.status == 200, await response.text()
        (done,) = (await admin(http, url, "GET", "/callbacks"))["deliveries"]
        assert done["id"] == delivery_id
    assert done["state"] == "delivered"
    assert [(a["number"], a["status"]) for a in done["attempts"]] == [(1, 500), (2, 200)]
    assert len(got.bodies) == 2 and got.bodies[0] == got.bodies[1]


def refused(data: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "emulator", "serve", "--port", "0", "--data", str(data)],
        capture_output=True, text=True, env=CLEAN_ENV, timeout=60,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""
    return result.stderr


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"not a database at all\n" * 100, "not"),
        (b"SQLite format 3\x00" + b"\xff" * 2000, "emulator.sqlite3"),
    ],
    ids=["text", "corrupt"],
)
def test_a_data_directory_with_a_bad_file_is_refused_clearly(
    tmp_path: Path, content: bytes, says: str
) -> None:
    (tmp_path / "emulator.sqlite3").write_bytes(content)
    message = refused(tmp_path)
    assert message.startswith("emulator: error:") and says in message and str(tmp_path) in message


def test_a_foreign_sqlite_file_is_refused_clearly(tmp_path: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(tmp_path / "emulator.sqlite3")
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    message = refused(tmp_path)
    assert "emulator.sqlite3" in message


def test_a_second_process_on_one_directory_is_refused(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    proc, _ = start(tmp_path)
    processes.append(proc)
    message = refused(tmp_path)
    assert "in use" in message and str(proc.pid) in message
