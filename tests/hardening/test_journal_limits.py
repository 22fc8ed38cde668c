"""The journal's memory is bounded in bytes, whatever a hostile client sends, and its exports are
streamed: a flood of large unsigned bodies over a real loopback server, then the HAR and NDJSON
exports, with the memory they take measured (``-s`` prints the figures)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from emulator import RunningServer, serve
from emulator.core.journal import Journal
from emulator.keys import JOURNAL

from .conftest import IMAGE, alibaba_shape, hardening_settings

FLOOD = 300
#: Enough for exports many times larger than their chunks, in the tests that share this process.
SMALLER = 100
#: About 1 MiB, under server.max_body_bytes (1 MiB), so every body is read in full before the
#: missing signature is refused: the worst case for the journal.
BODY_BYTES = 1_000_000
KEPT = 64 * 1024
#: What one refused entry may hold besides its kept body: the request head, URL and answer.
HEAD_ALLOWANCE = 4 * 1024


def body(i: int) -> bytes:
    head = b'{"url": "http://example.com/%d.jpg", "note": "' % i
    return head + b"a" * (BODY_BYTES - len(head) - 2) + b'"}'


async def flood(url: str, n: int) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8)) as http:

        async def one(i: int) -> None:
            async with http.post(url + IMAGE, data=body(i)) as response:
                alibaba_shape(response.status, await response.read())
                assert response.status == 400  # unsigned

        await asyncio.gather(*(one(i) for i in range(n)))


def memory_of(pid: int) -> dict[str, int]:
    """A process's resident set now (VmRSS) and at its highest (VmHWM), in bytes."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {key: int(fields[key].split()[0]) * 1024 for key in ("VmRSS", "VmHWM")}


@pytest.fixture
def served() -> Iterator[tuple[int, str]]:
    """``emulator serve`` in its own process with the built-in config: its memory is the server's
    alone, not that of the test process and whatever ran in it before."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMULATOR_")}
    cmd = [sys.executable, "-m", "emulator", "serve", "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the server says it is ready
        assert line.startswith("emulator serving on http://"), line
        yield proc.pid, line.split()[-1]
    finally:
        proc.kill()
        proc.communicate(timeout=10)


async def test_a_flood_of_large_unsigned_bodies_keeps_the_server_small(served: tuple[int, str]) -> None:
    pid, url = served
    await flood(url, 3)  # warm-up: the first calls' one-time allocations are not the flood's
    before = memory_of(pid)
    await flood(url, FLOOD)
    after = memory_of(pid)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/_emulator/requests?limit=0") as response:
            stats = (await response.json())["journal"]
        written = 0
        async with http.get(f"{url}/_emulator/requests.har") as response:
            async for chunk in response.content.iter_chunked(64 * 1024):
                written += len(chunk)
    exported = memory_of(pid)
    grown, export_peak = after["VmRSS"] - before["VmRSS"], exported["VmHWM"] - after["VmHWM"]
    print(
        f"\n{FLOOD} unsigned bodies of {BODY_BYTES} bytes: RSS +{grown / 2**20:.1f} MiB, journal "
        f"{stats['bytes'] / 2**20:.1f} MiB; HAR export of {written / 2**20:.1f} MiB: peak RSS "
        f"{after['VmHWM'] / 2**20:.0f} -> {exported['VmHWM'] / 2**20:.0f} MiB"
    )
    assert stats["entries"] == FLOOD + 3 and stats["truncatedBodies"] == FLOOD + 3
    assert stats["bytes"] <= (FLOOD + 3) * (KEPT + HEAD_ALLOWANCE)
    # Kept whole, the bodies alone were 300 MiB (+294 MiB of RSS measured so); built whole, the HAR
    # of them raised the peak by 1.1 GiB.
    assert grown < 96 * 2**20, grown
    assert written > FLOOD * KEPT and export_peak < written / 2, (export_peak, written)


@pytest.fixture
async def flooded() -> AsyncIterator[RunningServer]:
    """A server in this process, with default journal limits, after SMALLER unsigned ~1 MiB bodies."""
    async with serve(hardening_settings()) as server:
        await flood(server.url, SMALLER)
        yield server


async def test_refused_bodies_are_kept_bounded_with_their_real_length(flooded: RunningServer) -> None:
    journal: Journal = flooded.app[JOURNAL]
    stats = journal.stats()
    assert stats["entries"] == SMALLER and stats["evicted"] == 0
    assert stats["truncatedBodies"] == SMALLER
    assert stats["bytes"] <= SMALLER * (KEPT + HEAD_ALLOWANCE)
    for entry in journal.stream():
        assert len(entry.request_body) == KEPT and entry.request_size == BODY_BYTES


@pytest.mark.parametrize("route", ["requests.har", "requests.ndjson"])
async def test_exports_stream_with_memory_of_one_entry(flooded: RunningServer, route: str) -> None:
    written = 0
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{flooded.url}/_emulator/{route}") as response:
                assert response.status == 200
                async for chunk in response.content.iter_chunked(64 * 1024):
                    written += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"\n{route}: {written / 2**20:.1f} MiB written, peak allocation {peak / 2**20:.2f} MiB")
    assert written > SMALLER * KEPT  # every kept body is in it
    # Built whole, the document (and its bytes) alone took more than the export's size.
    assert peak < written / 8, (peak, written)


async def test_the_byte_budget_evicts_and_counts() -> None:
    budget = 2 * 2**20
    async with serve(hardening_settings(**{"journal.max_bytes": budget})) as server:
        await flood(server.url, 60)
        stats = server.app[JOURNAL].stats()
    assert stats["bytes"] <= budget
    assert stats["entries"] + stats["evicted"] == 60
    assert stats["evictedForBytes"] == stats["evicted"] > 0
