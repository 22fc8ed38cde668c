"""What fault rules that cannot match a call cost it: the median time of a signed ImageScanFeedback
call over loopback with no rules, then with many rules that never match it.

Runs alone: ``.venv/bin/python -m bench.fault_rules [--rules 20000] [--calls 300]``. The rules are
put into the engine directly (past the admin API's ``faults.max_rules`` cap, to compare with
builds that had none); each shape prints its own row:

- ``other path``: ``{"match": {"path": "/nope/<i>"}}`` (an equality the index files rules under);
- ``other provider``: ``{"match": {"provider": "tencent"}}`` rules;
- ``open regex``: header patterns no call carries, which no index can rule out: at most
  ``faults.max_rules`` (1,000 by default) of them, so that is the worst a call meets.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from emulator import serve
from emulator.keys import FAULTS
from emulator.testing.settings import make_settings
from emulator.testing.signers import ACCESS_KEY_ID, ACCESS_KEY_SECRET, tea_sdk_headers

from .common import table

PATH = "/green/image/feedback"
BODY = b'{"url": "http://example.com/1.jpg", "suggestion": "block", "scenes": ["ad"]}'

SHAPES: dict[str, Callable[[int], dict[str, Any]]] = {
    "other path": lambda i: {"match": {"path": f"/nope/{i}"}, "action": {"type": "reset"}},
    "other provider": lambda i: {"match": {"provider": "tencent"}, "action": {"type": "reset"}},
    "open regex": lambda i: {
        "match": {"header": {"name": f"x-nope-{i}", "matches": "^z"}},
        "action": {"type": "reset"},
    },
}


async def median_ms(session: aiohttp.ClientSession, url: str, calls: int) -> float:
    times = []
    for _ in range(calls):
        headers = tea_sdk_headers(BODY, time.time())
        start = time.perf_counter()
        async with session.post(url, data=BODY, headers=headers) as response:
            await response.read()
            assert response.status == 200, response.status
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


async def run(rules: int, calls: int, open_rules: int) -> list[list[str]]:
    accounts = [
        {
            "access_key_id": ACCESS_KEY_ID,
            "access_key_secret": ACCESS_KEY_SECRET,
            "uid": "1234567890123456",
            "rate_limits": {"ImageScanFeedback": 10_000_000},
        }
    ]
    rows = []
    settings = make_settings(**{"alibaba.accounts": accounts})
    async with serve(settings) as server, aiohttp.ClientSession() as session:
        engine = server.app[FAULTS]
        if hasattr(engine, "max_rules"):
            engine.max_rules = rules
        url = server.url + PATH
        await median_ms(session, url, 50)  # warm-up
        base = await median_ms(session, url, calls)
        rows.append(["no rules", "0", f"{base:.2f}", "1.00"])
        for name, shape in SHAPES.items():
            count = open_rules if name == "open regex" else rules
            engine.clear()
            engine.add_all([shape(i) for i in range(count)])
            ms = await median_ms(session, url, calls)
            rows.append([name, f"{count:,}", f"{ms:.2f}", f"{ms / base:.2f}"])
        engine.clear()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=20_000)
    parser.add_argument("--open-rules", type=int, default=1_000)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args(argv)
    rows = asyncio.run(run(args.rules, args.calls, args.open_rules))
    print(table(rows, ["rules that cannot match", "count", "median ms/call", "vs none"]))


if __name__ == "__main__":
    main()
