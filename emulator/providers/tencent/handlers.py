"""One function per Tencent CI API action. They take the schema-valid request fields, raise typed
errors and return plain results; ``protocol.py`` turns those into bytes."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ...config import TencentAccount, TencentSettings
from .errors import InvalidArgument, MalformedXML, NotImplementedError_
from .models import (
    BADCASE_ELEMENTS,
    CONTENT_IMAGE,
    CONTENT_TEXT,
    KNOWN_LABELS,
    MAX_TEXT_JOBS,
    Badcase,
    ImageAudit,
    ImageSource,
    SceneResult,
    TencentState,
    TextAudit,
    moderation_time_ok,
)

#: The scenes a text audit reports, in the order CI's documents list their ``<...Info>`` blocks.
TEXT_SCENES = ("Porn", "Ads", "Illegal", "Abuse", "Politics", "Terrorism", "Teenager")
#: Scenes audited when the request names none (DetectType absent): the documented request sample's
#: ``Porn,Ads,Illegal,Abuse``. What a BizType's policy covers is console configuration
#: (UNCONFIRMED(tencent-default-scenes)).
DEFAULT_TEXT_SCENES = ("Porn", "Ads", "Illegal", "Abuse")
#: "文本编码前的原文长度不能超过10000个 utf8 编码字符" (CI, 提交文本审核任务).
MAX_TEXT_CHARS = 10_000
#: "长度限制为512字节" (cos_client.py, ci_auditing_text_submit, DataId).
MAX_DATA_ID_BYTES = 512
#: The scenes an image audit reports, in the order cos-go-sdk-v5's ImageAuditingResult lists its
#: ``<...Info>`` blocks (ci.go). CI documents no IllegalInfo or AbuseInfo for images
#: (UNCONFIRMED(tencent-image-scenes)).
IMAGE_SCENES = ("Porn", "Terrorism", "Politics", "Ads", "Teenager")
#: Scenes audited when the request names none: the ``PornInfo`` and ``AdsInfo`` of the documented
#: query response (DescribeAuditingPictureJob) and of the SDK's "1:porn, 8:ads" (cos_client.py,
#: ci_auditing_image_batch). What a BizType's policy covers is console configuration
#: (UNCONFIRMED(tencent-default-scenes)).
DEFAULT_IMAGE_SCENES = ("Porn", "Ads")
#: "单次请求图片数量不可超过100张" (CI, 图片批量审核).
MAX_BATCH_IMAGES = 100
#: The order in which an image Input's sources win when several are given (see batch_image_auditing).
IMAGE_SOURCES: tuple[ImageSource, ...] = ("Content", "Object", "Url")


@dataclass(frozen=True, slots=True)
class TencentContext:
    """What a handler knows about the call it serves."""

    account: TencentAccount
    state: TencentState
    request_id: str
    received_at: float
    #: From the Host header; empty when the client addressed the server by IP or a custom domain.
    bucket: str
    region: str
    strict_labels: bool
    #: tencent.confirm_after_seconds and tencent.text_labels.
    confirm_after: float | None = None
    text_labels: Mapping[str, str] = field(default_factory=dict)
    #: The tencent section of the settings (strictness switches).
    settings: TencentSettings = field(default_factory=TencentSettings)


def _check_badcase_strictness(call: TencentContext, fields: Mapping[str, str]) -> None:
    if call.settings.strict_elements:
        # UNCONFIRMED(tencent-unknown-elements): CI's answer to an element it does not document
        # (tencent.strict_elements: false ignores them).
        unknown = [name for name in fields if name not in BADCASE_ELEMENTS]
        if unknown:
            raise MalformedXML.because(f"Element {unknown[0]} is not part of the Request.")
    moderation_time = fields.get("ModerationTime", "").strip()
    if call.settings.strict_moderation_time and moderation_time:
        # UNCONFIRMED(tencent-moderation-time): document 002 shows one format and says nothing of
        # others (tencent.strict_moderation_time: false keeps any text as sent).
        if not moderation_time_ok(moderation_time):
            raise InvalidArgument.field("ModerationTime", "must be a time like 2021-08-07T12:12:12+08:00")


def report_badcase(call: TencentContext, fields: Mapping[str, str]) -> None:
    """POST /report/badcase: record one reported moderation mistake."""
    _check_badcase_strictness(call, fields)
    content_type = int(fields["ContentType"])
    text: str | None = None
    url = fields.get("Url", "").strip() or None
    if content_type == CONTENT_TEXT:
        text = _decode_text(fields.get("Text", ""))
    elif content_type == CONTENT_IMAGE:
        if url is None:
            raise InvalidArgument.field("Url", "is required when ContentType is 2 (image)")
        _check_image_url("Url", url)
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


def _check_image_url(name: str, url: str) -> None:
    # "图片文件链接支持的传输协议:HTTP、HTTPS" (CI, 图片批量审核); badcases take the same links.
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. a broken IPv6 literal, http://[::1
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidArgument.field(name, f"must be an http(s) URL, not {url!r}")


def _decode_text(raw: str) -> str:
    # The SDK leaves the encoding to the caller (cos_client.py: "需要填写base64的文本内容").
    value = "".join(raw.split())
    if not value:
        raise InvalidArgument.field("Text", "is required when ContentType is 1 (text)")
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidArgument.field("Text", "must be base64 of UTF-8 text") from None


def create_auditing_text_job(call: TencentContext, request: Mapping[str, Any]) -> TextAudit:
    """POST /text/auditing with Input.Content: audit the text now and answer with the result.

    The verdict: a confirmed badcase for the same text (its SuggestedLabel), else the first
    ``text_labels`` key the text contains, else Normal.
    """
    inp = _container(request.get("Input"))
    conf = _container(request.get("Conf"))
    given = [name for name in ("Object", "Url", "Content") if str(inp.get(name, "")).strip()]
    if not given:
        raise InvalidArgument.field("Input", "needs one of Object, Url or Content")
    if len(given) > 1:
        # "Content、Url 和 Object 不同时生效" (CI's C++ SDK guide); which one wins is undocumented, so
        # the emulator refuses the ambiguity rather than guess
        # (UNCONFIRMED(tencent-text-input-ambiguous)); relaxed, the image audit's documented order
        # decides (Content, then Object, then Url).
        if call.settings.strict_text_input:
            raise InvalidArgument.field(
                "Input", f"takes one of Object, Url and Content, not {' and '.join(given)}"
            )
        given = [name for name in IMAGE_SOURCES if name in given]
    if given[0] != "Content":
        raise NotImplementedError_(
            f"The emulator audits Input.Content synchronously; Input.{given[0]} (an asynchronous job "
            "on a stored or fetched file) is not emulated."
        )
    content = "".join(str(inp["Content"]).split())
    text = _decode_content(content)
    data_id = _data_id(inp, "Input")
    user_info = _user_info(inp)

    call.state.confirm_due(call.received_at, call.confirm_after)
    decided_by: str | None = None
    keywords: tuple[str, ...] = ()
    correction = call.state.correction_for(CONTENT_TEXT, text)
    if correction is not None:
        label, decided_by = correction.suggested_label, correction.request_id
    else:
        label = "Normal"
        for key, mapped in call.text_labels.items():
            if key and key in text:
                label, keywords = mapped, (key,)
                break
    hit = label != "Normal"
    audit = TextAudit(
        # Text job ids are "st" + 32 hex digits, as image ones are "si..." (UNCONFIRMED(tencent-job-ids)).
        job_id=f"st{uuid.uuid4().hex}",
        created_at=call.received_at,
        content=content,
        text=text,
        data_id=data_id,
        label=label,
        result=1 if hit else 0,
        # A verdict set by a person (badcase) or by the test author is certain.
        score=100 if hit else 0,
        scenes=_scene_results(
            label, _text(conf.get("DetectType")), TEXT_SCENES, DEFAULT_TEXT_SCENES, keywords
        ),
        user_info=user_info,
        decided_by=decided_by,
    )
    call.state.remember_text_job(audit)
    return audit


def describe_auditing_text_job(call: TencentContext, job_id: str) -> TextAudit:
    """GET /text/auditing/<jobId>: the job's result as it was answered when submitted."""
    audit = call.state.text_job(job_id)
    if audit is None:
        # CI documents no error for an unknown job; a bad request parameter is InvalidArgument
        # elsewhere, so it is here too (UNCONFIRMED(tencent-unknown-job): code and status).
        raise InvalidArgument.field(
            "JobId",
            f"no text auditing job {job_id!r} in this account (the emulator keeps each account's "
            f"newest {MAX_TEXT_JOBS:,})",
        )
    return audit


def batch_image_auditing(call: TencentContext, request: Mapping[str, Any]) -> list[ImageAudit]:
    """POST /image/auditing: audit each ``Input`` now and answer one result per image, in order.

    The emulator never looks at an image: a confirmed badcase (ContentType 2) for the same ``Url``
    gives its SuggestedLabel, anything else is Normal. Badcases name images only by URL, so an
    ``Object`` (a key in the bucket) or ``Content`` (base64 of the image) input is always Normal.
    """
    conf = _container(request.get("Conf"))
    if str(conf.get("Async", "")).strip() == "1":
        raise NotImplementedError_(
            "The emulator audits image batches synchronously; Conf.Async 1 (results by callback or "
            "query) is not emulated."
        )
    inputs = request.get("Input") or []
    if len(inputs) > MAX_BATCH_IMAGES:
        raise InvalidArgument.field(
            "Input", f"takes at most {MAX_BATCH_IMAGES} images a request, not {len(inputs)}"
        )
    detect_type = _text(conf.get("DetectType"))

    call.state.confirm_due(call.received_at, call.confirm_after)
    audits: list[ImageAudit] = []
    for index, value in enumerate(inputs, start=1):
        # XPath's numbering: Input[1] is the first.
        where = f"Input[{index}]"
        inp = _container(value)
        given = [name for name in IMAGE_SOURCES if str(inp.get(name, "")).strip()]
        if not given:
            raise InvalidArgument.field(where, "needs one of Object, Url or Content")
        # "传入多个时仅一个生效，按 Content，Object， Url 顺序" (cos_client.py, ci_auditing_image_batch;
        # CI, 图片批量审核): unlike the text audit, the winner is documented, so it is honoured.
        source = given[0]
        target: str | None = str(inp[source]).strip()
        correction: Badcase | None = None
        if source == "Content":
            _decode_image(f"{where}.Content", str(inp["Content"]))
            target = None
        elif source == "Url":
            _check_image_url(f"{where}.Url", str(target))
            correction = call.state.correction_for(CONTENT_IMAGE, str(target))
        label = correction.suggested_label if correction is not None else "Normal"
        hit = label != "Normal"
        audits.append(
            ImageAudit(
                # "si" + 32 hex digits, as CI's image job ids look (UNCONFIRMED(tencent-job-ids)).
                job_id=f"si{uuid.uuid4().hex}",
                created_at=call.received_at,
                data_id=_data_id(inp, where),
                source=source,
                target=target,
                label=label,
                result=1 if hit else 0,
                score=100 if hit else 0,
                scenes=_scene_results(label, detect_type, IMAGE_SCENES, DEFAULT_IMAGE_SCENES),
                user_info=_user_info(inp),
                decided_by=correction.request_id if correction is not None else None,
            )
        )
    return audits


def _decode_image(where: str, value: str) -> bytes:
    # "图片文件的内容，需要先经过 base64 编码" (cos_client.py, ci_auditing_image_batch): the caller
    # encodes, the SDK passes it through. What the bytes show is never judged.
    try:
        image = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument.field(where, "must be base64 of the image") from None
    if not image:
        raise InvalidArgument.field(where, "must not be empty")
    return image


def _container(value: Any) -> Mapping[str, Any]:
    # An element without children parses as its text ("" for the SDK's empty <Conf></Conf>).
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def _data_id(inp: Mapping[str, Any], where: str) -> str | None:
    raw = inp.get("DataId")
    # Echoed back unchanged, so not stripped.
    data_id = raw if isinstance(raw, str) and raw else None
    if data_id is not None and len(data_id.encode()) > MAX_DATA_ID_BYTES:
        raise InvalidArgument.field(f"{where}.DataId", f"must be at most {MAX_DATA_ID_BYTES} bytes")
    return data_id


def _user_info(inp: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in _container(inp.get("UserInfo")).items()}


def _scenes(detect_type: str | None, known: tuple[str, ...], default: tuple[str, ...]) -> tuple[str, ...]:
    if detect_type is None:
        return default
    wanted = {part.strip().lower() for part in detect_type.split(",")}
    if "all" in wanted:  # the Java SDK guide's example value
        return known
    # Unknown names are ignored rather than refused: CI publishes no closed list
    # (UNCONFIRMED(tencent-detect-type-unknown)).
    return tuple(s for s in known if s.lower() in wanted) or default


def _scene_results(
    label: str,
    detect_type: str | None,
    known: tuple[str, ...],
    default: tuple[str, ...],
    keywords: tuple[str, ...] = (),
) -> tuple[SceneResult, ...]:
    """One result per audited scene (``DetectType``, else ``default``); the verdict's scene hits.
    A verdict set by a person (badcase) or by the test author is certain: score 100."""
    hit = label != "Normal"
    scenes = _scenes(detect_type, known, default)
    if hit and label in known and label not in scenes:
        # The verdict's scene is reported even when not asked for, so the hit is visible.
        scenes = tuple(s for s in known if s in scenes or s == label)
    return tuple(
        SceneResult(s, 1, 100, keywords) if hit and s == label else SceneResult(s, 0, 0) for s in scenes
    )


def _decode_content(value: str) -> str:
    # cos_client.py, ci_auditing_text_submit base64-encodes Content itself; other clients must.
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidArgument.field("Input.Content", "must be base64 of UTF-8 text") from None
    if not text:
        raise InvalidArgument.field("Input.Content", "must not be empty")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidArgument.field(
            "Input.Content", f"must be at most {MAX_TEXT_CHARS} characters before encoding, not {len(text)}"
        )
    return text
