"""The COS signature verifier: the official vector, the captured SDK requests, the time rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from emulator.providers.tencent import errors, signing
from emulator.testing.signers import COS_HOST, SECRET_ID, SECRET_KEY

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "sdk-requests.json"


def cos_vectors() -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads(VECTORS.read_text())
    return [v for v in vectors if "SecretId" in v["credentials"]]


def to_request(vector: dict[str, Any]) -> signing.SignedRequest:
    target = urlsplit(vector["target"])
    headers: dict[str, list[str]] = {}
    for name, value in vector["headers"]:
        headers.setdefault(name.lower(), []).append(value)
    return signing.SignedRequest(
        method=vector["method"],
        path=unquote(target.path),
        query=parse_qsl(target.query, keep_blank_values=True),
        headers=headers,
    )


def test_official_vector() -> None:
    # The PUT example of COS's "request signature" page, as the reference sheet gives it.
    headers = {
        "date": "Thu, 16 May 2019 06:45:51 GMT",
        "host": "examplebucket-1250000000.cos.ap-beijing.myqcloud.com",
        "content-type": "text/plain",
        "content-length": "13",
        "content-md5": "mQ/fVh815F3k6TAUm8m0eg==",
        "x-cos-acl": "private",
        "x-cos-grant-read": 'uin="100000000011"',
    }
    req = signing.SignedRequest("PUT", "/exampleobject(腾讯云)", [], {k: [v] for k, v in headers.items()})
    value = signing.sign(
        req,
        secret_id="AKIDexample",
        secret_key="BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz",
        start=1557989151,
        end=1557996351,
    )
    auth = signing.parse_authorization(value)
    assert auth.signature == "3b8851a11a569213c17ba8fa7dcf2abec6935172"
    assert auth.header_list == tuple(sorted(headers))
    signing.verify(req, auth, "BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz")


@pytest.mark.parametrize("vector", cos_vectors(), ids=lambda v: v["client"])
def test_captured_sdk_request_verifies_with_the_clock_pinned(vector: dict[str, Any]) -> None:
    req = to_request(vector)
    auth = signing.parse_authorization(req.header("authorization"))
    now = auth.sign_time[0] + 60  # the SDK starts the window a minute before its clock
    assert signing.authenticate(req, {SECRET_ID: SECRET_KEY}.get, now=now, max_skew=900) == SECRET_ID


@pytest.mark.parametrize("vector", cos_vectors(), ids=lambda v: v["client"])
def test_wrong_key_reports_what_the_server_computed(vector: dict[str, Any]) -> None:
    req = to_request(vector)
    auth = signing.parse_authorization(req.header("authorization"))
    with pytest.raises(errors.SignatureDoesNotMatch) as info:
        signing.verify(req, auth, "wrong")
    host = req.header("host")
    assert info.value.format_string == (
        f"post\n/report/badcase\n\ncontent-length=177&content-type=application%2Fxml&host={host}\n"
    )
    assert info.value.string_to_sign.startswith(f"sha1\n{auth.key_time}\n")


def test_tampered_signed_header_fails() -> None:
    vector = cos_vectors()[0]
    req = to_request(vector)
    headers = dict(req.headers)
    headers["content-length"] = ["178"]
    tampered = signing.SignedRequest(req.method, req.path, req.query, headers)
    auth = signing.parse_authorization(req.header("authorization"))
    with pytest.raises(errors.SignatureDoesNotMatch):
        signing.verify(tampered, auth, SECRET_KEY)


def _request(host: str, **extra: str) -> signing.SignedRequest:
    headers = {"host": [host], "content-type": ["application/xml"], **{k: [v] for k, v in extra.items()}}
    return signing.SignedRequest("POST", "/report/badcase", [("a", "b c")], headers)


def test_host_signed_without_its_port_verifies() -> None:
    # cos_auth.py signs urlparse(url).hostname when no Host header was set (the Domain= setup).
    signed = _request("127.0.0.1")
    value = signing.sign(signed, secret_id=SECRET_ID, secret_key=SECRET_KEY, start=0, end=10)
    sent = _request("127.0.0.1:8080", authorization=value)
    signing.verify(sent, signing.parse_authorization(value), SECRET_KEY)


def test_security_token_and_params_are_signed_like_any_header() -> None:
    signed = _request(COS_HOST, **{"x-ci-security-token": "tok/en+="})
    value = signing.sign(signed, secret_id=SECRET_ID, secret_key=SECRET_KEY, start=0, end=10)
    auth = signing.parse_authorization(value)
    assert auth.header_list == ("content-type", "host", "x-ci-security-token")
    assert auth.url_param_list == ("a",)
    signing.verify(signed, auth, SECRET_KEY)


def test_a_listed_header_that_was_not_sent_fails() -> None:
    signed = _request(COS_HOST, **{"x-cos-security-token": "t"})
    value = signing.sign(signed, secret_id=SECRET_ID, secret_key=SECRET_KEY, start=0, end=10)
    with pytest.raises(errors.SignatureDoesNotMatch):
        signing.verify(_request(COS_HOST), signing.parse_authorization(value), SECRET_KEY)


AUTH = "q-sign-algorithm=sha1&q-ak=AKIDtestSecretId&q-sign-time=1000;2000&q-key-time=1000;2000"


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (1000, None),
        (2000, None),
        (999, None),  # a start a little ahead is ordinary clock skew
        (100, None),  # exactly at the 900 s tolerance
        (99, errors.RequestTimeTooSkewed),
        (2001, errors.AccessDenied),
    ],
)
def test_sign_time_window(now: float, expected: type[errors.TencentError] | None) -> None:
    auth = signing.parse_authorization(AUTH + "&q-header-list=&q-url-param-list=&q-signature=ab")
    if expected is None:
        signing.check_time(auth, now=now, max_skew=900)
        return
    with pytest.raises(expected) as info:
        signing.check_time(auth, now=now, max_skew=900)
    if expected is errors.AccessDenied:
        assert info.value.text == "Request has expired"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "Access Denied."),
        ("", "Access Denied."),
        ("q-sign-algorithm=md5&q-ak=a", "Authorization: q-sign-algorithm must be sha1, not 'md5'"),
        (
            "q-sign-algorithm=sha1&q-sign-time=1;2&q-key-time=1;2&q-signature=a",
            "Authorization: q-ak is missing",
        ),
        (
            "q-sign-algorithm=sha1&q-ak=a&q-sign-time=2;1&q-key-time=1;2&q-signature=a",
            "Authorization: q-sign-time must be <start>;<end> in Unix seconds",
        ),
        (
            "q-sign-algorithm=sha1&q-ak=a&q-sign-time=1;2&q-key-time=x&q-signature=a",
            "Authorization: q-key-time must be <start>;<end> in Unix seconds",
        ),
    ],
)
def test_unreadable_authorization_is_access_denied(value: str | None, message: str) -> None:
    with pytest.raises(errors.AccessDenied) as info:
        signing.parse_authorization(value)
    assert info.value.text == message


def test_unknown_secret_id() -> None:
    req = _request(COS_HOST)
    value = signing.sign(req, secret_id="AKIDnobody", secret_key="x", start=0, end=10)
    sent = _request(COS_HOST, authorization=value)
    with pytest.raises(errors.InvalidAccessKeyId):
        signing.authenticate(sent, {SECRET_ID: SECRET_KEY}.get, now=5, max_skew=900)
