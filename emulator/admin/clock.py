"""The emulator clock from outside the process: read it, and move a manual one.

- ``GET /_emulator/clock``: ``{"now": <epoch seconds>, "iso": ..., "mode": "real" | "manual"}``; a
  manual clock adds ``timers``, the seconds until each pending wait on it (retry delays, attempt
  timeouts, delayed or held deliveries), soonest first.
- ``POST /_emulator/clock`` with ``{"advance": <seconds>}`` or ``{"set": <epoch seconds or ISO 8601>}``
  moves a manual clock forward; both readings move together, and every wait that comes due ends.
  A manual clock never goes back: a ``set`` before its current time is refused (400), as is any
  change of a real clock (409).

One move is one step: a wait that starts after it (the next retry's delay) counts from the new time,
so a retry schedule is walked one ``advance`` per retry.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..core.clock import Clock, ManualClock
from ..errors import AdminError
from ..keys import CLOCK, CLOCK_MOVED
from .common import bad_request, json_object

#: The last instant the clock may be moved to (the end of year 9999, the most ISO 8601 and Python's
#: datetime can show).
LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()


def mode(clock: Clock) -> str:
    return "manual" if isinstance(clock, ManualClock) else "real"


def state(clock: Clock) -> dict[str, Any]:
    now = clock.time()
    doc: dict[str, Any] = {
        "now": now,
        "iso": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "mode": mode(clock),
    }
    if isinstance(clock, ManualClock):
        mono = clock.monotonic()
        doc["timers"] = [round(deadline - mono, 6) for deadline in clock.pending_sleeps()]
    return doc


async def get_clock(request: web.Request) -> web.Response:
    return web.json_response(state(request.config_dict[CLOCK]))


async def move_clock(request: web.Request) -> web.Response:
    body = await json_object(request)
    moves = [k for k in ("advance", "set") if k in body]
    unknown = sorted(set(body) - {"advance", "set"})
    if unknown or len(moves) != 1:
        raise bad_request('the body must be {"advance": <seconds>} or {"set": <epoch seconds or ISO 8601>}')
    clock = request.config_dict[CLOCK]
    if not isinstance(clock, ManualClock):
        raise AdminError(
            409, "clock_not_manual", "the emulator runs on the real clock; serve it with --clock manual "
            '(server.clock "manual") to move time'
        )
    now = clock.time()
    if moves == ["advance"]:
        seconds = _number(body["advance"], "advance")
        if seconds < 0:
            raise bad_request(f"advance must not be negative, not {seconds:g}: the clock never goes back")
        target = now + seconds
    else:
        target = _instant(body["set"])
        if target < now:
            raise bad_request(
                f"set {_iso(target)} is before the clock's time {_iso(now)}: the clock never goes back"
            )
    if target > LATEST:
        raise bad_request(f"the clock cannot go past {_iso(LATEST)}")
    moved = clock.advance_to(target)
    for hook in request.config_dict[CLOCK_MOVED]:
        hook(clock.time())
    return web.json_response({**state(clock), "advanced": moved})


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad_request(f"{name} must be a number of seconds, not {value!r}")
    return float(value)


def _instant(value: Any) -> float:
    """Epoch seconds (a number) or an ISO 8601 string (without a zone: UTC)."""
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise bad_request(f"set must be epoch seconds or ISO 8601, not {value!r}") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.timestamp()
    return _number(value, "set")


def _iso(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):  # beyond what a datetime can show
        return f"{ts:g} (epoch seconds)"


def setup(admin: web.Application) -> None:
    admin.router.add_get("/clock", get_clock)
    admin.router.add_post("/clock", move_clock)
