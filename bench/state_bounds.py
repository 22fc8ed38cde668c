"""Provider state against a long history: what one call costs, and what memory the state holds.

- Tencent: the time of a signed text audit (POST /text/auditing) once an account has reported
  50,000 badcases (``tencent.max_badcases`` raised to 50,000 where the setting exists), against the
  same audit with none.
- Alibaba: 100 signed TextFeedback calls, each carrying as many labelled items as fit in 1 MiB,
  then 200 calls of 100 items (20,000 distinct texts taught); what the feedback-based text library
  then holds, and the process's resident memory growth.

Run alone, in-process, on loopback: ``.venv/bin/python -m bench.state_bounds``. Timing figures are
medians of 200 audits on a shared machine: read them as an order of magnitude.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import statistics
import time
import uuid

import aiohttp

from emulator import ManualClock, serve
from emulator.providers.alibaba.routes import ALIBABA_BACKEND
from emulator.providers.tencent.models import Badcase
from emulator.providers.tencent.routes import TENCENT_BACKEND
from emulator.testing.payloads import text_auditing_xml
from emulator.testing.settings import make_settings
from emulator.testing.signers import APPID, cos_sdk_headers, tea_sdk_headers

BADCASES = 50_000
AUDITS = 200
FEEDBACK_CALLS = 100
UID = "1234567890123456"


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _has(section: object, name: str) -> bool:
    return name in {f.name for f in dataclasses.fields(section)}  # type: ignore[arg-type]


async def _audit_ms(server_url: str, clock: ManualClock, http: aiohttp.ClientSession) -> float:
    body = text_auditing_xml("一段要审核的文字")
    times = []
    for _ in range(AUDITS):
        headers = cos_sdk_headers(body, clock.time(), path="/text/auditing")
        t0 = time.perf_counter()
        async with http.post(server_url + "/text/auditing", data=body, headers=headers) as response:
            await response.read()
            assert response.status == 200, response.status
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


async def tencent() -> None:
    overrides: dict[str, object] = {"tencent.confirm_after_seconds": None}
    if _has(make_settings().tencent, "max_badcases"):
        overrides["tencent.max_badcases"] = BADCASES
    clock = ManualClock()
    async with serve(make_settings(**overrides), clock=clock) as server, aiohttp.ClientSession() as http:
        empty = await _audit_ms(server.url, clock, http)
        state = server.app[TENCENT_BACKEND].states[APPID]
        for i in range(BADCASES):
            badcase = Badcase(f"r{i}", clock.time(), "b", "ap-beijing", 1, "Normal", "Porn", text=f"text {i}")
            state.report(badcase)
            state.confirm(badcase.request_id, at=clock.time())
        full = await _audit_ms(server.url, clock, http)
    print(
        f"tencent text audit, median of {AUDITS}: {empty:.2f} ms with 0 badcases -> {full:.2f} ms with "
        f"{BADCASES:,} confirmed badcases"
    )


async def _feedback(
    http: aiohttp.ClientSession, url: str, clock: ManualClock, items: list[dict[str, str]]
) -> int:
    raw = json.dumps(items).encode()
    headers = tea_sdk_headers(
        raw, clock.time(), path="/green/text/feedback", action="TextFeedback", nonce=uuid.uuid4().hex
    )
    async with http.post(url + "/green/text/feedback", data=raw, headers=headers) as response:
        doc = await response.json()
        return int(doc.get("code", response.status))


def _items(call: int, count: int | None) -> list[dict[str, str]]:
    """``count`` labelled items, or (None) as many as fit in 1 MiB."""
    items: list[dict[str, str]] = []
    size = 2
    while count is None or len(items) < count:
        item = {"taskId": "t", "content": f"c{call}-{len(items)}", "label": "spam"}
        size += len(json.dumps(item)) + 2
        if size > 1024 * 1024 - 64:
            break
        items.append(item)
    return items


async def alibaba() -> None:
    account = {
        "access_key_id": "testAccessKeyId",
        "access_key_secret": "testAccessKeySecret",
        "uid": UID,
        "rate_limits": {"TextFeedback": 1_000_000},
    }
    settings = make_settings(**{"alibaba.accounts": [account], "journal.capacity": 0})
    clock = ManualClock()
    async with serve(settings, clock=clock) as server, aiohttp.ClientSession() as http:
        library = server.app[ALIBABA_BACKEND].states[UID].text_library
        for label, calls, count in (("1 MiB", FEEDBACK_CALLS, None), ("100-item", 200, 100)):
            before = _rss()
            answers: dict[int, int] = {}
            for call in range(calls):
                code = await _feedback(http, server.url, clock, _items(call, count))
                answers[code] = answers.get(code, 0) + 1
            grown = (_rss() - before) / 2**20
            print(
                f"alibaba: {calls} TextFeedback calls of {label} items, answers {answers}: {len(library):,} "
                f"entries in the feedback-based text library, RSS +{grown:.0f} MiB"
            )


def main() -> None:
    asyncio.run(tencent())
    asyncio.run(alibaba())


if __name__ == "__main__":
    main()
