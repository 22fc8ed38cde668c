"""What every admin route reads the same way: the namespace a call is scoped to, wait parameters."""

from __future__ import annotations

from aiohttp import web

from ..core.recording import NAMESPACE_HEADER

#: The longest a long-poll may be asked to wait, in seconds.
WAIT_TIMEOUT_MAX = 60.0


def namespace_of(request: web.Request) -> str | None:
    """``?namespace=`` or the X-Emulator-Namespace header; None: every namespace."""
    return request.query.get("namespace") or request.headers.get(NAMESPACE_HEADER)


def wait_params(request: web.Request) -> tuple[int, float]:
    """(count, timeout) of a long-poll; ValueError with the message to answer when they are wrong."""
    try:
        count = int(request.query.get("count", "1"))
        timeout = float(request.query.get("timeout", "5"))
    except ValueError:
        raise ValueError("count must be an integer and timeout a number of seconds") from None
    if count < 1 or not 0 <= timeout <= WAIT_TIMEOUT_MAX:
        raise ValueError(f"count must be >= 1 and timeout within 0..{WAIT_TIMEOUT_MAX:g} seconds")
    return count, timeout
