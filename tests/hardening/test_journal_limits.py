"""The journal's memory is bounded in bytes, whatever a hostile client sends, and its exports are
streamed: a flood of large unsigned bodies over a real loopback server, then the HAR and NDJSON
exports, with the memory they take measured (``-s`` prints the figures)."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from emulator import RunningServer, serve
from emulator.core.journal import Journal
from emulator.keys import JOURNAL

from .conftest import IMAGE, alibaba_shape, hardening_settings

FLOOD = 300
#: About 1 MiB, under server.max_body_bytes (1 MiB), so every body is read in full before the
#: missing signature is refused: the worst case for the journal.
BODY_BYTES = 1_000_000
KEPT = 64 * 1024
#: What one refused entry may hold besides its kept body: the request head, URL and answer.
HEAD_ALLOWANCE = 4 * 1024


def body(i: int) -> bytes:
    head = b'{"url": "http://example.com/%d.jpg", "note": "' % i
    return head + b"a" * (BODY_BYTES - len(head) - 2) + b'"}'


async def flood(server: RunningServer, n: int) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8)) as http:

        async def one(i: int) -> None:
            async with http.post(server.url + IMAGE, data=body(i)) as response:
                alibaba_shape(response.status, await response.read())
                assert response.status == 400  # unsigned

        await asyncio.gather(*(one(i) for i in range(n)))


def rss() -> int:
    """This process's resident set in bytes (the server runs in it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.fixture
async def flooded() -> AsyncIterator[RunningServer]:
    """A server with default journal limits after FLOOD unsigned ~1 MiB bodies."""
    async with serve(hardening_settings()) as server:
        await flood(server, 3)  # warm-up: the first calls' one-time allocations are not the flood's
        before = rss()
        await flood(server, FLOOD)
        grown = rss() - before
        print(
            f"\n{FLOOD} unsigned bodies of {BODY_BYTES} bytes: RSS +{grown / 2**20:.1f} MiB, "
            f"journal {server.app[JOURNAL].bytes / 2**20:.1f} MiB"
        )
        # Kept whole, the bodies alone were 300 MiB (the row's "before": +302 MiB).
        assert grown < 128 * 2**20, grown
        yield server


async def test_refused_bodies_are_kept_bounded_with_their_real_length(flooded: RunningServer) -> None:
    journal: Journal = flooded.app[JOURNAL]
    stats = journal.stats()
    assert stats["entries"] == FLOOD + 3 and stats["evicted"] == 0
    assert stats["truncatedBodies"] == FLOOD + 3
    assert stats["bytes"] <= (FLOOD + 3) * (KEPT + HEAD_ALLOWANCE)
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
    assert written > FLOOD * KEPT  # every kept body is in it
    # Built whole, the document (and its bytes) alone took more than the export's size.
    assert peak < written / 8, (peak, written)


async def test_the_byte_budget_evicts_and_counts() -> None:
    budget = 2 * 2**20
    async with serve(hardening_settings(**{"journal.max_bytes": budget})) as server:
        await flood(server, 60)
        stats = server.app[JOURNAL].stats()
    assert stats["bytes"] <= budget
    assert stats["entries"] + stats["evicted"] == 60
    assert stats["evictedForBytes"] == stats["evicted"] > 0
