"""The middleware that records every exchange at the edge of the app."""

from __future__ import annotations

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
            _store(journal, request, exchange, started, time.perf_counter() - t0, exc)
            raise
        except Exception as exc:
            # Not swallowed: recorded as the 500 aiohttp will send, then re-raised so it surfaces.
            failed = web.Response(status=500, text=f"{type(exc).__name__}: {exc}")
            _store(journal, request, exchange, started, time.perf_counter() - t0, failed)
            raise
        _store(journal, request, exchange, started, time.perf_counter() - t0, response)
        return response

    return record


def _store(
    journal: Journal,
    request: web.Request,
    ex: Exchange,
    started: float,
    duration: float,
    response: web.StreamResponse,
) -> None:
    body = response.body if isinstance(response, web.Response) else None
    journal.record(
        Entry(
            id=0,
            time=started,
            direction="in",
            method=request.method,
            url=str(request.url),
            path=request.path,
            query=tuple(request.query.items()),
            request_headers=tuple(request.headers.items()),
            request_body=ex.request_body,
            provider=ex.provider,
            action=ex.action,
            account=ex.account,
            namespace=ex.namespace,
            parsed=ex.parsed,
            status=response.status,
            response_headers=tuple(response.headers.items()),
            response_body=body if isinstance(body, bytes) else b"",
            duration=duration,
            fault=ex.fault,
            correlation_id=ex.correlation_id,
        )
    )
