"""How the fault engine sees Tencent CI calls, and how CI errors look when a rule injects them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from lxml import etree

from ...core.catalogue import by_code
from ...core.clock import Clock
from ...core.faults import RuleError
from . import protocol, signing
from .errors import SignatureDoesNotMatch, SlowDown, TencentError
from .models import TencentBackend
from .protocol import element_tree


class TencentFaults:
    name = "tencent"

    def __init__(
        self,
        action_of: Callable[[str], str | None],
        backend: TencentBackend,
        clock: Clock,
        resource: Callable[[web.Request], str],
        appid_of: Callable[[str], str | None],
    ) -> None:
        # A function of the path, not a table: GET /text/auditing/<jobId> has a variable segment.
        self._action_of = action_of
        self._backend = backend
        self._clock = clock
        self._resource = resource
        self._appid_of = appid_of
        self._catalogue = by_code(TencentError)

    def action_for(self, request: web.Request) -> str | None:
        return self._action_of(request.path)

    def account_for(self, request: web.Request) -> tuple[str | None, str | None]:
        appid = self._appid_of(request.host)
        account = self._backend.by_appid(appid) if appid else None
        if account is None:
            try:
                key = signing.parse_authorization(request.headers.get("Authorization")).secret_id
            except TencentError:
                return None, None
            account = self._backend.by_secret_id(key)
        return (account.appid, account.namespace) if account else (None, None)

    def parse_body(self, body: bytes) -> Any:
        try:
            return element_tree(protocol.parse_xml(body))
        except TencentError:
            return None

    def check_error(self, action: Mapping[str, Any], where: str) -> None:
        if action.get("code") not in self._catalogue:
            known = ", ".join(sorted(self._catalogue))
            code = action.get("code")
            raise RuleError(f"{where}.code", f"{code!r} is not in the Tencent CI catalogue ({known})")

    def _error(self, err: TencentError, request: web.Request, status: int | None = None) -> web.Response:
        now = self._clock.time()
        response = protocol.error(
            err, request_id=protocol.new_request_id(now), resource=self._resource(request), now=now
        )
        if status is not None:
            response.set_status(status)
        return response

    def render_error(self, action: Mapping[str, Any], request: web.Request) -> web.StreamResponse:
        cls = self._catalogue[action["code"]]
        message = action.get("message")
        # The signature error carries what the server computed; an injected one has nothing to show.
        err = SignatureDoesNotMatch("", "") if cls is SignatureDoesNotMatch else cls(message)
        status = action.get("status")
        response = self._error(err, request, None if status is None else int(status))
        if "retryAfter" in action:
            response.headers["Retry-After"] = str(max(1, round(float(action["retryAfter"]))))
        return response

    def render_throttled(self, request: web.Request) -> web.StreamResponse:
        return self._error(SlowDown(), request)

    def modify_body(self, body: bytes, edit: Mapping[str, Any]) -> bytes:
        try:
            root = etree.fromstring(body, protocol_parser())
        except etree.XMLSyntaxError:
            return body
        for path in edit.get("remove", []):
            for el in _find(root, path):
                parent = el.getparent()
                if parent is not None:
                    parent.remove(el)
        for path, value in edit.get("set", {}).items():
            found = _find(root, path)
            if not found:
                parent_path, _, leaf = path.rpartition(".")
                parents = _find(root, parent_path) if parent_path else [root]
                found = [etree.SubElement(p, leaf) for p in parents[:1]]
            for el in found:
                el.text = str(value)
        return etree.tostring(root, encoding="utf-8", xml_declaration=True)


def protocol_parser() -> etree.XMLParser:
    # Our own success bodies only, but parsed with the same care as anything else.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _find(root: etree._Element, path: str) -> list[etree._Element]:
    """Elements at a dotted path below the root (``RequestId``) or from it (``Response.RequestId``)."""
    parts = path.split(".")
    if parts and parts[0] == root.tag:
        parts = parts[1:]
    nodes = [root]
    for part in parts:
        nodes = [c for n in nodes for c in n if c.tag == part]
    return nodes
