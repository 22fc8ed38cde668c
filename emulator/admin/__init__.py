"""The /_emulator/... admin API."""

from __future__ import annotations

from aiohttp import web

from .. import __version__
from ..keys import SETTINGS

PREFIX = "/_emulator"


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


def setup(app: web.Application) -> None:
    app.router.add_get(f"{PREFIX}/health", health)
