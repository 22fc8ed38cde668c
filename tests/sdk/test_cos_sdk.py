"""cos-python-sdk-v5, unchanged but for where it connects, against a real running server.

Two ways to point it at the emulator while it keeps signing for the real host: ``Proxies`` (the
request goes to the emulator in absolute form, Host the CI host) and ``IP``/``Port`` (the SDK sets
Host itself, with ``.cos.`` instead of ``.ci.``: cos_client.py, send_request).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator

import pytest
import requests
from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosServiceError

from emulator import ManualClock, RunningServer
from emulator.providers.tencent.routes import TENCENT_BACKEND

SECRET_ID = "AKIDtestSecretId"
SECRET_KEY = "testSecretKey"
APPID = "1250000000"
BUCKET = f"examplebucket-{APPID}"
REGION = "ap-beijing"
SETUPS = ["proxies", "ip-port"]

MakeClient = Callable[..., CosS3Client]


@pytest.fixture
def make_client(threaded_server: RunningServer) -> Iterator[MakeClient]:
    sessions: list[requests.Session] = []

    def make(setup: str, *, secret_id: str = SECRET_ID, secret_key: str = SECRET_KEY) -> CosS3Client:
        credentials = {"SecretId": secret_id, "SecretKey": secret_key, "Region": REGION, "Scheme": "http"}
        if setup == "proxies":
            conf = CosConfig(Proxies={"http": threaded_server.url}, **credentials)
        else:
            conf = CosConfig(IP=threaded_server.host, Port=threaded_server.port, **credentials)
        # An own session, closed at teardown: the SDK's shared built-in pool would outlive the server.
        session = requests.Session()
        session.trust_env = False  # no proxy from the environment between the SDK and the emulator
        sessions.append(session)
        # retry=0: the SDK sleeps before retrying a 5xx (cos_client.py); no test here expects one.
        return CosS3Client(conf, retry=0, session=session)

    yield make
    for session in sessions:
        session.close()


def report_text(client: CosS3Client, text: str = "这是一个测试") -> dict[str, str]:
    result: dict[str, str] = client.ci_auditing_report_badcase(
        Bucket=BUCKET,
        ContentType=1,
        Label="Porn",
        SuggestedLabel="Normal",
        Text=base64.b64encode(text.encode()).decode(),
    )
    return result


@pytest.mark.parametrize("setup", SETUPS)
def test_text_and_image_badcases(make_client: MakeClient, threaded_server: RunningServer, setup: str) -> None:
    client = make_client(setup)
    text_result = report_text(client)
    image_result = client.ci_auditing_report_badcase(
        Bucket=BUCKET,
        ContentType=2,
        Label="Ads",
        SuggestedLabel="Normal",
        Url="https://example.com/1.jpg",
        JobId="si8263213daf3711eca0d1525400d88302",
        ModerationTime="2021-08-07T12:12:12+08:00",
    )
    state = threaded_server.app[TENCENT_BACKEND].states[APPID]
    text_case, image_case = state.badcases
    assert text_result == {"RequestId": text_case.request_id}
    assert image_result == {"RequestId": image_case.request_id}
    assert (text_case.text, text_case.bucket, text_case.region) == ("这是一个测试", "examplebucket", REGION)
    assert (image_case.url, image_case.job_id, image_case.moderation_time) == (
        "https://example.com/1.jpg",
        "si8263213daf3711eca0d1525400d88302",
        "2021-08-07T12:12:12+08:00",
    )


def raised(call: Callable[[], object]) -> CosServiceError:
    with pytest.raises(CosServiceError) as info:
        call()
    return info.value


@pytest.mark.parametrize("setup", SETUPS)
def test_invalid_body_is_reported_by_code(make_client: MakeClient, setup: str) -> None:
    client = make_client(setup)
    error = raised(
        lambda: client.ci_auditing_report_badcase(
            Bucket=BUCKET, ContentType=2, Label="Porn", SuggestedLabel="Normal"
        )
    )
    assert (error.get_status_code(), error.get_error_code()) == (400, "InvalidArgument")
    assert error.get_error_msg() == "Invalid argument Url: is required when ContentType is 2 (image)"
    assert error.get_resource_location().endswith("/report/badcase")
    assert error.get_request_id() != "Unknown"
    assert error.get_trace_id() != "Unknown"


@pytest.mark.parametrize("setup", SETUPS)
def test_wrong_secret_key(make_client: MakeClient, setup: str) -> None:
    error = raised(lambda: report_text(make_client(setup, secret_key="wrong")))
    assert (error.get_status_code(), error.get_error_code()) == (403, "SignatureDoesNotMatch")
    assert "<FormatString>post\n/report/badcase\n" in error.get_origin_msg()


@pytest.mark.parametrize("setup", SETUPS)
def test_unknown_secret_id(make_client: MakeClient, setup: str) -> None:
    error = raised(lambda: report_text(make_client(setup, secret_id="AKIDnobody")))
    assert (error.get_status_code(), error.get_error_code()) == (403, "InvalidAccessKeyId")


@pytest.mark.parametrize("setup", SETUPS)
def test_expired_signature(make_client: MakeClient, clock: ManualClock, setup: str) -> None:
    client = make_client(setup)
    report_text(client)
    # The SDK signs for [now - 60, now + 10000] (cos_auth.py, CosS3Auth expire=10000).
    clock.advance(10_100)
    error = raised(lambda: report_text(client))
    assert (error.get_status_code(), error.get_error_code()) == (403, "AccessDenied")
    assert error.get_error_msg() == "Request has expired"


@pytest.mark.parametrize("setup", SETUPS)
def test_client_clock_far_ahead(make_client: MakeClient, clock: ManualClock, setup: str) -> None:
    clock.set_time(time.time() - 3600)
    error = raised(lambda: report_text(make_client(setup)))
    assert (error.get_status_code(), error.get_error_code()) == (403, "RequestTimeTooSkewed")


def test_unknown_appid_is_no_such_bucket(make_client: MakeClient) -> None:
    client = make_client("proxies")
    error = raised(
        lambda: client.ci_auditing_report_badcase(
            Bucket="examplebucket-1259999999",
            ContentType=1,
            Label="Porn",
            SuggestedLabel="Normal",
            Text="eA==",
        )
    )
    assert (error.get_status_code(), error.get_error_code()) == (404, "NoSuchBucket")


def test_temporary_credential_token(threaded_server: RunningServer) -> None:
    # With Token, the SDK adds x-ci-security-token and signs it (cos_client.py, send_request).
    conf = CosConfig(
        SecretId=SECRET_ID,
        SecretKey=SECRET_KEY,
        Token="sts-token",
        Region=REGION,
        Scheme="http",
        Proxies={"http": threaded_server.url},
    )
    with requests.Session() as session:
        session.trust_env = False
        result = report_text(CosS3Client(conf, retry=0, session=session))
    assert result["RequestId"]
