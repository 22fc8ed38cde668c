"""Admin routes of the emulated Alibaba console: custom text libraries and default verdicts.

- ``GET    /_emulator/alibaba/libraries``                   an account's libraries (the feedback-based
  ones included, read-only)
- ``POST   /_emulator/alibaba/libraries``                   create one: ``{"account", "name", "kind":
  "term"|"pattern", "listType": "blacklist"|"whitelist"|"review", "items": [...]}``
- ``DELETE /_emulator/alibaba/libraries/{code}``
- ``GET|POST|DELETE /_emulator/alibaba/libraries/{code}/items``   list, add (``{"items": [...]}``) or
  remove terms / text patterns
- ``GET|POST /_emulator/alibaba/verdicts``                  default scan results (``alibaba.verdicts``)

Neither SDK has the 2017-08-23 library actions (CreateKeywordLib, ...), so their wire format cannot be
checked; libraries are managed here instead. Errors carry the provider-style ``code`` of the rule
broken (UNCONFIRMED names) next to the admin API's ``error`` and ``message``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..config import Verdict, parse_value
from ..errors import ConfigError
from ..keys import RESET_HOOKS, SETTINGS
from ..providers.alibaba.models import AlibabaState
from ..providers.alibaba.routes import ALIBABA_BACKEND, VERDICTS
from ..providers.alibaba.textlib import LibraryError
from .common import AdminProblem, alibaba_account, json_object, problem

FEEDBACK_LIBRARIES = ("feedback-image", "feedback-text")


def _library_error(exc: LibraryError) -> web.Response:
    status = 404 if exc.code == "KeywordLibNotFound" else 400
    return web.json_response({"error": "bad_request", "code": exc.code, "message": str(exc)}, status=status)


async def _state(request: web.Request, body: dict[str, Any] | None = None) -> AlibabaState:
    if body is None:
        body = {"account": request.query["account"]} if "account" in request.query else {}
    return request.app[ALIBABA_BACKEND].state(alibaba_account(request, body))


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
    try:
        state = await _state(request)
    except AdminProblem as exc:
        return problem(exc)
    libs = [lib.to_dict() for lib in state.text_libraries.libraries]
    return web.json_response({"account": state.account.uid, "libraries": _builtin(state) + libs})


async def create_library(request: web.Request) -> web.Response:
    try:
        body = await json_object(request)
        unknown = sorted(set(body) - {"account", "name", "kind", "listType", "items"})
        if unknown:
            raise AdminProblem(
                400,
                "bad_request",
                f"unknown field {unknown[0]!r} (known: account, name, kind, listType, items)",
            )
        state = await _state(request, body)
        items = body.get("items", [])
        if not isinstance(items, list):
            raise AdminProblem(400, "bad_request", "items must be a list")
    except AdminProblem as exc:
        return problem(exc)
    libs = state.text_libraries
    try:
        lib = libs.create(body.get("name"), body.get("kind"), body.get("listType"))  # type: ignore[arg-type]
        try:
            libs.add(lib.code, items)
        except LibraryError:
            libs.delete(lib.code)  # all or nothing
            raise
    except LibraryError as exc:
        return _library_error(exc)
    return web.json_response(lib.to_dict(), status=201)


async def delete_library(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    if code in FEEDBACK_LIBRARIES:
        return web.json_response(
            {
                "error": "bad_request",
                "code": "FeedbackLibNotDeletable",
                "message": "feedback-based libraries are created automatically and cannot be deleted "
                "or disabled",
            },
            status=400,
        )
    try:
        state = await _state(request)
        state.text_libraries.delete(code)
    except AdminProblem as exc:
        return problem(exc)
    except LibraryError as exc:
        return _library_error(exc)
    return web.json_response({"deleted": code})


async def library_items(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    try:
        if request.method == "GET":
            state = await _state(request)
            return web.json_response({"code": code, "items": list(state.text_libraries.get(code).items)})
        body = await json_object(request)
        state = await _state(request, body)
        items = body.get("items")
        if not isinstance(items, list) or not items:
            raise AdminProblem(400, "bad_request", "items is required: a non-empty list")
        libs = state.text_libraries
        if request.method == "POST":
            added = libs.add(code, items)
            return web.json_response({"code": code, "added": added, "count": len(libs.get(code).items)})
        removed = libs.remove(code, items)
        return web.json_response({"code": code, "removed": removed, "count": len(libs.get(code).items)})
    except AdminProblem as exc:
        return problem(exc)
    except LibraryError as exc:
        return _library_error(exc)


async def list_verdicts(request: web.Request) -> web.Response:
    return web.json_response({"verdicts": [_verdict_dict(v) for v in request.app[VERDICTS].all]})


async def add_verdicts(request: web.Request) -> web.Response:
    """Body: one verdict or ``{"verdicts": [...]}``, shaped like ``alibaba.verdicts`` in the config."""
    try:
        body = await json_object(request)
    except AdminProblem as exc:
        return problem(exc)
    raw = body["verdicts"] if "verdicts" in body else [body]
    if not isinstance(raw, list):
        return web.json_response({"error": "bad_request", "message": "verdicts must be a list"}, status=400)
    current = request.app[VERDICTS]
    try:
        added = [parse_value(Verdict, item, f"verdicts[{i}]") for i, item in enumerate(raw)]
        current.load(current.all + added)
    except (ConfigError, ValueError) as exc:
        return web.json_response({"error": "bad_request", "message": str(exc)}, status=400)
    return web.json_response({"verdicts": [_verdict_dict(v) for v in added]}, status=201)


def _verdict_dict(v: Verdict) -> dict[str, Any]:
    return {
        k: getattr(v, k)
        for k in ("scene", "label", "suggestion", "rate", "url", "url_pattern", "text")
        if getattr(v, k) is not None
    }


def setup(app: web.Application, prefix: str) -> None:
    base = f"{prefix}/alibaba"
    app.router.add_get(f"{base}/libraries", list_libraries)
    app.router.add_post(f"{base}/libraries", create_library)
    app.router.add_delete(f"{base}/libraries/{{code}}", delete_library)
    for method in ("GET", "POST", "DELETE"):
        app.router.add_route(method, f"{base}/libraries/{{code}}/items", library_items)
    app.router.add_get(f"{base}/verdicts", list_verdicts)
    app.router.add_post(f"{base}/verdicts", add_verdicts)

    def reset(namespace: str | None) -> None:
        # Run-time verdicts are app-wide: only a full reset drops them.
        if namespace is None:
            app[VERDICTS].load(app[SETTINGS].alibaba.verdicts)

    app[RESET_HOOKS].append(reset)
