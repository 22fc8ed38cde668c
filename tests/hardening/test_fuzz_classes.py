"""The classes of input that found 500s, tried wherever the providers and the admin API read them:

- numbers written with digits that are not ASCII (``str.isdigit`` takes ``²`` and ``١``, ``int``
  only the second): in signature times, dates, ports, ContentType, numbers sent as strings;
- malformed URLs, a broken IPv6 literal (``http://[::1``) first: in every URL field and callback;
- lone surrogates: ``\\ud800`` escapes in JSON, ``&#xD800;`` references and CESU-8 bytes in XML,
  header bytes that are not UTF-8 (aiohttp keeps those as lone surrogates);
- deep nesting: JSON and XML, provider bodies and admin bodies.

Whatever arrives, the answer is the provider's own shape (problem+json on the admin API), never a
5xx (but CI's documented 501 for asynchronous audits), and every export of the journal still reads.
Each example starts from an empty journal, so the exports read only what that example left.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.testing.payloads import b64
from emulator.testing.signers import cos_sdk_headers, tea_sdk_headers

from .conftest import alibaba_shape, tencent_shape
from .test_fuzz import FUZZ, NOW, App, app

__all__ = ["app"]  # the fixture, imported for these tests

CLASSES = settings(FUZZ, max_examples=120)

# --- the classes -----------------------------------------------------------------------------------

#: Digits of other scripts (int() reads them), superscripts and circled digits (isdigit() says yes,
#: int() says no: the q-sign-time 500), and mathematical digits outside the BMP.
OTHER_DIGITS = "١٢٣٩०१९０１９⁰¹²³①②߀߁𝟎𝟏𝟗"


@st.composite
def other_digits(draw: st.DrawFn, number: str) -> str:
    """``number`` with one or more of its ASCII digits written in another script."""
    places = [i for i, c in enumerate(number) if c in "0123456789"]
    # What is drawn does not depend on ``number`` (a signature differs from run to run).
    swaps = draw(
        st.lists(st.tuples(st.integers(0, 1_000), st.sampled_from(OTHER_DIGITS)), min_size=1, max_size=3)
    )
    if not places:
        return number + swaps[0][1]
    chars = list(number)
    for at, digit in swaps:
        chars[places[at % len(places)]] = digit
    return "".join(chars)


#: urllib raises ValueError on the first group (a broken IPv6 literal, a netloc NFKC turns into a
#: delimiter, a port out of range once read); the rest parse, but are no fetchable http(s) URL.
BROKEN_URLS = [
    "http://[::1",
    "https://[::1/1.jpg",
    "http://[",
    "http://]/",
    "http://[::1]x/1.jpg",
    "http://[zz::1]/",
    "http://[v1.x]/",
    "http://a\uff03b/1.jpg",
    "http://a\u2100b/",
    "http://a:99999/1.jpg",
    "http://a:-1/",
    "http://a:x/",
    "http://a:\u0669/",
    "http://",
    "http:///1.jpg",
    "http://:80/",
    "http://@/",
    "//a/1.jpg",
    "http:a",
    "javascript:alert(1)",
    "file:///etc/passwd",
    "http://a b/",
    "http://\uff41.com/1.jpg",
    "http://xn--/",
    "http://" + "a" * 300 + "/",
]
broken_urls = st.sampled_from(BROKEN_URLS) | st.builds(
    "{}://{}{}".format,
    st.sampled_from(["http", "https", "HTTP"]),
    st.text(alphabet="[]:@%#?/.a1 \uff03\u2100\u0669", max_size=10),
    st.sampled_from(["", "/1.jpg"]),
)
#: Callbacks are sent: only refused ones or loopback port 9 (nobody listens) may be generated.
CALLBACKS = [
    *(u for u in BROKEN_URLS if "a" not in u.partition("//")[2].partition("/")[0]),
    "http://[::1",
    "http://127.0.0.1:99999/cb",
    "http://127.0.0.1:\u0669/cb",
    "http://127.0.0.1:\u00b9/cb",
    "http://[::1]:9/cb",
    "http://[::1]x:9/cb",
    "http://127.0.0.1:9/cb\ud800",
]

SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff", "\udcff", "\ude00\ud83d"]


@st.composite
def surrogate_text(draw: st.DrawFn) -> str:
    return draw(st.text(max_size=4)) + draw(st.sampled_from(SURROGATES)) + draw(st.text(max_size=4))


#: Around Python's recursion limit (1,000) and past it; bodies are capped at 16 KiB here.
DEPTHS = [20, 500, 900, 960, 990, 1_000, 1_100, 5_000]
DEEP = "\x00deep\x00"


def deep_json(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def json_body(value: Any, deep: str | None = None) -> bytes:
    """JSON with lone surrogates escaped (as ensure_ascii does) and the DEEP marker replaced."""
    text = json.dumps(value)
    if deep is not None:
        text = text.replace(json.dumps(DEEP), deep)
    return text.encode()


# --- exports -------------------------------------------------------------------------------------

#: Mutating admin calls send JSON (cross-site protection refuses other types).
JSON_HEADERS = {"Content-Type": "application/json"}


def clear_journal(app: App) -> None:
    status, _, _ = app.call("DELETE", "/_emulator/requests", headers=JSON_HEADERS)
    assert status == 200


def exports_read(app: App) -> None:
    """Every view of the journal answers 200 with what it says it is."""
    for path in ("/_emulator/requests", "/_emulator/requests.har", "/_emulator/callbacks"):
        status, body, _ = app.call("GET", path)
        assert status == 200, (path, body[:300])
        json.loads(body)
    status, body, _ = app.call("GET", "/_emulator/requests.ndjson")
    assert status == 200, body[:300]
    for line in body.decode("utf-8").splitlines():
        json.loads(line)


# --- Alibaba bodies --------------------------------------------------------------------------------

#: Per action: a body the SDKs would send, and the fields to spoil (dotted paths).
ALIBABA: dict[str, tuple[Any, list[str]]] = {
    "/green/image/feedback": (
        {
            "taskId": "img-1",
            "url": "http://a/1.jpg",
            "scenes": ["porn"],
            "suggestion": "block",
            "label": "porn",
            "note": "n",
        },
        ["taskId", "url", "scenes.0", "suggestion", "label", "note"],
    ),
    "/green/text/feedback": (
        {"taskId": "txt-1", "dataId": "d", "content": "buy now", "label": "spam", "note": "n"},
        ["taskId", "dataId", "content", "label", "note"],
    ),
    "/green/image/scan": (
        {"scenes": ["porn"], "bizType": "b", "tasks": [{"dataId": "d", "url": "http://a/1.jpg"}]},
        ["scenes.0", "bizType", "tasks.0.dataId", "tasks.0.url"],
    ),
    "/green/image/asyncscan": (
        {
            "scenes": ["porn"],
            "callback": "http://127.0.0.1:9/cb",
            "seed": "s",
            "tasks": [{"dataId": "d", "url": "http://a/1.jpg"}],
        },
        ["scenes.0", "callback", "seed", "tasks.0.dataId", "tasks.0.url"],
    ),
    "/green/image/results": (["img-1", "img-2"], ["0", "1"]),
    "/green/text/scan": (
        {"scenes": ["antispam"], "tasks": [{"dataId": "d", "content": "hello 123"}]},
        ["scenes.0", "tasks.0.dataId", "tasks.0.content"],
    ),
}


def _get(tree: Any, path: str) -> Any:
    for part in path.split("."):
        tree = tree[int(part)] if isinstance(tree, list) else tree[part]
    return tree


def _set(tree: Any, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        tree = tree[int(part)] if isinstance(tree, list) else tree[part]
    if isinstance(tree, list):
        tree[int(leaf)] = value
    else:
        tree[leaf] = value


@st.composite
def alibaba_cases(draw: st.DrawFn) -> tuple[str, bytes, str, str]:
    """(path, body, spoiled field, class)."""
    path = draw(st.sampled_from(sorted(ALIBABA)))
    base, fields = ALIBABA[path]
    body = json.loads(json.dumps(base))
    field = draw(st.sampled_from(fields))
    kind = draw(st.sampled_from(["digits", "url", "surrogate", "surrogate-key", "deep"]))
    deep = None
    if kind == "digits" and field == "callback":
        # The port only: NFKC makes "1\u06697.0.0.1" the address 197.0.0.1, off this machine.
        _set(body, field, "http://127.0.0.1:" + draw(other_digits("9")) + "/cb")
    elif kind == "digits":
        _set(body, field, draw(other_digits(str(_get(body, field)))))
    elif kind == "url":
        _set(body, field, draw(st.sampled_from(CALLBACKS) if field == "callback" else broken_urls))
    elif kind == "surrogate":
        _set(body, field, draw(surrogate_text()))
    elif kind == "surrogate-key":
        parent, _, _ = field.rpartition(".")
        holder = _get(body, parent) if parent else body
        if not isinstance(holder, dict):
            holder = body if isinstance(body, dict) else None
        if holder is None:
            kind = "surrogate"
            _set(body, field, draw(surrogate_text()))
        else:
            holder[draw(surrogate_text())] = "x"
    else:
        _set(body, field, DEEP)
        deep = deep_json(draw(st.sampled_from(DEPTHS)), draw(st.sampled_from(["list", "dict"])))
    return path, json_body(body, deep), field, kind


def _urllib_refuses(url: Any) -> bool:
    try:
        urlsplit(url)
    except ValueError:
        return True
    return False


@CLASSES
@given(case=alibaba_cases())
def test_alibaba_fields(app: App, case: tuple[str, bytes, str, str]) -> None:
    path, raw, field, kind = case
    clear_journal(app)
    status, answer = app.post(path, raw, tea_sdk_headers(raw, NOW, path=path))
    assert status == 200, answer
    doc = alibaba_shape(status, answer)
    if kind.startswith("surrogate"):
        # Not text: refused whole, as bytes that are not UTF-8 are.
        assert doc["code"] == 400 and "lone surrogate" in doc["msg"], doc
    if kind == "url" and field in ("callback", "tasks.0.url"):
        value = json.loads(raw)
        url = _get(value, field)
        if _urllib_refuses(url):
            # The call's parameter error (a callback), or the task's (an image URL).
            codes = [doc["code"]] + [t["code"] for t in doc.get("data", [])]
            assert 400 in codes, doc
    exports_read(app)


# --- Tencent bodies ----------------------------------------------------------------------------------

BADCASE = (
    "<Request><ContentType>{ContentType}</ContentType><Label>{Label}</Label>"
    "<SuggestedLabel>{SuggestedLabel}</SuggestedLabel><Url>{Url}</Url><Text>{Text}</Text>"
    "<JobId>{JobId}</JobId><ModerationTime>{ModerationTime}</ModerationTime></Request>"
)
TEXT_AUDIT = (
    "<Request><Input><Content>{Content}</Content><DataId>{DataId}</DataId>"
    "<UserInfo><TokenId>{TokenId}</TokenId></UserInfo></Input>"
    "<Conf><DetectType>{DetectType}</DetectType><BizType>{BizType}</BizType></Conf></Request>"
)
IMAGE_AUDIT = (
    "<Request><Input><Url>{Url}</Url><DataId>{DataId}</DataId></Input>"
    "<Input><Content>{Content}</Content></Input>"
    "<Conf><DetectType>{DetectType}</DetectType><Async>{Async}</Async></Conf></Request>"
)
TENCENT: dict[str, tuple[str, dict[str, str]]] = {
    "/report/badcase": (
        BADCASE,
        {
            "ContentType": "2",
            "Label": "Porn",
            "SuggestedLabel": "Normal",
            "Url": "http://a/1.jpg",
            "Text": b64("hello"),
            "JobId": "st1",
            "ModerationTime": "2021-08-07T12:12:12+08:00",
        },
    ),
    "/text/auditing": (
        TEXT_AUDIT,
        {
            "Content": b64("hello 123"),
            "DataId": "d",
            "TokenId": "t",
            "DetectType": "Porn,Ads",
            "BizType": "b",
        },
    ),
    "/image/auditing": (
        IMAGE_AUDIT,
        {"Url": "http://a/1.jpg", "DataId": "d", "Content": b64("img"), "DetectType": "Porn", "Async": "0"},
    ),
}
#: Character references XML 1.0 forbids: surrogates, controls, non-characters, past U+10FFFF.
BAD_REFERENCES = ["&#xD800;", "&#55296;", "&#xDFFF;", "&#0;", "&#x1;", "&#xFFFE;", "&#x110000;"]


@st.composite
def tencent_cases(draw: st.DrawFn) -> tuple[str, bytes, str]:
    """(path, body, class)."""
    path = draw(st.sampled_from(sorted(TENCENT)))
    template, defaults = TENCENT[path]
    values = {k: escape(v) for k, v in defaults.items()}
    field = draw(st.sampled_from(sorted(values)))
    if path == "/report/badcase" and draw(st.booleans()):
        values["ContentType"] = "1"  # a text badcase: Text is read
    kind = draw(st.sampled_from(["digits", "url", "reference", "cesu", "deep"]))
    encoding = "utf-8"
    if kind == "digits":
        values[field] = draw(other_digits(defaults[field]))
    elif kind == "url":
        values[field] = escape(draw(broken_urls))
    elif kind == "reference":
        values[field] = draw(st.text(max_size=3).map(escape)) + draw(st.sampled_from(BAD_REFERENCES))
    elif kind == "cesu":
        # A surrogate's own three bytes: not UTF-8.
        values[field] = escape(draw(surrogate_text()))
        encoding = "surrogatepass"
    else:
        depth = draw(st.sampled_from([15, 16, 17, 100, 300, 1_000]))
        values[field] = "<a>" * depth + "</a>" * depth
    body = template.format(**values).encode("utf-8", encoding if encoding != "utf-8" else "strict")
    return path, body, kind


@CLASSES
@given(case=tencent_cases())
def test_tencent_fields(app: App, case: tuple[str, bytes, str]) -> None:
    path, body, kind = case
    clear_journal(app)
    status, answer = app.post(path, body, cos_sdk_headers(body, NOW, path=path))
    if status == 501:
        # CI's documented answer for an asynchronous audit (Input.Url of a text, Conf.Async 1).
        assert b"<Code>NotImplemented</Code>" in answer, answer[:300]
    else:
        fields = tencent_shape(status, answer)
        if kind in ("reference", "cesu", "deep"):
            # Not XML CI reads: refused while parsing.
            assert status == 400 and fields["Code"] == "MalformedXML", fields
    exports_read(app)


# --- headers and paths, as bytes -------------------------------------------------------------------


def raw_request(method: str, path: str, headers: dict[str, bytes], body: bytes = b"") -> bytes:
    """An HTTP/1.1 request as bytes: Host, Content-Length and Connection: close added unless given."""
    lines = [f"{method} {path} HTTP/1.1".encode()]
    names = {k.lower() for k in headers}
    if "host" not in names:
        lines.append(b"Host: 127.0.0.1")
    if "content-length" not in names:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    lines += [k.encode() + b": " + v for k, v in headers.items()]
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def answered_by_aiohttp(status: int, answer: bytes) -> bool:
    """aiohttp's own parser refused the head (a Content-Length it cannot read): plain text, 400."""
    return status == 400 and not answer.lstrip().startswith((b"{", b"<"))


@st.composite
def not_utf8(draw: st.DrawFn, value: str) -> bytes:
    """``value``'s bytes with a byte that is no UTF-8 put in (aiohttp reads it as a surrogate)."""
    raw = value.encode()
    at = draw(st.integers(0, len(raw)))
    return raw[:at] + bytes([draw(st.integers(0x80, 0xFF))]) + raw[at:]


ALIBABA_HEADERS = [
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
    "x-acs-version",
    "x-acs-action",
    "content-type",
    "accept",
    "authorization",
    "Date",
    "Content-MD5",
]


def alibaba_signed(body: bytes) -> dict[str, str]:
    headers = tea_sdk_headers(body, NOW, path="/green/image/feedback")
    # Not signed by ACS3, read by the older scheme: present so that they can be spoiled.
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    return {**headers, "Date": "Wed, 25 Nov 2026 09:46:40 GMT", "Content-MD5": md5}


@CLASSES
@given(data=st.data(), name=st.sampled_from([*ALIBABA_HEADERS, "Content-Length"]))
def test_alibaba_header_digits(app: App, data: st.DataObject, name: str) -> None:
    body = b'{"taskId": "img-1"}'
    headers = {k: v.encode() for k, v in alibaba_signed(body).items()}
    original = str(len(body)) if name == "Content-Length" else headers[name].decode()
    headers[name] = data.draw(other_digits(original)).encode()
    clear_journal(app)
    status, answer = app.raw(raw_request("POST", "/green/image/feedback", headers, body))
    if not answered_by_aiohttp(status, answer):
        alibaba_shape(status, answer)
    exports_read(app)


@CLASSES
@given(data=st.data(), name=st.sampled_from(ALIBABA_HEADERS))
def test_alibaba_header_bytes(app: App, data: st.DataObject, name: str) -> None:
    body = b'{"taskId": "img-1"}'
    headers = {k: v.encode() for k, v in alibaba_signed(body).items()}
    headers[name] = data.draw(not_utf8(headers[name].decode()))
    clear_journal(app)
    status, answer = app.raw(raw_request("POST", "/green/image/feedback", headers, body))
    alibaba_shape(status, answer)
    exports_read(app)


def tencent_signed(body: bytes, path: str = "/report/badcase", method: str = "POST") -> dict[str, str]:
    return cos_sdk_headers(body, NOW, path=path, method=method)


def _with_q(authorization: str, key: str, value: str) -> str:
    return "&".join(
        f"{key}={value}" if part.partition("=")[0] == key else part for part in authorization.split("&")
    )


@CLASSES
@given(data=st.data(), name=st.sampled_from(["q-sign-time", "q-key-time", "q-signature", "Content-Length"]))
def test_tencent_header_digits(app: App, data: st.DataObject, name: str) -> None:
    body = b"<Request/>"
    headers = tencent_signed(body)
    if name.startswith("q-"):
        auth = headers["Authorization"]
        value = dict(p.partition("=")[::2] for p in auth.split("&"))[name]
        headers["Authorization"] = _with_q(auth, name, data.draw(other_digits(value)))
    else:
        headers[name] = data.draw(other_digits(headers[name]))
    clear_journal(app)
    status, answer = app.raw(
        raw_request("POST", "/report/badcase", {k: v.encode() for k, v in headers.items()}, body)
    )
    if not answered_by_aiohttp(status, answer):
        fields = tencent_shape(status, answer)
        assert status in (400, 403), fields
    exports_read(app)


TENCENT_SIGNED = ["Content-Type", "Host", "q-ak", "q-header-list", "q-signature", "q-sign-algorithm"]


@CLASSES
@given(data=st.data(), name=st.sampled_from(TENCENT_SIGNED))
def test_tencent_header_bytes(app: App, data: st.DataObject, name: str) -> None:
    body = b"<Request/>"
    headers = {k: v.encode() for k, v in tencent_signed(body).items()}
    if name.startswith("q-"):
        auth = headers["Authorization"].decode()
        value = dict(p.partition("=")[::2] for p in auth.split("&"))[name]
        spoiled = data.draw(not_utf8(value))
        headers["Authorization"] = _with_q(auth, name, "\x00").encode().replace(b"\x00", spoiled)
    else:
        headers[name] = data.draw(not_utf8(headers[name].decode()))
    clear_journal(app)
    status, answer = app.raw(raw_request("POST", "/report/badcase", headers, body))
    tencent_shape(status, answer)
    exports_read(app)


def _decoded(escape_: str) -> str:
    # yarl leaves an escape that is no UTF-8 as it is; what XML cannot carry is written \\xNN.
    try:
        text = bytes.fromhex(escape_.replace("%", "")).decode()
    except UnicodeDecodeError:
        return escape_
    return "".join(ascii(c)[1:-1] if ord(c) < 0x20 or c == "\ufffe" else c for c in text)


#: Percent-escapes a path decodes to something XML cannot carry, or to no UTF-8 at all.
ESCAPES = ["%00", "%01", "%1F", "%7F", "%EF%BF%BE", "%ED%A0%80", "%FF", "%C0%80"]
TENCENT_PATHS = ["/report/badcase", "/text/auditing/", "/image/auditing", "/", "/x/"]
ALIBABA_PATHS = ["/green/image/scan", "/green/", "/green/text/"]


@settings(CLASSES, max_examples=60)
@given(
    prefix=st.sampled_from(TENCENT_PATHS + ALIBABA_PATHS),
    escape_=st.sampled_from(ESCAPES),
    method=st.sampled_from(["GET", "POST"]),
    signed=st.booleans(),
)
def test_paths_with_escapes(app: App, prefix: str, escape_: str, method: str, signed: bool) -> None:
    path = prefix + escape_
    body = b"<Request/>" if method == "POST" else b""
    headers: dict[str, bytes]
    if prefix.startswith("/green/"):
        headers = {k: v.encode() for k, v in tea_sdk_headers(body, NOW, path=path).items()} if signed else {}
    else:
        # Signed as the SDK signs: the decoded path (a signature the server may still refuse).
        decoded = path.replace(escape_, "\x01") if escape_ == "%01" else path
        headers = {k: v.encode() for k, v in tencent_signed(body, decoded, method).items()}
        if not signed:
            del headers["Authorization"]
    clear_journal(app)
    status, answer = app.raw(raw_request(method, path, headers, body))
    if prefix.startswith("/green/"):
        alibaba_shape(status, answer)
    else:
        fields = tencent_shape(status, answer)
        # The path as decoded, with what XML cannot carry escaped.
        assert fields["Resource"].endswith(prefix + _decoded(escape_)), fields
    exports_read(app)


# --- the admin API -----------------------------------------------------------------------------------

#: Every admin route that reads a JSON body.
ADMIN_BODIES = [
    ("POST", "/_emulator/faults"),
    ("PUT", "/_emulator/alibaba/callback"),
    ("POST", "/_emulator/alibaba/reviews"),
    ("POST", "/_emulator/alibaba/libraries"),
    ("POST", "/_emulator/alibaba/libraries/lib1/items"),
    ("DELETE", "/_emulator/alibaba/libraries/lib1/items"),
    ("POST", "/_emulator/alibaba/verdicts"),
]


def problem(status: int, body: bytes, content_type: str) -> dict[str, Any]:
    """The admin API's refusal: a 4xx application/problem+json (RFC 9457)."""
    assert 400 <= status < 500, (status, body[:300])
    assert content_type == "application/problem+json", (content_type, body[:300])
    doc = json.loads(body)
    assert isinstance(doc, dict) and doc.get("status") == status, doc
    return doc


def test_admin_deep_json(app: App) -> None:
    """Past Python's recursion limit, on every route that reads JSON: one test, so that what it
    finds is one failure that lists every route."""
    wrong = []
    for method, path in ADMIN_BODIES:
        for depth in (1_100, 100_000):
            for kind in ("list", "dict"):
                status, body, content_type = app.call(
                    method, path, deep_json(depth, kind).encode(), JSON_HEADERS
                )
                try:
                    problem(status, body, content_type)
                except AssertionError:
                    wrong.append(f"{method} {path} {kind} x{depth}: {status} {content_type}")
    assert not wrong, "\n".join(wrong)
    # Still serving, both providers included.
    status, answer, _ = app.call("GET", "/_emulator/health")
    assert status == 200, answer[:300]


def admin_bodies(text: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[str, str, Any]]:
    """(method, path, body) with ``text`` in a string field a later call or export shows."""
    rule = {"match": {"provider": "alibaba", "action": "TextScan"}}
    tencent_rule = {"match": {"provider": "tencent", "action": "ReportBadcase"}}
    return st.one_of(
        st.builds(
            lambda s: (
                "POST",
                "/_emulator/faults",
                {**rule, "name": s, "action": {"type": "error", "code": 586, "message": s}},
            ),
            text,
        ),
        st.builds(
            lambda s: (
                "POST",
                "/_emulator/faults",
                {
                    **tencent_rule,
                    "name": s,
                    "action": {"type": "error", "code": "InvalidArgument", "message": s},
                },
            ),
            text,
        ),
        st.builds(
            lambda s: (
                "POST",
                "/_emulator/faults",
                {**rule, "action": {"type": "modify", "set": {"msg": s}}},
            ),
            text,
        ),
        st.builds(
            lambda s: (
                "POST",
                "/_emulator/faults",
                {**tencent_rule, "action": {"type": "modify", "set": {"RequestId": s}}},
            ),
            text,
        ),
        st.builds(
            lambda s: (
                "POST",
                "/_emulator/alibaba/verdicts",
                {"scene": "antispam", "label": "spam", "suggestion": "block", "text": s},
            ),
            text,
        ),
        st.builds(
            lambda s: (
                "POST",
                "/_emulator/alibaba/libraries",
                {"name": s, "kind": "term", "listType": "blacklist", "items": [s]},
            ),
            text,
        ),
        st.builds(
            lambda s: ("PUT", "/_emulator/alibaba/callback", {"url": "http://127.0.0.1:9/cb", "seed": s}),
            text,
        ),
        st.builds(
            lambda s: (
                "POST",
                "/_emulator/alibaba/reviews",
                {"taskId": s, "suggestion": "block", "url": s, "dataId": s},
            ),
            text,
        ),
    )


#: What JSON carries but UTF-8 and XML cannot: lone surrogates, and controls (XML only).
unrepresentable = surrogate_text() | st.builds("{}\x01{}".format, st.text(max_size=3), st.text(max_size=3))


@settings(CLASSES, max_examples=60)
@given(request=admin_bodies(unrepresentable))
def test_admin_strings_then_calls(app: App, request: tuple[str, str, Any]) -> None:
    """Whatever the admin API accepts, the calls it shapes and the exports still answer."""
    method, path, value = request
    for reset in ("/_emulator/faults", "/_emulator/requests"):
        assert app.call("DELETE", reset, headers=JSON_HEADERS)[0] == 200
    assert app.call("POST", "/_emulator/reset", headers=JSON_HEADERS)[0] == 200
    status, body, content_type = app.call(method, path, json_body(value), JSON_HEADERS)
    if status >= 400:
        problem(status, body, content_type)
    # A notification, signed with whatever seed is set now (a loopback port nobody listens on).
    callback = json_body({"url": "http://127.0.0.1:9/cb"})
    assert app.call("PUT", "/_emulator/alibaba/callback", callback, JSON_HEADERS)[0] == 200
    review = json_body({"taskId": "img-1", "suggestion": "block", "labels": ["porn"]})
    status, body, _ = app.call("POST", "/_emulator/alibaba/reviews", review, JSON_HEADERS)
    assert status == 200, body[:300]
    scan = json_body({"scenes": ["antispam"], "tasks": [{"content": "hello"}]})
    status, answer = app.post("/green/text/scan", scan, tea_sdk_headers(scan, NOW, path="/green/text/scan"))
    alibaba_shape(status, answer)
    badcase = TENCENT["/report/badcase"][0].format(**TENCENT["/report/badcase"][1]).encode()
    status, answer = app.post("/report/badcase", badcase, cos_sdk_headers(badcase, NOW))
    tencent_shape(status, answer)
    for listing in ("/_emulator/faults", "/_emulator/alibaba/verdicts", "/_emulator/alibaba/libraries"):
        status, answer, _ = app.call("GET", listing)
        assert status == 200, (listing, answer[:300])
    exports_read(app)
