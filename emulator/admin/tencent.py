"""Admin routes for the Tencent CI console: the backend review of reported badcases.

- ``GET  /_emulator/tencent/badcases``                     reported and confirmed badcases (filterable)
- ``POST /_emulator/tencent/badcases/{requestId}/confirm`` confirm one now, as CI's review does

A badcase also confirms itself ``tencent.confirm_after_seconds`` after it was reported, read lazily
against the app clock; both routes apply that first, so what they show is what a text audit sees.
Both act on the namespace named (``?namespace=`` or the X-Emulator-Namespace header), else the
default one; ``*`` on every namespace.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..errors import AdminError
from ..keys import CLOCK, SETTINGS
from ..providers.tencent.models import Badcase, TencentState, UnknownBadcase
from ..providers.tencent.routes import TENCENT_BACKEND
from .common import bad_request, namespace_of

STATES = ("reported", "confirmed")


def _badcase(state: TencentState, badcase: Badcase) -> dict[str, Any]:
    return {
        "requestId": badcase.request_id,
        "appid": state.account.appid,
        "namespace": state.namespace,
        "state": badcase.state,
        "receivedAt": badcase.received_at,
        "confirmedAt": badcase.confirmed_at,
        "bucket": badcase.bucket,
        "region": badcase.region,
        "contentType": badcase.content_type,
        "label": badcase.label,
        "suggestedLabel": badcase.suggested_label,
        "text": badcase.text,
        "url": badcase.url,
        "jobId": badcase.job_id,
        "moderationTime": badcase.moderation_time,
    }


def _states(request: web.Request) -> list[TencentState]:
    """Every account's state in the namespace of the call (every namespace's for ``*``), with the
    badcases whose review time has passed confirmed."""
    app = request.config_dict
    now = app[CLOCK].time()
    after = app[SETTINGS].tencent.confirm_after_seconds
    states = [s for space in app[TENCENT_BACKEND].namespaces(namespace_of(request)) for s in space.values()]
    for state in states:
        state.confirm_due(now, after)
    return states


async def list_badcases(request: web.Request) -> web.Response:
    wanted = request.query.get("state")
    if wanted is not None and wanted not in STATES:
        raise bad_request(f"state must be one of {', '.join(STATES)}, not {wanted!r}")
    appid = request.query.get("appid")
    found = [
        _badcase(state, badcase)
        for state in _states(request)
        if appid is None or state.account.appid == appid
        for badcase in state.badcases
        if wanted is None or badcase.state == wanted
    ]
    found.sort(key=lambda b: (b["receivedAt"], b["requestId"]))
    return web.json_response({"badcases": found, "count": len(found)})


async def confirm_badcase(request: web.Request) -> web.Response:
    request_id = request.match_info["requestId"]
    now = request.config_dict[CLOCK].time()
    for state in _states(request):
        try:
            badcase = state.confirm(request_id, at=now)
        except UnknownBadcase:
            continue
        return web.json_response(_badcase(state, badcase))
    raise AdminError(404, "not_found", f"no badcase was reported with RequestId {request_id!r}")


def setup(admin: web.Application) -> None:
    admin.router.add_get("/tencent/badcases", list_badcases)
    admin.router.add_post("/tencent/badcases/{requestId}/confirm", confirm_badcase)
