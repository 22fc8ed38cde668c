"""The throttle shared by replicas (RedisLimiter) against a real redis-server."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from emulator.core.clock import ManualClock
from emulator.core.replicas import Acquired, RedisLimiter
from emulator.core.throttle import SlidingWindowLimiter, window_key

Clients = Callable[[], aioredis.Redis]
SECOND = 1_000_000  # µs


def busiest_window(admitted: list[int]) -> int:
    """The most calls admitted in any window (t - 1 s, t]."""
    most, start = 0, 0
    for end, at in enumerate(admitted):
        while admitted[start] <= at - SECOND:
            start += 1
        most = max(most, end - start + 1)
    return most


def steady_windows(admitted: list[int], decided: list[int], gap: int = 50_000) -> list[int]:
    """The admitted count of each full window (s, s + 1 s], s on a 10 ms grid from the first
    admitted call (from then on the window is saturated), in which calls kept arriving: no two
    consecutive decisions more than ``gap`` µs apart. (A window the load generator stalled in, on a
    busy machine, has fewer calls offered than slots freed: its count says nothing of the limiter.)"""
    counts = []
    for s in range(admitted[0], decided[-1] - SECOND + 1, 10_000):
        inside = [s, *(t for t in decided if s < t <= s + SECOND), s + SECOND]
        if max(b - a for a, b in itertools.pairwise(inside)) <= gap:
            counts.append(sum(1 for at in admitted if s < at <= s + SECOND))
    return counts


async def round_robin(limiters: list[RedisLimiter], key: object, rate: int, seconds: float) -> list[Acquired]:
    """``rate`` calls a second for one key, each to the next replica in turn, paced on the loop's
    clock (late calls catch up), each call a task of its own so a slow answer does not hold the next."""
    for limiter in limiters:  # connected and the script loaded first, so the first calls are not late
        await limiter.acquire(("warm-up", str(key)), 1)
    loop = asyncio.get_running_loop()
    start = loop.time()
    calls = []
    for i in range(round(rate * seconds)):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        calls.append(asyncio.ensure_future(limiters[i % len(limiters)].acquire(key, 20)))
    return await asyncio.gather(*calls)


async def test_two_and_three_replicas_hold_one_window_of_20_per_second(clients: Clients, prefix: str) -> None:
    two = [RedisLimiter(clients(), prefix=prefix) for _ in range(2)]
    three = [RedisLimiter(clients(), prefix=prefix) for _ in range(3)]
    key2 = window_key("alibaba", "default", "acc-2", "TextScan")
    key3 = window_key("alibaba", "default", "acc-3", "TextScan")
    results = await asyncio.gather(round_robin(two, key2, 100, 3.0), round_robin(three, key3, 100, 3.0))
    for decisions in results:
        admitted = sorted(d.at for d in decisions if d.retry_after is None)
        decided = sorted(d.at for d in decisions)
        assert busiest_window(admitted) <= 20
        # Refused only when full: each refusal had 20 admitted calls in the second before it.
        for refused in (d for d in decisions if d.retry_after is not None):
            assert sum(1 for at in admitted if refused.at - SECOND < at <= refused.at) == 20
            assert 0 < refused.retry_after <= 1.0
        steady = steady_windows(admitted, decided)
        assert steady and min(steady) >= 18, (len(steady), min(steady, default=None))
        assert 50 <= len(admitted) <= 80  # 20 a second over 3 s, give or take the edges


async def test_the_same_decisions_as_the_in_memory_limiter(clients: Clients, prefix: str) -> None:
    """With the manual clock, every decision and retry-after is the one SlidingWindowLimiter makes."""
    clock = ManualClock(start=1_000_000.0)
    shared = [RedisLimiter(clients(), clock=clock, prefix=prefix) for _ in range(3)]
    local = SlidingWindowLimiter(clock)
    rng = random.Random(7)
    keys = [window_key("p", "ns", f"acc{i}", "A") for i in range(2)]
    seen_refused = 0
    for i in range(400):
        clock.advance(rng.choice((0.0, 0.0, 0.015625, 0.125, 0.25)))
        key, limit = rng.choice(keys), rng.choice((3, 5))
        expected = None if local.try_acquire(key, limit) else local.retry_after(key, limit)
        got = await shared[i % 3].try_acquire(key, limit)
        assert got == (None if expected is None else pytest.approx(expected, abs=1e-6)), i
        seen_refused += got is not None
    assert 50 < seen_refused < 350  # both outcomes exercised


async def test_a_call_leaves_the_window_a_window_after_admission(clients: Clients, prefix: str) -> None:
    clock = ManualClock(start=1_000.0)
    limiter = RedisLimiter(clients(), clock=clock, window=2.0, prefix=prefix)
    assert await limiter.try_acquire("k", 2) is None
    clock.advance(0.5)
    assert await limiter.try_acquire("k", 2) is None
    assert await limiter.try_acquire("k", 2) == pytest.approx(1.5)
    clock.advance(1.5)  # the first call is exactly at the horizon: out
    assert await limiter.try_acquire("k", 2) is None
    assert await limiter.try_acquire("k", 2) == pytest.approx(0.5)
    assert await limiter.try_acquire("k", 0) == 0.0  # a limit of 0 admits nothing (not recorded)


async def test_windows_expire_and_reset_by_namespace(clients: Clients, prefix: str) -> None:
    client = clients()
    limiter = RedisLimiter(client, prefix=prefix)
    in_a = window_key("p", "ns-a*", "acc", "A")  # a glob character in the namespace
    in_b = window_key("p", "ns-b", "acc", "A")
    for key in (in_a, in_b):
        assert await limiter.try_acquire(key, 1) is None
        ttl = await client.pttl(limiter.key_name(key))
        assert 0 < ttl <= 1001
    assert await limiter.try_acquire(in_a, 1) is not None
    assert await limiter.reset("ns-a*") == 1
    assert await limiter.try_acquire(in_a, 1) is None
    assert await limiter.try_acquire(in_b, 1) is not None
    assert await limiter.reset() == 2
    assert await limiter.try_acquire(in_b, 1) is None
