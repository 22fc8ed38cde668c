"""The clocks' sleep: real for RealClock; for ManualClock, done when advance() reaches the deadline,
from any thread."""

from __future__ import annotations

import asyncio
import threading

from emulator import ManualClock, RealClock


async def test_manual_sleep_ends_when_the_clock_reaches_its_deadline() -> None:
    clock = ManualClock()
    sleeper = asyncio.create_task(clock.sleep(5))
    await asyncio.sleep(0)  # let the task register its deadline (not a wait for time)
    assert clock.pending_sleeps() == [5]
    clock.advance(4.9)
    await asyncio.sleep(0)
    assert not sleeper.done()
    clock.advance(0.1)
    await asyncio.wait_for(sleeper, 5)
    assert clock.pending_sleeps() == []


async def test_manual_sleep_woken_from_another_thread() -> None:
    clock = ManualClock()
    sleeper = asyncio.create_task(clock.sleep(60))
    await asyncio.sleep(0)
    thread = threading.Thread(target=clock.advance, args=(60,))
    thread.start()
    await asyncio.wait_for(sleeper, 5)
    thread.join()


async def test_cancelled_manual_sleep_is_forgotten_and_zero_returns_at_once() -> None:
    clock = ManualClock()
    sleeper = asyncio.create_task(clock.sleep(1))
    await asyncio.sleep(0)
    sleeper.cancel()
    await asyncio.gather(sleeper, return_exceptions=True)
    assert clock.pending_sleeps() == []
    await asyncio.wait_for(clock.sleep(0), 1)


async def test_real_sleep() -> None:
    await asyncio.wait_for(RealClock().sleep(0), 1)
