"""Callback deliveries per second after many earlier ones, with and without an open long poll.

``python -m bench.deliveries [--prior N] [--batch N]``: a Dispatcher (the emulator's, with its
journal) delivers ``prior`` notifications to a loopback receiver, then the rate of the next
``batch`` is measured twice: with nobody waiting, and with one ``wait_for`` open that no delivery
satisfies (a long poll on ``/_emulator/callbacks/wait`` that has not been answered yet). Every
change of a delivery wakes the waiters to check; what that check costs is what this shows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time

from aiohttp import web

from emulator.core.callbacks import DeliveryFilter, Dispatcher, OutboundInfo, Payload
from emulator.core.clock import RealClock
from emulator.core.journal import Journal

from .common import table


async def _receiver() -> tuple[web.AppRunner, str]:
    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/notify", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/notify"


def _payload(fault: object) -> Payload:
    del fault
    return Payload(b"checksum=x&content=%7B%7D", "application/x-www-form-urlencoded")


async def _deliver(dispatcher: Dispatcher, url: str, n: int) -> float:
    """Seconds to submit ``n`` deliveries and see them all delivered."""
    t0 = time.perf_counter()
    batch = []
    for i in range(n):
        info = OutboundInfo("bench", "Notify", "acct", None, url, f"c{i}")
        batch.append(dispatcher.submit(info, _payload))
        if len(batch) % 200 == 0:  # keep the receiver's backlog bounded
            while any(d.state == "pending" for d in batch[-200:]):
                await asyncio.sleep(0.001)
    while any(d.state == "pending" for d in batch):
        await asyncio.sleep(0.001)
    return time.perf_counter() - t0


async def run(prior: int, batch: int) -> list[tuple[str, int, float]]:
    runner, url = await _receiver()
    dispatcher = Dispatcher(Journal(capacity=10_000), RealClock(), max_retries=0)
    rows: list[tuple[str, int, float]] = []
    try:
        await _deliver(dispatcher, url, prior)
        known = len(dispatcher.deliveries())
        rows.append(("no waiter", known, batch / await _deliver(dispatcher, url, batch)))
        never = DeliveryFilter(correlation_id="never")
        waiter = asyncio.ensure_future(dispatcher.wait_for(never, 1, timeout=3600))
        await asyncio.sleep(0)
        known = len(dispatcher.deliveries())
        rows.append(("one open long poll", known, batch / await _deliver(dispatcher, url, batch)))
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
    finally:
        await dispatcher.close(0)
        await runner.cleanup()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.deliveries", description=__doc__)
    parser.add_argument("--prior", type=int, default=15_000, help="deliveries made first (15000)")
    parser.add_argument("--batch", type=int, default=2_000, help="deliveries timed (2000)")
    args = parser.parse_args()
    rows = asyncio.run(run(args.prior, args.batch))
    print(f"callback deliveries after {args.prior:,} earlier ones\n")
    print(
        table(
            [(what, f"{known:,}", f"{rate:,.0f}") for what, known, rate in rows],
            ("while", "deliveries kept", "deliveries/s"),
        )
    )


if __name__ == "__main__":
    main()
