"""Journal exports: HAR 1.2 (opens in a browser's network panel) and NDJSON (one entry a line).

Both are written entry by entry to a ``write`` coroutine in chunks of about :data:`CHUNK` bytes,
so an export holds one entry and one chunk at a time, not the whole document (built in one piece,
a HAR of a journal of large bodies took several times the journal's size, and the event loop
stalled meanwhile).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator
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
        # The real length, also when only the first bytes were kept (-1: unknown, as HAR has it).
        "bodySize": e.request_size,
    }
    if e.request_body:
        post: dict[str, Any] = {"mimeType": _mime(e.request_headers), "text": req_text}
        notes = []
        if req_enc == "base64":
            notes.append("text is base64: the body is not UTF-8")
        if e.request_body_size is not None:
            of = f"{e.request_body_size} bytes" if e.request_body_size >= 0 else "a body of unknown length"
            notes.append(f"truncated: the first {len(e.request_body)} bytes of {of}")
        if notes:
            post["comment"] = "; ".join(notes)
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
            "requestBodyTruncated": e.request_body_size is not None,
            "violations": e.violations,
        },
    }
    if e.error:
        entry["comment"] = e.error
    return entry


#: About how many bytes an export writes at a time.
CHUNK = 64 * 1024

Write = Callable[[bytes], Awaitable[Any]]


def har_pieces(entries: Iterable[Entry], version: str) -> Iterator[str]:
    """A HAR 1.2 document as text pieces: the log's head, one piece per entry, the tail."""
    creator = json.dumps({"name": "emulator", "version": version})
    yield f'{{"log": {{"version": "1.2", "creator": {creator}, "entries": ['
    sep = ""
    for e in entries:
        yield sep + json.dumps(har_entry(e))
        sep = ", "
    yield "]}}"


def ndjson_pieces(entries: Iterable[Entry]) -> Iterator[str]:
    for e in entries:
        yield json.dumps(e.to_dict(), ensure_ascii=False) + "\n"


async def write_pieces(write: Write, pieces: Iterable[str]) -> int:
    """Write ``pieces`` as UTF-8 in chunks of about :data:`CHUNK` bytes; returns the bytes written.
    Between chunks the event loop serves other calls (a large export must not stall them)."""
    chunk: list[bytes] = []
    size = total = 0
    for piece in pieces:
        # A lone surrogate (JSON's "\\udc80" parses to one) cannot be UTF-8: written as the JSON
        # escape it came from, so one odd string cannot break the whole export.
        data = piece.encode("utf-8", "backslashreplace")
        chunk.append(data)
        size += len(data)
        if size >= CHUNK:
            await write(b"".join(chunk))
            total += size
            chunk.clear()
            size = 0
            await asyncio.sleep(0)
    if chunk:
        await write(b"".join(chunk))
        total += size
    return total
