"""Tencent CI's shipped contract (``schemas/``: an XSD of each action's request and response body,
and of the ``<Error>`` every action answers with) and what the contract tools need to know of it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ...contract.spec import ProviderContract
from ...contract.strict import MAX_VIOLATIONS, Violation, query_violations, summary, xml_violations
from . import protocol, signing
from .errors import TencentError

SCHEMAS = protocol.SCHEMAS

#: The request schema of each action that takes a body (DescribeAuditingTextJob takes none).
REQUESTS: Mapping[str, str] = {
    "ReportBadcase": "report-badcase-request",
    "CreateAuditingTextJob": "text-auditing-request",
    "BatchImageAuditing": "image-auditing-request",
}

#: No CI action served documents a query parameter.
QUERY: frozenset[str] = frozenset()


def request_check(action: str) -> Callable[[Any, Mapping[str, str]], list[Violation]]:
    """The strict-mode check of ``action``'s requests: its query and its XML body (libxml2 first,
    which says "valid" in microseconds; xmlschema only for a body it refuses, to name each error)."""
    name = REQUESTS.get(action)
    path = SCHEMAS / f"{name}.xsd"

    def check(root: Any, query: Mapping[str, str]) -> list[Violation]:
        found = query_violations(QUERY, query) if query else []
        if name is not None and root is not None and not protocol.libxml2_valid(path, root):
            found += xml_violations(protocol.schema(name), root)
        return found[:MAX_VIOLATIONS]

    return check


def key_id(headers: Mapping[str, str]) -> str | None:
    try:
        return signing.parse_authorization(headers.get("authorization")).secret_id
    except TencentError:
        return None


def known_key(settings: Any, key: str) -> bool:
    return any(a.secret_id == key for a in settings.tencent.accounts)


def parse_body(body: bytes) -> Any:
    if not body.strip():
        return None
    try:
        root = protocol.parse_xml(body)
    except TencentError as exc:
        raise ValueError(str(exc)) from None
    return protocol.element_tree(root)


def error_code(tree: Any) -> str | None:
    if isinstance(tree, dict) and isinstance(tree.get("Error"), dict):
        code = tree["Error"].get("Code")
        return None if code is None else str(code)
    return None


__all__ = ["CONTRACT", "request_check", "summary"]

CONTRACT = ProviderContract(
    name="tencent",
    schemas=SCHEMAS,
    key_id=key_id,
    known_key=known_key,
    parse_body=parse_body,
    error_code=error_code,
    auth_codes=frozenset(
        {"AccessDenied", "InvalidAccessKeyId", "RequestTimeTooSkewed", "SignatureDoesNotMatch"}
    ),
    id_fields=frozenset({"JobId"}),
    # Result and HitFlag: 0 normal, 1 block, 2 review (the response schemas' Verdict).
    enumerations={"Result": frozenset({"0", "1", "2"}), "HitFlag": frozenset({"0", "1", "2"})},
)


