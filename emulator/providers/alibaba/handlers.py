"""One function per Alibaba Green API action. They take the parsed request, raise typed errors and
return plain results; ``protocol.py`` turns those into bytes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...config import AlibabaAccount
from .errors import bad_request
from .models import (
    IMAGE_LABELS,
    IMAGE_SCENES,
    TEXT_LABELS,
    AccountState,
    ImageFeedback,
    TextFeedback,
)

TEXT_CONTENT_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler knows about the call it serves."""

    account: AlibabaAccount
    state: AccountState
    request_id: str
    received_at: float
    query: Mapping[str, str]


def image_scan_feedback(call: Call, body: Any) -> None:
    """ImageScanFeedback: every field optional; ``suggestion`` needs ``scenes``."""
    _check_client_info(call.query)
    obj = _object(body, "")
    task_id = _opt_str(obj, "taskId", "")
    url = _opt_str(obj, "url", "")
    note = _opt_str(obj, "note", "")
    suggestion = _opt_enum(obj, "suggestion", ("pass", "block"), "")
    scenes: tuple[str, ...] = ()
    if "scenes" in obj and obj["scenes"] is not None:
        raw = obj["scenes"]
        if not isinstance(raw, list):
            raise bad_request("scenes must be an array of strings")
        for i, scene in enumerate(raw):
            if scene not in IMAGE_SCENES:
                raise bad_request(f"scenes[{i}] must be one of: {', '.join(IMAGE_SCENES)}")
        scenes = tuple(dict.fromkeys(raw))
    if suggestion is not None and not scenes:
        raise bad_request("scenes is required when suggestion is given")
    label = _opt_str(obj, "label", "")
    if label is not None:
        allowed = frozenset().union(*(IMAGE_SCENES[s] for s in scenes)) if scenes else IMAGE_LABELS
        if label not in allowed:
            where = f"scenes {', '.join(scenes)}" if scenes else "any scene"
            raise bad_request(f"label {label!r} is not a label of {where}")
    call.state.add_image_feedback(
        ImageFeedback(
            request_id=call.request_id,
            received_at=call.received_at,
            task_id=task_id,
            suggestion=suggestion,
            url=url,
            scenes=scenes,
            label=label,
            note=note,
        )
    )


def text_feedback(call: Call, body: Any) -> None:
    """TextFeedback: ``taskId`` required. The docs say "JSON array" and show one object: both work."""
    _check_client_info(call.query)
    items = body if isinstance(body, list) else [body]
    if not items:
        raise bad_request("request body must not be an empty array")
    parsed: list[TextFeedback] = []
    for i, item in enumerate(items):
        prefix = f"[{i}]." if isinstance(body, list) else ""
        obj = _object(item, prefix)
        task_id = _opt_str(obj, "taskId", prefix)
        if not task_id:
            raise bad_request(f"{prefix}taskId is required")
        content = _opt_str(obj, "content", prefix)
        if content is not None and len(content) > TEXT_CONTENT_MAX:
            raise bad_request(
                f"{prefix}content is longer than {TEXT_CONTENT_MAX} characters ({len(content)})"
            )
        parsed.append(
            TextFeedback(
                request_id=call.request_id,
                received_at=call.received_at,
                task_id=task_id,
                data_id=_opt_str(obj, "dataId", prefix),
                content=content,
                label=_opt_enum(obj, "label", tuple(sorted(TEXT_LABELS)), prefix),
                note=_opt_str(obj, "note", prefix),
            )
        )
    for fb in parsed:
        call.state.add_text_feedback(fb)


def _check_client_info(query: Mapping[str, str]) -> None:
    # The docs name it clientInfo, the SDKs send ClientInfo: accept both.
    for name in ("ClientInfo", "clientInfo"):
        if name in query:
            try:
                value = json.loads(query[name])
            except ValueError:
                value = None
            if not isinstance(value, dict):
                raise bad_request(f"{name} must be a JSON object")


def _object(value: Any, prefix: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        where = prefix.rstrip(".") or "request body"
        raise bad_request(f"{where} must be a JSON object")
    return value


def _opt_str(obj: Mapping[str, Any], name: str, prefix: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"{prefix}{name} must be a string")
    return value


def _opt_enum(obj: Mapping[str, Any], name: str, allowed: tuple[str, ...], prefix: str) -> str | None:
    value = _opt_str(obj, name, prefix)
    if value is not None and value not in allowed:
        raise bad_request(f"{prefix}{name} must be one of: {', '.join(allowed)}")
    return value
