"""One function per Alibaba Green API action. They take the parsed request, raise typed errors and
return plain results; ``protocol.py`` turns those into bytes."""

from __future__ import annotations

import functools
import json
import secrets
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from ...config import AlibabaAccount, AlibabaSettings
from ...core.callbacks import CallbackURLError, check_url
from . import moderation
from .errors import bad_request
from .models import (
    IMAGE_LABELS,
    IMAGE_SCENES,
    TEXT_LABELS,
    AlibabaState,
    ImageFeedback,
    TaskResult,
    TextFeedback,
)

TEXT_CONTENT_MAX = 10_000
# Tasks per scan call: alibaba.max_scan_tasks, UNCONFIRMED(alibaba-image-max-tasks): 100 for images
# too (the reference sheet gives 100 for TextScan only). Task ids per ImageAsyncScanResults call:
# alibaba.max_result_ids, UNCONFIRMED(alibaba-results-max-ids).
#: Items per TextFeedback call. UNCONFIRMED(alibaba-feedback-max-items): the documents give no limit;
#: the scans' 100 tasks a call is taken, so one call cannot teach the feedback-based library thousands
#: of samples.
MAX_FEEDBACK_ITEMS = 100

#: Sends an asynchronous scan's result to a callback URL: (url, seed, task result).
ScanNotifier = Callable[[str, str, TaskResult], None]
#: Notifies the console's callback URL of the feedback a call stored (alibaba.notify_on_feedback).
FeedbackNotifier = Callable[[Sequence[ImageFeedback | TextFeedback]], None]


@dataclass(frozen=True, slots=True)
class AlibabaContext:
    """What a handler knows about the call it serves."""

    account: AlibabaAccount
    state: AlibabaState
    request_id: str
    received_at: float
    query: Mapping[str, str]
    verdicts: moderation.Verdicts = field(default_factory=moderation.Verdicts)
    notify_scan: ScanNotifier | None = None
    #: Why a callback URL may not be called (naming its host), or None when it may
    #: (callbacks.allowed_hosts); None: every URL may.
    callback_refusal: Callable[[str], str | None] | None = None
    #: None unless alibaba.notify_on_feedback is on.
    notify_feedback: FeedbackNotifier | None = None
    #: The alibaba section of the settings (strictness switches).
    settings: AlibabaSettings = field(default_factory=AlibabaSettings)


def image_scan_feedback(call: AlibabaContext, body: Any) -> None:
    """ImageScanFeedback: every field optional; ``suggestion`` needs ``scenes``."""
    _check_client_info(call)
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
            # isinstance first: a list or object is not hashable, and `in` a dict would raise.
            if not isinstance(scene, str) or scene not in IMAGE_SCENES:
                raise bad_request(f"scenes[{i}] must be one of: {', '.join(IMAGE_SCENES)}")
        scenes = tuple(dict.fromkeys(raw))
    if suggestion is not None and not scenes:
        raise bad_request("scenes is required when suggestion is given")
    label = _opt_str(obj, "label", "")
    if label is not None:
        # UNCONFIRMED(alibaba-label-per-scene): the per-scene lists are the emulator's reading; by default
        # any documented label goes in any scene (alibaba.strict_labels).
        allowed = _labels_of(scenes) if scenes and call.settings.strict_labels else IMAGE_LABELS
        if label not in allowed:
            where = f"scenes {', '.join(scenes)}" if scenes and call.settings.strict_labels else "any scene"
            raise bad_request(f"label {label!r} is not a label of {where}")
    machine = None
    if call.notify_feedback is not None:
        # Taken before the feedback changes anything: the notification's scanResult.
        machine = moderation.machine_image_result(
            call.state, call.verdicts, task_id=task_id, url=url, scenes=scenes
        )
    fb = ImageFeedback(
        request_id=call.request_id,
        received_at=call.received_at,
        task_id=task_id,
        suggestion=suggestion,
        url=url,
        scenes=scenes,
        label=label,
        note=note,
        machine=machine,
    )
    call.state.add_image_feedback(fb)
    if call.notify_feedback is not None:
        call.notify_feedback([fb])


@functools.lru_cache(maxsize=64)
def _labels_of(scenes: tuple[str, ...]) -> frozenset[str]:
    """Every label of these (known) scenes; a handful of combinations recur."""
    return frozenset().union(*(IMAGE_SCENES[s] for s in scenes))


def text_feedback(call: AlibabaContext, body: Any) -> None:
    """TextFeedback: ``taskId`` required. The docs say "JSON array" and show one object: both work."""
    _check_client_info(call)
    items = body if isinstance(body, list) else [body]
    if not items:
        raise bad_request("request body must not be an empty array")
    if len(items) > MAX_FEEDBACK_ITEMS:
        raise bad_request(f"request body has {len(items)} items, over {MAX_FEEDBACK_ITEMS}")
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
        data_id = _opt_str(obj, "dataId", prefix)
        parsed.append(
            TextFeedback(
                request_id=call.request_id,
                received_at=call.received_at,
                task_id=task_id,
                data_id=data_id,
                content=content,
                label=_opt_enum(obj, "label", tuple(sorted(TEXT_LABELS)), prefix),
                note=_opt_str(obj, "note", prefix),
            )
        )
    if call.notify_feedback is not None:
        # Taken before the feedback changes anything: the notifications' scanResult.
        parsed = [
            replace(
                fb,
                machine=moderation.machine_text_result(
                    call.state, call.verdicts, task_id=fb.task_id, content=fb.content, data_id=fb.data_id
                ),
            )
            for fb in parsed
        ]
    for fb in parsed:
        call.state.add_text_feedback(fb)
    if call.notify_feedback is not None:
        call.notify_feedback(parsed)


def _check_client_info(call: AlibabaContext) -> None:
    # UNCONFIRMED(alibaba-client-info): the provider's answer to a ClientInfo that is not a JSON object
    # (alibaba.strict_client_info: false accepts any).
    if not call.settings.strict_client_info:
        return
    query = call.query
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


# --- scans ---------------------------------------------------------------------------------------

_TASK_ALPHABET = string.ascii_letters + string.digits


def new_task_id(prefix: str) -> str:
    """Task ids look like ``img4ZQ0tm4OY1z8Ck2tQxJ1-1tnmXn`` (a prefix, then random characters)."""
    return (
        prefix
        + "".join(secrets.choice(_TASK_ALPHABET) for _ in range(22))
        + "-"
        + "".join(secrets.choice(_TASK_ALPHABET) for _ in range(6))
    )


def _scan_body(
    body: Any, allowed_scenes: Mapping[str, object] | tuple[str, ...], max_tasks: int
) -> tuple[tuple[str, ...], list[Any]]:
    obj = _object(body, "")
    scenes_raw = obj.get("scenes")
    if not isinstance(scenes_raw, list) or not scenes_raw:
        raise bad_request("scenes is required: a non-empty array")
    for i, scene in enumerate(scenes_raw):
        if not isinstance(scene, str) or scene not in allowed_scenes:
            raise bad_request(f"scenes[{i}] must be one of: {', '.join(allowed_scenes)}")
    tasks = obj.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise bad_request("tasks is required: a non-empty array")
    if len(tasks) > max_tasks:
        raise bad_request(f"tasks has {len(tasks)} items, over {max_tasks}")
    _opt_str(obj, "bizType", "")
    return tuple(dict.fromkeys(scenes_raw)), tasks


def _http_url(url: str) -> bool:
    try:
        return urlsplit(url).scheme in ("http", "https")
    except ValueError:  # e.g. a broken IPv6 literal, http://[::1
        return False


def _task_error(task: Any, msg: str) -> TaskResult:
    data_id = task.get("dataId") if isinstance(task, dict) else None
    return TaskResult(code=400, msg=msg, data_id=data_id if isinstance(data_id, str) else None)


def _image_task(
    call: AlibabaContext, task: Any, i: int, scenes: tuple[str, ...]
) -> tuple[TaskResult, bool]:
    """(the task's answer, whether it is a real task)."""
    if not isinstance(task, dict):
        return _task_error(task, f"tasks[{i}] must be a JSON object"), False
    url = task.get("url")
    if not isinstance(url, str) or not _http_url(url):
        return _task_error(task, f"tasks[{i}].url is required: an http(s) URL"), False
    data_id = task.get("dataId")
    if data_id is not None and not isinstance(data_id, str):
        return _task_error(task, f"tasks[{i}].dataId must be a string"), False
    result = TaskResult(
        code=200,
        msg="OK",
        data_id=data_id,
        task_id=new_task_id("img"),
        url=url,
        results=moderation.image_results(call.state, call.verdicts, url, scenes),
    )
    call.state.remember_result(result)
    return result, True


def image_sync_scan(call: AlibabaContext, body: Any) -> list[TaskResult]:
    """ImageSyncScan: one result per task, each scene judged (feedback library first)."""
    scenes, tasks = _scan_body(body, tuple(IMAGE_SCENES), call.settings.max_scan_tasks)
    return [_image_task(call, task, i, scenes)[0] for i, task in enumerate(tasks)]


def image_async_scan(call: AlibabaContext, body: Any) -> list[TaskResult]:
    """ImageAsyncScan: accepted tasks answer with their taskId; the result is kept for
    ImageAsyncScanResults and, with ``callback``, sent there signed with ``seed``."""
    obj = _object(body, "")
    callback = _opt_str(obj, "callback", "")
    seed = _opt_str(obj, "seed", "")
    refusal = None
    if callback is not None:
        try:
            # The dispatcher's own check: a URL it would refuse later must not get this far.
            check_url(callback)
        except CallbackURLError:
            raise bad_request("callback must be an http(s) URL") from None
        if not seed:
            raise bad_request("seed is required when callback is given")
        # Decided from the URL alone, before any lookup or connection. The provider calls any
        # host; the emulator only those it is told to (an emulator rule, not the provider's).
        refusal = call.callback_refusal(callback) if call.callback_refusal is not None else None
    scenes, tasks = _scan_body(obj, tuple(IMAGE_SCENES), call.settings.max_scan_tasks)
    answers = []
    for i, task in enumerate(tasks):
        result, ok = _image_task(call, task, i, scenes)
        if not ok:
            answers.append(result)
            continue
        if refusal is not None:
            answers.append(_task_error(task, f"callback: {refusal}"))
            continue
        call.state.add_scan_task(result)
        # Accepted: the verdict comes later (ImageAsyncScanResults, the callback).
        answers.append(replace(result, results=None))
        if callback is not None and seed is not None and call.notify_scan is not None:
            call.notify_scan(callback, seed, result)
    return answers


def image_async_scan_results(call: AlibabaContext, body: Any) -> list[TaskResult]:
    """ImageAsyncScanResults: the body is a JSON array of taskIds."""
    if not isinstance(body, list) or not body:
        raise bad_request("request body must be a non-empty JSON array of taskIds")
    if len(body) > call.settings.max_result_ids:
        raise bad_request(f"request body has {len(body)} taskIds, over {call.settings.max_result_ids}")
    out = []
    for i, task_id in enumerate(body):
        if not isinstance(task_id, str):
            raise bad_request(f"[{i}] must be a taskId string")
        result = call.state.scan_tasks.get(task_id)
        out.append(result if result is not None else moderation.unknown_task(task_id))
    return out


def text_scan(call: AlibabaContext, body: Any) -> list[TaskResult]:
    """TextScan: scenes antispam and ad; feedback library, custom libraries, verdicts, then normal."""
    scenes, tasks = _scan_body(body, moderation.TEXT_SCENES, call.settings.max_scan_tasks)
    answers: list[TaskResult] = []
    for i, task in enumerate(tasks):
        if not isinstance(task, dict):
            answers.append(_task_error(task, f"tasks[{i}] must be a JSON object"))
            continue
        content = task.get("content")
        if not isinstance(content, str) or not content:
            answers.append(_task_error(task, f"tasks[{i}].content is required: a string"))
            continue
        if len(content) > TEXT_CONTENT_MAX:
            answers.append(
                _task_error(task, f"tasks[{i}].content is longer than {TEXT_CONTENT_MAX} characters")
            )
            continue
        results, filtered = moderation.text_results(call.state, call.verdicts, content, scenes)
        data_id = task.get("dataId")
        answer = TaskResult(
            code=200,
            msg="OK",
            data_id=data_id if isinstance(data_id, str) else None,
            task_id=new_task_id("txt"),
            content=content,
            filtered_content=filtered,
            results=results,
        )
        call.state.remember_result(answer)
        answers.append(answer)
    return answers
