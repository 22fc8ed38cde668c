"""How the fault engine sees Alibaba calls, and how Alibaba errors look when a rule injects them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ...config import AlibabaSettings
from ...core.catalogue import by_code
from ...core.faults import RuleError, edit_tree
from . import protocol, signing
from .errors import BUSINESS_CODES, AlibabaError, BusinessError, GatewayError, ThrottlingUser, throttled
from .models import AlibabaBackend


class AlibabaFaults:
    name = "alibaba"

    def __init__(self, actions: Mapping[str, str], backend: AlibabaBackend, cfg: AlibabaSettings) -> None:
        self._actions = actions
        self._backend = backend
        self._cfg = cfg
        self._gateway = by_code(GatewayError)

    def action_for(self, request: web.Request) -> str | None:
        return self._actions.get(request.path)

    def account_for(self, request: web.Request) -> tuple[str | None, str | None]:
        try:
            key = signing.parse_authorization(request.headers.get("Authorization")).access_key_id
        except GatewayError:
            return None, None
        account = self._backend.by_access_key(key)
        return (account.uid, account.namespace) if account else (None, None)

    def parse_body(self, body: bytes) -> Any:
        try:
            return protocol.decode_json(body)
        except protocol.BodyError:
            return None

    def check_error(self, action: Mapping[str, Any], where: str) -> None:
        code = action.get("code")
        if isinstance(code, int) and not isinstance(code, bool):
            if code == 200 or code not in BUSINESS_CODES:
                known = ", ".join(str(c) for c in BUSINESS_CODES if c != 200)
                raise RuleError(f"{where}.code", f"{code} is not an Alibaba business error code ({known})")
            return
        if code not in self._gateway:
            raise RuleError(
                f"{where}.code",
                f"{code!r} is not in the Alibaba catalogue: a gateway code "
                f"({', '.join(sorted(self._gateway))}) or a business code (an integer, e.g. 500)",
            )

    def render_error(self, action: Mapping[str, Any], request: web.Request) -> web.StreamResponse:
        del request
        request_id = protocol.new_request_id()
        code = action["code"]
        status = action.get("status")
        if isinstance(code, int):
            response = protocol.business_error(BusinessError(code, action.get("message")), request_id)
            if status is not None:
                response.set_status(int(status))
            return response
        err = self._gateway[code](action.get("message"), status=None if status is None else int(status))
        if isinstance(err, ThrottlingUser):
            err.retry_after = float(action.get("retryAfter", 0))
        response = protocol.gateway_error(err, request_id, self._cfg.host_id)
        if "retryAfter" in action and "x-acs-retry-after" not in response.headers:
            response.headers["x-acs-retry-after"] = str(max(1, round(float(action["retryAfter"]) * 1000)))
        return response

    def render_throttled(self, request: web.Request) -> web.StreamResponse:
        del request
        return self._render(throttled(self._cfg.throttle_response))

    def _render(self, err: AlibabaError) -> web.Response:
        request_id = protocol.new_request_id()
        if isinstance(err, BusinessError):
            return protocol.business_error(err, request_id)
        assert isinstance(err, GatewayError)
        return protocol.gateway_error(err, request_id, self._cfg.host_id)

    def modify_body(self, body: bytes, edit: Mapping[str, Any]) -> bytes:
        try:
            tree = json.loads(body)
        except ValueError:
            return body
        edited = edit_tree(tree, edit.get("remove", []), edit.get("set", {}))
        return json.dumps(edited, ensure_ascii=False, separators=(",", ":")).encode()
