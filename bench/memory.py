"""Journal memory: bytes per recorded exchange for each provider's typical call (tracemalloc), and
the memory a full journal holds after 100,000 calls through a capped one. In-process: the server
runs in this process's loop, driven by the raw client."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from pathlib import Path

from emulator import load
from emulator.keys import JOURNAL
from emulator.providers.alibaba.routes import ALIBABA_BACKEND as ALIBABA
from emulator.providers.tencent.routes import TENCENT_BACKEND as TENCENT
from emulator.server import start

from .common import Connection, Target, badcase_target, bench_config, image_target, table, tempdir


async def send(port: int, targets: list[Target], total: int, connections: int = 16) -> int:
    """Send ``total`` calls, cycling through ``targets``; return how many were not 2xx."""
    raws = [t.raw("127.0.0.1") for t in targets]
    conns = [await Connection.open(port) for _ in range(connections)]
    next_i = 0
    bad = 0

    async def worker(conn: Connection) -> None:
        nonlocal next_i, bad
        while next_i < total:
            i = next_i
            next_i += 1
            bad += not 200 <= await conn.call(raws[i % len(raws)]) < 300

    await asyncio.gather(*(worker(c) for c in conns))
    for c in conns:
        c.close()
    return bad


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def per_exchange(config: Path, target: Target, n: int) -> float:
    runner, server = await start(load(config, env={}), host="127.0.0.1", port=0)
    try:
        journal = server.app[JOURNAL]
        await send(server.port, [target], 200)  # warm caches (schemas, lookups) outside the trace
        journal.clear()
        tracemalloc.start()
        bad = await send(server.port, [target], n)
        assert bad == 0, f"{bad} calls failed"
        full = tracemalloc.get_traced_memory()[0]
        journal.clear()
        empty = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        return (full - empty) / n
    finally:
        await runner.cleanup()


async def capped(config: Path, total: int) -> dict[str, float]:
    settings = load(config, env={})
    capacity = settings.journal.capacity
    runner, server = await start(settings, host="127.0.0.1", port=0)
    try:
        app = server.app
        journal = app[JOURNAL]
        targets = [image_target(), badcase_target()]
        rss0 = rss()
        t0 = time.perf_counter()
        bad = await send(server.port, targets, total - capacity)
        # Only the last `capacity` calls stay in the journal: trace exactly those.
        tracemalloc.start()
        bad += await send(server.port, targets, capacity)
        elapsed = time.perf_counter() - t0
        assert bad == 0, f"{bad} calls failed"
        held = tracemalloc.get_traced_memory()[0]
        recorded = len(journal) + journal.evicted
        kept = len(journal)
        journal.clear()
        after_journal = tracemalloc.get_traced_memory()[0]
        app[ALIBABA].reset()
        app[TENCENT].reset()
        after_state = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        return {
            "sent": total,
            "recorded": recorded,
            "kept": kept,
            "journal_bytes": held - after_journal,
            "state_bytes_last_cap": after_journal - after_state,
            "rss_growth": rss() - rss0,
            "elapsed": elapsed,
        }
    finally:
        await runner.cleanup()


def main(total: int = 100_000, n: int = 2_000) -> dict[str, float]:
    work = tempdir()
    config = bench_config(work / "config.json")
    print(
        f"\n## Journal memory (tracemalloc; {n:,} calls each, then {total:,} calls through the default cap)\n"
    )
    per_image = asyncio.run(per_exchange(config, image_target(), n))
    per_badcase = asyncio.run(per_exchange(config, badcase_target(), n))
    cap = asyncio.run(capped(config, total))
    rows = [
        ["bytes per recorded exchange, ImageScanFeedback", f"{per_image:,.0f}"],
        ["bytes per recorded exchange, ReportBadcase", f"{per_badcase:,.0f}"],
        [
            "calls sent / journaled + evicted / kept (cap)",
            f"{cap['sent']:,} / {cap['recorded']:,} / {cap['kept']:,}",
        ],
        ["journal memory with the cap full (half each provider)", f"{cap['journal_bytes'] / 2**20:.1f} MiB"],
        [
            "provider state added by the last cap's worth of calls",
            f"{cap['state_bytes_last_cap'] / 2**20:.1f} MiB",
        ],
        ["process RSS growth over the whole run", f"{cap['rss_growth'] / 2**20:.1f} MiB"],
        ["wall time for the run (in-process, last 10% traced)", f"{cap['elapsed']:.1f} s"],
    ]
    print(table(rows, ["measure", "value"]))
    return {"per_image": per_image, "per_badcase": per_badcase, **cap}
