"""The sliding-window limiter, driven by a manual clock."""

from __future__ import annotations

from emulator.core.clock import ManualClock
from emulator.core.throttle import SlidingWindowLimiter


def test_no_window_of_one_second_ever_admits_more_than_the_limit() -> None:
    clock = ManualClock()
    limiter = SlidingWindowLimiter(clock)
    admitted: list[float] = []
    # 100 calls per second for 5 seconds.
    for _ in range(500):
        if limiter.try_acquire("a", 20):
            admitted.append(clock.monotonic())
        clock.advance(0.01)
    for start in admitted:
        assert sum(1 for t in admitted if start <= t < start + 1.0) <= 20
    # Saturated, each full second admits exactly the limit.
    for second in range(1, 5):
        assert sum(1 for t in admitted if second <= t < second + 1) == 20


def test_fixed_window_boundary_burst_is_refused() -> None:
    clock = ManualClock()
    limiter = SlidingWindowLimiter(clock)
    clock.advance(0.9)
    assert all(limiter.try_acquire("a", 20) for _ in range(20))
    clock.advance(0.2)  # past a fixed-window boundary, but not a sliding one
    assert not limiter.try_acquire("a", 20)
    assert abs(limiter.retry_after("a", 20) - 0.8) < 1e-9
    clock.advance(0.8)
    assert limiter.try_acquire("a", 20)


def test_keys_are_independent_and_reset_clears() -> None:
    clock = ManualClock()
    limiter = SlidingWindowLimiter(clock)
    assert limiter.try_acquire("a", 1)
    assert not limiter.try_acquire("a", 1)
    assert limiter.try_acquire("b", 1)
    assert limiter.retry_after("c", 1) == 0
    limiter.reset()
    assert limiter.try_acquire("a", 1)


def test_zero_limit_admits_nothing() -> None:
    assert not SlidingWindowLimiter(ManualClock()).try_acquire("a", 0)
