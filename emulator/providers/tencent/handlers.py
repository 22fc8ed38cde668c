"""One function per Tencent CI API action. They take the schema-valid request fields, raise typed
errors and return plain results; ``protocol.py`` turns those into bytes."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ...config import TencentAccount
from .errors import InvalidArgument
from .models import CONTENT_IMAGE, CONTENT_TEXT, KNOWN_LABELS, AccountState, Badcase


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler knows about the call it serves."""

    account: TencentAccount
    state: AccountState
    request_id: str
    received_at: float
    #: From the Host header; empty when the client addressed the server by IP or a custom domain.
    bucket: str
    region: str
    strict_labels: bool


def report_badcase(call: Call, fields: Mapping[str, str]) -> None:
    """POST /report/badcase: record one reported moderation mistake."""
    content_type = int(fields["ContentType"])
    text: str | None = None
    url = fields.get("Url", "").strip() or None
    if content_type == CONTENT_TEXT:
        text = _decode_text(fields.get("Text", ""))
    elif content_type == CONTENT_IMAGE:
        if url is None:
            raise InvalidArgument.field("Url", "is required when ContentType is 2 (image)")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidArgument.field("Url", f"must be an http(s) URL, not {url!r}")
    label = fields["Label"].strip()
    suggested = fields["SuggestedLabel"].strip()
    if call.strict_labels:
        for name, value in (("Label", label), ("SuggestedLabel", suggested)):
            if value not in KNOWN_LABELS:
                known = ", ".join(sorted(KNOWN_LABELS))
                raise InvalidArgument.field(name, f"{value!r} is not a known label (known: {known})")
    call.state.report(
        Badcase(
            request_id=call.request_id,
            received_at=call.received_at,
            bucket=call.bucket,
            region=call.region,
            content_type=content_type,
            label=label,
            suggested_label=suggested,
            text=text,
            url=url,
            job_id=fields.get("JobId", "").strip() or None,
            moderation_time=fields.get("ModerationTime", "").strip() or None,
        )
    )


def _decode_text(raw: str) -> str:
    # The SDK leaves the encoding to the caller (cos_client.py: "需要填写base64的文本内容").
    value = "".join(raw.split())
    if not value:
        raise InvalidArgument.field("Text", "is required when ContentType is 1 (text)")
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidArgument.field("Text", "must be base64 of UTF-8 text") from None
