"""The shared signers produce what the emulator's verifiers accept, and nothing they would not."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import formatdate

import pytest

from emulator.providers.alibaba import errors as ali_errors
from emulator.providers.alibaba import signing as ali
from emulator.providers.tencent import errors as cos_errors
from emulator.providers.tencent import signing as cos
from emulator.testing.signers import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    SECRET_ID,
    SECRET_KEY,
    cos_sdk_headers,
    sign_acs,
    sign_acs3,
    sign_cos,
    tea_sdk_headers,
)

NOW = 1_795_600_000.0
BODY = b'{"url": "http://example.com/1.jpg"}'
QUERY = [("a", "1 2"), ("b", "")]
ISO_NOW = datetime.fromtimestamp(NOW, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
HTTP_NOW = formatdate(NOW, usegmt=True)


def alibaba(
    method: str, path: str, headers: dict[str, str], body: bytes, query: Sequence[tuple[str, str]] = ()
) -> str:
    req = ali.SignedRequest(
        method=method,
        raw_path=path,
        query=list(query),
        headers={k.lower(): [v] for k, v in headers.items()},
        body=body,
    )
    secrets = {ACCESS_KEY_ID: ACCESS_KEY_SECRET}
    return ali.authenticate(req, secrets.get, now=NOW, max_skew=900)


def tencent(method: str, path: str, headers: dict[str, str], query: Sequence[tuple[str, str]] = ()) -> str:
    req = cos.SignedRequest(
        method=method,
        path=path,
        query=list(query),
        headers={k.lower(): [v] for k, v in headers.items()},
    )
    return cos.authenticate(req, {SECRET_ID: SECRET_KEY}.get, now=NOW, max_skew=900)


def test_acs3_round_trip_and_body_is_signed() -> None:
    headers = tea_sdk_headers(BODY, NOW)
    assert alibaba("POST", "/green/image/feedback", headers, BODY) == ACCESS_KEY_ID
    with pytest.raises(ali_errors.SignatureDoesNotMatch):
        alibaba("POST", "/green/image/feedback", headers, BODY + b" ")


def test_acs3_with_query() -> None:
    headers = sign_acs3("GET", "/x", {"x-acs-date": ISO_NOW}, b"", ACCESS_KEY_ID, ACCESS_KEY_SECRET, QUERY)
    assert alibaba("GET", "/x", headers, b"", QUERY) == ACCESS_KEY_ID
    with pytest.raises(ali_errors.SignatureDoesNotMatch):
        alibaba("GET", "/x", headers, b"", QUERY[:1])


def test_acs_round_trip() -> None:
    headers = sign_acs(
        "POST",
        "/green/image/feedback",
        {"Date": HTTP_NOW, "Accept": "application/json", "x-acs-version": "v"},
        ACCESS_KEY_ID,
        ACCESS_KEY_SECRET,
        QUERY,
    )
    assert headers["authorization"].startswith(f"acs {ACCESS_KEY_ID}:")
    assert alibaba("POST", "/green/image/feedback", headers, BODY, QUERY) == ACCESS_KEY_ID


def test_cos_round_trip() -> None:
    headers = cos_sdk_headers(b"<Request/>", NOW)
    assert tencent("POST", "/report/badcase", headers) == SECRET_ID
    with pytest.raises(cos_errors.SignatureDoesNotMatch):
        tencent("POST", "/report/other", headers)


def test_cos_signs_only_the_named_headers() -> None:
    headers = {"Host": "h", "Content-Type": "application/xml", "X-Other": "1"}
    auth = sign_cos("GET", "/p", headers, SECRET_ID, SECRET_KEY, int(NOW), int(NOW) + 10, QUERY, ["host"])
    assert "q-header-list=host&" in auth
    changed = {**headers, "X-Other": "2", "Authorization": auth}
    assert tencent("GET", "/p", changed, QUERY) == SECRET_ID
