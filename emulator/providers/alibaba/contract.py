"""Alibaba Green's shipped contract (``schemas/``: a JSON Schema of each action's request and
response body, and of the gateway's error body) and what the contract tools need to know of it."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ...contract.spec import ProviderContract
from ...contract.strict import (
    MAX_VIOLATIONS,
    Violation,
    compile_schema,
    json_violations,
    load_json_schema,
    query_violations,
    summary,
)
from . import signing
from .errors import GatewayError

SCHEMAS = Path(__file__).resolve().parent / "schemas"

#: Each action's schema files: ``<stem>-request.json`` and ``<stem>-response.json``.
FILES: Mapping[str, str] = {
    "ImageScanFeedback": "image-scan-feedback",
    "TextFeedback": "text-feedback",
    "ImageSyncScan": "image-sync-scan",
    "ImageAsyncScan": "image-async-scan",
    "ImageAsyncScanResults": "image-async-scan-results",
    "TextScan": "text-scan",
}

#: The query parameters a Green call may carry: ClientInfo (both official SDKs send it, as a JSON
#: string), clientInfo (the docs' spelling) and RegionId (aliyunsdkcore adds it).
QUERY = frozenset({"ClientInfo", "clientInfo", "RegionId"})


def request_check(action: str) -> Callable[[Any, Mapping[str, str]], list[Violation]]:
    """The strict-mode check of ``action``'s requests: its query and its JSON body."""
    schema = compile_schema(load_json_schema(SCHEMAS / f"{FILES[action]}-request.json"))

    def check(tree: Any, query: Mapping[str, str]) -> list[Violation]:
        found = json_violations(schema, tree)
        if query:
            found = query_violations(QUERY, query) + found
        return found if len(found) <= MAX_VIOLATIONS else found[:MAX_VIOLATIONS]

    return check


def key_id(headers: Mapping[str, str]) -> str | None:
    try:
        auth = signing.parse_authorization(headers.get("authorization"))
    except GatewayError:
        return None
    return auth.access_key_id


def known_key(settings: Any, key: str) -> bool:
    return any(a.access_key_id == key for a in settings.alibaba.accounts)


def parse_body(body: bytes) -> Any:
    return json.loads(body) if body.strip() else None


def error_code(tree: Any) -> str | None:
    """A gateway error's ``Code``, or a business envelope's ``code`` other than 200."""
    if not isinstance(tree, dict):
        return None
    if "Code" in tree:
        return str(tree["Code"])
    code = tree.get("code")
    return None if code is None or code == 200 else str(code)


__all__ = ["CONTRACT", "request_check", "summary"]

CONTRACT = ProviderContract(
    name="alibaba",
    schemas=SCHEMAS,
    key_id=key_id,
    known_key=known_key,
    parse_body=parse_body,
    error_code=error_code,
    auth_codes=frozenset(
        {
            "MissingAccessKeyId",
            "IncompleteSignature",
            "SignatureDoesNotMatch",
            "ContentMD5NotMatched",
            "InvalidAccessKeyId.NotFound",
            "InvalidTimeStamp.Format",
            "InvalidTimeStamp.Expired",
            "SignatureNonceUsed",
        }
    ),
    id_fields=frozenset({"taskId"}),
    enumerations={"suggestion": frozenset({"pass", "review", "block"})},
)
