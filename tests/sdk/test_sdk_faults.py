"""Injected faults as the official SDKs see them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from alibabacloud_tea_openapi.exceptions import ServerException as TeaServerException
from alibabacloud_tea_openapi.exceptions import ThrottlingException
from aliyunsdkcore.acs_exception.exceptions import ServerException
from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosServiceError

from emulator import RunningServer
from emulator.testing import SyncEmulatorClient

from .test_alibaba_sdks import core_image_feedback, tea_image_feedback
from .test_cos_sdk import REGION, SECRET_ID, SECRET_KEY, report_text


@pytest.fixture
def emu(threaded_server: RunningServer) -> Iterator[SyncEmulatorClient]:
    with SyncEmulatorClient(threaded_server.url) as client:
        yield client


def test_aliyunsdkcore_raises_the_injected_code(
    threaded_server: RunningServer, emu: SyncEmulatorClient
) -> None:
    rule = {"match": {"provider": "alibaba"}, "action": {"type": "error", "code": "ServiceUnavailable"}}
    with emu.fault(rule):
        with pytest.raises(ServerException) as info:
            core_image_feedback(threaded_server, {})
    assert (info.value.get_http_status(), info.value.get_error_code()) == (503, "ServiceUnavailable")
    assert info.value.get_request_id()


def test_aliyunsdkcore_returns_an_injected_business_code(
    threaded_server: RunningServer, emu: SyncEmulatorClient
) -> None:
    with emu.fault({"match": {"provider": "alibaba"}, "action": {"type": "error", "code": 588}}):
        assert core_image_feedback(threaded_server, {})["code"] == 588


def test_tea_sdk_server_and_throttling_exceptions(
    threaded_server: RunningServer, emu: SyncEmulatorClient
) -> None:
    with emu.fault({"match": {"provider": "alibaba"}, "action": {"type": "error", "code": "InternalError"}}):
        with pytest.raises(TeaServerException) as server_error:
            tea_image_feedback(threaded_server, None)
    assert (server_error.value.status_code, server_error.value.code) == (500, "InternalError")
    rule = {
        "match": {"provider": "alibaba"},
        "action": {"type": "error", "code": "Throttling.User", "retryAfter": 2},
    }
    with emu.fault(rule):
        with pytest.raises(ThrottlingException) as throttled:
            tea_image_feedback(threaded_server, "v2")
    assert throttled.value.retry_after == 2000


def test_cos_sdk_retries_a_5xx_three_times(
    threaded_server: RunningServer, emu: SyncEmulatorClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qcloud_cos.cos_client

    # The SDK sleeps 1, 2, 3 s between retries (cos_client.py, send_request); the retries are what
    # is under test, not the sleeping.
    monkeypatch.setattr(qcloud_cos.cos_client.time, "sleep", lambda seconds: None)
    conf = CosConfig(
        Region=REGION,
        SecretId=SECRET_ID,
        SecretKey=SECRET_KEY,
        Scheme="http",
        Proxies={"http": threaded_server.url},
    )
    with requests.Session() as session:
        session.trust_env = False
        client = CosS3Client(conf, retry=3, session=session)
        with emu.fault(
            {"match": {"provider": "tencent"}, "action": {"type": "error", "code": "InternalError"}}
        ):
            with pytest.raises(CosServiceError) as info:
                report_text(client)
    assert (info.value.get_status_code(), info.value.get_error_code()) == (500, "InternalError")
    attempts = emu.requests(provider="tencent")
    assert len(attempts) == 4
    assert [a.header("x-cos-sdk-retry") for a in attempts] == [None, "true", "true", "true"]
    assert {a.raw["fault"] for a in attempts} == {"f1"}
