"""The only place that turns Alibaba results and errors into bytes, and request bytes into JSON.

- Success and business errors: HTTP 200, ``{"code", "msg", "requestId"[, "data"]}``.
- Gateway errors: HTTP 4xx, ``{"RequestId", "HostId", "Code", "Message", "Recommend"}``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from ...core.call import Call
from ...core.callbacks import Payload
from ...core.faults import edit_tree
from .errors import GATEWAY_CODES, AlibabaError, BusinessError, GatewayError, ThrottlingUser
from .models import AuditResult, HitContext, SceneResult, TaskResult

JSON_CONTENT_TYPE = "application/json;charset=utf-8"
NOTIFICATION_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=UTF-8"


def new_request_id() -> str:
    """The provider's request-id format: an upper-case UUID (version 4, as uuid.uuid4() makes them,
    without building a UUID object: that was a tenth of a call's own time)."""
    h = os.urandom(16).hex().upper()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


_VARIANT = "89AB"


def _json_bytes(value: Any) -> bytes:
    try:
        return _ENCODER.encode(value).encode()
    except UnicodeEncodeError:
        # A lone surrogate: a header's bytes that are not UTF-8 (aiohttp keeps them so) quoted in a
        # message, e.g. the server's StringToSign, or a fault rule's text. Escaped, so the answer
        # is still UTF-8 JSON of the same value.
        return _ASCII_ENCODER.encode(value).encode()


def _json_response(status: int, payload: dict[str, Any], request_id: str) -> web.Response:
    body = _json_bytes(payload)
    return web.Response(
        status=status,
        body=body,
        headers={
            "Content-Type": JSON_CONTENT_TYPE,
            "x-acs-request-id": request_id,
        },
    )


def success(request_id: str, data: Any = None) -> web.Response:
    if data is None:
        # The feedback APIs' answer, every call: the same bytes json.dumps makes, without it (a
        # request id is hex digits and dashes, nothing to escape).
        body = b'{"code":200,"msg":"OK","requestId":"' + request_id.encode() + b'"}'
        return web.Response(
            status=200,
            body=body,
            headers={"Content-Type": JSON_CONTENT_TYPE, "x-acs-request-id": request_id},
        )
    payload: dict[str, Any] = {"code": 200, "msg": "OK", "requestId": request_id, "data": data}
    return _json_response(200, payload, request_id)


def tasks(result: Sequence[TaskResult], call: Call) -> web.Response:
    """A scan's answer: one entry of ``data`` per task, in order."""
    return success(call.request_id, [task(t) for t in result])


def task(t: TaskResult) -> dict[str, Any]:
    """One task as the scan APIs (and a notification's ``scanResult``) show it."""
    out: dict[str, Any] = {"code": t.code, "msg": t.msg}
    for key, value in (
        ("dataId", t.data_id),
        ("taskId", t.task_id),
        ("url", t.url),
        ("content", t.content),
        ("filteredContent", t.filtered_content),
    ):
        if value is not None:
            out[key] = value
    if t.results is not None:
        out["results"] = [_scene(r) for r in t.results]
    return out


def _scene(r: SceneResult) -> dict[str, Any]:
    out: dict[str, Any] = {"scene": r.scene, "label": r.label, "suggestion": r.suggestion, "rate": r.rate}
    if r.details is not None:
        out["details"] = [
            {"label": d.label, "contexts": [_context(c) for c in d.contexts]} for d in r.details
        ]
    return out


def _context(c: HitContext) -> dict[str, Any]:
    out: dict[str, Any] = {"context": c.context}
    for key, value in (("libName", c.lib_name), ("libCode", c.lib_code), ("ruleType", c.rule_type)):
        if value is not None:
            out[key] = value
    return out


def acknowledged(result: object, call: Call) -> web.Response:
    """The answer of an action that returns no data (the feedback APIs)."""
    del result
    return success(call.request_id)


def business_error(err: BusinessError, request_id: str) -> web.Response:
    return _json_response(200, {"code": err.code, "msg": err.msg, "requestId": request_id}, request_id)


def gateway_error(err: GatewayError, request_id: str, host_id: str) -> web.Response:
    payload = {
        "RequestId": request_id,
        "HostId": host_id,
        "Code": err.code,
        "Message": err.text,
        "Recommend": (
            f"https://api.aliyun.com/troubleshoot?q={quote(err.code)}&product=Green&requestId={request_id}"
        ),
    }
    response = _json_response(err.http_status, payload, request_id)
    if isinstance(err, ThrottlingUser) and err.retry_after > 0:
        # Optional hint; the Tea SDK raises ThrottlingException only when it is present.
        response.headers["x-acs-retry-after"] = str(max(1, round(err.retry_after * 1000)))
    return response


def decode_json(body: bytes) -> Any:
    """Parse a request body. An empty body is an empty object (the Tea SDK sends none)."""
    if not body.strip():
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BusinessError(400, f"request body is not valid UTF-8 (byte {exc.start})") from None
    try:
        if text.startswith("\ufeff"):
            # As json.loads refuses it.
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        tree = _DECODER.decode(text)
        if _SURROGATE_ESCAPE.search(text) is not None:
            # Only a \u escape can name a surrogate (the bytes were valid UTF-8), and only a pair
            # of them a character: a lone one is no text, as bytes that are not UTF-8 are none.
            # UNCONFIRMED(alibaba-lone-surrogate): what the provider answers; a parameter error is
            # what a client can act on.
            _ENCODER.encode(tree).encode()
        return tree
    except UnicodeEncodeError as exc:
        bad = f"\\u{ord(exc.object[exc.start]):04x}"
        raise BusinessError(400, f"request body is not Unicode text: {bad} is a lone surrogate") from None
    except (json.JSONDecodeError, ValueError) as exc:
        raise BusinessError(400, f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BusinessError(400, "request body is nested too deeply") from None


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


# One decoder and one encoder for every call: json.loads and json.dumps build a new one (and its
# scanner) whenever they are given options, which cost as much as the decoding itself.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_ASCII_ENCODER = json.JSONEncoder(separators=(",", ":"))


def error(err: AlibabaError, request_id: str, host_id: str) -> web.Response:
    """Either family of error in its own shape."""
    if isinstance(err, BusinessError):
        return business_error(err, request_id)
    assert isinstance(err, GatewayError)
    return gateway_error(err, request_id, host_id)


def fault_error(spec: Mapping[str, Any], request_id: str, host_id: str) -> web.Response:
    """The error an ``error`` fault rule injects: a business code (an integer) or a gateway code,
    with the status, message and retry hint the rule gives."""
    code = spec["code"]
    status = spec.get("status")
    if isinstance(code, int):
        response = business_error(BusinessError(code, spec.get("message")), request_id)
        if status is not None:
            response.set_status(int(status))
        return response
    err = GATEWAY_CODES[code](spec.get("message"), status=None if status is None else int(status))
    if isinstance(err, ThrottlingUser):
        err.retry_after = float(spec.get("retryAfter", 0))
    response = gateway_error(err, request_id, host_id)
    if "retryAfter" in spec and "x-acs-retry-after" not in response.headers:
        response.headers["x-acs-retry-after"] = str(max(1, round(float(spec["retryAfter"]) * 1000)))
    return response


def modify_body(body: bytes, edit: Mapping[str, Any]) -> bytes:
    """A success body with fields removed or set, for contract-drift rules."""
    try:
        tree = json.loads(body)
    except ValueError:
        return body
    edited = edit_tree(tree, edit.get("remove", []), edit.get("set", {}))
    return _json_bytes(edited)


def notification_checksum(uid: str, seed: str, content: str) -> str:
    """Lowercase hex SHA-256 of uid + seed + content (the reference sheet, seed document 000)."""
    # surrogatepass: a seed set through the admin API may hold a lone surrogate; no answer fits it.
    return hashlib.sha256((uid + seed + content).encode("utf-8", "surrogatepass")).hexdigest()


def notification(
    uid: str,
    seed: str,
    scan_result: TaskResult,
    audit_result: AuditResult,
    *,
    wrong_checksum: bool = False,
    audit_key: str = "auditResult",
) -> Payload:
    """A result notification: a UTF-8 form with ``checksum`` and ``content`` (a JSON string).

    ``audit_key`` exists for the seed document's sample, which spells it ``auditReult``.
    """
    audit = {"suggestion": audit_result.suggestion, "labels": list(audit_result.labels)}
    return signed_form(uid, seed, {"scanResult": task(scan_result), audit_key: audit}, wrong_checksum)


def signed_form(uid: str, seed: str, content_value: Any, wrong_checksum: bool = False) -> Payload:
    """``checksum`` + ``content`` form fields; also how ImageAsyncScan sends a task's result to its
    ``callback`` (content: the task result, as ImageAsyncScanResults would show it)."""
    content = _ENCODER.encode(content_value)
    try:
        content.encode()
    except UnicodeEncodeError:
        # A lone surrogate (from an admin review's fields): escaped, the same JSON value.
        content = _ASCII_ENCODER.encode(content_value)
    checksum = notification_checksum(uid, seed, content)
    if wrong_checksum:
        # Still 64 lowercase hex digits, so only a receiver that really checks notices.
        checksum = notification_checksum(uid, seed + "-wrong", content)
    fields = {"checksum": checksum, "content": content}
    return Payload(
        body=urlencode(fields, encoding="utf-8").encode("ascii"),
        content_type=NOTIFICATION_CONTENT_TYPE,
        parsed={"checksum": checksum, "content": json.loads(content)},
    )