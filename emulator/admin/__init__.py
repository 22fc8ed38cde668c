"""The /_emulator/... admin API: health, the journal, reset, fault rules, callbacks, provider consoles.

It is an aiohttp sub-application mounted at :data:`PREFIX`, so its middlewares (the admin token, and
the one error renderer in :mod:`.problems`) apply to it alone; its handlers read the main app's state
through ``request.config_dict``. Answers are plain JSON; errors are problem details (RFC 9457) that
keep the older ``{"error": <kind>, "message": <what is wrong>}`` members.
"""

from __future__ import annotations

import hmac
import json
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

from .._version import __version__
from ..errors import AdminError
from ..keys import HEALTH, SETTINGS
from . import alibaba, callbacks, clock, faults, journal, tencent
from .problems import problem_middleware

PREFIX = "/_emulator"
OPENAPI = Path(__file__).with_name("openapi.json")

async def health(request: web.Request) -> web.Response:
    facts = request.config_dict[HEALTH]
    return web.json_response(
        {
            "status": "ok",
            "version": __version__,
            "providers": {name: fact() for name, fact in facts.items()},
        }
    )


async def openapi(request: web.Request) -> web.Response:
    del request
    spec = json.loads(OPENAPI.read_text(encoding="utf-8"))
    spec["info"]["version"] = __version__
    return web.json_response(spec)


@web.middleware
async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = request.config_dict[SETTINGS].admin.token
    # Health stays open so container and load-balancer probes need no secret.
    if token and request.path != f"{PREFIX}/health":
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            message = "this emulator requires 'Authorization: Bearer <admin token>'"
            raise AdminError(401, "unauthorized", message)
    return await handler(request)


def setup(app: web.Application) -> None:
    """Mount the admin API on ``app`` at :data:`PREFIX`."""
    # The error renderer is outermost, so the token check's refusal is a problem document too.
    admin = web.Application(middlewares=[problem_middleware, require_token])
    admin.router.add_get("/health", health)
    admin.router.add_get("/openapi.json", openapi)
    journal.setup(admin)
    callbacks.setup(admin)
    clock.setup(admin)
    faults.setup(admin)
    tencent.setup(admin)
    alibaba.setup(admin, app)
    # Routes first: aiohttp prefixes the sub-application's routes when it is mounted.
    app.add_subapp(PREFIX, admin)
