"""Admin errors as problem details (RFC 9457): the admin API's one error renderer.

Admin handlers raise; :func:`problem_middleware` answers. An :class:`~emulator.errors.AdminError`
becomes ``application/problem+json`` with the standard members (``type`` is ``about:blank``, so
``title`` is the status phrase) and the members admin clients read since before problem details:
``error`` (the kind) and ``message`` (the same text as ``detail``), plus the error's extra members::

    {"type": "about:blank", "title": "Bad Request", "status": 400, "detail": "count must be >= 1 ...",
     "error": "bad_request", "message": "count must be >= 1 ..."}

The user-error categories of the tree map without a handler's help (InvalidInput 400 bad_request,
NotFound 404 not_found, Timeout 408 timeout), and so do aiohttp's own refusals under the admin prefix
(an unknown path 404, a known path with the wrong method 405). Anything else is a bug and propagates.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from ..errors import AdminError, EmulatorError, InvalidInput, NotFound, Timeout

PROBLEM_JSON = "application/problem+json"

#: Kinds for aiohttp's own refusals; others are named after their status phrase.
_HTTP_KINDS = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def problem_document(err: AdminError) -> dict[str, Any]:
    standard = {
        "type": "about:blank",
        "title": err.title,
        "status": err.status,
        "detail": err.message,
        "error": err.kind,
        "message": err.message,
    }
    return standard | {k: v for k, v in err.extra.items() if k not in standard}


def problem_response(err: AdminError, headers: dict[str, str] | None = None) -> web.Response:
    headers = dict(headers or {})
    if err.status == 401:
        # RFC 9110 section 15.5.2: a 401 names the scheme that would be accepted.
        headers.setdefault("WWW-Authenticate", 'Bearer realm="emulator admin API"')
    return web.json_response(
        problem_document(err), status=err.status, content_type=PROBLEM_JSON, headers=headers
    )


def as_admin_error(exc: EmulatorError) -> AdminError | None:
    """The admin answer for an error a handler let through; None if it is not a user's error."""
    if isinstance(exc, AdminError):
        return exc
    if isinstance(exc, InvalidInput):
        return AdminError(400, "bad_request", str(exc))
    if isinstance(exc, NotFound):
        return AdminError(404, "not_found", str(exc))
    if isinstance(exc, Timeout):
        return AdminError(408, "timeout", str(exc))
    return None


def _from_http(request: web.Request, exc: web.HTTPException) -> AdminError:
    status = exc.status
    if status == 404:
        message = f"the admin API has no route {request.path} (its openapi.json lists them)"
    elif isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        message = f"{request.method} is not allowed on {request.path} (allowed: {allowed})"
    else:
        message = exc.text or exc.reason
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "error"
    return AdminError(status, _HTTP_KINDS.get(status, phrase.lower().replace(" ", "_")), message)


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # Keep what the refusal says besides its body (Allow on a 405).
        skip = {"content-type", "content-length"}
        headers = {k: v for k, v in exc.headers.items() if k.lower() not in skip}
        return problem_response(_from_http(request, exc), headers)
    except EmulatorError as exc:
        err = as_admin_error(exc)
        if err is None:
            raise
        return problem_response(err)
