"""The Redis building blocks on a local redis-server (``python -m bench.redis_store``): store
commits, the change feed's idle round trip, a namespace read back in both record layouts, and
throttle and fault-schedule decisions per second against the in-memory limiter.

Needs ``redis-server`` (apt-get install redis-server) and the redis extra. Each figure is a fixed
number of operations or a bounded time; everything stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from emulator.core.clock import RealClock
from emulator.core.faults import parse_schedule
from emulator.core.replicas import RedisLimiter, ScheduleCounters
from emulator.core.storage.base import JournalRow
from emulator.core.storage.redis import RedisStore
from emulator.core.throttle import SlidingWindowLimiter
from emulator.testing.processes import clean_env
from emulator.testing.redis_server import redis_server

from .common import badcase_target, bench_config, check_accepted, image_target, machine, stop, table, tempdir
from .instructions import count
from .throughput import measure, run_wrk

SECONDS = 1.5
CONCURRENCY = 50


async def per_second(step: Callable[[int], Awaitable[object]], concurrency: int = 1) -> float:
    """Operations a second: ``concurrency`` tasks calling ``step`` for :data:`SECONDS`."""
    done = 0
    deadline = time.perf_counter() + SECONDS

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await step(done)
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - start)


def record(i: int) -> dict[str, object]:
    return {"id": f"lib{i}", "terms": ["a", "b", "c"], "updated": 1_700_000_000 + i}


async def store_rows(url: str) -> list[list[object]]:
    store = RedisStore(url, prefix=f"b{uuid.uuid4().hex[:6]}:", replica="bench")
    await store.start()
    rows: list[list[object]] = []

    async def one_put_one_commit(i: int) -> None:
        store.put("bench.record", "ns", "acc", f"k{i % 1000}", record(i))
        await store.commit()

    rows.append(["commit, 1 put each, 1 caller", f"{await per_second(one_put_one_commit):,.0f}/s"])
    rows.append(
        [
            f"commit, 1 put each, {CONCURRENCY} callers (commits group)",
            f"{await per_second(one_put_one_commit, CONCURRENCY):,.0f}/s",
        ]
    )

    async def hundred_puts(i: int) -> None:
        for j in range(100):
            store.put("bench.record", "ns", "acc", f"k{j}", record(i))
        await store.commit()

    rows.append(["puts in commits of 100, 1 caller", f"{100 * await per_second(hundred_puts):,.0f}/s"])
    row = JournalRow(0, "ns", {"action": "TextScan", "status": 200}, b"x" * 300, b"y" * 200)

    async def journal_rows(i: int) -> None:
        store.append_entry(row)
        if i % 100 == 99:
            await store.commit()

    rows.append(["journal rows, committed every 100", f"{await per_second(journal_rows):,.0f}/s"])
    cursor = await store.changes_cursor()
    cursor, _ = await store.changes_since(cursor)
    idle = []
    for _ in range(2000):
        start = time.perf_counter()
        await store.changes_since(cursor)
        idle.append(time.perf_counter() - start)
    rows.append(["changes_since, nothing changed (median)", f"{statistics.median(idle) * 1e6:.0f} µs"])
    await store.close()
    return rows


async def layout_rows(url: str, count: int = 10_000) -> list[list[object]]:
    """Reading one namespace's ``count`` records back: the store's layout (one hash and one sorted
    set per namespace, read in one MULTI) against a key per record (a sorted set of the keys in
    write order, then MGET); then the store's whole read, records decoded."""
    store = RedisStore(url, prefix=f"b{uuid.uuid4().hex[:6]}:", replica="bench")
    await store.start()
    for i in range(count):
        store.put("bench.record", "ns", "acc", f"k{i}", record(i))
    await store.commit()
    client = store.client
    other = f"b{uuid.uuid4().hex[:6]}:"
    async with client.pipeline(transaction=False) as pipe:
        for i in range(count):
            address = json.dumps(["bench.record", "acc", f"k{i}"])
            pipe.set(f"{other}rec:ns:{address}", json.dumps(record(i)))
            pipe.zadd(f"{other}order:ns", {address: i})
        await pipe.execute()

    async def per_key() -> int:
        addresses = cast(list[bytes], await client.zrange(f"{other}order:ns", 0, -1))
        values = await client.mget([f"{other}rec:ns:{a.decode()}" for a in addresses])
        return len(values)

    async def per_namespace() -> int:
        async with client.pipeline(transaction=True) as pipe:
            pipe.hgetall(store.prefix + "r:ns")
            pipe.zrange(store.prefix + "o:ns", 0, -1, withscores=True)
            values, order = await pipe.execute()
        return min(len(values), len(order))

    async def decoded() -> int:
        return len(await store.records("ns"))

    timings: dict[str, list[float]] = {"hash": [], "keys": [], "decoded": []}
    for _ in range(5):
        for name, read in (("hash", per_namespace), ("keys", per_key), ("decoded", decoded)):
            start = time.perf_counter()
            assert await read() == count
            timings[name].append(time.perf_counter() - start)
    start = time.perf_counter()
    assert len(list(store.load("ns"))) == count
    blocking = time.perf_counter() - start
    await store.close()
    what = f"read {count:,} records of a namespace"
    return [
        [
            f"{what}: one hash + zset in one MULTI (the store's layout)",
            f"{min(timings['hash']) * 1e3:.1f} ms",
        ],
        [f"{what}: a key each, zset of keys + MGET", f"{min(timings['keys']) * 1e3:.1f} ms"],
        [f"{what} as Records (RedisStore.records)", f"{min(timings['decoded']) * 1e3:.1f} ms"],
        [f"{what} as Records (Store.load, blocking)", f"{blocking * 1e3:.1f} ms"],
    ]


async def decision_rows(url: str) -> list[list[object]]:
    prefix = f"b{uuid.uuid4().hex[:6]}:"
    store = RedisStore(url, prefix=prefix)
    await store.start()
    limiter = RedisLimiter(store.client, prefix=prefix)
    counters = ScheduleCounters(store.client, prefix=prefix)
    schedule = parse_schedule({"every": 3, "times": 1_000_000_000})
    memory = SlidingWindowLimiter(RealClock())
    rows: list[list[object]] = []

    async def acquire(i: int) -> None:
        await limiter.try_acquire(("p", "ns", f"acc{i % 100}", "A"), 1_000_000)

    async def decide(i: int) -> None:
        await counters.decide("f1", schedule)

    rows.append(["throttle decisions, Redis, 1 caller", f"{await per_second(acquire):,.0f}/s"])
    rows.append(
        [
            f"throttle decisions, Redis, {CONCURRENCY} callers",
            f"{await per_second(acquire, CONCURRENCY):,.0f}/s",
        ]
    )
    start, n = time.perf_counter(), 200_000
    for i in range(n):
        memory.try_acquire(("p", "ns", f"acc{i % 100}", "A"), 1_000_000)
    rows.append(["throttle decisions, in memory", f"{n / (time.perf_counter() - start):,.0f}/s"])
    rows.append(["fault-schedule decisions, Redis, 1 caller", f"{await per_second(decide):,.0f}/s"])
    rows.append(
        [
            f"fault-schedule decisions, Redis, {CONCURRENCY} callers",
            f"{await per_second(decide, CONCURRENCY):,.0f}/s",
        ]
    )
    await store.close()
    return rows


async def run(url: str) -> None:
    rows = await store_rows(url)
    rows += await layout_rows(url)
    rows += await decision_rows(url)
    print(table(rows, ["what (one process, one local redis-server)", "figure"]))


def configs(url: str) -> tuple[Path, Path, Path]:
    """(a work directory, the benchmark config in memory mode, the same with ``storage.url``)."""
    work = tempdir()
    memory = bench_config(work / "memory.json")
    doc = json.loads(memory.read_text())
    doc["storage"] = {"url": url}
    shared = work / "shared.json"
    shared.write_text(json.dumps(doc))
    return work, memory, shared


def replica_rows(url: str, duration: float = 4.0, rounds: int = 3) -> list[list[object]]:
    """Signed calls per second of one emulator process in memory mode and with ``--store`` (state,
    throttle windows, fault counts and the journal in Redis: a change-feed read, a throttle decision
    and a commit per call), rounds alternating, median; wrk as in ``python -m bench throughput``."""
    work, memory, shared = configs(url)
    rows: list[list[object]] = []
    for make in (image_target, badcase_target):
        target = make()
        runs: dict[str, list[float]] = {"memory": [], "redis": []}
        for _ in range(rounds):
            for kind, config in (("memory", memory), ("redis", shared)):
                run = measure("emulator", target, uvloop=False, duration=duration, config=config, work=work)
                runs[kind].append(run.rps)
        mem, red = statistics.median(runs["memory"]), statistics.median(runs["redis"])
        rows.append([f"{target.name}: memory / --store req/s", f"{mem:,.0f} / {red:,.0f} ({red / mem:.2f})"])
    return rows


@contextmanager
def serve_workers(config: Path, count: int, work: Path) -> Iterator[str]:
    """``emulator serve --config CONFIG --workers COUNT`` until the block ends; its URL. Its log goes
    to a file (a pipe nobody reads would fill up and stall it)."""
    with (work / f"workers-{count}.log").open("w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "emulator",
                "serve",
                "--port",
                "0",
                "--config",
                str(config),
                "--workers",
                str(count),
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=clean_env(),
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("emulator serving on "):
                raise RuntimeError(f"emulator serve --workers {count} did not start: {line!r}")
            yield line.split()[-1]
        finally:
            stop(proc)


def instruction_rows(url: str, calls: int = 640, connections: int = 32) -> list[list[object]] | None:
    """Instructions the emulator process executes per signed call, memory mode against
    ``--store`` (callgrind: the same count from run to run on a shared machine, where req/s is not;
    Redis's own work, in its own process, is not counted). None without valgrind."""
    if shutil.which("valgrind") is None:
        return None
    work, memory, shared = configs(url)
    rows: list[list[object]] = []
    for make in (image_target, badcase_target):
        target = make()
        mem = count("emulator", target, calls=calls, work=work, config=memory, connections=connections)
        red = count("emulator", target, calls=calls, work=work, config=shared, connections=connections)
        rows.append([target.name, f"{mem:,.0f}", f"{red:,.0f}", f"{mem / red:.2f}"])
    return rows


def workers_rows(url: str, duration: float = 4.0, rounds: int = 3) -> list[list[object]]:
    """Signed calls per second of ``emulator serve --store URL --workers 2`` against ``--workers 1``
    (SO_REUSEPORT: the kernel spreads wrk's 50 connections over the workers), rounds alternating,
    median. On a machine of 2 cores, wrk and redis-server share them with the workers."""
    work, _, shared = configs(url)
    rows: list[list[object]] = []
    for make in (image_target, badcase_target):
        target = make()
        runs: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(rounds):
            for workers in (1, 2):
                with serve_workers(shared, workers, work) as base:
                    check_accepted(base, target)
                    run_wrk(base, target, min(1.0, duration / 4), work)
                    runs[workers].append(run_wrk(base, target, duration, work).rps)
        one, two = statistics.median(runs[1]), statistics.median(runs[2])
        rows.append([f"{target.name}: --workers 1 / 2 req/s", f"{one:,.0f} / {two:,.0f} ({two / one:.2f})"])
    return rows


def main() -> None:
    print(f"# Redis building blocks\n\n{machine()}\n")
    with redis_server() as url:
        asyncio.run(run(url))
        print()
        print(table(replica_rows(url), ["one emulator process, wrk -c50", "figure"]))
        counted = instruction_rows(url)
        if counted is not None:
            print("\n## Instructions per call (callgrind, 640 calls, 32 at once): memory vs --store\n")
            header = ["API", "memory instr/call", "--store instr/call", "memory/--store (= req/s ratio)"]
            print(table(counted, header))
        print()
        print(table(workers_rows(url), ["emulator serve --store, wrk -c50", "figure"]))


if __name__ == "__main__":
    main()
