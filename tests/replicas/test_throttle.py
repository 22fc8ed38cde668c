"""The throttle shared by replicas (RedisLimiter) against a real redis-server."""

from __future__ import annotations

import asyncio
import collections
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


def full_windows(admitted: list[int], start: int, end: int) -> list[int]:
    """The admitted count of each window (s, s + 1 s] for s on a 10 ms grid from ``start`` while
    the window ends by ``end``."""
    return [sum(1 for at in admitted if s < at <= s + SECOND) for s in range(start, end - SECOND + 1, 10_000)]


def exact(decisions: list[Acquired], limit: int) -> bool:
    """Whether each decision, taken in the order of the instants Redis decided at, is the exact
    sliding window's: admitted if and only if fewer than ``limit`` were admitted in the second
    before it. (Two decisions in one microsecond: the admitted one came first.)"""
    window: collections.deque[int] = collections.deque()
    for d in sorted(decisions, key=lambda d: (d.at, d.retry_after is not None)):
        while window and window[0] <= d.at - SECOND:
            window.popleft()
        if (d.retry_after is None) != (len(window) < limit):
            return False
        if d.retry_after is None:
            window.append(d.at)
    return True


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
    """100 calls/s for 3 s on the real clock (Redis TIME), round-robin over replicas at once."""
    two = [RedisLimiter(clients(), prefix=prefix) for _ in range(2)]
    three = [RedisLimiter(clients(), prefix=prefix) for _ in range(3)]
    key2 = window_key("alibaba", "default", "acc-2", "TextScan")
    key3 = window_key("alibaba", "default", "acc-3", "TextScan")
    results = await asyncio.gather(round_robin(two, key2, 100, 3.0), round_robin(three, key3, 100, 3.0))
    for decisions in results:
        admitted = sorted(d.at for d in decisions if d.retry_after is None)
        assert busiest_window(admitted) <= 20
        # Every admission and every refusal is the exact window's, whatever the timing of the
        # calls on a busy machine (how evenly they arrive decides how full each window gets: the
        # next test holds that floor on the manual clock).
        assert exact(decisions, 20)
        assert 50 <= len(admitted) <= 80  # 20 a second over 3 s, give or take the edges
        assert all(0 < d.retry_after <= 1.0 for d in decisions if d.retry_after is not None)


async def test_every_full_window_admits_18_or_more_at_100_calls_a_second(
    clients: Clients, prefix: str
) -> None:
    """The same offer on the manual clock, calls exactly 10 ms apart: once saturated, every full
    one-second window admits at least 18 (and at most 20)."""
    for replicas in (2, 3):
        clock = ManualClock(start=1_000_000.0)
        limiters = [RedisLimiter(clients(), clock=clock, prefix=prefix) for _ in range(replicas)]
        decisions = []
        for i in range(300):
            decisions.append(await limiters[i % replicas].acquire(f"k{replicas}", 20))
            clock.advance(0.01)
        admitted = [d.at for d in decisions if d.retry_after is None]
        windows = full_windows(admitted, admitted[0], decisions[-1].at)
        assert len(windows) > 150 and 18 <= min(windows) and max(windows) <= 20
        assert exact(decisions, 20)


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
