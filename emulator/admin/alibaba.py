"""Admin routes of the emulated Alibaba console: custom text libraries and default verdicts.

- ``GET    /_emulator/alibaba/libraries``                   an account's libraries (the feedback-based
  ones included, read-only)
- ``POST   /_emulator/alibaba/libraries``                   create one: ``{"account", "name", "kind":
  "term"|"pattern", "listType": "blacklist"|"whitelist"|"review", "items": [...], "scenes": [...]}``
  (scenes: ``antispam`` and/or ``ad`` for terms, ``antispam`` for patterns; default all they allow)
- ``DELETE /_emulator/alibaba/libraries/{code}``
- ``PATCH  /_emulator/alibaba/libraries/{code}``            ``{"enabled": false}`` disables a user-created
  library (kept, matches nothing), ``true`` enables it again; feedback-based ones cannot be disabled
- ``GET|POST|DELETE /_emulator/alibaba/libraries/{code}/items``   list, add (``{"items": [...]}``) or
  remove terms / text patterns
- ``GET|POST /_emulator/alibaba/verdicts``                  default scan results (``alibaba.verdicts``)

Each namespace has its own: library calls act on the namespace named (``?namespace=`` or the
X-Emulator-Namespace header), else the account's configured one, else the default; verdict calls on
the namespace named, else the default.

Neither SDK has the 2017-08-23 library actions (CreateKeywordLib, ...), so their wire format cannot be
checked; libraries are managed here instead. Errors carry the provider-style ``code`` of the rule
broken (UNCONFIRMED(alibaba-library-codes): the names) as an extra member of the problem
document, next to ``error`` and ``message``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from ..config import Verdict, parse_value
from ..errors import AdminError
from ..providers.alibaba import moderation
from ..providers.alibaba.models import AlibabaState
from ..providers.alibaba.routes import ALIBABA_BACKEND, VERDICTS
from ..providers.alibaba.textlib import LibraryError
from .common import account_namespace, alibaba_account, bad_request, json_object, namespace_of

FEEDBACK_LIBRARIES = ("feedback-image", "feedback-text")
#: Verdicts a namespace may add at run time (the config's do not count), so the console cannot grow
#: the verdicts every scan reads without bound.
MAX_VERDICTS = 1_000


@contextmanager
def _library_rules() -> Iterator[None]:
    """A broken library rule answers with its provider-style ``code`` (404 for an unknown library)."""
    try:
        yield
    except LibraryError as exc:
        status = 404 if exc.code == "KeywordLibNotFound" else 400
        raise AdminError(status, "bad_request", str(exc), code=exc.code) from exc


async def _state(request: web.Request, body: dict[str, Any] | None = None) -> AlibabaState:
    if body is None:
        body = {"account": request.query["account"]} if "account" in request.query else {}
    account = alibaba_account(request, body)
    return request.config_dict[ALIBABA_BACKEND].state(account, account_namespace(request, account.namespace))


def _builtin(state: AlibabaState) -> list[dict[str, Any]]:
    # Created automatically; cannot be deleted or disabled (seed document 003).
    return [
        {
            "code": "feedback-image",
            "name": "feedback-based image library",
            "kind": "image",
            "listType": "whitelist+blacklist",
            "enabled": True,
            "builtin": True,
            "count": len(state.image_library),
        },
        {
            "code": "feedback-text",
            "name": "feedback-based text library",
            "kind": "text",
            "listType": "whitelist+blacklist",
            "enabled": True,
            "builtin": True,
            "count": len(state.text_library),
        },
    ]


async def list_libraries(request: web.Request) -> web.Response:
    state = await _state(request)
    libs = [lib.to_dict() for lib in state.text_libraries.libraries]
    return web.json_response({"account": state.account.uid, "libraries": _builtin(state) + libs})


async def create_library(request: web.Request) -> web.Response:
    body = await json_object(request)
    unknown = sorted(set(body) - {"account", "name", "kind", "listType", "items", "scenes"})
    if unknown:
        known = "account, name, kind, listType, items, scenes"
        raise bad_request(f"unknown field {unknown[0]!r} (known: {known})")
    state = await _state(request, body)
    items = body.get("items", [])
    if not isinstance(items, list):
        raise bad_request("items must be a list")
    scenes = body.get("scenes")
    if scenes is not None and (not isinstance(scenes, list) or not all(isinstance(x, str) for x in scenes)):
        raise bad_request("scenes must be a list of scene names (antispam, ad)")
    libs = state.text_libraries
    with _library_rules():
        lib = libs.create(body.get("name"), body.get("kind"), body.get("listType"), scenes)  # type: ignore[arg-type]
        try:
            libs.add(lib.code, items)
        except LibraryError:
            libs.delete(lib.code)  # all or nothing
            raise
    return web.json_response(lib.to_dict(), status=201)


async def delete_library(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    if code in FEEDBACK_LIBRARIES:
        raise bad_request(
            "feedback-based libraries are created automatically and cannot be deleted or disabled",
            code="FeedbackLibNotDeletable",
        )
    state = await _state(request)
    with _library_rules():
        state.text_libraries.delete(code)
    return web.json_response({"deleted": code})


async def patch_library(request: web.Request) -> web.Response:
    """Enable or disable a user-created library (document 003: feedback-based libraries cannot be
    disabled or deleted)."""
    code = request.match_info["code"]
    body = await json_object(request)
    unknown = sorted(set(body) - {"account", "enabled"})
    if unknown:
        raise bad_request(f"unknown field {unknown[0]!r} (known: account, enabled)")
    enabled = body.get("enabled")
    if not isinstance(enabled, bool):
        raise bad_request("enabled is required: true or false")
    if code in FEEDBACK_LIBRARIES:
        if enabled:
            raise bad_request("feedback-based libraries are always enabled", code="FeedbackLibNotDisablable")
        raise bad_request(
            "feedback-based libraries are created automatically and cannot be disabled or deleted",
            code="FeedbackLibNotDisablable",
        )
    state = await _state(request, body)
    with _library_rules():
        lib = state.text_libraries.set_enabled(code, enabled)
    return web.json_response(lib.to_dict())


async def library_items(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    if request.method == "GET":
        state = await _state(request)
        with _library_rules():
            return web.json_response({"code": code, "items": list(state.text_libraries.get(code).items)})
    body = await json_object(request)
    state = await _state(request, body)
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise bad_request("items is required: a non-empty list")
    libs = state.text_libraries
    with _library_rules():
        if request.method == "POST":
            added = libs.add(code, items)
            return web.json_response({"code": code, "added": added, "count": len(libs.get(code).items)})
        removed = libs.remove(code, items)
        return web.json_response({"code": code, "removed": removed, "count": len(libs.get(code).items)})


def _verdicts(request: web.Request) -> moderation.Verdicts:
    ns = namespace_of(request)
    if ns is None:
        raise bad_request("verdicts belong to one namespace: name it, or leave it out, but not '*'")
    return request.config_dict[VERDICTS].get(ns)


async def list_verdicts(request: web.Request) -> web.Response:
    return web.json_response({"verdicts": [_verdict_dict(v) for v in _verdicts(request).all]})


async def add_verdicts(request: web.Request) -> web.Response:
    """Body: one verdict or ``{"verdicts": [...]}``, shaped like ``alibaba.verdicts`` in the config."""
    body = await json_object(request)
    raw = body["verdicts"] if "verdicts" in body else [body]
    if not isinstance(raw, list):
        raise bad_request("verdicts must be a list")
    current = _verdicts(request)
    if len(current.added) + len(raw) > MAX_VERDICTS:
        raise bad_request(f"a namespace holds at most {MAX_VERDICTS} verdicts added at run time")
    try:
        added = [parse_value(Verdict, item, f"verdicts[{i}]") for i, item in enumerate(raw)]
        current.add(added)
    except ValueError as exc:  # ConfigError, and the scene and label checks of moderation.Verdicts
        raise bad_request(str(exc)) from exc
    return web.json_response({"verdicts": [_verdict_dict(v) for v in added]}, status=201)


def _verdict_dict(v: Verdict) -> dict[str, Any]:
    return {
        k: getattr(v, k)
        for k in ("scene", "label", "suggestion", "rate", "url", "url_pattern", "text")
        if getattr(v, k) is not None
    }


def setup(admin: web.Application) -> None:
    """Routes on the admin sub-application (the provider's reset forgets a namespace's verdicts)."""
    admin.router.add_get("/alibaba/libraries", list_libraries)
    admin.router.add_post("/alibaba/libraries", create_library)
    admin.router.add_delete("/alibaba/libraries/{code}", delete_library)
    admin.router.add_patch("/alibaba/libraries/{code}", patch_library)
    for method in ("GET", "POST", "DELETE"):
        admin.router.add_route(method, "/alibaba/libraries/{code}/items", library_items)
    admin.router.add_get("/alibaba/verdicts", list_verdicts)
    admin.router.add_post("/alibaba/verdicts", add_verdicts)

