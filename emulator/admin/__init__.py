"""The /_emulator/... admin API: health, the journal, reset, fault rules, callbacks, provider consoles.

It is an aiohttp sub-application mounted at :data:`PREFIX`, so its middlewares (the admin token, and
the one error renderer in :mod:`.problems`) apply to it alone; its handlers read the main app's state
through ``request.config_dict``. Answers are plain JSON; errors are problem details (RFC 9457) that
keep the older ``{"error": <kind>, "message": <what is wrong>}`` members.

A web page the developer has open may send requests to the emulator on localhost. When no admin token
is set, :func:`refuse_cross_site` keeps such pages from changing its state: a POST, PUT or PATCH must
say ``Content-Type: application/json`` (which a page cannot send to another origin without a CORS
preflight, and the emulator approves none), and a request that carries an ``Origin`` must come from
the emulator's own. ``server.allowed_hosts`` also refuses other Host names, against DNS rebinding.
"""

from __future__ import annotations

import hmac
import json
import os
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

from .._version import __version__
from ..errors import AdminError
from ..keys import HEALTH, SETTINGS, STORE
from . import alibaba, callbacks, clock, faults, journal, state, tencent, ui
from .problems import problem_middleware

PREFIX = "/_emulator"
OPENAPI = Path(__file__).with_name("openapi.json")

async def health(request: web.Request) -> web.Response:
    facts = request.config_dict[HEALTH]
    return web.json_response(
        {
            "status": "ok",
            "version": __version__,
            # Which process answered: one of several under serve --workers N.
            "pid": os.getpid(),
            "providers": {name: fact() for name, fact in facts.items()},
            "storage": request.config_dict[STORE].describe(),
        }
    )


async def openapi(request: web.Request) -> web.Response:
    del request
    spec = json.loads(OPENAPI.read_text(encoding="utf-8"))
    spec["info"]["version"] = __version__
    return web.json_response(spec)


def _host_name(host: str) -> str:
    """The host name of a Host header, without its port, lowercased: ``[::1]:80`` -> ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    name, colon, port = host.rpartition(":")
    return (name if colon and port.isdigit() else host).rstrip(".")


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """Whether a Host header names an allowed host; ``.example.com`` also allows its subdomains."""
    if not allowed:
        return True
    name = _host_name(host)
    for entry in allowed:
        entry = entry.lower()
        if name == entry or (entry.startswith(".") and (name.endswith(entry) or name == entry[1:])):
            return True
    return False


#: The methods that change state and that a page can make a browser send without asking (POST), or
#: that carry a body (PUT, PATCH). DELETE is no "simple" method: a page on another origin cannot send
#: one without a preflight, which the emulator never approves.
_BODY_METHODS = ("POST", "PUT", "PATCH")
_MUTATING = (*_BODY_METHODS, "DELETE")


@web.middleware
async def refuse_cross_site(request: web.Request, handler: Handler) -> web.StreamResponse:
    settings = request.config_dict[SETTINGS]
    if not host_allowed(request.host, settings.server.allowed_hosts):
        raise AdminError(403, "forbidden", f"the Host {request.host!r} is not one of server.allowed_hosts")
    if settings.admin.token or request.method not in _MUTATING:
        return await handler(request)
    origin = request.headers.get("Origin")
    own = f"{request.scheme}://{request.host}"
    if origin is not None and origin.lower() != own.lower():
        message = f"a request from another site (Origin {origin!r}, not {own!r}) may not change the emulator"
        raise AdminError(403, "forbidden", message)
    if request.method in _BODY_METHODS and (
        "Content-Type" not in request.headers or request.content_type != "application/json"
    ):
        message = f"a {request.method} to the admin API needs 'Content-Type: application/json', even bodiless"
        raise AdminError(415, "unsupported_media_type", message)
    return await handler(request)


@web.middleware
async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = request.config_dict[SETTINGS].admin.token
    # Health stays open so container and load-balancer probes need no secret; the dashboard's page
    # and assets hold no data (the page asks for the token and sends it on every call it makes).
    if token and request.path != f"{PREFIX}/health" and not ui.is_public(request.path[len(PREFIX) :]):
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            message = "this emulator requires 'Authorization: Bearer <admin token>'"
            raise AdminError(401, "unauthorized", message)
    return await handler(request)


def setup(app: web.Application) -> None:
    """Mount the admin API on ``app`` at :data:`PREFIX`."""
    # The error renderer is outermost, so the token check's refusal is a problem document too.
    admin = web.Application(
        middlewares=[problem_middleware, refuse_cross_site, require_token, state.commit_changes]
    )
    admin.router.add_get("/health", health)
    admin.router.add_get("/openapi.json", openapi)
    journal.setup(admin)
    callbacks.setup(admin)
    clock.setup(admin)
    faults.setup(admin)
    tencent.setup(admin)
    alibaba.setup(admin)
    state.setup(admin)
    ui.setup(admin)
    # Routes first: aiohttp prefixes the sub-application's routes when it is mounted.
    app.add_subapp(PREFIX, admin)
