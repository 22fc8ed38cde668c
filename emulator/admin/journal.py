"""Admin routes over the journal, and reset. A filter the journal does not understand raises
FilterError, which the admin error middleware answers as 400 bad_request. With replicas sharing
one store, each query first brings in the others' entries (core/shared_journal.py); when the store
does not answer, the query is answered 503 unavailable."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from aiohttp import web

from .._version import __version__
from ..core.call import ALL_NAMESPACES
from ..core.export import har_pieces, ndjson_pieces, write_pieces
from ..core.journal import Filter, Journal, WaitTimeout
from ..core.storage import StoreUnavailable
from ..core.throttle import windows_in
from ..errors import AdminError
from ..keys import GATEWAY, JOURNAL, LIMITER, RESET_HOOKS, SETTINGS
from .common import namespace_of, wait_params


def _filter(request: web.Request) -> Filter:
    # The namespace as namespace_of reads it: the default when none is named, every one for '*'.
    return replace(Filter.from_params(request.query), namespace=namespace_of(request))


def _unavailable(exc: StoreUnavailable) -> AdminError:
    return AdminError(503, "unavailable", f"the shared journal cannot be read: {exc}")


async def caught_up(request: web.Request) -> Journal:
    """The journal, holding every replica's entries when it is shared (the dashboard's first page
    and an exchange's detail read it too)."""
    journal = request.config_dict[JOURNAL]
    try:
        await journal.catch_up()
    except StoreUnavailable as exc:
        raise _unavailable(exc) from None
    return journal


async def list_requests(request: web.Request) -> web.Response:
    flt = _filter(request)
    journal = await caught_up(request)
    entries = journal.select(flt)
    return web.json_response(
        {
            "entries": [e.to_dict() for e in entries],
            "count": len(entries),
            "evicted": journal.evicted,
            "journal": journal.stats(),
        }
    )


async def count_requests(request: web.Request) -> web.Response:
    flt = _filter(request)
    journal = await caught_up(request)
    return web.json_response({"count": journal.count(flt), "evicted": journal.evicted})


async def delete_requests(request: web.Request) -> web.Response:
    # Caught up first, so that ``deleted`` counts every replica's entries.
    journal = await caught_up(request)
    return web.json_response({"deleted": journal.clear(namespace_of(request))})


async def wait_requests(request: web.Request) -> web.Response:
    flt = _filter(request)
    count, timeout = wait_params(request)
    journal = request.config_dict[JOURNAL]
    most = request.config_dict[SETTINGS].journal.max_waiters
    if journal.waiting >= most:
        raise AdminError(
            503,
            "too_many_waiters",
            f"{journal.waiting} long-polls already wait on the journal, the most journal.max_waiters "
            "allows; retry when one has answered",
        )
    try:
        entries = await journal.wait_for(flt, count, timeout)
    except StoreUnavailable as exc:
        raise _unavailable(exc) from None
    except WaitTimeout as exc:
        raise AdminError(
            408,
            "timeout",
            str(exc),
            matched=[e.to_dict() for e in exc.got],
            closest=[e.to_dict() for e in exc.closest],
        ) from exc
    return web.json_response({"entries": [e.to_dict() for e in entries], "count": len(entries)})


async def har(request: web.Request) -> web.StreamResponse:
    flt = _filter(request)
    entries = (await caught_up(request)).stream(flt, with_view=False)
    return await _stream(request, "application/json", har_pieces(entries, __version__))


async def ndjson(request: web.Request) -> web.StreamResponse:
    flt = _filter(request)
    entries = (await caught_up(request)).stream(flt)
    return await _stream(request, "application/x-ndjson", ndjson_pieces(entries))


async def _stream(request: web.Request, content_type: str, pieces: Iterator[str]) -> web.StreamResponse:
    """Written as it is made: memory stays that of one entry and one chunk, whatever the journal
    holds (the filter is checked before the first byte, so a wrong one is still a 400)."""
    response = web.StreamResponse(headers={"Content-Type": f"{content_type}; charset=utf-8"})
    await response.prepare(request)
    await write_pieces(response.write, pieces)
    await response.write_eof()
    return response


async def reset(request: web.Request) -> web.Response:
    """Back to the start config: one namespace's journal, throttle windows, fault rules (and the
    counters of start-up rules), deliveries and provider state; every namespace's with ``*``."""
    ns = namespace_of(request)
    app = request.config_dict
    app[JOURNAL].clear(ns)
    app[LIMITER].reset(windows_in(ns))
    shared = app[GATEWAY].shared_limiter
    if shared is not None:
        try:
            await shared.reset(ns)
        except StoreUnavailable as exc:
            message = f"the shared throttle windows were not reset: {exc}"
            raise AdminError(503, "unavailable", message) from None
    for hook in app[RESET_HOOKS]:
        hook(ns)
    return web.json_response({"reset": True, "namespace": ALL_NAMESPACES if ns is None else ns})


def setup(admin: web.Application) -> None:
    admin.router.add_get("/requests", list_requests)
    admin.router.add_delete("/requests", delete_requests)
    admin.router.add_get("/requests/count", count_requests)
    admin.router.add_get("/requests/wait", wait_requests)
    admin.router.add_get("/requests.har", har)
    admin.router.add_get("/requests.ndjson", ndjson)
    admin.router.add_post("/reset", reset)
