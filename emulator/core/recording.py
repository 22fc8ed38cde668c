"""The middleware that records every exchange at the edge of the app."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from .clock import Clock
from .exchange import EXCHANGE, Exchange
from .journal import Entry, Journal

NAMESPACE_HEADER = "X-Emulator-Namespace"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def journal_middleware(journal: Journal, clock: Clock, skip_prefix: str) -> Middleware:
    """Record each request not under ``skip_prefix`` (the admin API) into ``journal``."""

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(skip_prefix):
            return await handler(request)
        exchange = request[EXCHANGE] = Exchange(namespace=request.headers.get(NAMESPACE_HEADER))
        started = clock.time()
        t0 = time.perf_counter()
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            record_exchange(journal, request, exchange, started, time.perf_counter() - t0, exc)
            raise
        except asyncio.CancelledError:
            # A fault cut the connection, or the client went away mid-request: no response.
            record_exchange(journal, request, exchange, started, time.perf_counter() - t0, None)
            raise
        except Exception as exc:
            # Not swallowed: recorded as the 500 aiohttp will send, then re-raised so it surfaces.
            failed = web.Response(status=500, text=f"{type(exc).__name__}: {exc}")
            record_exchange(journal, request, exchange, started, time.perf_counter() - t0, failed)
            raise
        record_exchange(journal, request, exchange, started, time.perf_counter() - t0, response)
        return response

    return record


def record_exchange(
    journal: Journal,
    request: web.Request,
    ex: Exchange,
    started: float,
    duration: float,
    response: web.StreamResponse | None,
) -> None:
    """One journal entry for ``request`` and what was answered (None: no response was sent)."""
    if journal.capacity == 0:
        # Recording is off: count the exchange without building an entry nobody will keep.
        journal.evicted += 1
        return
    sent = ex.extra.get("sent_body")
    body = response.body if isinstance(response, web.Response) else sent
    cut = ex.extra.get("cut")
    error = None
    if response is None:
        error = f"connection closed without a response ({cut})" if cut else "cancelled: the client went away"
    elif cut:
        error = f"connection closed after a partial response ({cut})"
    journal.record(
        Entry(
            id=0,
            time=started,
            direction="in",
            method=request.method,
            url=_url(request),
            path=request.path,
            query=tuple(request.query.items()),
            request_headers=tuple(request.headers.items()),
            request_body=ex.request_body,
            provider=ex.provider,
            action=ex.action,
            account=ex.account,
            namespace=ex.namespace,
            parsed=ex.parsed,
            status=response.status if response is not None else None,
            response_headers=tuple(response.headers.items()) if response is not None else (),
            response_body=body if isinstance(body, bytes) else b"",
            duration=duration,
            fault=ex.fault,
            correlation_id=ex.correlation_id,
            error=error,
        )
    )


def _url(request: web.Request) -> str:
    # What was sent, not yarl's rebuilt URL: cheaper on every call, and yarl cannot build one from
    # a Host such as "::" or "a:b" at all (that turned the provider's answer into a 500).
    return f"{request.scheme}://{request.host}{request.raw_path}"
