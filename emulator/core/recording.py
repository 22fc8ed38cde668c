"""One journal entry per call, made from the call's record and what was answered."""

from __future__ import annotations

from aiohttp import web

from . import log
from .call import Call
from .headers import query_of
from .journal import Journal


def record_call(
    journal: Journal,
    request: web.Request,
    call: Call,
    duration: float,
    response: web.StreamResponse | None,
) -> None:
    """One journal entry for ``request`` and what was answered (None: no response was sent)."""
    if log.enabled():
        _log(request, call, duration, response)
    if journal.capacity == 0:
        # Recording is off: count the exchange without building an entry nobody will keep.
        journal.evicted += 1
        return
    if isinstance(response, web.Response):
        body = response.body if isinstance(response.body, bytes) else b""
    else:
        body = call.sent_body or b""
    request_body = call.body
    # Set when only a prefix was read (Call.keep_body); else the body is whole, and a refused call's
    # is cut here: an unsigned flood of large bodies must not fill the journal's budget.
    request_size = call.body_size
    if len(request_body) > journal.max_body_bytes and (response is None or response.status >= 400):
        request_size = len(request_body)
        request_body = request_body[: journal.max_body_bytes]
    error = None
    if response is None:
        error = (
            f"connection closed without a response ({call.cut})"
            if call.cut
            else "cancelled: the client went away"
        )
    elif call.cut:
        error = f"connection closed after a partial response ({call.cut})"
    journal.record_raw(
        call.received_at,
        request.method,
        _url(request),
        request.path,
        tuple(query_of(request).items()),
        request.raw_headers,
        request_body,
        call.provider,
        call.action,
        call.account,
        call.namespace,
        call.parsed,
        call.journal_view(),
        response.status if response is not None else None,
        response.headers if response is not None else (),
        body,
        duration,
        call.fault,
        call.correlation_id,
        error,
        request_size,
        call.violations or None,
    )


def _url(request: web.Request) -> str:
    """The URL as sent: the Host header and the target for an origin-form target ("/path?q"), the
    target itself for an absolute-form one (a client that goes through a proxy, as cos-python-sdk-v5
    does with ``Proxies``, sends "http://host/path?q"; RFC 9112, section 3.2.2: its authority wins
    over Host)."""
    # What was sent, not yarl's rebuilt URL: cheaper on every call, and yarl cannot build one from
    # a Host such as "::" or "a:b" at all (that turned the provider's answer into a 500).
    target = request.raw_path
    if target.startswith("/"):
        return f"{request.scheme}://{request.host}{target}"
    if "://" in target:
        return target
    # Authority-form (CONNECT host:port) or anything else aiohttp let through.
    return f"{request.scheme}://{target}"


def _log(request: web.Request, call: Call, duration: float, response: web.StreamResponse | None) -> None:
    status = response.status if response is not None else None
    body = response.body if isinstance(response, web.Response) and isinstance(response.body, bytes) else b""
    log.exchange(
        time=call.received_at,
        direction="in",
        provider=call.provider,
        action=call.action,
        account=call.account,
        namespace=call.namespace,
        method=request.method,
        target=request.path_qs,
        status=status,
        duration=duration,
        fault=call.fault,
        code=log.error_code(status, body),
        error=None if response is not None else f"no response ({call.cut or 'the client went away'})",
        correlation_id=call.correlation_id,
    )
