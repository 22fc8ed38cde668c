"""Clocks. Everything time-dependent reads one of these so tests advance time instead of sleeping."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    """What the emulator needs to know about time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (windows, schedules)."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the epoch (request dates, signature validity)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait until ``seconds`` have passed on this clock (retry schedules, timeouts)."""
        ...


class RealClock:
    """The system clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


@dataclass(eq=False)
class _Sleeper:
    deadline: float
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class ManualClock:
    """A clock that moves only when told to; both readings advance together.

    Thread-safe, so a test thread can advance it while the server runs in another. :meth:`sleep`
    returns once :meth:`advance` has moved the monotonic clock to its deadline, whichever thread
    advances it.
    """

    def __init__(self, start: float | None = None) -> None:
        self._wall = time.time() if start is None else start
        self._mono = 0.0
        self._lock = threading.Lock()
        self._sleepers: list[_Sleeper] = []

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def time(self) -> float:
        with self._lock:
            return self._wall

    def advance(self, seconds: float) -> None:
        if not seconds >= 0:  # NaN too
            raise ValueError(f"a clock cannot go back (advance by {seconds})")
        with self._lock:
            self._mono += seconds
            self._wall += seconds
            due = [s for s in self._sleepers if s.deadline <= self._mono]
            self._sleepers = [s for s in self._sleepers if s.deadline > self._mono]
        for sleeper in due:
            # The sleeper's loop may run in another thread (serve_in_thread): only that loop may
            # touch its future.
            try:
                sleeper.loop.call_soon_threadsafe(_wake, sleeper.future)
            except RuntimeError:
                pass  # that loop is closed; nobody is waiting any more

    def advance_to(self, wall: float) -> float:
        """Move both readings forward until the wall clock reads ``wall`` (epoch seconds); returns
        the seconds moved. ValueError if ``wall`` is in this clock's past: it never goes back."""
        with self._lock:
            seconds = wall - self._wall
        if seconds < 0:
            raise ValueError("a clock cannot go back")
        self.advance(seconds)
        return seconds

    async def sleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        # Registered before the first suspension, so a caller that has just seen this task reach
        # its sleep (a journal entry, a delivery state) can advance the clock without a race.
        with self._lock:
            if seconds <= 0:
                sleeper = None
            else:
                sleeper = _Sleeper(self._mono + seconds, loop, loop.create_future())
                self._sleepers.append(sleeper)
        if sleeper is None:
            await asyncio.sleep(0)
            return
        try:
            await sleeper.future
        finally:
            with self._lock:
                if sleeper in self._sleepers:
                    self._sleepers.remove(sleeper)

    def pending_sleeps(self) -> list[float]:
        """The deadlines (monotonic) of the sleeps not yet due, soonest first."""
        with self._lock:
            return sorted(s.deadline for s in self._sleepers)

    def set_time(self, wall: float) -> None:
        """Move the wall clock (skew tests); the monotonic clock is unaffected."""
        with self._lock:
            self._wall = wall
