"""POST /report/badcase over HTTP: success, the error catalogue, stored state, throttling."""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from lxml import etree

from emulator import ManualClock, Settings, create_app
from emulator.providers.tencent import errors, protocol
from emulator.providers.tencent.models import UnknownBadcase
from emulator.providers.tencent.routes import TENCENT_BACKEND, parse_host
from emulator.testing.payloads import IMAGE_BADCASE, TEXT_BADCASE, b64, request_xml
from emulator.testing.settings import make_settings
from emulator.testing.signers import APPID, COS_HOST, SECRET_ID, cos_sdk_headers

from .conftest import PATH

Client = TestClient[Any, Any]
AppClient = Callable[..., Awaitable[Client]]
NOW = 1_795_600_000.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=NOW)


async def make_client(aiohttp_client: AppClient, clock: ManualClock, settings: Settings) -> Client:
    return await aiohttp_client(create_app(settings, clock=clock))


@pytest.fixture
async def client(aiohttp_client: AppClient, clock: ManualClock) -> Client:
    return await make_client(aiohttp_client, clock, make_settings())


async def post(client: Client, body: bytes, now: float = NOW, **options: Any) -> ClientResponse:
    return await client.post(PATH, data=body, headers=cos_sdk_headers(body, now, **options))


async def error_of(response: ClientResponse) -> dict[str, str]:
    """The error body as a dict, after checking it is what cos-python-sdk-v5 can read."""
    body = await response.read()
    assert response.headers["Content-Type"] == "application/xml"
    assert response.headers["Server"] == "tencent-ci"
    root = etree.fromstring(body)
    protocol.schema("report-badcase-response").validate(root)
    fields = {child.tag: child.text or "" for child in root}
    assert root.tag == "Error"
    assert response.headers["x-ci-trace-id"] == fields["TraceId"]
    assert response.headers["x-ci-request-id"] == fields["RequestId"]
    return fields


def state(client: Client) -> Any:
    assert client.app is not None
    return client.app[TENCENT_BACKEND].states[APPID]


async def test_text_badcase_is_accepted_and_stored(client: Client) -> None:
    response = await post(client, TEXT_BADCASE)
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/xml"
    assert response.headers["Server"] == "tencent-ci"
    assert "x-ci-trace-id" not in response.headers
    assert parsedate_to_datetime(response.headers["Date"]).timestamp() == int(NOW)
    assert response.headers["Date"].endswith(" GMT")
    root = etree.fromstring(await response.read())
    protocol.schema("report-badcase-response").validate(root)
    request_id = root.findtext("RequestId")
    assert request_id == response.headers["x-ci-request-id"]
    assert request_id is not None
    # base64 of "<hex unix time>_<hex>_<hex>_<hex>"
    decoded = base64.b64decode(request_id).decode()
    assert re.fullmatch(r"[0-9a-f]+_[0-9a-f]+_[0-9a-f]+_[0-9a-f]+", decoded)
    assert int(decoded.split("_")[0], 16) == int(NOW)

    [badcase] = state(client).badcases
    assert badcase.request_id == request_id
    assert (badcase.bucket, badcase.region, badcase.content_type) == ("examplebucket", "ap-beijing", 1)
    assert (badcase.label, badcase.suggested_label, badcase.text) == ("Porn", "Normal", "你好, world")
    assert badcase.state == "reported"


async def test_image_badcase_with_every_field_in_any_order(client: Client) -> None:
    body = request_xml(
        ModerationTime="2021-08-07T12:12:12+08:00",
        JobId="sa0c28d41daff411ee9f5525400863904",
        Url="https://example.com/a.png",
        SuggestedLabel="Normal",
        Label="Porn",
        ContentType=2,
    )
    pretty = b"<?xml version='1.0' encoding='UTF-8'?>\n" + body.replace(b"><", b">\n  <")
    for payload in (body, pretty):
        assert (await post(client, payload)).status == 200
    first, second = state(client).badcases
    assert (first.url, first.job_id, first.moderation_time) == (
        "https://example.com/a.png",
        "sa0c28d41daff411ee9f5525400863904",
        "2021-08-07T12:12:12+08:00",
    )
    assert second.url == first.url


async def test_badcases_are_confirmed_later(client: Client, clock: ManualClock) -> None:
    await post(client, TEXT_BADCASE)
    await post(client, IMAGE_BADCASE)
    account = state(client)
    first, second = account.badcases
    clock.advance(60)
    assert account.confirm(second.request_id, at=clock.time()) is second
    assert (second.state, second.confirmed_at) == ("confirmed", NOW + 60)
    assert first.state == "reported"
    assert account.confirmed() == [second]
    with pytest.raises(UnknownBadcase):
        account.confirm("nope", at=0)
    assert client.app is not None
    client.app[TENCENT_BACKEND].reset()
    assert state(client).badcases == []


BAD_BODIES = [
    # (body, code, message)
    (
        request_xml(Label="Porn", SuggestedLabel="Normal", Text=b64("x")),
        "InvalidArgument",
        "Invalid argument ContentType: is required",
    ),
    (
        request_xml(ContentType=1, SuggestedLabel="Normal", Text=b64("x")),
        "InvalidArgument",
        "Invalid argument Label: is required",
    ),
    (
        request_xml(ContentType=1, Label="Porn", Text=b64("x")),
        "InvalidArgument",
        "Invalid argument SuggestedLabel: is required",
    ),
    (
        request_xml(ContentType=3, Label="Porn", SuggestedLabel="Normal"),
        "InvalidArgument",
        "Invalid argument ContentType: must be 1 (text) or 2 (image)",
    ),
    (
        request_xml(ContentType="text", Label="Porn", SuggestedLabel="Normal"),
        "InvalidArgument",
        "Invalid argument ContentType: must be 1 (text) or 2 (image)",
    ),
    (
        request_xml(ContentType=1, Label=" ", SuggestedLabel="Normal", Text=b64("x")),
        "InvalidArgument",
        "Invalid argument Label: must not be empty",
    ),
    (
        request_xml(ContentType=1, Label="Porn", SuggestedLabel="", Text=b64("x")),
        "InvalidArgument",
        "Invalid argument SuggestedLabel: must not be empty",
    ),
    (
        request_xml(ContentType=1, Label="Porn", SuggestedLabel="Normal"),
        "InvalidArgument",
        "Invalid argument Text: is required when ContentType is 1 (text)",
    ),
    (
        request_xml(ContentType=1, Label="Porn", SuggestedLabel="Normal", Text="not base64!"),
        "InvalidArgument",
        "Invalid argument Text: must be base64 of UTF-8 text",
    ),
    (
        request_xml(ContentType=1, Label="Porn", SuggestedLabel="Normal", Text="//79"),  # ff fe fd
        "InvalidArgument",
        "Invalid argument Text: must be base64 of UTF-8 text",
    ),
    (
        request_xml(ContentType=2, Label="Porn", SuggestedLabel="Normal", Text=b64("x")),
        "InvalidArgument",
        "Invalid argument Url: is required when ContentType is 2 (image)",
    ),
    (
        request_xml(ContentType=2, Label="Porn", SuggestedLabel="Normal", Url="ftp://e/1.jpg"),
        "InvalidArgument",
        "Invalid argument Url: must be an http(s) URL, not 'ftp://e/1.jpg'",
    ),
    (
        request_xml(
            ContentType=1, Label="Porn", SuggestedLabel="Normal", Text=b64("x"), ModerationTime="2021-08-07"
        ),
        "InvalidArgument",
        "Invalid argument ModerationTime: must be a time like 2021-08-07T12:12:12+08:00",
    ),
    (
        request_xml(
            ContentType=1,
            Label="Porn",
            SuggestedLabel="Normal",
            Text=b64("x"),
            ModerationTime="2021-08-07T12:12:12",
        ),
        "InvalidArgument",
        "Invalid argument ModerationTime: must be a time like 2021-08-07T12:12:12+08:00",
    ),
    (
        b"<Request><ContentType>1</ContentType><Label>A</Label><Label>B</Label>"
        b"<SuggestedLabel>Normal</SuggestedLabel></Request>",
        "MalformedXML",
        "Element Label appears more than once.",
    ),
    (
        request_xml(ContentType=1, Label="Porn", SuggestedLabel="Normal", Text=b64("x"), Lable="x"),
        "MalformedXML",
        "Element Lable is not part of the Request.",
    ),
    (
        b"<Response><RequestId>x</RequestId></Response>",
        "MalformedXML",
        "The root element must be Request, not Response.",
    ),
    (
        b"<Request><ContentType>1</ContentType><Label>P<b/></Label></Request>",
        "MalformedXML",
        "Element Label: a simple content element can't have child elements.",
    ),
    (
        b'<Request xmlns="http://example.com/"><ContentType>1</ContentType></Request>',
        "MalformedXML",
        "The root element must be Request, not {http://example.com/}Request.",
    ),
    (b"<Request><ContentType>1</ContentType>", "MalformedXML", "Premature end of data"),
    (b"Label=Porn", "MalformedXML", "Start tag expected, '<' not found"),
]


@pytest.mark.parametrize(("body", "code", "message"), BAD_BODIES)
async def test_invalid_bodies(client: Client, body: bytes, code: str, message: str) -> None:
    response = await post(client, body)
    assert response.status == 400
    error = await error_of(response)
    assert error["Code"] == code
    if code == "MalformedXML":
        assert error["Message"].startswith(errors.MalformedXML.message)
        assert message in error["Message"]
    else:
        assert error["Message"] == message
    assert error["Resource"] == f"{COS_HOST}{PATH}"
    assert state(client).badcases == []


async def test_strict_labels(aiohttp_client: AppClient, clock: ManualClock) -> None:
    client = await make_client(aiohttp_client, clock, make_settings(**{"tencent.strict_labels": True}))
    assert (await post(client, TEXT_BADCASE)).status == 200
    body = request_xml(ContentType=1, Label="Porn", SuggestedLabel="Fine", Text=b64("x"))
    error = await error_of(await post(client, body))
    assert error["Code"] == "InvalidArgument"
    assert error["Message"] == (
        "Invalid argument SuggestedLabel: 'Fine' is not a known label (known: "
        "Abuse, Ads, Illegal, Normal, Politics, Porn, Teenager, Terrorism)"
    )


async def test_unknown_labels_are_accepted_by_default(client: Client) -> None:
    body = request_xml(ContentType=1, Label="Gambling", SuggestedLabel="Normal", Text=b64("x"))
    assert (await post(client, body)).status == 200


@pytest.mark.parametrize(
    ("options", "status", "code", "message"),
    [
        (
            {"secret_key": "wrong"},
            403,
            "SignatureDoesNotMatch",
            errors.SignatureDoesNotMatch.message,
        ),
        (
            {"secret_id": "AKIDnobody"},
            403,
            "InvalidAccessKeyId",
            "The access key Id format you provided is invalid, please check.",
        ),
        ({"end": int(NOW) - 1}, 403, "AccessDenied", "Request has expired"),
        (
            {"start": int(NOW) + 901},
            403,
            "RequestTimeTooSkewed",
            errors.RequestTimeTooSkewed.message,
        ),
        (
            {"host": "examplebucket-1259999999.ci.ap-beijing.myqcloud.com"},
            404,
            "NoSuchBucket",
            "The specified bucket does not exist.",
        ),
    ],
)
async def test_gateway_errors(
    client: Client, options: dict[str, Any], status: int, code: str, message: str
) -> None:
    response = await post(client, TEXT_BADCASE, **options)
    assert response.status == status
    error = await error_of(response)
    assert (error["Code"], error["Message"]) == (code, message)
    assert state(client).badcases == []


async def test_signature_mismatch_carries_the_servers_computation(client: Client) -> None:
    response = await post(client, TEXT_BADCASE, secret_key="wrong")
    root = etree.fromstring(await response.read())
    assert root.findtext("FormatString") == (
        f"post\n{PATH}\n\ncontent-length={len(TEXT_BADCASE)}&content-type=application%2Fxml&host={COS_HOST}\n"
    )
    assert (root.findtext("StringToSign") or "").startswith(f"sha1\n{int(NOW) - 60};{int(NOW) + 3600}\n")


async def test_missing_authorization_is_access_denied(client: Client) -> None:
    response = await client.post(PATH, data=TEXT_BADCASE, headers={"Host": COS_HOST})
    assert response.status == 403
    assert (await error_of(response))["Code"] == "AccessDenied"


@pytest.mark.parametrize("token_header", ["x-ci-security-token", "x-cos-security-token"])
async def test_temporary_credential_token_headers_are_accepted(client: Client, token_header: str) -> None:
    response = await post(client, TEXT_BADCASE, extra={token_header: "sts-token"})
    assert response.status == 200


@pytest.mark.parametrize(
    "host",
    [
        "examplebucket-1250000000.cos.ap-beijing.myqcloud.com",  # the SDK with IP/Port
        "examplebucket-1250000000.cos.ap-beijing.tencentcos.cn",
        "127.0.0.1:8080",  # Domain='127.0.0.1:8080': signed without the port (test_signing.py)
    ],
)
async def test_other_hosts_the_sdk_sends(client: Client, host: str) -> None:
    response = await post(client, TEXT_BADCASE, host=host)
    assert response.status == 200
    [badcase] = state(client).badcases
    assert badcase.bucket == ("" if host.startswith("127.") else "examplebucket")


def test_parse_host() -> None:
    target = parse_host("My-Bucket-1250000000.ci.ap-guangzhou.myqcloud.com:80")
    assert target is not None
    assert (target.bucket, target.appid, target.region) == ("my-bucket", APPID, "ap-guangzhou")
    assert parse_host("ci.ap-beijing.myqcloud.com") is None
    assert parse_host("127.0.0.1") is None


async def test_key_of_another_account_is_denied(aiohttp_client: AppClient, clock: ManualClock) -> None:
    settings = make_settings(
        **{
            "tencent.accounts": [
                {"secret_id": SECRET_ID, "secret_key": "testSecretKey", "appid": APPID},
                {"secret_id": "AKIDother", "secret_key": "otherKey", "appid": "1250000001"},
            ]
        }
    )
    client = await make_client(aiohttp_client, clock, settings)
    response = await post(client, TEXT_BADCASE, secret_id="AKIDother", secret_key="otherKey")
    assert response.status == 403
    error = await error_of(response)
    assert error["Code"] == "AccessDenied"
    assert APPID in error["Message"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_other_methods_are_not_allowed(client: Client, method: str) -> None:
    response = await client.request(method, PATH, headers={"Host": COS_HOST})
    assert response.status == 405
    error = await error_of(response)
    assert error["Code"] == "MethodNotAllowed"
    assert error["Resource"] == f"{COS_HOST}{PATH}"


async def test_relaxed_signatures_still_need_a_known_bucket(
    aiohttp_client: AppClient, clock: ManualClock
) -> None:
    client = await make_client(aiohttp_client, clock, make_settings(**{"tencent.verify_signatures": False}))
    response = await client.post(PATH, data=TEXT_BADCASE, headers={"Host": COS_HOST})
    assert response.status == 200
    other = "examplebucket-1259999999.ci.ap-beijing.myqcloud.com"
    response = await client.post(PATH, data=TEXT_BADCASE, headers={"Host": other})
    assert (await error_of(response))["Code"] == "NoSuchBucket"


async def test_rate_limit_answers_slow_down(aiohttp_client: AppClient, clock: ManualClock) -> None:
    settings = make_settings(
        **{
            "tencent.accounts": [
                {"secret_id": SECRET_ID, "secret_key": "testSecretKey", "appid": APPID, "rate_limit": 2}
            ]
        }
    )
    client = await make_client(aiohttp_client, clock, settings)
    assert [(await post(client, TEXT_BADCASE)).status for _ in range(2)] == [200, 200]
    response = await post(client, TEXT_BADCASE)
    assert response.status == 503
    assert (await error_of(response))["Code"] == "SlowDown"
    clock.advance(1.0)
    assert (await post(client, TEXT_BADCASE)).status == 200
    assert len(state(client).badcases) == 3


async def test_undocumented_strictness_can_be_relaxed(aiohttp_client: AppClient, clock: ManualClock) -> None:
    # Document 002 lists the elements and shows one ModerationTime format; what CI does with others
    # is undocumented, so both checks have a switch.
    lax = make_settings(**{"tencent.strict_elements": False, "tencent.strict_moderation_time": False})
    client = await make_client(aiohttp_client, clock, lax)
    body = request_xml(
        ContentType=1,
        Label="Porn",
        SuggestedLabel="Normal",
        Text=b64("x"),
        Lable="x",
        ModerationTime="2021-08-07",
    )
    response = await post(client, body)
    assert response.status == 200, await response.text()
    (badcase,) = state(client).badcases
    assert badcase.moderation_time == "2021-08-07"
    # Only those two: a documented element still has to be well formed.
    bad = request_xml(ContentType=3, Label="Porn", SuggestedLabel="Normal", Text=b64("x"), Extra="1")
    assert (await error_of(await post(client, bad)))["Code"] == "InvalidArgument"
    twice = b"<Request><ContentType>1</ContentType><Label>A</Label><Label>B</Label><X/></Request>"
    assert "Element Label appears more than once." in (await error_of(await post(client, twice)))["Message"]


async def test_answers_say_keep_alive_as_documented(client: Client) -> None:
    # Document 002's sample response lists Connection: keep-alive.
    response = await post(client, TEXT_BADCASE)
    assert response.status == 200 and response.headers["Connection"] == "keep-alive"
    error = await post(client, b"<Request/>")
    assert error.status == 400 and error.headers["Connection"] == "keep-alive"
    closing = await client.post(
        PATH, data=TEXT_BADCASE, headers={**cos_sdk_headers(TEXT_BADCASE, NOW), "Connection": "close"}
    )
    assert closing.status == 200 and closing.headers["Connection"] == "close"
