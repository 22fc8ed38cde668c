"""Property-based fuzzing of both providers' request bodies and signature headers, in process.

Whatever arrives, the answer is the provider's own shape and never a 5xx (no fault rule is set).
Each property drives one app through aiohttp's test client on a loop of its own, so hypothesis
can call it synchronously; a few thousand requests in all, in a few seconds.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import string
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from emulator import ManualClock, create_app
from emulator.providers.alibaba.signing import _iso_z
from emulator.providers.tencent import protocol
from emulator.testing.signers import cos_sdk_headers, tea_sdk_headers

from .conftest import BADCASE, IMAGE, TEXT, alibaba_shape, hardening_settings, tencent_shape

NOW = 1_795_600_000.0
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class App:
    """An emulator app behind aiohttp's test client, on a private loop driven synchronously."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        #: Connections this loop was asked to open to anything but loopback (refused; see close).
        self.outside: list[Any] = []
        self.loop.sock_connect = self._loopback_only(self.loop.sock_connect)  # type: ignore[method-assign]
        self.loop.getaddrinfo = self._no_lookups(self.loop.getaddrinfo)  # type: ignore[method-assign]
        self.clock = ManualClock(start=NOW)
        app = create_app(hardening_settings(**{"server.max_body_bytes": 16 * 1024}), clock=self.clock)
        self.client: TestClient[Any, Any] = TestClient(TestServer(app), loop=self.loop)
        self.loop.run_until_complete(self.client.start_server())

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        async def call() -> tuple[int, bytes]:
            async with self.client.post(path, data=body, headers=headers) as response:
                return response.status, await response.read()

        return self.loop.run_until_complete(call())

    def call(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, str]:
        """Any method: (status, body, Content-Type)."""

        async def call() -> tuple[int, bytes, str]:
            async with self.client.request(method, path, data=body, headers=headers) as response:
                return response.status, await response.read(), response.content_type

        return self.loop.run_until_complete(call())

    def raw(self, request: bytes) -> tuple[int, bytes]:
        """Bytes sent as they are (the client would refuse a header that is not UTF-8); the request
        must ask for ``Connection: close``. (status, body)."""

        async def call() -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.client.port)
            try:
                writer.write(request)
                await writer.drain()
                return await reader.read()
            finally:
                writer.close()
                await writer.wait_closed()

        answer = self.loop.run_until_complete(call())
        status_line, _, rest = answer.partition(b"\r\n")
        return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]

    def _loopback_only(self, connect: Callable[[socket.socket, Any], Awaitable[None]]) -> Any:
        # Fuzzed callback URLs must never leave the machine (yarl normalizes "１２７.0.0.1" too).
        async def guarded(sock: socket.socket, address: Any) -> None:
            try:
                loopback = ipaddress.ip_address(str(address[0]).partition("%")[0]).is_loopback
            except ValueError:
                loopback = False
            if not loopback:
                self.outside.append(address)
                raise OSError(f"the tests connect to loopback only, not {address}")
            await connect(sock, address)

        return guarded

    def _no_lookups(self, getaddrinfo: Callable[..., Awaitable[Any]]) -> Any:
        # Nor ask a name server ("1\u06697.0.0.1" is the IDNA name xn--17-zyd.0.0.1 to yarl).
        async def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
            if host not in ("localhost", "127.0.0.1", "::1"):
                self.outside.append(host)
                raise socket.gaierror(f"the tests look up no names, not {host!r}")
            return await getaddrinfo(host, *args, **kwargs)

        return guarded

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()
        assert not self.outside, f"connections attempted off this machine: {self.outside}"


@pytest.fixture
def app() -> Iterator[App]:
    running = App()
    yield running
    running.close()


# --- strategies ------------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["pass", "block", "porn", "ad", "terrorism", "normal", "http://example.com/1.jpg"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(
            st.sampled_from(["url", "suggestion", "scenes", "label", "note", "taskId", "dataId", "content"])
            | st.text(max_size=8),
            inner,
            max_size=6,
        )
    ),
    max_leaves=20,
)


def json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


alibaba_bodies = json_values.map(json_bytes) | st.binary(max_size=300) | st.text(max_size=100).map(str.encode)

FIELDS = ["ContentType", "Label", "SuggestedLabel", "Text", "Url", "JobId", "ModerationTime"]
xml_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=30) | (
    st.sampled_from(
        ["1", "2", "0", " 1 ", "Porn", "Normal", "eA==", "http://a/b.jpg", "2021-08-07T12:12:12+08:00"]
    )
)


@st.composite
def xml_elements(draw: st.DrawFn, depth: int = 0) -> etree._Element:
    tag = draw(st.sampled_from(FIELDS) | st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_.-]{0,8}\Z"))
    el = etree.Element(tag)
    for name in draw(st.lists(st.from_regex(r"\A[a-z]{1,4}\Z"), max_size=2, unique=True)):
        el.set(name, draw(xml_text))
    if depth < 3 and draw(st.booleans()):
        for child in draw(st.lists(xml_elements(depth + 1), max_size=3)):
            el.append(child)
    else:
        el.text = draw(xml_text)
    return el


@st.composite
def badcase_trees(draw: st.DrawFn) -> etree._Element:
    root = etree.Element(draw(st.sampled_from(["Request", "Request", "Request", "Response", "request"])))
    for child in draw(st.lists(xml_elements(1), max_size=9)):
        root.append(child)
    return root


tencent_bodies = (
    badcase_trees().map(lambda root: etree.tostring(root))
    | st.binary(max_size=300)
    | st.text(alphabet=string.printable + "<>&;/=\"'!?[]", max_size=200).map(str.encode)
)


# --- bodies ----------------------------------------------------------------------------------------


@FUZZ
@given(body=alibaba_bodies, path=st.sampled_from([IMAGE, TEXT]))
def test_alibaba_bodies(app: App, body: bytes, path: str) -> None:
    status, answer = app.post(path, body, tea_sdk_headers(body, NOW, path=path))
    # A signed call is never a gateway error: only business answers, with HTTP 200.
    assert status == 200, answer
    alibaba_shape(status, answer)


@settings(FUZZ, max_examples=200)
@given(body=tencent_bodies)
def test_tencent_bodies(app: App, body: bytes) -> None:
    status, answer = app.post(BADCASE, body, cos_sdk_headers(body, NOW))
    fields = tencent_shape(status, answer)
    if status != 200:
        assert status == 400 and fields["Code"] in (
            "MalformedXML",
            "InvalidArgument",
            "MissingRequestBodyError",
            "XMLSizeLimit",
        ), fields


@settings(max_examples=150, deadline=None)
@given(root=badcase_trees())
def test_libxml2_never_accepts_what_xmlschema_refuses(root: etree._Element) -> None:
    # decode_request trusts libxml2's "valid" (its fast path): xmlschema must agree.
    if protocol._libxml2_valid(protocol.REQUEST_SCHEMA, root):
        errors = protocol.schema("report-badcase-request").iter_errors(root)
        assert next(iter(errors), None) is None, etree.tostring(root)


# --- signature headers -----------------------------------------------------------------------------

header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
acs_authorizations = (
    header_values
    | st.builds(lambda ak, sig: f"acs {ak}:{sig}", header_values, header_values)
    | st.builds(
        lambda cred, signed, sig: (
            f"ACS3-HMAC-SHA256 Credential={cred},SignedHeaders={signed},Signature={sig}"
        ),
        st.sampled_from(["testAccessKeyId", "", "other"]) | header_values,
        st.sampled_from(["x-acs-date", "host;x-acs-date", ";;", ""]) | header_values,
        header_values,
    )
)
dates = (
    header_values
    | st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(
        lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    | st.sampled_from(
        ["", "Thu, 01 Jan 1970 00:00:00 GMT", "Mon, 32 Foo 2024 99:99:99 GMT", "0000-00-00T00:00:00Z"]
    )
)


@FUZZ
@given(
    authorization=acs_authorizations,
    acs_date=st.none() | dates,
    date=st.none() | dates,
    md5=st.none() | header_values,
    sha=st.none() | header_values,
)
def test_alibaba_signature_headers(
    app: App, authorization: str, acs_date: str | None, date: str | None, md5: str | None, sha: str | None
) -> None:
    headers = {"Authorization": authorization, "Content-Type": "application/json"}
    for name, value in (
        ("x-acs-date", acs_date),
        ("Date", date),
        ("Content-MD5", md5),
        ("x-acs-content-sha256", sha),
    ):
        if value is not None:
            headers[name] = value
    status, answer = app.post(IMAGE, b"{}", headers)
    doc = alibaba_shape(status, answer)
    assert status != 200, doc  # nothing here is properly signed


q_values = header_values | st.sampled_from(
    ["", "0;0", "1;0", f"{int(NOW) - 60};{int(NOW) + 60}", "99999999999999999999;1"]
)


@FUZZ
@given(
    fields=st.dictionaries(
        st.sampled_from(
            [
                "q-sign-algorithm",
                "q-ak",
                "q-sign-time",
                "q-key-time",
                "q-header-list",
                "q-url-param-list",
                "q-signature",
            ]
        )
        | header_values,
        q_values | st.sampled_from(["sha1", "AKIDtestSecretId", "host;content-type"]),
        max_size=8,
    ),
    host=st.sampled_from(
        ["examplebucket-1250000000.ci.ap-beijing.myqcloud.com", "127.0.0.1", "x-1.cos.a.myqcloud.com"]
    )
    | header_values.filter(lambda h: h.strip() != ""),
)
def test_tencent_signature_headers(app: App, fields: dict[str, str], host: str) -> None:
    authorization = "&".join(f"{k}={v}" for k, v in fields.items())
    status, answer = app.post(BADCASE, b"<Request/>", {"Authorization": authorization, "Host": host})
    fields_out = tencent_shape(status, answer)
    assert status in (403, 404, 400), fields_out


# --- a fast path must agree with what it replaces ------------------------------------------------


@settings(max_examples=1000, deadline=None)
@given(
    raw=st.from_regex(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z")
    | st.text(alphabet="0123456789-:TZ ", min_size=18, max_size=22)
)
def test_fast_x_acs_date_parse_matches_strptime(raw: str) -> None:
    try:
        expected: datetime | None = datetime.strptime(raw, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        expected = None
    try:
        got: datetime | None = _iso_z(raw)
    except ValueError:
        got = None
    assert got == expected
