"""The only place that turns Tencent CI results and errors into bytes, and request bytes into fields.

Request bodies are untrusted XML. They are read with a hardened lxml parser (no entities resolved,
no network, no DTD loaded, no huge trees) and any DOCTYPE is refused outright, so neither an
external entity nor an entity-expansion bomb is ever processed; nesting is bounded while parsing.
The tree is then validated against the action's schema in ``schemas/``.

- Success: HTTP 200, ``<Response><RequestId>...</RequestId></Response>`` for a badcase, and
  ``<Response><JobsDetail>...</JobsDetail><RequestId/></Response>`` for a text audit and for the
  query of one (GET /text/auditing/<jobId>), and one ``JobsDetail`` per image for a batch image
  audit (POST /image/auditing).
- Errors: ``<Error><Code/><Message/><Resource/><RequestId/><TraceId/></Error>`` (all non-empty),
  plus ``x-ci-trace-id``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import itertools
import os
import re
import secrets
import threading
from collections.abc import Mapping
from copy import deepcopy
from datetime import datetime, timedelta, timezone
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import xmlschema
from aiohttp import web
from lxml import etree

from ...core.faults import RuleError
from .errors import (
    ERROR_CODES,
    InvalidArgument,
    MalformedXML,
    MissingRequestBodyError,
    SignatureDoesNotMatch,
    TencentError,
)
from .models import BADCASE_ELEMENTS, ImageAudit, TextAudit, moderation_time_ok

if TYPE_CHECKING:
    from ...core.call import Call

XML_CONTENT_TYPE = "application/xml"
SERVER = "tencent-ci"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
REQUEST_SCHEMA = SCHEMAS / "report-badcase-request.xsd"
#: A badcase is two levels deep; anything much deeper is an attack on the parser, refused while
#: parsing rather than after building the whole tree.
MAX_DEPTH = 16
_FEED_CHUNK = 16 * 1024
# The prolog CI's documented error body starts with.
_ERROR_PROLOG = b"<?xml version='1.0' encoding='utf-8' ?>\n"

#: What a value of each field must look like, for InvalidArgument messages.
FIELD_RULES: dict[str, str] = {
    "ContentType": "must be 1 (text) or 2 (image)",
    "Label": "must not be empty",
    "SuggestedLabel": "must not be empty",
    "Text": "must be base64 of UTF-8 text",
    "Url": "must be the image URL",
    "JobId": "must be text",
    "ModerationTime": "must be a time like 2021-08-07T12:12:12+08:00",
}

_sequence = itertools.count(1)


@functools.cache
def schema(name: str) -> xmlschema.XMLSchema:
    """A published schema by file name without ``.xsd`` (e.g. ``report-badcase-request``), loaded
    once."""
    return xmlschema.XMLSchema(str(SCHEMAS / f"{name}.xsd"))


def new_request_id(now: float) -> str:
    """base64 of ``<hex unix time>_<hex>_<hex>_<hex>``, e.g. ``59427f89_2488f7_63c8_27``."""
    # One draw of 40 random bits for the two random parts (24 and 16 bits).
    bits = int.from_bytes(os.urandom(5))
    raw = f"{int(now):x}_{bits >> 16:x}_{bits & 0xFFFF:x}_{next(_sequence):x}"
    return binascii.b2a_base64(raw.encode(), newline=False).decode()


def new_trace_id() -> str:
    # COS trace ids are base64 of a long hex string.
    return base64.b64encode(secrets.token_hex(48).encode()).decode()


# --- request ---------------------------------------------------------------------------------------


#: Every parser of untrusted bodies: no entities, no network, no DTD, no huge trees, and UTF-8
#: forced, so a prolog claiming another encoding cannot smuggle a DOCTYPE past the text check.
_HARDENED: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
    "encoding": "utf-8",
}


def _parser() -> etree.XMLPullParser:
    # A new parser per body: lxml parsers must not be shared between threads, and each server
    # started with serve_in_thread() runs its own loop in its own thread.
    return etree.XMLPullParser(events=("start", "end"), **_HARDENED)


def parse_xml(body: bytes, *, max_depth: int = MAX_DEPTH) -> etree._Element:
    """Parse an untrusted XML body: UTF-8 only, no DTD, bounded depth."""
    if not body.strip():
        raise MissingRequestBodyError()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedXML.because(f"The body is not UTF-8 (byte {exc.start}).") from None
    # A plain text search, before any parsing: XML spells it upper-case, lower-case is caught too so
    # no parser leniency lets one in. It also refuses the words inside a comment or CDATA section,
    # which no badcase needs (Text is base64).
    lowered = text.lower()
    if "<!doctype" in lowered or "<!entity" in lowered:
        raise MalformedXML.because("A DTD (<!DOCTYPE>) is not allowed.")
    try:
        root: etree._Element | None = etree.fromstring(body, _whole_parser())
    except etree.XMLSyntaxError:
        root = None
    if root is None or not _within_depth(root, max_depth):
        # The careful path names the exact cause, as met while parsing (the depth first).
        root = _parse_incrementally(body, max_depth)
    docinfo = root.getroottree().docinfo
    # Unreachable after the text check; kept as a backstop should that check ever be loosened.
    internal_dtd: etree.DTD | None = docinfo.internalDTD  # None when absent; lxml-stubs omit that
    if internal_dtd is not None or docinfo.public_id:
        raise MalformedXML.because("A DTD (<!DOCTYPE>) is not allowed.")
    return root


_parsers = threading.local()


def _whole_parser() -> etree.XMLParser:
    """The fast path's parser: the same hardening, one per thread (lxml parsers must not be shared
    between threads, and each server started with serve_in_thread() runs its own loop in its own
    thread). Building one per body was a sixth of a badcase's own time."""
    parser: etree.XMLParser | None = getattr(_parsers, "parser", None)
    if parser is None:
        parser = _parsers.parser = etree.XMLParser(**_HARDENED)
    return parser


def _within_depth(root: etree._Element, max_depth: int) -> bool:
    """No element deeper than ``max_depth`` (the root is at depth 1), asked of libxml2 in one XPath
    (compiled once per thread and depth)."""
    cache: dict[int, etree.XPath] | None = getattr(_parsers, "depth", None)
    if cache is None:
        cache = _parsers.depth = {}
    deeper = cache.get(max_depth)
    if deeper is None:
        deeper = cache[max_depth] = etree.XPath("boolean(/*" + "/*" * max_depth + ")")
    return not deeper(root)


def _parse_incrementally(body: bytes, max_depth: int) -> etree._Element:
    """Parse in chunks, counting depth as elements open, so a deep or broken body is refused with its
    first cause and never built whole."""
    parser = _parser()
    depth = 0

    def check_depth() -> None:
        nonlocal depth
        for event, _ in parser.read_events():
            depth += 1 if event == "start" else -1
            if depth > max_depth:
                raise MalformedXML.because(f"Elements are nested deeper than {max_depth} levels.")

    try:
        for offset in range(0, len(body), _FEED_CHUNK):
            parser.feed(body[offset : offset + _FEED_CHUNK])
            check_depth()
        root = parser.close()
    except etree.XMLSyntaxError as exc:
        # libxml2's own depth cap (256) can fire inside one chunk before the events are read: the
        # events parsed so far still name the real cause.
        check_depth()
        raise MalformedXML.because(f"{exc.msg}.") from None
    return root


_validators = threading.local()


def _libxml2_valid(schema: Path, root: etree._Element) -> bool:
    """Whether libxml2 finds ``root`` valid against ``schema``: the fast path. xmlschema takes some
    250 us per badcase (most of a call's time); libxml2 a few. A body it refuses still goes through
    xmlschema, whose error names the field. Validators are per thread, like parsers."""
    cache: dict[Path, etree.XMLSchema] | None = getattr(_validators, "cache", None)
    if cache is None:
        cache = _validators.cache = {}
    validator = cache.get(schema)
    if validator is None:
        validator = cache[schema] = etree.XMLSchema(etree.parse(str(schema)))
    return validator.validate(root)


def libxml2_valid(schema: Path, root: etree._Element) -> bool:
    """:func:`_libxml2_valid`, remembered for the last body this thread validated: the strict-mode
    check (contract.py) and then the decoder validate the same body against the same schema."""
    last: tuple[etree._Element, Path, bool] | None = getattr(_validators, "last", None)
    if last is not None and last[0] is root and last[1] == schema:
        return last[2]
    valid = _libxml2_valid(schema, root)
    _validators.last = (root, schema, valid)
    return valid


def decode_request(root: etree._Element) -> dict[str, str]:
    """The fields of a ``<Request>`` body whose documented elements validate against the published
    schema. Elements document 002 does not list, and a ModerationTime of another shape, are passed
    on as sent: whether CI refuses them is undocumented, so the handler decides
    (``tencent.strict_elements``, ``tencent.strict_moderation_time``)."""
    if not libxml2_valid(REQUEST_SCHEMA, root):
        checked = _documented_part(root)
        # xmlschema has the last word, and the error message.
        error = next(iter(schema("report-badcase-request").iter_errors(checked)), None)
        if error is not None:
            raise _schema_error(checked, error)
    return {child.tag: (child.text or "") for child in root if isinstance(child.tag, str)}


def _documented_part(root: etree._Element) -> etree._Element:
    """A copy of the ``<Request>`` without the elements the schema leaves to the handler: unknown
    ones, and a single ModerationTime of another shape."""
    if str(root.tag) != "Request":
        return root
    times = [c for c in root if c.tag == "ModerationTime"]
    drop_time = len(times) == 1 and len(times[0]) == 0 and not moderation_time_ok(times[0].text or "")
    copy = etree.Element("Request")
    for name, value in root.attrib.items():  # kept: the schema refuses them
        copy.set(name, value)
    for child in root:
        tag: Any = child.tag  # a comment's tag is a function, not a name
        if isinstance(tag, str) and tag in BADCASE_ELEMENTS and not (drop_time and tag == "ModerationTime"):
            copy.append(deepcopy(child))
    return copy


def element_tree(root: etree._Element) -> dict[str, Any]:
    """``<Request><A>1</A></Request>`` as ``{"Request": {"A": "1"}}`` (the journal's parsed form).
    A repeated element is a list (``<Input/><Input/>`` -> ``{"Input": ["", ""]}``), as
    cos-python-sdk-v5 reads them (xml2dict.py, Xml2Dict.updateDict)."""

    def inner(el: etree._Element) -> Any:
        if len(el) == 0:
            return el.text or ""
        out: dict[str, Any] = {}
        repeated: set[str] = set()
        for c in el:
            tag: Any = c.tag  # a comment's or entity's tag is a function, not a name
            if not isinstance(tag, str):
                continue
            value = inner(c)
            if tag not in out:
                out[tag] = value
            elif tag in repeated:
                out[tag].append(value)
            else:
                out[tag] = [out[tag], value]
                repeated.add(tag)
        return out if out else (el.text or "")

    return {root.tag: inner(root)}


@functools.cache
def _element_names(name: str) -> frozenset[str]:
    """Every element name a published schema declares, at any depth."""
    elements = schema(name).iter_components(xmlschema.XsdElement)
    return frozenset(str(getattr(e, "local_name", "")) for e in elements) - {""}


def _known_only(root: etree._Element, name: str) -> etree._Element:
    """A copy of ``root`` without the elements the schema ``name`` does not declare anywhere (their
    content with them). UNCONFIRMED(tencent-unknown-elements): whether CI refuses them is
    undocumented; ``tencent.strict_elements: false`` ignores them."""
    known = _element_names(name)
    copy = deepcopy(root)
    for elem in list(copy.iter()):
        tag: Any = elem.tag  # a comment's tag is a function, not a name
        parent = elem.getparent()
        if parent is not None and (not isinstance(tag, str) or tag not in known):
            parent.remove(elem)
    return copy


def decode_text_auditing(root: etree._Element, *, strict: bool = True) -> dict[str, Any]:
    """The ``<Request>`` of a text audit as nested dicts (``{"Input": {...}, "Conf": ...}``), after
    validating it against the schema. An empty container (the SDK's ``<Conf></Conf>``) is ``""``.
    ``strict=False`` drops elements the schema does not know first (``tencent.strict_elements``)."""
    if not strict:
        root = _known_only(root, "text-auditing-request")
    error = next(iter(schema("text-auditing-request").iter_errors(root)), None)
    if error is not None:
        raise _nested_schema_error(root, error)
    request: dict[str, Any] = element_tree(root)["Request"] or {}
    return request


def decode_image_auditing(root: etree._Element, *, strict: bool = True) -> dict[str, Any]:
    """The ``<Request>`` of a batch image audit, validated, with ``Input`` always a list (one entry
    per image, in order; an empty ``<Input/>`` is ``""``) and ``Conf`` a dict or absent.
    ``strict=False`` drops elements the schema does not know first (``tencent.strict_elements``)."""
    if not strict:
        root = _known_only(root, "image-auditing-request")
    error = next(iter(schema("image-auditing-request").iter_errors(root)), None)
    if error is not None:
        raise _nested_schema_error(root, error)
    request: dict[str, Any] = element_tree(root)["Request"] or {}
    # The schema lets Input and Conf come in any order (XSD 1.0 cannot also count them), so the
    # counts are checked here.
    if isinstance(request.get("Conf"), list):
        raise MalformedXML.because("Element Conf appears more than once in Request.")
    inputs = request.get("Input")
    if inputs is None:
        raise InvalidArgument.field("Input", "is required")
    request["Input"] = inputs if isinstance(inputs, list) else [inputs]
    return request


def _path(root: etree._Element, elem: etree._Element) -> str:
    names: list[str] = []
    node: etree._Element | None = elem
    while node is not None and node is not root:
        names.append(str(node.tag))
        node = node.getparent()
    return ".".join(reversed(names))


def _nested_schema_error(root: etree._Element, error: xmlschema.XMLSchemaValidationError) -> TencentError:
    """Like :func:`_schema_error`, for bodies with containers: fields are named by dotted path
    (``Input.Content``, ``Conf.CallbackType``)."""
    elem = cast("etree._Element | None", error.elem)
    if elem is None:
        return MalformedXML.because(f"{error.reason}.")
    if elem is root and str(elem.tag) != "Request":
        return MalformedXML.because(f"The root element must be Request, not {elem.tag}.")
    where = _path(root, elem)
    if isinstance(error, xmlschema.XMLSchemaChildrenValidationError):
        if error.invalid_child is None:
            expected = [e.local_name for e in (error.expected or ()) if getattr(e, "local_name", None)]
            name = str(expected[0]) if expected else "?"
            return InvalidArgument.field(f"{where}.{name}" if where else name, "is required")
        child = cast("etree._Element", error.invalid_child)
        tag = str(child.tag)
        if any(c.tag == tag for c in elem if c is not child):
            return MalformedXML.because(f"Element {tag} appears more than once in {elem.tag}.")
        return MalformedXML.because(f"Element {tag} is not part of {elem.tag}.")
    if len(elem) == 0 and not elem.attrib:
        return InvalidArgument.field(where, f"{error.reason}")
    return MalformedXML.because(f"Element {where}: {error.reason}.")


def _schema_error(root: etree._Element, error: xmlschema.XMLSchemaValidationError) -> TencentError:
    if isinstance(error, xmlschema.XMLSchemaChildrenValidationError):
        if error.invalid_child is None:
            expected = [e.local_name for e in (error.expected or ()) if getattr(e, "local_name", None)]
            return InvalidArgument.field(str(expected[0]) if expected else "Request", "is required")
        tag = str(error.invalid_child.tag)
        if tag in FIELD_RULES:
            return MalformedXML.because(f"Element {tag} appears more than once.")
        return MalformedXML.because(f"Element {tag} is not part of the Request.")
    # xmlschema types elem as an ElementTree element; it is the lxml element that was validated.
    elem = cast("etree._Element | None", error.elem)
    if elem is None:
        return MalformedXML.because(f"{error.reason}.")
    tag = str(elem.tag)
    if elem.getparent() is root and tag in FIELD_RULES and len(elem) == 0 and not elem.attrib:
        return InvalidArgument.field(tag, FIELD_RULES[tag])
    if elem is root and tag != "Request":
        return MalformedXML.because(f"The root element must be Request, not {tag}.")
    return MalformedXML.because(f"Element {tag}: {error.reason}.")


# --- response --------------------------------------------------------------------------------------


def _xml(root: etree._Element) -> bytes:
    return etree.tostring(root, encoding="utf-8")


class _Response(web.Response):
    """CI's answers name the connection: document 002's sample response lists ``Connection:
    keep-alive``. Sent only when the connection is kept open (not to a client that asked to close
    it), which aiohttp otherwise leaves implicit under HTTP/1.1."""

    async def prepare(self, request: web.BaseRequest) -> Any:
        if request.keep_alive and self.keep_alive is not False and "Connection" not in self.headers:
            self.headers["Connection"] = "keep-alive"
        return await super().prepare(request)


def _response(status: int, body: bytes, request_id: str, now: float) -> web.Response:
    return _Response(
        status=status,
        body=body,
        headers={
            "Content-Type": XML_CONTENT_TYPE,
            "Date": _http_date(int(now)),
            "Server": SERVER,
            "x-ci-request-id": request_id,
        },
    )


@functools.lru_cache(maxsize=4)
def _http_date(second: int) -> str:
    # Formatted once a second, not once a call.
    return formatdate(second, usegmt=True)


def success(result: object, call: Call) -> web.Response:
    """``<Response><RequestId/></Response>``: a badcase was recorded."""
    del result
    # The bytes lxml makes of it; a request id is base64, nothing to escape.
    body = b"<Response><RequestId>" + call.request_id.encode() + b"</RequestId></Response>"
    return _response(200, body, call.request_id, call.received_at)


#: CI's job times, e.g. ``2019-07-07T12:12:12+0800`` (the query API's documented sample); the
#: offset is China Standard Time's, which the samples show (UNCONFIRMED(tencent-job-time-zone) for
#: other regions).
_JOB_TZ = timezone(timedelta(hours=8))


def job_time(at: float) -> str:
    return datetime.fromtimestamp(at, _JOB_TZ).strftime("%Y-%m-%dT%H:%M:%S%z")


def text_auditing_success(audit: TextAudit, call: Call) -> web.Response:
    request_id = call.request_id
    root = etree.Element("Response")
    detail = etree.SubElement(root, "JobsDetail")

    def put(parent: etree._Element, name: str, value: object) -> etree._Element:
        el = etree.SubElement(parent, name)
        el.text = str(value)
        return el

    put(detail, "Code", "Success")
    put(detail, "Message", "Success")
    put(detail, "JobId", audit.job_id)
    put(detail, "State", "Success")
    put(detail, "CreationTime", job_time(audit.created_at))
    if audit.data_id is not None:
        put(detail, "DataId", audit.data_id)
    # Echoed as sent (base64), as cos-go-sdk-v5's TextAuditingJobDetail.Content suggests
    # (UNCONFIRMED(tencent-text-content-echo)).
    put(detail, "Content", audit.content)
    put(detail, "SectionCount", 1)
    put(detail, "Label", audit.label)
    put(detail, "Result", audit.result)
    put(detail, "Score", audit.score)
    for scene in audit.scenes:
        info = etree.SubElement(detail, f"{scene.scene}Info")
        put(info, "HitFlag", scene.hit_flag)
        put(info, "Count", 1 if scene.hit_flag else 0)
    # One section for the whole text: CI splits long texts, at boundaries it does not document.
    section = etree.SubElement(detail, "Section")
    put(section, "StartByte", 0)
    put(section, "Label", audit.label)
    put(section, "Result", audit.result)
    for scene in audit.scenes:
        info = etree.SubElement(section, f"{scene.scene}Info")
        put(info, "HitFlag", scene.hit_flag)
        put(info, "Score", scene.score)
        if scene.keywords:
            put(info, "Keywords", ",".join(scene.keywords))
    if audit.user_info:
        user = etree.SubElement(detail, "UserInfo")
        for name, value in audit.user_info.items():
            put(user, name, value)
    put(root, "RequestId", request_id)
    return _response(200, _xml(root), request_id, call.received_at)


def image_auditing_success(audits: list[ImageAudit], call: Call) -> web.Response:
    """One ``JobsDetail`` per image, in the order of the request's ``Input`` elements; the SDK makes
    them a list (cos_client.py, ci_auditing_image_batch: ``format_dict(data, ['JobsDetail'])``).
    Fields and their order follow cos-go-sdk-v5's ImageAuditingResult (ci.go) and the image query
    API's documented body; OCR text, Category and SubLabel are left out, since the emulator reads no
    image (UNCONFIRMED(tencent-image-omitted-fields) whether CI sends them empty)."""
    request_id = call.request_id
    root = etree.Element("Response")

    def put(parent: etree._Element, name: str, value: object) -> None:
        etree.SubElement(parent, name).text = str(value)

    for audit in audits:
        detail = etree.SubElement(root, "JobsDetail")
        put(detail, "Code", "Success")
        put(detail, "Message", "Success")
        put(detail, "JobId", audit.job_id)
        put(detail, "State", "Success")
        if audit.data_id is not None:
            put(detail, "DataId", audit.data_id)
        if audit.target is not None:
            # "Object: 创建任务使用 Object 时返回", "Url: 创建任务使用 Url 时返回" (image query API).
            put(detail, audit.source, audit.target)
        put(detail, "Label", audit.label)
        put(detail, "Result", audit.result)
        put(detail, "Score", audit.score)
        for scene in audit.scenes:
            info = etree.SubElement(detail, f"{scene.scene}Info")
            put(info, "HitFlag", scene.hit_flag)
            put(info, "Score", scene.score)
            if scene.hit_flag:
                # The scene's own label; CI may name a finer one here
                # (UNCONFIRMED(tencent-image-scene-label)).
                put(info, "Label", scene.scene)
        # 0: not compressed (LargeImageDetect is never needed: no image is fetched).
        put(detail, "CompressionResult", 0)
        if audit.user_info:
            user = etree.SubElement(detail, "UserInfo")
            for name, value in audit.user_info.items():
                put(user, name, value)
    put(root, "RequestId", request_id)
    return _response(200, _xml(root), request_id, call.received_at)


def error(err: TencentError, *, request_id: str, resource: str, now: float) -> web.Response:
    trace_id = new_trace_id()
    root = etree.Element("Error")
    for name, value in (
        ("Code", err.code),
        ("Message", err.text),
        ("Resource", resource),
        ("RequestId", request_id),
        ("TraceId", trace_id),
    ):
        etree.SubElement(root, name).text = _xml_safe(value)
    if isinstance(err, SignatureDoesNotMatch):
        etree.SubElement(root, "StringToSign").text = _xml_safe(err.string_to_sign)
        etree.SubElement(root, "FormatString").text = _xml_safe(err.format_string)
    response = _response(err.status, _ERROR_PROLOG + _xml(root), request_id, now)
    response.headers["x-ci-trace-id"] = trace_id
    return response


#: What XML 1.0 cannot carry. An error may quote the request: a path's %01 (decoded), a header's
#: bytes that are not UTF-8 (aiohttp keeps them as lone surrogates).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_safe(text: str) -> str:
    """``text`` with what XML cannot carry written as Python escapes (``\\x01``, ``\\udcff``)."""
    return _NOT_XML.sub(lambda m: ascii(m[0])[1:-1], text)


def fault_error(spec: Mapping[str, Any], *, request_id: str, resource: str, now: float) -> web.Response:
    """The CI error an ``error`` fault rule injects, with the status and retry hint it gives."""
    cls = ERROR_CODES[spec["code"]]
    # The signature error carries what the server computed; an injected one has nothing to show.
    err = SignatureDoesNotMatch("", "") if cls is SignatureDoesNotMatch else cls(spec.get("message"))
    response = error(err, request_id=request_id, resource=resource, now=now)
    if spec.get("status") is not None:
        response.set_status(int(spec["status"]))
    if "retryAfter" in spec:
        response.headers["Retry-After"] = str(max(1, round(float(spec["retryAfter"]))))
    return response


def modify_body(body: bytes, edit: Mapping[str, Any]) -> bytes:
    """A success body with elements removed or set (dotted paths), for contract-drift rules."""
    try:
        # Our own success bodies only, but parsed with the same care as anything else.
        root = etree.fromstring(body, etree.XMLParser(**_HARDENED))
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
            el.text = _xml_safe(str(value))
    return etree.tostring(root, encoding="utf-8", xml_declaration=True)


def check_edit(edit: Mapping[str, Any], where: str) -> None:
    """Raise RuleError unless every element a ``modify`` rule would create is one lxml can make: an
    XML name at each step of each ``set`` path, and a value XML can carry (checked when the rule is
    added, so the call it fires on does not fail)."""
    for path, value in edit.get("set", {}).items():
        try:
            for part in path.split("."):
                etree.Element(part)
            etree.Element("value").text = str(value)
        except ValueError as exc:  # lxml: "Invalid tag name", "All strings must be XML compatible"
            raise RuleError(f"{where}.set", f"{path!r}: {exc}") from None


def _find(root: etree._Element, path: str) -> list[etree._Element]:
    """Elements at a dotted path below the root (``RequestId``) or from it (``Response.RequestId``)."""
    parts = path.split(".")
    if parts and parts[0] == root.tag:
        parts = parts[1:]
    nodes = [root]
    for part in parts:
        nodes = [c for n in nodes for c in n if c.tag == part]
    return nodes
