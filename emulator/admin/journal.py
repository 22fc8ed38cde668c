"""Admin routes over the journal, and reset."""

from __future__ import annotations

from dataclasses import replace

from aiohttp import web

from .._version import __version__
from ..core.export import to_har, to_ndjson
from ..core.journal import Filter, FilterError, WaitTimeout
from ..keys import JOURNAL, LIMITER, RESET_HOOKS
from .common import namespace_of, wait_params


def _filter(request: web.Request) -> Filter:
    flt = Filter.from_params(request.query)
    ns = namespace_of(request)
    return replace(flt, namespace=ns) if ns is not None else flt


def _bad(exc: Exception) -> web.Response:
    return web.json_response({"error": "bad_request", "message": str(exc)}, status=400)


async def list_requests(request: web.Request) -> web.Response:
    try:
        flt = _filter(request)
    except FilterError as exc:
        return _bad(exc)
    journal = request.app[JOURNAL]
    entries = journal.select(flt)
    return web.json_response(
        {"entries": [e.to_dict() for e in entries], "count": len(entries), "evicted": journal.evicted}
    )


async def count_requests(request: web.Request) -> web.Response:
    try:
        flt = _filter(request)
    except FilterError as exc:
        return _bad(exc)
    journal = request.app[JOURNAL]
    return web.json_response({"count": journal.count(flt), "evicted": journal.evicted})


async def delete_requests(request: web.Request) -> web.Response:
    return web.json_response({"deleted": request.app[JOURNAL].clear(namespace_of(request))})


async def wait_requests(request: web.Request) -> web.Response:
    try:
        flt = _filter(request)
        count, timeout = wait_params(request)
    except ValueError as exc:  # FilterError included
        return _bad(exc)
    try:
        entries = await request.app[JOURNAL].wait_for(flt, count, timeout)
    except WaitTimeout as exc:
        return web.json_response(
            {
                "error": "timeout",
                "message": str(exc),
                "matched": [e.to_dict() for e in exc.got],
                "closest": [e.to_dict() for e in exc.closest],
            },
            status=408,
        )
    return web.json_response({"entries": [e.to_dict() for e in entries], "count": len(entries)})


async def har(request: web.Request) -> web.Response:
    try:
        flt = _filter(request)
    except FilterError as exc:
        return _bad(exc)
    return web.json_response(to_har(request.app[JOURNAL].select(flt), __version__))


async def ndjson(request: web.Request) -> web.Response:
    try:
        flt = _filter(request)
    except FilterError as exc:
        return _bad(exc)
    return web.Response(text=to_ndjson(request.app[JOURNAL].select(flt)), content_type="application/x-ndjson")


async def reset(request: web.Request) -> web.Response:
    """Everything back to the start config: journal, throttle windows, provider state (or only
    what belongs to one namespace)."""
    ns = namespace_of(request)
    app = request.app
    app[JOURNAL].clear(ns)
    if ns is None:
        app[LIMITER].reset()
    for hook in app[RESET_HOOKS]:
        hook(ns)
    return web.json_response({"reset": True, "namespace": ns})


def setup(app: web.Application, prefix: str) -> None:
    app.router.add_get(f"{prefix}/requests", list_requests)
    app.router.add_delete(f"{prefix}/requests", delete_requests)
    app.router.add_get(f"{prefix}/requests/count", count_requests)
    app.router.add_get(f"{prefix}/requests/wait", wait_requests)
    app.router.add_get(f"{prefix}/requests.har", har)
    app.router.add_get(f"{prefix}/requests.ndjson", ndjson)
    app.router.add_post(f"{prefix}/reset", reset)
