"""Per-key rate limiting over an exact sliding window.

A sliding log, not a fixed window: a fixed window lets up to twice the limit through around a window
boundary, while a provider promising "20 calls per second" is held to exactly that in *any* one-second
span. The log keeps the instants of the calls it admitted (at most ``limit`` per key), so memory is
bounded by the limit and the check is O(1) amortised. The number of keys is bounded too
(:data:`MAX_KEYS`): past it, windows with no call left in them are forgotten first.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Hashable
from typing import Protocol

from .clock import Clock

#: Keys (windows) the limiter keeps. Past it, the empty ones go; should more than half of it still
#: hold calls of the last window (thousands of namespaces busy in the same second), the oldest go
#: too, and those keys start afresh.
MAX_KEYS = 10_000


class SlidingWindowLimiter:
    """Admit at most ``limit`` calls per key in any window of ``window`` seconds."""

    def __init__(self, clock: Clock, window: float = 1.0, max_keys: int = MAX_KEYS) -> None:
        if window <= 0:
            raise ValueError("window must be positive")
        self._clock = clock
        self._window = window
        self._max_keys = max(2, max_keys)
        self._admitted: dict[Hashable, deque[float]] = {}

    def __len__(self) -> int:
        return len(self._admitted)

    def try_acquire(self, key: Hashable, limit: int) -> bool:
        """Record and admit a call for ``key`` if fewer than ``limit`` were admitted in the window.

        Refused calls are not recorded: a client that keeps retrying while throttled gets through as
        soon as the oldest admitted call leaves the window.
        """
        if limit <= 0:
            return False
        now = self._clock.monotonic()
        log = self._admitted.get(key)
        horizon = now - self._window
        if log is None:
            if len(self._admitted) >= self._max_keys:
                self._forget(horizon)
            log = self._admitted[key] = deque()
        while log and log[0] <= horizon:
            log.popleft()
        if len(log) >= limit:
            return False
        log.append(now)
        return True

    def _forget(self, horizon: float) -> None:
        """Drop the windows no admitted call is left in; then, if over half the cap remain, the oldest
        (run once per ``max_keys / 2`` new keys at most, so O(1) amortised)."""
        admitted = self._admitted
        for key in [k for k, log in admitted.items() if not log or log[-1] <= horizon]:
            del admitted[key]
        excess = len(admitted) - self._max_keys // 2
        for key in list(itertools.islice(admitted, max(0, excess))):
            del admitted[key]

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


class SharedLimiter(Protocol):
    """A limiter whose windows several processes share (core/replicas.py ``RedisLimiter``): the
    same decisions as :class:`SlidingWindowLimiter`, one awaited round trip each."""

    async def try_acquire(self, key: Hashable, limit: int) -> float | None:
        """None when the call is admitted (and counted), else the seconds until one could be."""
        ...

    async def reset(self, namespace: str | None = None) -> int: ...


def window_key(scope: str, namespace: str, owner: str | None, action: str) -> tuple[Hashable, ...]:
    """The key of one window: a provider's (``scope``) action for an account (``owner``) within a
    namespace, so two namespaces never share a window."""
    return (scope, namespace, owner, action)


def windows_in(namespace: str | None) -> Callable[[Hashable], bool] | None:
    """A :meth:`SlidingWindowLimiter.reset` selector for the windows of one namespace (keys made by
    :func:`window_key`); None (every window) for None."""
    if namespace is None:
        return None
    return lambda key: isinstance(key, tuple) and len(key) > 1 and key[1] == namespace
