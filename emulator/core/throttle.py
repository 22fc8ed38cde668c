"""Per-key rate limiting over an exact sliding window.

A sliding log, not a fixed window: a fixed window lets up to twice the limit through around a window
boundary, while a provider promising "20 calls per second" is held to exactly that in *any* one-second
span. The log keeps the instants of the calls it admitted (at most ``limit`` per key), so memory is
bounded by the limit and the check is O(1) amortised.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable

from .clock import Clock


class SlidingWindowLimiter:
    """Admit at most ``limit`` calls per key in any window of ``window`` seconds."""

    def __init__(self, clock: Clock, window: float = 1.0) -> None:
        if window <= 0:
            raise ValueError("window must be positive")
        self._clock = clock
        self._window = window
        self._admitted: dict[Hashable, deque[float]] = {}

    def try_acquire(self, key: Hashable, limit: int) -> bool:
        """Record and admit a call for ``key`` if fewer than ``limit`` were admitted in the window.

        Refused calls are not recorded: a client that keeps retrying while throttled gets through as
        soon as the oldest admitted call leaves the window.
        """
        if limit <= 0:
            return False
        now = self._clock.monotonic()
        log = self._admitted.get(key)
        if log is None:
            log = self._admitted[key] = deque()
        horizon = now - self._window
        while log and log[0] <= horizon:
            log.popleft()
        if len(log) >= limit:
            return False
        log.append(now)
        return True

    def retry_after(self, key: Hashable, limit: int) -> float:
        """Seconds until the next call for ``key`` could be admitted (0 when one could be now)."""
        log = self._admitted.get(key)
        if log is None or len(log) < limit:
            return 0.0
        # The call that leaves the window next frees the slot a new call needs.
        return max(0.0, log[len(log) - limit] + self._window - self._clock.monotonic())

    def reset(self, where: Callable[[Hashable], bool] | None = None) -> None:
        """Forget every window, or those whose key satisfies ``where``."""
        if where is None:
            self._admitted.clear()
        else:
            for key in [k for k in self._admitted if where(k)]:
                del self._admitted[key]


def windows_of(scope: str, owners: set[str]) -> Callable[[Hashable], bool]:
    """A :meth:`SlidingWindowLimiter.reset` selector for the windows of ``owners`` (accounts) under
    ``scope`` (a provider), for keys shaped ``(scope, owner, ...)``."""
    wanted = {(scope, owner) for owner in owners}
    return lambda key: isinstance(key, tuple) and key[:2] in wanted
