"""The SQLite store alone (no HTTP): what its queue costs a caller, and what it writes per second.

Runs alone: ``.venv/bin/python -m bench.store [--seconds 2] [--rows 20000] [--records 100000]``.
Every figure is in one process, on one event loop, in a fresh temporary directory; each row prints:

- ``put`` / ``append_entry``: the time one call takes on the caller's thread (encode to JSON and
  queue), the median over rounds of 1,000 calls each started after a commit;
- ``put + commit``: records stored per second by C concurrent committers on one event loop, each
  putting one record and awaiting ``commit()`` in a loop (what the gateway does for a changing
  call), with ``synchronous=NORMAL`` and ``FULL``; group commit is what lets it grow with C;
- ``journal rows``: rows of a typical call's size appended, then one ``commit()``: rows per second;
- ``open + load``: opening a store of ``--records`` records and 10,000 journal rows (``quick_check``
  included) and reading them all back, as a start-up does.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from emulator.core.storage import JournalRow, SQLiteStore

from .common import table

DOC = {
    "id": 1,
    "provider": "alibaba",
    "action": "ImageScanFeedback",
    "method": "POST",
    "path": "/green/image/feedback",
    "status": 200,
    "account": "LTAI5tExampleKey",
    "headers": {"content-type": "application/json", "x-acs-version": "2018-05-09"},
    "duration_ms": 0.42,
}
REQUEST = b'{"url": "http://example.com/1.jpg", "suggestion": "block", "scenes": ["ad"]}' * 4
RESPONSE = b'{"code": 200, "msg": "OK", "requestId": "5F0C1C6A-2B3E-4B0E-9C8A-6B1F0E2D3C4B"}' * 4


def journal_row(i: int) -> JournalRow:
    return JournalRow(i, "default", {**DOC, "id": i}, REQUEST, RESPONSE)


async def call_cost(directory: Path, rounds: int, calls: int) -> list[list[str]]:
    """The median over ``rounds`` of the time per call of ``calls`` calls in a row, each round after
    a commit (so that a round measures queueing, not the writer's catching up)."""
    store = SQLiteStore(directory)
    value = {"name": "library", "terms": ["a", "b", "c"], "updated": 1700000000.0}
    rows = [journal_row(i) for i in range(1, rounds * calls + 1)]
    puts: list[float] = []
    appends: list[float] = []
    for r in range(rounds):
        await store.commit()
        start = time.perf_counter()
        for i in range(calls):
            store.put("bench.record", "default", "acct", f"k{i}", value)
        puts.append((time.perf_counter() - start) / calls)
        await store.commit()
        start = time.perf_counter()
        for row in rows[r * calls : (r + 1) * calls]:
            store.append_entry(row)
        appends.append((time.perf_counter() - start) / calls)
    await store.close()
    return [
        [
            "put (caller's thread)",
            f"median of {rounds} x {calls}",
            f"{statistics.median(puts) * 1e6:.2f} µs/call",
        ],
        [
            "append_entry (caller's thread)",
            f"median of {rounds} x {calls}",
            f"{statistics.median(appends) * 1e6:.2f} µs/call",
        ],
    ]


async def committers(directory: Path, synchronous: str, count: int, seconds: float) -> float:
    store = SQLiteStore(directory, synchronous=synchronous)
    done = 0
    deadline = time.perf_counter() + seconds

    async def one(c: int) -> None:
        nonlocal done
        i = 0
        while time.perf_counter() < deadline:
            store.put("bench.record", "default", f"acct{c}", f"k{i % 100}", {"i": i, "c": c})
            await store.commit()
            i += 1
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(one(c) for c in range(count)))
    elapsed = time.perf_counter() - start
    await store.close()
    return done / elapsed


async def journal_rate(directory: Path, count: int) -> float:
    store = SQLiteStore(directory)
    rows = [journal_row(i) for i in range(1, count + 1)]
    start = time.perf_counter()
    for r in rows:
        store.append_entry(r)
    await store.commit()
    elapsed = time.perf_counter() - start
    await store.close()
    return count / elapsed


async def open_and_load(directory: Path, records: int) -> tuple[float, float, int]:
    store = SQLiteStore(directory)
    for i in range(records):
        store.put(
            "bench.term", "default", "acct", f"lib{i % 10}/{i}", {"term": f"word{i}", "library": i % 10}
        )
    for i in range(1, 10_001):
        store.append_entry(journal_row(i))
    await store.close()
    size = (directory / "emulator.sqlite3").stat().st_size
    start = time.perf_counter()
    store = SQLiteStore(directory)
    opened = time.perf_counter() - start
    loaded = sum(1 for _ in store.load(None)) + len(store.load_entries(10_000))
    total = time.perf_counter() - start
    await store.close()
    assert loaded == records + 10_000, loaded
    return opened, total, size


async def run(seconds: float, rows_count: int, records: int) -> list[list[str]]:
    base = Path(tempfile.mkdtemp(prefix="emulator-bench-store-"))
    out: list[list[str]] = []
    try:
        out += await call_cost(base / "cost", 15, 1_000)
        for synchronous in ("NORMAL", "FULL"):
            for count in (1, 10, 50):
                rate = await committers(base / f"c-{synchronous}-{count}", synchronous, count, seconds)
                out.append(
                    [f"put + commit, synchronous={synchronous}", f"{count} committers", f"{rate:,.0f}/s"]
                )
        rate = await journal_rate(base / "journal", rows_count)
        out.append(["journal rows (append, one commit)", f"{rows_count:,} rows", f"{rate:,.0f}/s"])
        opened, total, size = await open_and_load(base / "load", records)
        what = f"{records:,} records + 10,000 rows, {size / 1e6:.0f} MB"
        out.append(["open", what, f"{opened * 1000:.0f} ms"])
        out.append(["open + load everything", what, f"{total * 1000:.0f} ms"])
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per put+commit row")
    parser.add_argument("--rows", type=int, default=20_000, help="journal rows appended")
    parser.add_argument("--records", type=int, default=100_000, help="records read back at open")
    args = parser.parse_args(argv)
    rows = asyncio.run(run(args.seconds, args.rows, args.records))
    print(table(rows, ["what", "with", "figure"]))


if __name__ == "__main__":
    main()
