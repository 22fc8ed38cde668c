"""The /_emulator/... admin API: health, the journal, reset (faults and consoles join later).

Admin answers are plain JSON; errors are ``{"error": <kind>, "message": <what is wrong>}``.
"""

from __future__ import annotations

import hmac
import json
from pathlib import Path

from aiohttp import web

from .._version import __version__
from ..core.recording import Handler
from ..keys import SETTINGS
from . import alibaba, callbacks, faults, journal, tencent

PREFIX = "/_emulator"
OPENAPI = Path(__file__).with_name("openapi.json")


async def health(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return web.json_response(
        {
            "status": "ok",
            "version": __version__,
            "providers": {
                "alibaba": {"accounts": len(settings.alibaba.accounts)},
                "tencent": {"accounts": len(settings.tencent.accounts)},
            },
        }
    )


async def openapi(request: web.Request) -> web.Response:
    del request
    spec = json.loads(OPENAPI.read_text(encoding="utf-8"))
    spec["info"]["version"] = __version__
    return web.json_response(spec)


def error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"error": kind, "message": message}, status=status)


@web.middleware
async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = request.app[SETTINGS].admin.token
    # Health stays open so container and load-balancer probes need no secret.
    if token and request.path.startswith(PREFIX) and request.path != f"{PREFIX}/health":
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return error(401, "unauthorized", "this emulator requires 'Authorization: Bearer <admin token>'")
    return await handler(request)


def setup(app: web.Application) -> None:
    app.middlewares.append(require_token)
    app.router.add_get(f"{PREFIX}/health", health)
    app.router.add_get(f"{PREFIX}/openapi.json", openapi)
    journal.setup(app, PREFIX)
    callbacks.setup(app, PREFIX)
    faults.setup(app, PREFIX)
    tencent.setup(app, PREFIX)
    alibaba.setup(app, PREFIX)
