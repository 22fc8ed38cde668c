"""Admin routes over the whole state: ``GET /_emulator/state`` (a snapshot, everything but the
journal) and ``PUT /_emulator/state`` (replace the state with a snapshot). See core/state.py.

With a namespace (``?namespace=`` or the X-Emulator-Namespace header), ``GET`` answers that
namespace's records only and ``PUT`` replaces that namespace's state only, the document's records
moved into it: how a test seeds the namespace it works in without touching the others.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from ..core.call import ALL_NAMESPACES
from ..core.state import StateDocumentError
from ..core.storage import StorageFailure, StoreUnavailable
from ..errors import AdminError
from ..keys import FAULTS, GATEWAY, STATE, STORE
from .common import bad_request, json_object, named_namespace


def _namespace(request: web.Request) -> str | None:
    # Unlike other admin calls, no namespace means all of them: the whole state.
    named = named_namespace(request)
    return None if named in (None, ALL_NAMESPACES) else named


async def get_state(request: web.Request) -> web.Response:
    return web.json_response(request.config_dict[STATE].document(_namespace(request)))


async def put_state(request: web.Request) -> web.Response:
    body = await json_object(request)
    namespace = _namespace(request)
    try:
        loaded = request.config_dict[STATE].replace(body, namespace)
    except StateDocumentError as exc:
        raise bad_request(str(exc)) from None
    return web.json_response({"replaced": True, "records": loaded, "namespace": namespace or ALL_NAMESPACES})


@web.middleware
async def commit_changes(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An admin call sees every replica's state (when shared), and every change it made is stored
    before its answer leaves."""
    follower = request.config_dict[GATEWAY].follower
    faults = request.config_dict[FAULTS]
    try:
        if follower is not None:
            await follower.catch_up()
        if request.method != "GET":
            await faults.reserve(0)  # numbers for the start-up rules a reset adds again
        response = await handler(request)
    except StoreUnavailable as exc:
        raise AdminError(503, "unavailable", f"the shared state cannot be read: {exc}") from None
    store = request.config_dict[STORE]
    try:
        await faults.settle()
        if store.pending:
            await store.commit()
    except (StorageFailure, StoreUnavailable) as exc:
        raise AdminError(503, "unavailable", f"the change was not stored: {exc}") from None
    return response


def setup(admin: web.Application) -> None:
    admin.router.add_get("/state", get_state)
    admin.router.add_put("/state", put_state)
