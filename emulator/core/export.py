"""Journal exports: HAR 1.2 (opens in a browser's network panel) and NDJSON (one entry a line)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from .journal import Entry, _body_text, _iso


def _mime(headers: Iterable[tuple[str, str]]) -> str:
    return next((v for k, v in headers if k.lower() == "content-type"), "")


def har_entry(e: Entry) -> dict[str, Any]:
    req_text, req_enc = _body_text(e.request_body)
    resp_text, resp_enc = _body_text(e.response_body)
    status = e.status or 0
    try:
        status_text = HTTPStatus(status).phrase if status else ""
    except ValueError:
        status_text = ""
    content: dict[str, Any] = {
        "size": len(e.response_body),
        "mimeType": _mime(e.response_headers),
        "text": resp_text,
    }
    if resp_enc == "base64":
        content["encoding"] = "base64"
    request: dict[str, Any] = {
        "method": e.method,
        "url": e.url,
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": [{"name": k, "value": v} for k, v in e.request_headers],
        "queryString": [{"name": k, "value": v} for k, v in e.query],
        "headersSize": -1,
        "bodySize": len(e.request_body),
    }
    if e.request_body:
        post: dict[str, Any] = {"mimeType": _mime(e.request_headers), "text": req_text}
        if req_enc == "base64":
            post["comment"] = "text is base64: the body is not UTF-8"
        request["postData"] = post
    ms = round(e.duration * 1000, 3)
    entry: dict[str, Any] = {
        "startedDateTime": _iso(e.time),
        "time": ms,
        "request": request,
        "response": {
            "status": status,
            "statusText": status_text,
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": [{"name": k, "value": v} for k, v in e.response_headers],
            "content": content,
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": len(e.response_body),
        },
        "cache": {},
        "timings": {"send": 0, "wait": ms, "receive": 0},
        "_emulator": {
            "id": e.id,
            "direction": e.direction,
            "provider": e.provider,
            "action": e.action,
            "account": e.account,
            "namespace": e.namespace,
            "fault": e.fault,
            "correlationId": e.correlation_id,
            "error": e.error,
        },
    }
    if e.error:
        entry["comment"] = e.error
    return entry


def to_har(entries: Iterable[Entry], version: str) -> dict[str, Any]:
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "emulator", "version": version},
            "entries": [har_entry(e) for e in entries],
        }
    }


def to_ndjson(entries: Iterable[Entry]) -> str:
    text = "".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in entries)
    # A lone surrogate (a header's bytes that are not UTF-8, as aiohttp keeps them) cannot be
    # UTF-8: written as its JSON escape, so one odd string cannot break the whole export.
    return text.encode("utf-8", "backslashreplace").decode()
