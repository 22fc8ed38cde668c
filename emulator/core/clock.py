"""Clocks. Everything time-dependent reads one of these so tests advance time instead of sleeping."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What the emulator needs to know about time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (windows, schedules)."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the epoch (request dates, signature validity)."""
        ...


class RealClock:
    """The system clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to; both readings advance together.

    Thread-safe, so a test thread can advance it while the server runs in another.
    """

    def __init__(self, start: float | None = None) -> None:
        self._wall = time.time() if start is None else start
        self._mono = 0.0
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def time(self) -> float:
        with self._lock:
            return self._wall

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go back")
        with self._lock:
            self._mono += seconds
            self._wall += seconds

    def set_time(self, wall: float) -> None:
        """Move the wall clock (skew tests); the monotonic clock is unaffected."""
        with self._lock:
            self._wall = wall
