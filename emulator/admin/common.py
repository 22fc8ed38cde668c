"""What admin routes share: the namespace a call is scoped to, wait parameters, JSON bodies and the
account a console call is about. What they refuse they raise as AdminError (rendered by .problems)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..config import AlibabaAccount
from ..core.call import ALL_NAMESPACES, DEFAULT_NAMESPACE, NAMESPACE_HEADER, namespace_for
from ..errors import AdminError
from ..providers.alibaba.routes import ALIBABA_BACKEND

#: The longest a long-poll may be asked to wait, in seconds.
WAIT_TIMEOUT_MAX = 60.0
#: The deepest nesting of arrays and objects an admin body may have (a rule or a scenario needs a
#: few dozen levels at most; Python's reader fails with RecursionError near a thousand).
JSON_MAX_DEPTH = 64


def namespace_of(request: web.Request) -> str | None:
    """The namespace an admin call acts on: ``?namespace=``, else the X-Emulator-Namespace header,
    else the default namespace; None for ``*`` (every namespace)."""
    named = named_namespace(request) or DEFAULT_NAMESPACE
    return None if named == ALL_NAMESPACES else named


def account_namespace(request: web.Request, configured: str | None) -> str:
    """The namespace of a console call about one account: the one named, else the account's
    configured one, else the default, as for that account's API calls. ``*`` names no one namespace."""
    named = named_namespace(request)
    if named == ALL_NAMESPACES:
        raise bad_request("this call acts on one namespace: name it, or leave it out, but not '*'")
    return namespace_for(named, configured)


def named_namespace(request: web.Request) -> str | None:
    return request.query.get("namespace") or request.headers.get(NAMESPACE_HEADER)


def wait_params(request: web.Request) -> tuple[int, float]:
    """(count, timeout) of a long-poll; AdminError (400) when they are wrong."""
    try:
        count = int(request.query.get("count", "1"))
        timeout = float(request.query.get("timeout", "5"))
    except ValueError:
        raise bad_request("count must be an integer and timeout a number of seconds") from None
    if count < 1 or not 0 <= timeout <= WAIT_TIMEOUT_MAX:
        raise bad_request(f"count must be >= 1 and timeout within 0..{WAIT_TIMEOUT_MAX:g} seconds")
    return count, timeout


def bad_request(message: str, **extra: Any) -> AdminError:
    return AdminError(400, "bad_request", message, **extra)


async def json_body(request: web.Request, *, kind: str = "bad_request") -> Any:
    """The body as JSON (None when empty). Refused (400 ``kind``) when it is not JSON or nests deeper
    than :data:`JSON_MAX_DEPTH`; a body over ``server.max_body_bytes`` is refused (413) unread."""
    try:
        body = json.loads(await request.read() or b"null")
    except RecursionError:
        raise AdminError(400, kind, f"the body nests deeper than {JSON_MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise AdminError(400, kind, f"the body is not valid JSON: {exc}") from None
    if json_depth(body) > JSON_MAX_DEPTH:
        raise AdminError(400, kind, f"the body nests deeper than {JSON_MAX_DEPTH} levels")
    return body


def json_depth(value: Any) -> int:
    """How deep arrays and objects nest in ``value`` (a scalar: 0), found without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > JSON_MAX_DEPTH:
                break
            stack.extend((child, depth) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


async def json_object(request: web.Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    return body


def string_field(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise bad_request(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string")
    return value


def alibaba_account(request: web.Request, body: dict[str, Any]) -> AlibabaAccount:
    backend = request.config_dict[ALIBABA_BACKEND]
    key = string_field(body, "account")
    if key is None:
        if len(backend.accounts) != 1:
            raise bad_request(
                f"account (uid or AccessKeyId) is required: {len(backend.accounts)} Alibaba accounts "
                "are configured",
            )
        return backend.accounts[0]
    account = backend.find(key)
    if account is None:
        raise AdminError(404, "not_found", f"no Alibaba account has the uid or AccessKeyId {key!r}")
    return account
